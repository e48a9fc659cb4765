
/*
 * Copyright (C) ngx-railgun authors
 *
 * Unit tests of the store (src/ngx_railgun_store.c), built natively and,
 * where the compiler can, with -m32 against a tree configured for 32 bits:
 *
 * - values are 64 bits: a counter and a histogram sum pass 2^32;
 * - a worker killed at each step of an insert (the step hooks of
 *   ngx_railgun_store_step() jump out, the mutex is released as nginx does
 *   for a dead worker) leaves no series that samples find and a scrape does
 *   not show, and the next insert completes it without a duplicate;
 * - every family counts its dropped samples;
 * - a slot whose owner is dead, or whose pid was reused, counts nothing and
 *   is taken over cleared;
 * - a zone's bytes run out before its table does;
 * - the native bucket index of every schema matches the definition
 *   2^((i-1)/2^s) < v <= 2^(i/2^s) seconds, computed here another way (long
 *   double powers), exact boundaries included, and a window overflowed
 *   merges into the coarser one with every count where it belongs.
 * - exemplars: the latest observation of each bucket, a record that a
 *   writer died in the middle of is never read and is taken over once
 *   stale, and readers in one process never see a record torn by writers
 *   in two others (processes over a shared mapping, as workers are).
 *
 * What the store takes from nginx (slab, mutex, logging) is replaced here by
 * small stand-ins: a bump allocator over pages, a flag, a line counter.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>


static int  failures;
static int  tests;


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failures++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


/* nginx's side, reduced to what the store calls */

ngx_uint_t                ngx_pagesize = 4096;
ngx_pid_t                 ngx_pid;
volatile ngx_msec_t       ngx_current_msec = 1;
volatile ngx_cycle_t     *ngx_cycle;
static ngx_time_t         test_time = { 1700000000, 0, 0 };
volatile ngx_time_t      *ngx_cached_time = &test_time;

static ngx_log_t          test_log;
static int                locked;
static int                lock_errors;
static int                warnings;
static char               last_warning[512];

static u_char            *arena_next;
static u_char            *arena_small;
static size_t             arena_small_left;


void
ngx_shmtx_lock(ngx_shmtx_t *mtx)
{
    if (locked) {
        lock_errors++;
    }

    locked = 1;
}


void
ngx_shmtx_unlock(ngx_shmtx_t *mtx)
{
    locked = 0;
}


/* the slab allocator's rounding: pages from half a page up, else 2^n */

void *
ngx_slab_calloc_locked(ngx_slab_pool_t *pool, size_t size)
{
    u_char  *p;
    size_t   n;

    if (size >= ngx_pagesize / 2) {
        size = ngx_align(size, ngx_pagesize);

        if ((size_t) (pool->end - arena_next) < size) {
            return NULL;
        }

        p = arena_next;
        arena_next += size;
        pool->pfree -= size / ngx_pagesize;

        ngx_memzero(p, size);
        return p;
    }

    for (n = 8; n < size; n *= 2) { /* void */ }

    if (arena_small_left < n) {
        if ((size_t) (pool->end - arena_next) < ngx_pagesize) {
            return NULL;
        }

        arena_small = arena_next;
        arena_small_left = ngx_pagesize;
        arena_next += ngx_pagesize;
        pool->pfree--;
    }

    p = arena_small;
    arena_small += n;
    arena_small_left -= n;

    ngx_memzero(p, n);
    return p;
}


void *
ngx_slab_calloc(ngx_slab_pool_t *pool, size_t size)
{
    return ngx_slab_calloc_locked(pool, size);
}


void *
ngx_slab_alloc(ngx_slab_pool_t *pool, size_t size)
{
    return ngx_slab_calloc_locked(pool, size);
}


uint32_t
ngx_murmur_hash2(u_char *data, size_t len)
{
    uint32_t  h;

    /* FNV-1a: the store needs a hash, not this one */

    for (h = 2166136261u; len--; data++) {
        h = (h ^ *data) * 16777619u;
    }

    return h;
}


/* the conversions the store uses: %P %V %s %uz %ui %Z */

static u_char *
test_vsprintf(u_char *buf, u_char *end, const char *fmt, va_list args)
{
    u_char     *p;
    ngx_str_t  *v;
    char       *s;
    char        num[32];

    while (*fmt && buf < end) {
        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        fmt++;
        p = NULL;

        switch (*fmt++) {

        case 'P':
            snprintf(num, sizeof(num), "%ld", (long) va_arg(args, ngx_pid_t));
            s = num;
            break;

        case 'V':
            v = va_arg(args, ngx_str_t *);
            p = v->data;
            s = NULL;
            buf = ngx_cpymem(buf, p, ngx_min(v->len, (size_t) (end - buf)));
            break;

        case 's':
            s = va_arg(args, char *);
            break;

        case 'u':
            fmt++;
            snprintf(num, sizeof(num), "%lu",
                     (unsigned long) va_arg(args, size_t));
            s = num;
            break;

        case 'Z':
            *buf++ = '\0';
            s = NULL;
            p = buf;
            break;

        default:
            s = NULL;
            p = buf;
        }

        if (p == NULL && s) {
            buf = ngx_cpymem(buf, s, ngx_min(strlen(s), (size_t) (end - buf)));
        }
    }

    return buf;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    /* the store formats only short text into buffers of its own size */
    buf = test_vsprintf(buf, buf + 1024, fmt, args);
    va_end(args);

    return buf;
}


void ngx_cdecl
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    if (level <= NGX_LOG_WARN) {
        warnings++;
    }

    va_start(args, fmt);
    p = test_vsprintf((u_char *) last_warning,
                      (u_char *) last_warning + sizeof(last_warning) - 1,
                      fmt, args);
    va_end(args);

    *p = '\0';
}


/* the crash: a jump out of the insert at the step chosen */

static jmp_buf     crash;
static ngx_uint_t  crash_at;
static ngx_uint_t  crashed;

/* the stall: a writer stopped at a step while another one runs, then goes on */
static ngx_uint_t  stall_at;
static void      (*stall)(void);


void
ngx_railgun_store_test_step(ngx_uint_t step)
{
    if (step == stall_at) {
        stall_at = 0;
        stall();
        return;
    }

    if (step == crash_at) {
        crash_at = 0;
        crashed = step;
        longjmp(crash, 1);
    }
}


/* a zone */

enum {
    F_COUNTER = 0,
    F_HISTOGRAM,
    F_GAUGE,
    F_BOUNDED,
    NFAMILIES
};


static ngx_railgun_family_conf_t  families[NFAMILIES] = {
    { ngx_string("c_total"), ngx_string(""), NGX_RAILGUN_COUNTER,
      ngx_string("k=\"__overflow__\""), 0 },
    { ngx_string("h_seconds"), ngx_string(""), NGX_RAILGUN_HISTOGRAM,
      ngx_string("k=\"__overflow__\""), 0 },
    { ngx_string("g"), ngx_string(""), NGX_RAILGUN_WORKER_GAUGE,
      ngx_string("k=\"__overflow__\""), 0 },
    { ngx_string("b_total"), ngx_string(""), NGX_RAILGUN_COUNTER,
      ngx_string("k=\"__overflow__\""), 1 },
};


static struct {
    ngx_railgun_buckets_t  b;
    uint64_t               more[2];
} buckets = { { .n = 3, .bound = { 1000 } }, { 10000, 100000 } };


static ngx_shm_zone_t       shm_zone;
static ngx_railgun_store_t  store;
static u_char              *arena;
static size_t               arena_size;


static ngx_int_t
zone(size_t size, ngx_uint_t max_series)
{
    ngx_slab_pool_t  *pool;

    if (arena) {
        (void) munmap(arena, arena_size);
    }

    /* shared, as the zone is: forked writers update it */
    arena = mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS,
                 -1, 0);
    if (arena == MAP_FAILED) {
        arena = NULL;
        return NGX_ERROR;
    }

    arena_size = size;

    pool = (ngx_slab_pool_t *) arena;
    pool->start = arena + ngx_pagesize;
    pool->end = arena + size;
    pool->pfree = (size - ngx_pagesize) / ngx_pagesize;

    arena_next = pool->start;
    arena_small_left = 0;
    locked = 0;

    ngx_memzero(&shm_zone, sizeof(ngx_shm_zone_t));
    shm_zone.shm.addr = arena;
    shm_zone.shm.size = size;
    ngx_str_set(&shm_zone.shm.name, "railgun");
    shm_zone.shm.log = &test_log;

    ngx_memzero(&store, sizeof(ngx_railgun_store_t));
    store.families = families;
    store.nfamilies = NFAMILIES;
    store.default_buckets = &buckets.b;
    store.max_series = max_series;
    store.log = &test_log;
    shm_zone.data = &store;

    return ngx_railgun_store_init_zone(&shm_zone, NULL);
}


static ngx_railgun_series_t *
series(ngx_uint_t family, const char *key)
{
    return ngx_railgun_store_series(&store, family, (u_char *) key,
                                    strlen(key), &buckets.b);
}


/* a lock-free look-up, as a worker's request path makes it */

static ngx_railgun_series_t *
found(ngx_uint_t family, const char *key)
{
    size_t                 len;
    ngx_uint_t             i;
    ngx_railgun_table_t   *t;
    ngx_railgun_series_t  *s;

    len = strlen(key);
    t = store.sh->table;

    for (i = 0; i < t->nslots; i++) {
        s = t->slot[i];

        if (s && s->family == family && s->key_len == len
            && ngx_memcmp(ngx_railgun_series_key(s), key, len) == 0)
        {
            return s;
        }
    }

    return NULL;
}


static ngx_uint_t
listed(ngx_railgun_series_t *want)
{
    ngx_uint_t             n;
    ngx_railgun_series_t  *s;

    n = 0;

    for (s = ngx_railgun_store_first(&store, want->family);
         s;
         s = ngx_railgun_store_next(s))
    {
        if (s == want) {
            n++;
        }
    }

    return n;
}


/*
 * What a scrape and the request path must agree on, at any time: every
 * series in the table is shown once by its family's list.
 */

static int
table_in_lists(void)
{
    ngx_uint_t             i;
    ngx_railgun_table_t   *t;
    ngx_railgun_series_t  *s;

    t = store.sh->table;

    for (i = 0; i < t->nslots; i++) {
        s = t->slot[i];

        if (s && listed(s) != 1) {
            return 0;
        }
    }

    return 1;
}


/* ... and once the mutex is taken again, the counts and the table agree */

static int
consistent(void)
{
    ngx_uint_t             f, n, total, i;
    ngx_railgun_series_t  *s;

    total = 0;

    for (f = 0; f < NFAMILIES; f++) {
        n = 0;

        for (s = ngx_railgun_store_first(&store, f);
             s;
             s = ngx_railgun_store_next(s))
        {
            if (ngx_railgun_store_series(&store, f,
                                         ngx_railgun_series_key(s),
                                         s->key_len, &buckets.b)
                != s)
            {
                return 0;
            }

            if (ngx_railgun_store_next(s) == NULL
                && store.sh->family[f].last != s)
            {
                return 0;
            }

            n++;
        }

        if (n != store.sh->family[f].nseries) {
            return 0;
        }

        total += n;
    }

    n = 0;

    for (i = 0; i < store.sh->table->nslots; i++) {
        if (store.sh->table->slot[i]) {
            n++;
        }
    }

    return total == store.sh->nseries && n == total
           && store.sh->pending == NULL && !locked;
}


static void
test_64bit(void)
{
    uint64_t               v;
    ngx_railgun_series_t  *s, *h;

    printf("# ngx_atomic_t is %d bits, pointers %d\n",
           (int) sizeof(ngx_atomic_t) * 8, (int) sizeof(void *) * 8);

#ifdef STORE_TEST_M32
    ok(sizeof(void *) == 4 && sizeof(ngx_atomic_t) == 4,
       "built for 32 bits: ngx_atomic_t is 32 bits here");
#endif

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone created");

    s = series(F_COUNTER, "k=\"bytes\"");
    ok(s != NULL && !(s->flags & NGX_RAILGUN_SERIES_OVERFLOW),
       "counter series");
    ok(((uintptr_t) &s->values[0] & 7) == 0, "values 8-byte aligned");

    ngx_railgun_store_add(s, 0xffffffffu);
    ngx_railgun_store_add(s, 2);
    v = ngx_railgun_store_value(s, 0);
    ok(v == 0x100000001ull, "counter passes 2^32");

    ngx_railgun_store_add(s, 3ull << 32);
    ok(ngx_railgun_store_value(s, 0) == 0x400000001ull,
       "an add of more than 2^32");

    /* 72 minutes of latency in microseconds is 2^32 */

    h = series(F_HISTOGRAM, "k=\"slow\"");
    ngx_railgun_store_observe(h, 4000000000ull);
    ngx_railgun_store_observe(h, 4000000000ull);
    ok(ngx_railgun_store_value(h, buckets.b.n + 1) == 8000000000ull,
       "histogram sum passes 2^32 microseconds");
    ok(ngx_railgun_store_value(h, buckets.b.n) == 2, "+Inf bucket counted");

    ok(ngx_railgun_store_cas(s, 0, 0x400000001ull, 0x500000000ull)
       && ngx_railgun_store_value(s, 0) == 0x500000000ull,
       "compare-and-swap of 64 bits");
    ok(!ngx_railgun_store_cas(s, 0, 0x400000001ull, 1),
       "compare-and-swap fails on the high word");
}


static void
test_drops(void)
{
    ngx_uint_t             slot;
    ngx_railgun_series_t  *a, *b, *o, *h, *g;

    ok(zone(1024 * 1024, 2) == NGX_OK, "zone with a cap of 2");

    a = series(F_COUNTER, "k=\"a\"");
    b = series(F_COUNTER, "k=\"b\"");
    o = series(F_COUNTER, "k=\"c\"");

    ok(a != b && !(b->flags & NGX_RAILGUN_SERIES_OVERFLOW), "two series");
    ok(o->flags & NGX_RAILGUN_SERIES_OVERFLOW, "the third overflows");
    ok(warnings > 0 && strstr(last_warning, "overflow") != NULL,
       "overflow logged");

    ngx_railgun_store_add(a, 5);
    ngx_railgun_store_add(o, 7);
    ngx_railgun_store_add(o, 1);

    ok(ngx_railgun_store_dropped(&store, F_COUNTER) == 2,
       "counter: each update to the overflow series is a drop");
    ok(ngx_railgun_store_value(o, 0) == 8, "overflow series counts");

    (void) series(F_HISTOGRAM, "k=\"a\"");
    (void) series(F_HISTOGRAM, "k=\"b\"");
    h = series(F_HISTOGRAM, "k=\"c\"");
    ngx_railgun_store_observe(h, 5);

    ok(ngx_railgun_store_dropped(&store, F_HISTOGRAM) == 1,
       "histogram drop counted");
    ok(ngx_railgun_store_value(h, 0) == 1, "in its bucket all the same");

    ngx_pid = getpid();
    ngx_railgun_store_claim_slot(&store);
    slot = ngx_railgun_store_slot(&store);

    (void) series(F_GAUGE, "k=\"a\"");
    (void) series(F_GAUGE, "k=\"b\"");
    g = series(F_GAUGE, "k=\"c\"");
    ngx_railgun_store_gauge_add(g, slot, 1);
    ngx_railgun_store_gauge_add(g, slot, -1);

    ok(ngx_railgun_store_dropped(&store, F_GAUGE) == 2,
       "per-worker gauge drops counted");

    ngx_railgun_store_set(h, 0, 3);
    ok(ngx_railgun_store_dropped(&store, F_HISTOGRAM) == 2, "a set counts");

    ok(ngx_railgun_store_dropped(&store, F_BOUNDED) == 0,
       "no drop elsewhere");

    ngx_railgun_store_release_slot(&store);
}


/*
 * A worker dies at each step of an insert.  Steps 1-7 are the insert's own;
 * 8 is the switch to a new chunk, reached by inserting until one is needed.
 */

static void
test_crash(ngx_uint_t step)
{
    char                    name[64], key[64];
    ngx_uint_t              i, n, dup;
    ngx_railgun_series_t   *s, *again, *p;

    ok(zone(1024 * 1024, 100000) == NGX_OK, "zone for a crash");

    (void) series(F_COUNTER, "k=\"first\"");
    (void) series(F_HISTOGRAM, "k=\"first\"");

    crashed = 0;
    crash_at = step;
    n = 0;
    key[0] = '\0';

    if (setjmp(crash) == 0) {
        for (n = 0; n < 10000 && !crashed; n++) {
            snprintf(key, sizeof(key), "k=\"victim%u\"", (unsigned) n);
            (void) series(n % 2 ? F_HISTOGRAM : F_COUNTER, key);
        }
    }

    snprintf(name, sizeof(name), "step %u: the worker died there",
             (unsigned) step);
    ok(crashed == step && locked, name);

    /* nginx releases the slab mutex of a worker that died holding it */
    locked = 0;

    snprintf(name, sizeof(name),
             "step %u: every series samples find is shown", (unsigned) step);
    ok(table_in_lists(), name);

    /* the next worker to insert completes what was left */

    (void) series(F_COUNTER, "k=\"next\"");

    snprintf(name, sizeof(name), "step %u: zone consistent after the next "
             "insert", (unsigned) step);
    ok(consistent(), name);

    /* the dead worker's key again: one series, listed once */

    i = n % 2 ? F_HISTOGRAM : F_COUNTER;
    again = series(i, key);
    s = found(i, key);

    dup = 0;
    for (p = ngx_railgun_store_first(&store, i);
         p;
         p = ngx_railgun_store_next(p))
    {
        if (p->key_len == strlen(key)
            && ngx_memcmp(ngx_railgun_series_key(p), key, p->key_len) == 0)
        {
            dup++;
        }
    }

    snprintf(name, sizeof(name), "step %u: the key once, found and shown",
             (unsigned) step);
    ok(again == s && dup == 1 && !(again->flags & NGX_RAILGUN_SERIES_OVERFLOW),
       name);

    ngx_railgun_store_add(again, 1);

    snprintf(name, sizeof(name), "step %u: no lock left held",
             (unsigned) step);
    ok(lock_errors == 0 && !locked, name);
}


static void
test_slots(void)
{
    pid_t                  child;
    ngx_uint_t             mine, other;
    ngx_railgun_series_t  *g;
    u_char                 live[NGX_RAILGUN_STORE_SLOTS];

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for slots");

    g = series(F_GAUGE, "k=\"ws\"");

    ngx_pid = getpid();
    ngx_railgun_store_claim_slot(&store);
    mine = ngx_railgun_store_slot(&store);
    ok(mine == 1, "first slot taken");

    ngx_railgun_store_gauge_add(g, mine, 3);
    ngx_railgun_store_gauge_add(g, 0, 5);
    ok(ngx_railgun_store_value(g, 0) == 0, "slot 0 moves nothing");

    ngx_railgun_store_live_slots(&store, live);
    ok(live[mine] && !live[2], "own slot live, a free one not");

    /* a dead owner: a child that exited */

    child = fork();
    if (child == 0) {
        _exit(0);
    }
    (void) waitpid(child, NULL, 0);

    other = 2;
    store.sh->worker[other] = (ngx_atomic_uint_t) child;
    store.sh->worker_start[other] = 12345;
    g->values[other] = 7;

    /* a reused pid: this very process, started at another time */

    store.sh->worker[3] = (ngx_atomic_uint_t) getpid();
    store.sh->worker_start[3] = store.sh->worker_start[mine] + 1;
    g->values[3] = 11;

    ngx_railgun_store_live_slots(&store, live);
    ok(!live[other], "a dead owner's slot counts nothing");
    ok(!live[3], "a reused pid's slot counts nothing");
    ok(live[mine], "own slot still live");

    /* a new worker takes the first dead slot, cleared */

    store.slot = 0;
    ngx_railgun_store_claim_slot(&store);
    ok(store.slot == other && g->values[other] == 0,
       "dead owner's slot taken over, cleared");

    store.slot = 0;
    ngx_railgun_store_claim_slot(&store);
    ok(store.slot == 3 && g->values[3] == 0,
       "reused pid's slot taken over, cleared");

    ngx_railgun_store_live_slots(&store, live);
    ok(live[3] && live[other], "taken slots live");

    ngx_railgun_store_release_slot(&store);
    ngx_railgun_store_live_slots(&store, live);
    ok(!live[3] && store.sh->worker[3] == 0, "released slot free");

    /* no slot left: nothing counted, and another look a second later */

    for (other = 1; other < NGX_RAILGUN_STORE_SLOTS; other++) {
        store.sh->worker[other] = (ngx_atomic_uint_t) getpid();
        store.sh->worker_start[other] = store.sh->worker_start[mine];
    }

    store.slot = 0;
    ngx_railgun_store_claim_slot(&store);
    ok(store.slot == 0 && ngx_railgun_store_slot(&store) == 0,
       "no free slot: none");

    store.sh->worker[5] = 0;
    ok(ngx_railgun_store_slot(&store) == 0, "not looked for at once");

    ngx_current_msec += 1000;
    ok(ngx_railgun_store_slot(&store) == 5, "found a second later");
}


static ngx_railgun_exemplar_rec_t *recs(ngx_railgun_series_t *h);
static void exemplar(ngx_railgun_exemplar_t *ex, const char *name,
    const char *value, uint64_t time_ms);


/* the bytes run out before the table: the smallest counters fill 1 MB */

static void
test_sizing(void)
{
    char                   key[64];
    ngx_uint_t             n, used;
    ngx_railgun_series_t  *s;

    ok(zone(1024 * 1024, 10000000) == NGX_OK, "1 MB zone");

    warnings = 0;

    for (n = 0; n < 100000; n++) {
        /* a counter with 40 bytes of labels */
        snprintf(key, sizeof(key), "server=\"s\",path=\"/p\",x=\"%09u\"",
                 (unsigned) n);

        s = series(F_BOUNDED, key);

        if (s->flags & NGX_RAILGUN_SERIES_OVERFLOW) {
            break;
        }
    }

    used = ngx_railgun_store_used(&store);

    printf("# %u series of 40 bytes of labels, %u%% of the zone used\n",
           (unsigned) n, (unsigned) (used * 100 / (1024 * 1024)));

    ok(strstr(last_warning, "zone full") != NULL, "the zone filled first");
    ok(used * 100 / (1024 * 1024) >= 95, "95% of the zone used");
    ok(n * 80 >= 1024 * 1024 * 3 / 4, "3/4 of the bytes hold series");

    /* no room for exemplar records: none, the zone asked once a second */

    {
        int                     before;
        ngx_railgun_series_t   *h;
        ngx_railgun_exemplar_t  ex;

        h = series(F_HISTOGRAM, "k=\"full\"");
        exemplar(&ex, "request_id", "x", 1);

        warnings = 0;
        ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);
        ok(recs(h) == NULL && warnings == 1
           && strstr(last_warning, "no exemplars") != NULL,
           "zone full: no records, a warning");

        before = warnings;
        ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);
        ok(warnings == before && !locked && lock_errors == 0,
           "not asked again within a second");

        ngx_current_msec += 1000;
        ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);
        ok(warnings == before + 1, "asked again a second later");
    }
}


static ngx_railgun_exemplar_rec_t *
recs(ngx_railgun_series_t *h)
{
    return (ngx_railgun_exemplar_rec_t *) (uintptr_t)
           *ngx_railgun_series_exemplars(h);
}


static void
exemplar(ngx_railgun_exemplar_t *ex, const char *name, const char *value,
    uint64_t time_ms)
{
    ex->name.data = (u_char *) name;
    ex->name.len = strlen(name);
    ex->value.data = (u_char *) value;
    ex->value.len = strlen(value);
    ex->time_ms = time_ms;
}


static int
has_exemplar(ngx_railgun_series_t *h, ngx_uint_t bucket, uint64_t us,
    const char *name, const char *value, uint64_t time_ms)
{
    ngx_railgun_exemplar_copy_t  c;

    if (ngx_railgun_store_exemplar(h, bucket, &c) != NGX_OK) {
        return 0;
    }

    return c.value_us == us && c.time_ms == time_ms
           && c.name_len == strlen(name) && c.value_len == strlen(value)
           && ngx_memcmp(c.label, name, c.name_len) == 0
           && ngx_memcmp(c.label + c.name_len, value, c.value_len) == 0;
}


static void
test_exemplars(void)
{
    char                          big[NGX_RAILGUN_EXEMPLAR_LABEL + 1];
    ngx_uint_t                    i, none;
    ngx_railgun_series_t         *h, *c;
    ngx_railgun_exemplar_t        ex;
    ngx_railgun_exemplar_copy_t   copy;

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for exemplars");

    h = series(F_HISTOGRAM, "k=\"ex\"");
    c = series(F_COUNTER, "k=\"ex\"");

    ok(recs(h) == NULL, "no records before an exemplar");
    ok(ngx_railgun_store_exemplar(h, 0, &copy) == NGX_DECLINED,
       "no exemplar: declined");

    /* buckets 1000, 10000, 100000 us and +Inf */

    exemplar(&ex, "request_id", "aaa", 1700000000123ull);
    ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);

    ok(recs(h) != NULL, "records attached at the first exemplar");
    ok(has_exemplar(h, 1, 5000, "request_id", "aaa", 1700000000123ull),
       "exemplar in the bucket of its value");

    none = 0;
    for (i = 0; i <= buckets.b.n; i++) {
        if (i != 1 && ngx_railgun_store_exemplar(h, i, &copy) == NGX_OK) {
            none++;
        }
    }
    ok(none == 0, "none in the other buckets");

    exemplar(&ex, "request_id", "bbbb", 1700000000200ull);
    ngx_railgun_store_exemplar_set(&store, h, 9000, &ex);
    ok(has_exemplar(h, 1, 9000, "request_id", "bbbb", 1700000000200ull),
       "the latest observation replaces the one before");

    exemplar(&ex, "trace_id", "", 1700000000300ull);
    ngx_railgun_store_exemplar_set(&store, h, 7200000000ull, &ex);
    ok(has_exemplar(h, buckets.b.n, 7200000000ull, "trace_id", "",
                    1700000000300ull),
       "+Inf bucket, empty value, another name");

    ok(ngx_railgun_store_exemplar(h, buckets.b.n + 1, &copy) == NGX_DECLINED,
       "past +Inf: declined");

    /* the caller cuts; a label that does not fit is refused whole */

    ngx_memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[NGX_RAILGUN_EXEMPLAR_LABEL - 2] = '\0';
    exemplar(&ex, "id", big, 1);
    ngx_railgun_store_exemplar_set(&store, h, 500, &ex);
    ok(has_exemplar(h, 0, 500, "id", big, 1), "128 bytes in all kept");

    big[NGX_RAILGUN_EXEMPLAR_LABEL - 2] = 'x';
    big[NGX_RAILGUN_EXEMPLAR_LABEL - 1] = '\0';
    exemplar(&ex, "id", big, 2);
    ngx_railgun_store_exemplar_set(&store, h, 600, &ex);
    ok(has_exemplar(h, 0, 500, "id", big + 1, 1), "129 bytes refused");

    ngx_railgun_store_exemplar_set(&store, c, 600, &ex);
    ok(c->buckets == NULL, "a counter gets no records");

    /* the zone's records outlive a process: a new one sees them as is */

    ok(ngx_railgun_store_value(h, 1) == 0, "counts untouched by exemplars");
}


/*
 * A writer dies at step 9 (the sequence word odd, the time written) or 10
 * (half the label written): the record is not read, a writer within the
 * stale time leaves it, one after takes it over.
 */

static void
test_exemplar_crash(ngx_uint_t step)
{
    char                          name[80];
    ngx_railgun_series_t         *h;
    ngx_railgun_exemplar_t        ex;
    ngx_railgun_exemplar_copy_t   copy;

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for a dead writer");

    h = series(F_HISTOGRAM, "k=\"ex\"");

    exemplar(&ex, "request_id", "before", 10);
    ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);

    /* idle for long: the dying write's own start is what counts */
    ngx_current_msec += 10 * NGX_RAILGUN_EXEMPLAR_STALE;

    crashed = 0;
    crash_at = step;

    exemplar(&ex, "request_id", "the-victim-of-a-kill", 20);

    if (setjmp(crash) == 0) {
        ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);
    }

    snprintf(name, sizeof(name), "exemplar step %u: the writer died there",
             (unsigned) step);
    ok(crashed == step && (recs(h)[1].seq & 1), name);

    snprintf(name, sizeof(name), "exemplar step %u: a half-written record "
             "is not read", (unsigned) step);
    ok(ngx_railgun_store_exemplar(h, 1, &copy) == NGX_DECLINED, name);

    ngx_current_msec += NGX_RAILGUN_EXEMPLAR_STALE - 1;

    exemplar(&ex, "request_id", "too-early", 30);
    ngx_railgun_store_exemplar_set(&store, h, 5000, &ex);

    snprintf(name, sizeof(name), "exemplar step %u: a writer before the "
             "stale time leaves it", (unsigned) step);
    ok(ngx_railgun_store_exemplar(h, 1, &copy) == NGX_DECLINED, name);

    ngx_current_msec += 1;

    exemplar(&ex, "request_id", "after", 40);
    ngx_railgun_store_exemplar_set(&store, h, 6000, &ex);

    snprintf(name, sizeof(name), "exemplar step %u: a writer after it "
             "takes it over", (unsigned) step);
    ok(has_exemplar(h, 1, 6000, "request_id", "after", 40)
       && !(recs(h)[1].seq & 1), name);

    exemplar(&ex, "request_id", "next", 50);
    ngx_railgun_store_exemplar_set(&store, h, 7000, &ex);

    snprintf(name, sizeof(name), "exemplar step %u: and the record lives on",
             (unsigned) step);
    ok(has_exemplar(h, 1, 7000, "request_id", "next", 50), name);
}


/*
 * A writer stopped (SIGSTOP, a paused VM, a throttled cgroup) for longer
 * than the stale time after its first label word: another one takes the
 * record over and publishes it, then the first goes on and writes the rest
 * of its label over it.  The record's word is even and unchanged since, so
 * a reader copies it as is: the name's length and first word of one writer,
 * the next words of the other, which hold that one's value, a client's
 * bytes.  The reader must not give a name that is no label name.
 */

static ngx_railgun_series_t  *stall_series;


static void
test_exemplar_stall_writer(void)
{
    ngx_railgun_exemplar_t  ex;

    ngx_current_msec += NGX_RAILGUN_EXEMPLAR_STALE;

    exemplar(&ex, "http_x_trace", "taken-over", 20);
    ngx_railgun_store_exemplar_set(&store, stall_series, 5000, &ex);
}


static void
test_exemplar_stall(void)
{
    ngx_uint_t                    i, bad;
    ngx_railgun_exemplar_t        ex;
    ngx_railgun_exemplar_copy_t   copy;

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for a stalled writer");

    stall_series = series(F_HISTOGRAM, "k=\"stall\"");

    stall_at = 10;
    stall = test_exemplar_stall_writer;

    /* the value's bytes 6 to 9 land where the other name's 8 to 11 are */
    exemplar(&ex, "id", "012345\"} \n# EOF\nmore", 10);
    ngx_railgun_store_exemplar_set(&store, stall_series, 5000, &ex);

    ok(stall_at == 0 && !(recs(stall_series)[1].seq & 1),
       "stalled writer: the other published, the first went on");

    bad = 0;

    if (ngx_railgun_store_exemplar(stall_series, 1, &copy) == NGX_OK) {
        for (i = 0; i < copy.name_len; i++) {
            if (!((copy.label[i] >= 'a' && copy.label[i] <= 'z')
                  || (copy.label[i] >= 'A' && copy.label[i] <= 'Z')
                  || copy.label[i] == '_'
                  || (i > 0 && copy.label[i] >= '0'
                      && copy.label[i] <= '9')))
            {
                bad++;
            }
        }
    }

    ok(bad == 0, "stalled writer: no name that is no label name is read");

    exemplar(&ex, "request_id", "next", 30);
    ngx_railgun_store_exemplar_set(&store, stall_series, 5000, &ex);

    ok(has_exemplar(stall_series, 1, 5000, "request_id", "next", 30),
       "stalled writer: the next write makes the record whole again");
}


/*
 * Two writer processes on one record, each writing records whose every
 * field follows from the value, and a reader checking each copy it gets.
 */

#define EX_WRITES  400000

static void
ex_value(uint64_t v, char *buf)
{
    size_t  len;

    /* 1 to 118 bytes, of one letter, both from v */
    len = 1 + v % 118;
    ngx_memset(buf, 'a' + (int) (v % 26), len);
    buf[len] = '\0';
}


static void
test_exemplar_race(void)
{
    char                          value[128], want[128];
    pid_t                         w[2];
    volatile ngx_uint_t           spin;
    ngx_uint_t                    k, n, good, torn, busy;
    uint64_t                      v;
    ngx_railgun_series_t         *h;
    ngx_railgun_exemplar_t        ex;
    ngx_railgun_exemplar_copy_t   copy;

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for racing writers");

    h = series(F_HISTOGRAM, "k=\"race\"");

    /* the first record follows the writers' rule too */
    ex_value(5001, value);
    exemplar(&ex, "request_id", value, 5001 * 3);
    ngx_railgun_store_exemplar_set(&store, h, 5001, &ex);

    for (k = 0; k < 2; k++) {
        w[k] = fork();

        if (w[k] == 0) {
            for (n = 0; n < EX_WRITES; n++) {

                /* a pause now and then, where a reader may get through */
                if (n % 16 == 0) {
                    for (spin = 0; spin < 500; spin++) { /* void */ }
                }

                /* every value in bucket 1: 1000 < v <= 10000 */
                v = 1001 + (n * 2 + k) % 9000;
                ex_value(v, value);
                exemplar(&ex, "request_id", value, v * 3);
                ngx_railgun_store_exemplar_set(&store, h, v, &ex);
            }

            _exit(0);
        }
    }

    good = 0;
    torn = 0;
    busy = 0;

    /* until both writers are done */

    for (n = 0; w[0] || w[1]; n++) {

        if (n % 1024 == 0) {
            for (k = 0; k < 2; k++) {
                if (w[k] && waitpid(w[k], NULL, WNOHANG) == w[k]) {
                    w[k] = 0;
                }
            }
        }

        if (ngx_railgun_store_exemplar(h, 1, &copy) != NGX_OK) {
            busy++;
            continue;
        }

        good++;
        v = copy.value_us;
        ex_value(v, want);

        if (copy.time_ms != v * 3
            || copy.name_len != 10
            || ngx_memcmp(copy.label, "request_id", 10) != 0
            || copy.value_len != strlen(want)
            || ngx_memcmp(copy.label + 10, want, copy.value_len) != 0)
        {
            if (torn++ < 3) {
                printf("# torn: v %llu t %llu name %u value %u '%.*s'\n",
                       (unsigned long long) v,
                       (unsigned long long) copy.time_ms,
                       (unsigned) copy.name_len, (unsigned) copy.value_len,
                       (int) (copy.name_len + copy.value_len), copy.label);
            }
        }
    }

    printf("# %u copies read, %u busy, %u torn\n", (unsigned) good,
           (unsigned) busy, (unsigned) torn);

    ok(good > 0, "copies read while two processes write");
    ok(torn == 0, "no copy torn");
    ok((recs(h)[1].seq & 1) == 0 && has_exemplar(h, 1,
           recs(h)[1].value_us, "request_id",
           (ex_value(recs(h)[1].value_us, want), want),
           recs(h)[1].value_us * 3),
       "the record whole when the writers are done");
}


/*
 * The reference index: X = (v / 10^6)^(2^s) by squaring, kept as a
 * mantissa in [1, 2) and an exponent; bucket i holds 2^(i-1) < X <= 2^i.
 * Returns 0 where v is too near a boundary for long double to tell.
 */

static int
ref_index(uint64_t v, ngx_int_t schema, ngx_int_t *index)
{
    long double  m;
    ngx_int_t    e, k, i, n, pow;

    m = (long double) v / 1000000.0L;
    e = 0;

    while (m >= 2.0L) { m /= 2.0L; e++; }
    while (m < 1.0L) { m *= 2.0L; e--; }

    pow = schema > 0 ? schema : 0;

    for (k = 0; k < pow; k++) {
        m *= m;
        e *= 2;

        if (m >= 2.0L) {
            m /= 2.0L;
            e++;
        }
    }

    if (m != 1.0L && (m - 1.0L < 1e-12L || 2.0L - m < 1e-12L)) {
        return 0;
    }

    i = (m == 1.0L) ? e : e + 1;

    if (schema < 0) {
        /* ceil(i / 2^-s) */
        n = (ngx_int_t) 1 << -schema;
        i = (i >= 0) ? (i + n - 1) / n : -((-i) / n);
    }

    *index = i;

    return 1;
}


static ngx_railgun_buckets_t *
native_buckets(ngx_int_t schema, ngx_uint_t native)
{
    ngx_railgun_buckets_t  *b;

    b = calloc(1, offsetof(ngx_railgun_buckets_t, bound)
                  + (3 + 256) * sizeof(uint64_t));

    b->n = 3;
    b->bound[0] = 1000;
    b->bound[1] = 10000;
    b->bound[2] = 100000;

    ngx_railgun_store_native_init(b, schema, native);

    return b;
}


static uint64_t
next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;

    return *x;
}


static void
test_native_index(void)
{
    char                    name[128];
    uint64_t                v, x;
    ngx_int_t               schema, i, r, j;
    ngx_uint_t              bad, n, skipped;
    ngx_railgun_buckets_t  *b;

    for (schema = NGX_RAILGUN_NATIVE_MIN_SCHEMA;
         schema <= NGX_RAILGUN_NATIVE_MAX_SCHEMA;
         schema++)
    {
        b = native_buckets(schema, 160);
        bad = 0;
        n = 0;
        skipped = 0;
        x = 88172645463325252ull;

        for (j = 0; j < 60000; j++) {

            if (j < 20000) {
                v = 977 + j;                    /* every us near 1 ms */

            } else if (j < 40000) {
                v = (uint64_t) (j - 19999) * 1000;   /* whole ms to 20 s */

            } else {
                v = next_random(&x) >> (next_random(&x) % 54);
            }

            if (v <= NGX_RAILGUN_NATIVE_ZERO_US) {
                continue;
            }

            if (!ref_index(v, schema, &r)) {
                skipped++;
                continue;
            }

            i = ngx_railgun_native_index(b, v);
            n++;

            if (i != r) {
                if (bad++ < 3) {
                    printf("# schema %d: %llu us: index %d, not %d\n",
                           (int) schema, (unsigned long long) v, (int) i,
                           (int) r);
                }
            }
        }

        /* 10^6 * 2^j us is a bucket's upper bound exactly, 1 us more not */

        for (j = -6; j <= 40; j++) {
            v = j < 0 ? (uint64_t) 1000000 >> -j : (uint64_t) 1000000 << j;

            if (v <= NGX_RAILGUN_NATIVE_ZERO_US) {
                continue;
            }

            ref_index(v, schema, &r);
            i = ngx_railgun_native_index(b, v);

            if (i != r || (schema >= 0 && r != j * (1 << schema))) {
                bad++;
            }

            i = ngx_railgun_native_index(b, v + 1);

            if (ref_index(v + 1, schema, &r) && i != r) {
                bad++;
            }

            n += 2;
        }

        snprintf(name, sizeof(name), "schema %d: %lu indices as defined "
                 "(%lu too near a bound to check)", (int) schema,
                 (unsigned long) n, (unsigned long) skipped);
        ok(bad == 0 && skipped < 10, name);

        /* the first window starts just above the zero bucket */

        ok(ngx_railgun_native_index(b, NGX_RAILGUN_NATIVE_ZERO_US + 1)
           == b->offset, "first bucket above the zero threshold");

        free(b);
    }
}


static void
test_native_merge(void)
{
    uint64_t                out[8], obs[] = { 976, 0, 977, 1000, 1500,
                                              50000, 400000, 1000000,
                                              3600000000ull,
                                              86400000000ull * 365 },
                            zero, total;
    ngx_int_t               schema, offset, r, k;
    ngx_railgun_native_t    nat;
    ngx_uint_t              j, bad;
    ngx_railgun_buckets_t  *b;
    ngx_railgun_series_t   *h;

    b = native_buckets(3, 8);

    ok(b->coarse > 0 && 3 - (ngx_int_t) b->coarse >= -4,
       "8 buckets at schema 3 need a coarser window");

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for native histograms");

    h = ngx_railgun_store_series(&store, F_HISTOGRAM, (u_char *) "k=\"n\"",
                                 5, b);
    ok(h != NULL && !(h->flags & NGX_RAILGUN_SERIES_OVERFLOW)
       && h->nvalues == 3 + 3 + 2 + 16, "a series with native counts");

    /* within the first window: its schema */

    ngx_railgun_store_observe(h, 1000);
    ngx_railgun_store_observe(h, 1001);

    ngx_railgun_store_native_read(h, out, &nat, 0, h->buckets->native);
    zero = nat.zero;
    schema = nat.schema;
    offset = nat.offset;
    ref_index(1000, 3, &r);

    ok(zero == 0 && schema == 3 && offset == b->offset
       && out[r - offset] == 2 && nat.first == (ngx_uint_t) (r - offset)
       && nat.last == nat.first + 1, "first window at schema 3");

    for (j = 0; j < sizeof(obs) / sizeof(obs[0]); j++) {
        ngx_railgun_store_observe(h, obs[j]);
    }

    ngx_railgun_store_native_read(h, out, &nat, 0, h->buckets->native);
    zero = nat.zero;
    schema = nat.schema;
    offset = nat.offset;

    ok(schema == 3 - (ngx_int_t) b->coarse && offset == b->coarse_offset,
       "merged to the coarser schema");
    ok(zero == 2, "0 and 976 us in the zero bucket");

    /* every observation above the zero bucket where its index says */

    bad = 0;
    total = 0;

    for (k = 0; k < 8; k++) {
        uint64_t  want = 0;

        for (j = 0; j < sizeof(obs) / sizeof(obs[0]) + 2; j++) {
            uint64_t  v = j < 2 ? 1000 + j : obs[j - 2];

            if (v <= NGX_RAILGUN_NATIVE_ZERO_US) {
                continue;
            }

            ref_index(v, schema, &r);

            if (r == offset + k) {
                want++;
            }
        }

        if (out[k] != want) {
            bad++;
        }

        total += out[k];
    }

    ok(bad == 0 && total == 10, "each count in its coarse bucket");

    for (k = 0; k < 8; k++) {
        if ((out[k] != 0) != ((ngx_uint_t) k >= nat.first
                              && (ngx_uint_t) k < nat.last))
        {
            if (out[k] != 0 || k == (ngx_int_t) nat.first
                || k == (ngx_int_t) nat.last - 1)
            {
                bad++;
            }
        }
    }

    ok(bad == 0 && out[nat.first] && out[nat.last - 1],
       "first and last bucket with counts");

    free(b);
}


/*
 * Every schema with the least and the most buckets, and a few between:
 * observations at the zero threshold, at powers of two microseconds and
 * seconds, one either side of them, and at 2^64 - 1 us; after the merge
 * each is in the bucket its index at the merged schema says, and the
 * counts add up.
 */

static void
test_native_extremes(void)
{
    char                    name[128];
    uint64_t               *out, v, obs[300], total;
    ngx_int_t               schema, r, k;
    ngx_uint_t              j, m, nobs, bad,
                            sizes[] = { 8, 9, 16, 100, 160, 1024 };
    ngx_railgun_native_t    nat;
    ngx_railgun_series_t   *h;
    ngx_railgun_buckets_t  *b;
    u_char                  key[32];

    out = calloc(NGX_RAILGUN_NATIVE_MAX_BUCKETS, sizeof(uint64_t));

    ok(zone(16 * 1024 * 1024, 1000) == NGX_OK, "zone for extreme natives");

    for (schema = NGX_RAILGUN_NATIVE_MIN_SCHEMA;
         schema <= NGX_RAILGUN_NATIVE_MAX_SCHEMA;
         schema++)
    {
        for (m = 0; m < sizeof(sizes) / sizeof(sizes[0]); m++) {
            b = native_buckets(schema, sizes[m]);

            j = snprintf((char *) key, sizeof(key), "k=\"%d_%u\"",
                         (int) schema, (unsigned) sizes[m]);
            h = ngx_railgun_store_series(&store, F_HISTOGRAM, key, j, b);

            if (h == NULL) {
                ok(0, "series for extreme natives");
                free(b);
                continue;
            }

            nobs = 0;
            obs[nobs++] = 0;
            obs[nobs++] = NGX_RAILGUN_NATIVE_ZERO_US;
            obs[nobs++] = NGX_RAILGUN_NATIVE_ZERO_US + 1;
            obs[nobs++] = (uint64_t) -1;
            obs[nobs++] = (uint64_t) -2;

            for (k = 10; k < 64; k++) {
                v = (uint64_t) 1 << k;
                obs[nobs++] = v - 1;
                obs[nobs++] = v;
                obs[nobs++] = v + 1;
            }

            for (k = 0; k <= 43; k++) {
                obs[nobs++] = (uint64_t) 1000000 << k;
                obs[nobs++] = ((uint64_t) 1000000 << k) + 1;
            }

            for (j = 0; j < nobs; j++) {
                ngx_railgun_store_observe(h, obs[j]);
            }

            ngx_railgun_store_native_read(h, out, &nat, 0, h->buckets->native);

            bad = 0;
            total = nat.zero;

            for (j = 0; j < h->buckets->native; j++) {
                total += out[j];
            }

            for (j = 0; j < nobs; j++) {
                if (obs[j] <= NGX_RAILGUN_NATIVE_ZERO_US) {
                    continue;
                }

                if (!ref_index(obs[j], nat.schema, &r)) {
                    continue;
                }

                k = r - nat.offset;

                if (k < 0 || k >= (ngx_int_t) h->buckets->native
                    || out[k] == 0)
                {
                    if (bad++ < 3) {
                        printf("# schema %d, %u buckets: %llu us at "
                               "schema %d index %d, window %d...%d\n",
                               (int) schema, (unsigned) sizes[m],
                               (unsigned long long) obs[j],
                               (int) nat.schema, (int) r, (int) nat.offset,
                               (int) (nat.offset + h->buckets->native - 1));
                    }

                    continue;
                }

                out[k]--;
            }

            snprintf(name, sizeof(name), "schema %d, %u buckets: %u "
                     "observations where their index says", (int) schema,
                     (unsigned) sizes[m], (unsigned) nobs);
            ok(bad == 0 && total == nobs && nat.zero == 2, name);

            free(b);
        }
    }

    free(out);
}


/*
 * Four processes observe the same native histogram at once, as workers
 * do, half their observations past the first window (the second window's
 * marker and count, ngx_railgun_store_observe_native()), while a reader
 * takes its native counts: each read's total at least the one before, and
 * at the end every observation once, in the native counts as in the
 * classic ones.
 */

#define NATIVE_WRITERS  4
#define NATIVE_OBS      50000

static uint64_t
native_obs(ngx_uint_t k, ngx_uint_t n)
{
    uint64_t  x;

    x = (uint64_t) (k * NATIVE_OBS + n) * 2654435761u + 1;

    switch (n % 4) {
    case 0:
        return x % (NGX_RAILGUN_NATIVE_ZERO_US + 1);    /* zero bucket */
    case 1:
        return 1000 + x % 900;               /* the first window, 1-1.9 ms */
    default:
        return 10000 + x % 100000000;        /* past it, to 100 s */
    }
}


/*
 * The native counts read in the range that the classic counts give, as
 * the protobuf exposition reads them, are those of a whole read: the same
 * first, last and counts, the empty ones between written as 0 over what
 * out[] held.
 */

static void
test_native_range(void)
{
    char                    name[128];
    uint64_t               *out, *all, v, cum[4], rnd;
    ngx_int_t               schema;
    ngx_uint_t              j, t, nobs, lo, hi, from, to, bad, partial;
    ngx_railgun_native_t    nat, want;
    ngx_railgun_series_t   *h;
    ngx_railgun_buckets_t  *b;
    u_char                  key[32];

    /* within the first window, the zero bucket, rarely above the window */
    static const uint64_t  scale[] = { 900, 2000, 20000, 300000, 5000000,
                                       2000000000000ull };

    out = calloc(NGX_RAILGUN_NATIVE_MAX_BUCKETS, sizeof(uint64_t));
    all = calloc(NGX_RAILGUN_NATIVE_MAX_BUCKETS, sizeof(uint64_t));
    rnd = 88172645463325252ULL;

    ok(zone(16 * 1024 * 1024, 1000) == NGX_OK, "zone for native ranges");

    for (schema = -1; schema <= 4; schema += 5) {
        b = native_buckets(schema, 160);
        bad = 0;
        partial = 0;

        for (t = 0; t < 200; t++) {
            j = snprintf((char *) key, sizeof(key), "k=\"r%d_%u\"",
                         (int) schema, (unsigned) t);
            h = ngx_railgun_store_series(&store, F_HISTOGRAM, key, j, b);

            if (h == NULL) {
                bad++;
                continue;
            }

            nobs = t % 7;

            for (j = 0; j < nobs; j++) {
                rnd ^= rnd << 13;
                rnd ^= rnd >> 7;
                rnd ^= rnd << 17;
                v = rnd % scale[(rnd >> 40) % (t % 50 ? 5 : 6)] + 1;
                ngx_railgun_store_observe(h, v);
            }

            /* the classic snapshot and range, as the exposition takes them */

            v = 0;

            for (j = 0; j <= h->buckets->n; j++) {
                v += h->values[j];
                cum[j] = v;
            }

            from = 0;
            to = 0;

            if (v) {
                for (lo = 0; cum[lo] == 0; lo++) { /* void */ }
                for (hi = lo; cum[hi] != v; hi++) { /* void */ }

                ngx_railgun_store_native_range(h->buckets, lo, &from, &j);
                ngx_railgun_store_native_range(h->buckets, hi, &j, &to);
            }

            partial += (from > 0 || to < h->buckets->native);

            for (j = 0; j < NGX_RAILGUN_NATIVE_MAX_BUCKETS; j++) {
                out[j] = 0xdead;
            }

            ngx_railgun_store_native_read(h, all, &want, 0,
                                          h->buckets->native);
            ngx_railgun_store_native_read(h, out, &nat, from, to);

            if (nat.zero != want.zero || nat.schema != want.schema
                || nat.offset != want.offset || nat.first != want.first
                || nat.last != want.last)
            {
                bad++;
                continue;
            }

            for (j = nat.first; j < nat.last; j++) {
                if (out[j] != all[j]) {
                    bad++;
                    break;
                }
            }
        }

        snprintf(name, sizeof(name), "schema %d: a read in the classic "
                 "buckets' range is the whole read (%u of 200 partial)",
                 (int) schema, (unsigned) partial);
        ok(bad == 0 && partial > 50, name);

        free(b);
    }

    free(out);
    free(all);
}


static void
test_native_workers(void)
{
    pid_t                   w[NATIVE_WRITERS];
    uint64_t               *out, total, prev, classic, sum, want_sum,
                            want_zero, first, v;
    ngx_uint_t              j, k, n, reads, behind, running;
    ngx_railgun_native_t    nat;
    ngx_railgun_series_t   *h;
    ngx_railgun_buckets_t  *b;

    out = calloc(NGX_RAILGUN_NATIVE_MAX_BUCKETS, sizeof(uint64_t));

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for native writers");

    /* schema 3, 8 counts a window: the first from 1 ms to 2^-9 s */
    b = native_buckets(3, 8);
    h = ngx_railgun_store_series(&store, F_HISTOGRAM,
                                 (u_char *) "k=\"native\"", 10, b);

    if (h == NULL || b->coarse == 0) {
        ok(0, "a native series with a second window");
        free(out);
        return;
    }

    for (k = 0; k < NATIVE_WRITERS; k++) {
        w[k] = fork();

        if (w[k] == 0) {
            for (n = 0; n < NATIVE_OBS; n++) {
                ngx_railgun_store_observe(h, native_obs(k, n));
            }

            _exit(0);
        }
    }

    prev = 0;
    reads = 0;
    behind = 0;
    running = NATIVE_WRITERS;

    while (running) {
        for (k = 0; k < NATIVE_WRITERS; k++) {
            if (w[k] && waitpid(w[k], NULL, WNOHANG) == w[k]) {
                w[k] = 0;
                running--;
            }
        }

        ngx_railgun_store_native_read(h, out, &nat, 0, h->buckets->native);

        total = nat.zero;

        for (j = nat.first; j < nat.last; j++) {
            total += out[j];
        }

        if (total < prev && behind++ < 3) {
            printf("# native total %llu after %llu\n",
                   (unsigned long long) total, (unsigned long long) prev);
        }

        prev = total;
        reads++;
    }

    want_sum = 0;
    want_zero = 0;

    for (k = 0; k < NATIVE_WRITERS; k++) {
        for (n = 0; n < NATIVE_OBS; n++) {
            v = native_obs(k, n);
            want_sum += v;
            want_zero += (v <= NGX_RAILGUN_NATIVE_ZERO_US);
        }
    }

    ngx_railgun_store_native_read(h, out, &nat, 0, h->buckets->native);

    total = nat.zero;

    for (j = nat.first; j < nat.last; j++) {
        total += out[j];
    }

    classic = 0;

    for (j = 0; j <= b->n; j++) {
        classic += h->values[j];
    }

    sum = h->values[b->n + 1];

    first = 0;

    for (j = 0; j < b->native; j++) {
        first += h->values[ngx_railgun_native_first(b) + 2 + j];
    }

    printf("# %u native reads while %u processes observed\n",
           (unsigned) reads, NATIVE_WRITERS);

    ok(behind == 0, "native totals never go back while workers observe");
    ok(total == NATIVE_WRITERS * NATIVE_OBS && nat.zero == want_zero
       && nat.schema == b->schema - (ngx_int_t) b->coarse,
       "every concurrent observation once in the native counts, "
       "the second window's included");
    ok(classic == NATIVE_WRITERS * NATIVE_OBS && sum == want_sum,
       "and once in the classic counts and the sum");
    ok(first == NATIVE_WRITERS * NATIVE_OBS / 4,
       "a quarter of them in the first window");

    free(b);
    free(out);
}


/*
 * The table of label boundaries: a byte a label, the value's length,
 * where the protobuf exposition may cut the text with it; none where the
 * text must be scanned.
 */

static ngx_uint_t
bounds_are(ngx_railgun_series_t *s, const char *want, size_t n)
{
    return s != NULL && (s->flags & NGX_RAILGUN_SERIES_BOUNDS)
           && memcmp(ngx_railgun_series_bounds(s), want, n) == 0;
}


static ngx_uint_t
no_bounds(ngx_railgun_series_t *s)
{
    return s != NULL && !(s->flags & NGX_RAILGUN_SERIES_BOUNDS);
}


static void
test_bounds(void)
{
    char                   key[1024], *p;
    ngx_uint_t             i;
    ngx_railgun_series_t  *s;

    ok(zone(1024 * 1024, 100) == NGX_OK, "zone for the label tables");

    ok(bounds_are(series(F_COUNTER, "a=\"x\""), "\1", 1), "one label");
    ok(bounds_are(series(F_COUNTER,
                         "server=\"bench\",path=\"/api/v1/items/17\","
                         "method=\"GET\",status=\"200\""),
                  "\5\20\3\3", 4),
       "four labels: the values' lengths");
    ok(bounds_are(series(F_COUNTER, "a=\"\",b=\"x=y,z\""), "\0\5", 2),
       "an empty value, a value with '=' and ','");
    ok(bounds_are(series(F_HISTOGRAM, "p=\"/h\""), "\2", 1),
       "a histogram's, after its label text");

    ok(no_bounds(series(F_COUNTER, "a=\"x\\\"y\"")), "none with an escape");
    ok(no_bounds(series(F_COUNTER, "=\"x\"")), "none with an empty name");
    ok(no_bounds(series(F_COUNTER, "a=\"x\",")), "none after a trailing comma");
    ok(no_bounds(series(F_COUNTER, "a=\"x\"b=\"y\"")), "none without a comma");
    ok(no_bounds(series(F_COUNTER, "a=x")), "none without quotes");
    ok(no_bounds(series(F_COUNTER, "a=\"x")), "none for an open value");

    /* a value of 255 bytes has a table, one of 256 has none */

    p = key;
    p += sprintf(p, "v=\"");
    memset(p, 'x', 255);
    p += 255;
    strcpy(p, "\"");
    s = series(F_COUNTER, key);
    ok(bounds_are(s, "\377", 1), "a value of 255 bytes");

    p = key + 3;
    memset(p, 'y', 256);
    strcpy(p + 256, "\"");
    ok(no_bounds(series(F_COUNTER, key)), "none with a value of 256");

    /* 32 labels have a table, 33 none */

    for (p = key, i = 0; i < 32; i++) {
        p += sprintf(p, "%sl%u=\"v\"", i ? "," : "", (unsigned) i);
    }

    s = series(F_COUNTER, key);
    ok(bounds_are(s, "\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1"
                     "\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1\1", 32),
       "32 labels");
    ok(s && memcmp(ngx_railgun_series_key(s), key, strlen(key)) == 0
       && s->key_len == strlen(key), "the label text before the table");

    sprintf(p, ",l32=\"v\"");
    ok(no_bounds(series(F_COUNTER, key)), "none with 33 labels");
}


int
main(void)
{
    ngx_uint_t  step;

    test_log.log_level = NGX_LOG_DEBUG;

    test_64bit();
    test_drops();

    for (step = 1; step <= 8; step++) {
        test_crash(step);
    }

    test_slots();
    test_sizing();
    test_native_index();
    test_native_merge();
    test_native_extremes();
    test_native_range();
    test_native_workers();

    test_exemplars();
    test_exemplar_crash(9);
    test_exemplar_crash(10);
    test_exemplar_stall();
    test_exemplar_race();

    test_bounds();

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
