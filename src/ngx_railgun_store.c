
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_store.h"


/*
 * The table of series is open addressing over pointers, insert only: a
 * reader probes it without a lock and sees either NULL or a series that was
 * completely written before its pointer was published.  Inserting takes the
 * slab pool's own mutex, the one nginx releases when a worker dies holding
 * it: see the ordering rules in ngx_railgun_store.h for what a death at any
 * step leaves, and ngx_railgun_store_recover() for how it is completed.
 */


#define NGX_RAILGUN_STORE_MAGIC   0x6e67726c   /* "ngrl" */
#define NGX_RAILGUN_STORE_LAYOUT  9

/*
 * The table is kept under 3/4 full and has room for as many series as the
 * zone's bytes hold of the smallest: a counter with 32 bytes of labels.  So
 * the bytes run out first; the table takes 15% of a zone (8% on 32 bits).
 */
#define NGX_RAILGUN_STORE_MIN_SERIES                                          \
    (offsetof(ngx_railgun_series_t, values) + sizeof(uint64_t) + 32)

#define NGX_RAILGUN_STORE_CHUNK       (64 * 1024)

#define NGX_RAILGUN_STORE_LOG_EVERY   60000

/* a worker that found no slot looks again at most this often, in ms */
#define NGX_RAILGUN_STORE_SLOT_RETRY  1000

/* a worker that found the zone full for exemplars asks again after, in ms */
#define NGX_RAILGUN_STORE_EXEMPLAR_RETRY  1000


/*
 * The unit test (t/unit/store_test.c) kills the insert at each of these
 * steps; in the module they are nothing.
 */

#ifdef NGX_RAILGUN_STORE_TEST
void ngx_railgun_store_test_step(ngx_uint_t step);
#define ngx_railgun_store_step(n)  ngx_railgun_store_test_step(n)
#else
#define ngx_railgun_store_step(n)
#endif


static ngx_int_t ngx_railgun_store_create(ngx_railgun_store_t *store,
    ngx_shm_zone_t *shm_zone);
static ngx_railgun_series_t *ngx_railgun_store_find(
    ngx_railgun_table_t *table, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_uint_t *slot);
static ngx_railgun_series_t *ngx_railgun_store_insert(
    ngx_railgun_store_t *store, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_railgun_buckets_t *buckets);
static void ngx_railgun_store_recover(ngx_railgun_store_t *store);
static ngx_railgun_series_t *ngx_railgun_store_alloc(
    ngx_railgun_store_t *store, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_railgun_buckets_t *buckets, ngx_uint_t overflow);
static size_t ngx_railgun_store_bounds(u_char *key, size_t len,
    u_char *bounds);
static void *ngx_railgun_store_carve(ngx_railgun_store_t *store,
    size_t size);
static ngx_railgun_buckets_t *ngx_railgun_store_intern(
    ngx_railgun_store_t *store, ngx_railgun_buckets_t *buckets);
static ngx_railgun_series_t *ngx_railgun_store_overflow(
    ngx_railgun_store_t *store, ngx_uint_t family, const char *why);
static ngx_shm_zone_t *ngx_railgun_store_old_zone(ngx_shm_zone_t *shm_zone);
static void ngx_railgun_store_clear_slot(ngx_railgun_store_t *store,
    ngx_uint_t slot);
static ngx_uint_t ngx_railgun_store_slot_live(ngx_railgun_store_sh_t *sh,
    ngx_uint_t slot);
static ngx_railgun_exemplar_rec_t *ngx_railgun_store_exemplars(
    ngx_railgun_store_t *store, ngx_railgun_series_t *s);
static ngx_uint_t ngx_railgun_store_label_name(u_char *p, size_t len);


ngx_railgun_series_t *
ngx_railgun_store_series(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, ngx_railgun_buckets_t *buckets)
{
    uint32_t                 hash;
    ngx_uint_t               i;
    ngx_railgun_series_t    *s;
    ngx_railgun_table_t     *table;

    if (len > NGX_RAILGUN_STORE_MAX_KEY) {
        return ngx_railgun_store_overflow(store, family, "label text too long");
    }

    hash = ngx_murmur_hash2(key, len) ^ (uint32_t) (family * 0x9e3779b1);

    table = __atomic_load_n(&store->sh->table, __ATOMIC_ACQUIRE);

    s = ngx_railgun_store_find(table, family, key, len, hash, &i);

    if (s) {
        return s;
    }

    return ngx_railgun_store_insert(store, family, key, len, hash, buckets);
}


/*
 * Probes the table for the key; on a miss *slot is the empty slot where it
 * belongs.  The load factor is kept under 3/4, so an empty slot exists.
 */

static ngx_railgun_series_t *
ngx_railgun_store_find(ngx_railgun_table_t *table, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_uint_t *slot)
{
    ngx_uint_t             i;
    ngx_railgun_series_t  *s;

    for (i = hash % table->nslots; /* void */ ; /* void */ ) {

        s = __atomic_load_n(&table->slot[i], __ATOMIC_ACQUIRE);

        if (s == NULL) {
            *slot = i;
            return NULL;
        }

        if (s->hash == hash
            && s->family == family
            && s->key_len == len
            && ngx_memcmp(ngx_railgun_series_key(s), key, len) == 0)
        {
            return s;
        }

        if (++i == table->nslots) {
            i = 0;
        }
    }
}


/*
 * The steps of an insert, each of which a worker may die after: the new
 * series is written where no one sees it (1), recorded as pending (2),
 * linked at the end of its family's list, where a scrape shows it with
 * zero values (3), made the list's last (4) and counted (5), published in
 * the table, where samples find it (6), and the record cleared (7).
 */

static ngx_railgun_series_t *
ngx_railgun_store_insert(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_railgun_buckets_t *buckets)
{
    ngx_uint_t                i;
    const char               *why;
    ngx_railgun_series_t     *s, *last;
    ngx_railgun_table_t      *table;
    ngx_railgun_store_sh_t   *sh;
    ngx_railgun_family_sh_t  *fam;

    sh = store->sh;
    fam = &sh->family[family];
    why = NULL;

    ngx_shmtx_lock(&store->shpool->mutex);

    ngx_railgun_store_recover(store);

    table = sh->table;

    /* another worker may have inserted it since the lock-free probe */

    s = ngx_railgun_store_find(table, family, key, len, hash, &i);

    if (s) {
        ngx_shmtx_unlock(&store->shpool->mutex);
        return s;
    }

    if (fam->nseries >= store->max_series
        && !store->families[family].bounded)
    {
        why = "railgun_max_series reached";

    } else if (sh->nseries >= table->nslots - table->nslots / 4) {
        why = "series table full";

    } else {
        s = ngx_railgun_store_alloc(store, family, key, len, hash, buckets,
                                    0);

        if (s == NULL) {
            why = "zone full";

        } else {
            ngx_railgun_store_step(1);

            sh->pending = s;

            ngx_railgun_store_step(2);

            last = fam->last;

            if (last) {
                __atomic_store_n(&last->next, s, __ATOMIC_RELEASE);

            } else {
                __atomic_store_n(&fam->head, s, __ATOMIC_RELEASE);
            }

            ngx_railgun_store_step(3);

            fam->last = s;

            ngx_railgun_store_step(4);

            fam->nseries++;
            sh->nseries++;

            ngx_railgun_store_step(5);

            __atomic_store_n(&table->slot[i], s, __ATOMIC_RELEASE);

            ngx_railgun_store_step(6);

            sh->pending = NULL;

            ngx_railgun_store_step(7);
        }
    }

    ngx_shmtx_unlock(&store->shpool->mutex);

    if (why) {
        return ngx_railgun_store_overflow(store, family, why);
    }

    return s;
}


/*
 * Completes an insert that a dead worker left pending, called under the
 * mutex: each step is done again unless it is seen done.  The series can
 * only be at the very end of its list, past a "last" that may lag.
 */

static void
ngx_railgun_store_recover(ngx_railgun_store_t *store)
{
    ngx_uint_t                i, n, f;
    ngx_railgun_series_t     *s, *p, *end;
    ngx_railgun_store_sh_t   *sh;
    ngx_railgun_family_sh_t  *fam;

    sh = store->sh;
    s = sh->pending;

    if (s == NULL) {
        return;
    }

    fam = &sh->family[s->family];

    end = fam->last ? fam->last : fam->head;

    if (end) {
        while (end->next) {
            end = end->next;
        }
    }

    if (end != s) {
        if (end) {
            __atomic_store_n(&end->next, s, __ATOMIC_RELEASE);

        } else {
            __atomic_store_n(&fam->head, s, __ATOMIC_RELEASE);
        }
    }

    fam->last = s;

    /* the counts, from the lists themselves */

    sh->nseries = 0;

    for (f = 0; f < store->nfamilies; f++) {
        n = 0;

        for (p = sh->family[f].head; p; p = p->next) {
            n++;
        }

        sh->family[f].nseries = n;
        sh->nseries += n;
    }

    if (ngx_railgun_store_find(sh->table, s->family,
                               ngx_railgun_series_key(s), s->key_len,
                               s->hash, &i)
        == NULL)
    {
        __atomic_store_n(&sh->table->slot[i], s, __ATOMIC_RELEASE);
    }

    sh->pending = NULL;

    ngx_log_error(NGX_LOG_NOTICE, store->log, 0,
                  "railgun: a series that a dead worker was adding to "
                  "\"%V\" is complete", &store->families[s->family].name);
}


static ngx_railgun_series_t *
ngx_railgun_store_alloc(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_railgun_buckets_t *buckets,
    ngx_uint_t overflow)
{
    size_t                 size, nbounds;
    u_char                 bounds[NGX_RAILGUN_SERIES_MAX_BOUNDS];
    ngx_uint_t             nvalues;
    ngx_railgun_series_t  *s;

    if (store->families[family].type == NGX_RAILGUN_HISTOGRAM) {
        buckets = ngx_railgun_store_intern(store, buckets);
        if (buckets == NULL) {
            return NULL;
        }

        /*
         * one count per bucket, +Inf, the sum, the exemplars' address, then
         * the native counts
         */
        nvalues = buckets->n + 3 + ngx_railgun_native_values(buckets);

    } else if (store->families[family].type == NGX_RAILGUN_WORKER_GAUGE) {
        buckets = NULL;
        nvalues = NGX_RAILGUN_STORE_SLOTS;

    } else if (store->families[family].type == NGX_RAILGUN_STATE) {
        buckets = NULL;
        nvalues = NGX_RAILGUN_STATE_VALUES;

    } else {
        buckets = NULL;
        nvalues = 1;
    }

    nbounds = ngx_railgun_store_bounds(key, len, bounds);

    /* an overflow series counts the updates it took in one more word */

    size = offsetof(ngx_railgun_series_t, values)
           + (nvalues + (overflow ? 1 : 0)) * sizeof(uint64_t) + len
           + nbounds;

    s = ngx_railgun_store_carve(store, size);
    if (s == NULL) {
        return NULL;
    }

    s->buckets = buckets;
    s->hash = hash;
    s->family = (uint16_t) family;
    s->flags = (overflow ? NGX_RAILGUN_SERIES_OVERFLOW : 0)
               | (nbounds ? NGX_RAILGUN_SERIES_BOUNDS : 0);
    s->key_len = (uint16_t) len;
    s->nvalues = (uint16_t) nvalues;
    ngx_memcpy(ngx_railgun_series_bounds(s), bounds, nbounds);
    ngx_memcpy(ngx_railgun_series_key(s), key, len);

    return s;
}


/*
 * The table of label boundaries of the label text (see the series in
 * ngx_railgun_store.h): its bytes, or 0 where the text has a backslash, an
 * empty name, a name or value of 256 bytes or more, more labels than the
 * table takes, or is not name="value",... at all; the exposition then reads
 * the text alone.
 */

static size_t
ngx_railgun_store_bounds(u_char *key, size_t len, u_char *bounds)
{
    u_char  *p, *last, *name, *value;
    size_t   n;

    p = key;
    last = key + len;
    n = 0;

    while (p < last) {
        if (n == NGX_RAILGUN_SERIES_MAX_BOUNDS) {
            return 0;
        }

        name = p;

        while (p < last && *p != '=') {
            if (*p == '"' || *p == '\\') {
                return 0;
            }

            p++;
        }

        /* an empty name stops the scan: the same without the table */

        if (p == name || p - name > 255 || last - p < 3 || p[1] != '"') {
            return 0;
        }

        p += 2;
        value = p;

        while (p < last && *p != '"') {
            if (*p == '\\') {
                return 0;
            }

            p++;
        }

        if (p == last || p - value > 255) {
            return 0;
        }

        bounds[n++] = (u_char) (p - value);

        p++;

        if (p == last) {
            return n;
        }

        if (*p != ',' || ++p == last) {
            return 0;
        }
    }

    return 0;
}


/*
 * Series are never freed, so they are carved one after another out of large
 * slab chunks instead of each taking a power-of-two slab slot: a counter
 * with 60 bytes of labels in three takes 112 bytes, not 128.  Called under
 * the mutex.  A worker dying between the two stores leaves the new chunk
 * with the old chunk's used count: bytes lost, none handed out twice.
 */

static void *
ngx_railgun_store_carve(ngx_railgun_store_t *store, size_t size)
{
    u_char                  *p;
    ngx_railgun_store_sh_t  *sh;

    sh = store->sh;
    size = ngx_align(size, sizeof(uint64_t));

    if (size > sh->chunk_size) {
        return NULL;
    }

    if (sh->chunk == NULL || sh->chunk_size - sh->chunk_used < size) {
        p = ngx_slab_calloc_locked(store->shpool, sh->chunk_size);
        if (p == NULL) {
            return NULL;
        }

        sh->chunk = p;

        ngx_railgun_store_step(8);

        sh->chunk_used = 0;
    }

    p = sh->chunk + sh->chunk_used;
    sh->chunk_used += size;

    return p;
}


/* bucket lists are only read under the mutex, or through a series */

static ngx_railgun_buckets_t *
ngx_railgun_store_intern(ngx_railgun_store_t *store,
    ngx_railgun_buckets_t *buckets)
{
    size_t                  size;
    ngx_railgun_buckets_t  *b;

    size = offsetof(ngx_railgun_buckets_t, bound)
           + (buckets->n + buckets->ntau) * sizeof(uint64_t);

    /* the rest of the native fields follows from these */

    for (b = store->sh->buckets; b; b = b->next) {
        if (b->n == buckets->n
            && b->native == buckets->native
            && b->schema == buckets->schema
            && b->ntau == buckets->ntau
            && ngx_memcmp(b->bound, buckets->bound,
                          (buckets->n + buckets->ntau) * sizeof(uint64_t))
               == 0)
        {
            return b;
        }
    }

    b = ngx_railgun_store_carve(store, size);
    if (b == NULL) {
        return NULL;
    }

    ngx_memcpy(b, buckets, size);

    b->next = store->sh->buckets;
    store->sh->buckets = b;

    return b;
}


/*
 * The native settings of b, whose bound[] has room for n + 2^max(schema, 0)
 * words; called at configuration time, the only place that computes in
 * floating point.  2^x is its Taylor series: no libm for a module that
 * needs none otherwise.
 */

void
ngx_railgun_store_native_init(ngx_railgun_buckets_t *b, ngx_int_t schema,
    ngx_uint_t native)
{
    double      k, f, x, term, sum;
    uint64_t   *tau;
    ngx_int_t   top, co, d;
    ngx_uint_t  j, t;

    /* log2(10^6), the seconds of a microsecond */
    static const double  log2_1e6 = 19.931568569324174087221916576936;

    b->native = native;
    b->schema = schema;
    b->pow = schema > 0 ? (ngx_uint_t) schema : 0;
    b->shift = schema < 0 ? (ngx_uint_t) -schema : 0;
    b->ntau = (ngx_uint_t) 1 << b->pow;

    k = log2_1e6 * (double) b->ntau;
    b->base = (ngx_int_t) k;
    f = k - (double) b->base;

    tau = &b->bound[b->n];

    for (j = 0; j < b->ntau; j++) {
        x = ((double) j + f) / (double) b->ntau * 0.69314718055994530942;

        sum = 1.0;
        term = 1.0;

        for (t = 1; t < 30; t++) {
            term *= x / (double) t;
            sum += term;
        }

        /* 1 <= sum < 2 */
        tau[j] = (uint64_t) (sum * 9223372036854775808.0);
    }

    /* 2^(k0 + f) / 2^s is 10^6 / 2^19 exactly: whole seconds, 0.5 s... */
    tau[b->base - 19 * (ngx_int_t) b->ntau] = (uint64_t) 15625 << 50;

    /* the first bucket above the zero bucket's 2^-10 s */

    if (schema >= 0) {
        b->offset = -10 * (ngx_int_t) b->ntau + 1;

    } else {
        b->offset = (-9 + ((ngx_int_t) 1 << b->shift) - 1) >> b->shift;
    }

    /* the least reduction whose window reaches 2^64 - 1 us */

    b->coarse = 0;
    b->coarse_offset = 0;

    top = ngx_railgun_native_index(b, (uint64_t) -1);

    if (top - b->offset < (ngx_int_t) native) {
        return;
    }

    for (d = 1; schema - d >= NGX_RAILGUN_NATIVE_MIN_SCHEMA; d++) {
        co = (b->offset + ((ngx_int_t) 1 << d) - 1) >> d;

        b->coarse = d;
        b->coarse_offset = co;

        if (((top + ((ngx_int_t) 1 << d) - 1) >> d) - co < (ngx_int_t) native)
        {
            return;
        }
    }
}


/*
 * A snapshot of the native counts of s, merged down to one window: out[]
 * gets the counts of buckets nat->offset + nat->first ... nat->offset +
 * nat->last - 1 at nat->schema (the rest of out[] is not written).  Where
 * anything went to the second window, the first is merged into it; its
 * indices never fall below the second's offset.  A count whose marker is
 * not seen yet waits for the next scrape: counts only grow.
 *
 * Of the first window, only counts from ... to - 1 are read, the others
 * taken for 0: ngx_railgun_store_native_range() of the classic buckets
 * read before, since an observation goes to its classic bucket first.  A
 * native count seen before its classic one waits for the next scrape too;
 * once its classic bucket is seen, it is always read.  Each count is read
 * once, so the exposed count, their sum, adds up.
 */

void
ngx_railgun_store_native_read(ngx_railgun_series_t *s, uint64_t *out,
    ngx_railgun_native_t *nat, ngx_uint_t from, ngx_uint_t to)
{
    uint64_t                v, v0, v1, v2, v3, *w;
    ngx_int_t               i, one;
    ngx_uint_t              j, k, first, last;
    ngx_railgun_buckets_t  *b;

    b = s->buckets;
    w = &s->values[ngx_railgun_native_first(b)];

    nat->zero = __atomic_load_n(&w[0], __ATOMIC_RELAXED);

    first = 0;
    last = 0;

    if (b->coarse == 0 || __atomic_load_n(&w[1], __ATOMIC_RELAXED) == 0) {

        /*
         * Four at a time, a branch per four: most of a window is empty.
         * Only the counts from the first one not 0 are written to out[],
         * the empty ones between groups when a later group has a count.
         */

        w += 2;
        to = ngx_min(to, b->native);

        for (j = from; j + 4 <= to; j += 4) {
            v0 = __atomic_load_n(&w[j], __ATOMIC_RELAXED);
            v1 = __atomic_load_n(&w[j + 1], __ATOMIC_RELAXED);
            v2 = __atomic_load_n(&w[j + 2], __ATOMIC_RELAXED);
            v3 = __atomic_load_n(&w[j + 3], __ATOMIC_RELAXED);

            if ((v0 | v1 | v2 | v3) == 0) {
                continue;
            }

            if (last == 0) {
                first = j + (v0 ? 0 : v1 ? 1 : v2 ? 2 : 3);

            } else {
                for (k = last; k < j; k++) {
                    out[k] = 0;
                }
            }

            out[j] = v0;
            out[j + 1] = v1;
            out[j + 2] = v2;
            out[j + 3] = v3;

            last = j + (v3 ? 4 : v2 ? 3 : v1 ? 2 : 1);
        }

        for ( /* void */ ; j < to; j++) {
            v = __atomic_load_n(&w[j], __ATOMIC_RELAXED);

            if (v == 0) {
                continue;
            }

            if (last == 0) {
                first = j;

            } else {
                for (k = last; k < j; k++) {
                    out[k] = 0;
                }
            }

            out[j] = v;
            last = j + 1;
        }

        nat->schema = b->schema;
        nat->offset = b->offset;
        nat->first = first;
        nat->last = last;

        return;
    }

    for (j = 0; j < b->native; j++) {
        out[j] = __atomic_load_n(&w[2 + b->native + j], __ATOMIC_RELAXED);
    }

    one = (ngx_int_t) 1 << b->coarse;

    for (j = 0; j < b->native; j++) {
        v = __atomic_load_n(&w[2 + j], __ATOMIC_RELAXED);

        if (v) {
            i = (b->offset + (ngx_int_t) j + one - 1) >> b->coarse;
            out[i - b->coarse_offset] += v;
        }
    }

    first = b->native;

    for (j = 0; j < b->native; j++) {
        if (out[j]) {
            first = ngx_min(first, j);
            last = j + 1;
        }
    }

    nat->schema = b->schema - (ngx_int_t) b->coarse;
    nat->offset = b->coarse_offset;
    nat->first = last ? first : 0;
    nat->last = last;
}


/*
 * The first window's counts that observations of classic bucket i of b
 * can go to: from ... to - 1 (none above the window: a scrape reads the
 * second one whole).  Bucket i holds bound[i - 1] < us <= bound[i], and
 * the native slot of us only grows with us.
 */

void
ngx_railgun_store_native_range(ngx_railgun_buckets_t *b, ngx_uint_t i,
    ngx_uint_t *from, ngx_uint_t *to)
{
    ngx_uint_t  lo, hi;

    lo = ngx_railgun_native_slot(b, i ? b->bound[i - 1] + 1 : 1);
    hi = i < b->n ? ngx_railgun_native_slot(b, b->bound[i]) : 2 + b->native;

    /* 0: the zero bucket, read apart; 1 + native, the last count's */

    lo = lo < 2 ? 0 : ngx_min(lo - 2, b->native);
    hi = hi < 2 ? 0 : ngx_min(hi - 1, b->native);

    *from = lo;
    *to = ngx_max(lo, hi);
}


/*
 * the most bytes a series of these buckets and label text takes, for the
 * configuration
 */

size_t
ngx_railgun_store_series_size(ngx_railgun_buckets_t *b, size_t len)
{
    size_t  size;

    size = offsetof(ngx_railgun_series_t, values)
           + (b->n + 3 + ngx_railgun_native_values(b)) * sizeof(uint64_t)
           + len + NGX_RAILGUN_SERIES_MAX_BOUNDS;

    return ngx_align(size, sizeof(uint64_t));
}


size_t
ngx_railgun_store_chunk_size(size_t zone)
{
    return ngx_min(ngx_max(zone / 256, ngx_pagesize), NGX_RAILGUN_STORE_CHUNK);
}


static ngx_railgun_series_t *
ngx_railgun_store_overflow(ngx_railgun_store_t *store, ngx_uint_t family,
    const char *why)
{
    ngx_atomic_uint_t         logged;
    ngx_railgun_family_sh_t  *fam;

    fam = &store->sh->family[family];

    /* one line per family per minute, whichever worker gets there first */

    logged = fam->logged;

    if (ngx_current_msec - logged >= NGX_RAILGUN_STORE_LOG_EVERY
        || logged == 0)
    {
        if (ngx_atomic_cmp_set(&fam->logged, logged,
                               ngx_current_msec ? ngx_current_msec : 1))
        {
            ngx_log_error(NGX_LOG_WARN, store->log, 0,
                          "railgun: %s, samples of \"%V\" go to its "
                          "overflow series", why,
                          &store->families[family].name);
        }
    }

    return fam->overflow;
}


size_t
ngx_railgun_store_used(ngx_railgun_store_t *store)
{
    size_t  pages;

    pages = (store->shpool->end - store->shpool->start) / ngx_pagesize;

    return (pages - store->shpool->pfree) * ngx_pagesize;
}


/*
 * A worker claims a slot that is free or whose owner is dead, and clears what
 * the dead owner left in the gauges.  Old and new workers overlap during a
 * reload with the same ngx_worker numbers, hence slots owned by pid; and a
 * pid may be reused, hence the owner's start time beside it.
 */

void
ngx_railgun_store_claim_slot(ngx_railgun_store_t *store)
{
    uint64_t                 started;
    ngx_pid_t                pid;
    ngx_uint_t               i;
    ngx_railgun_store_sh_t  *sh;

    sh = store->sh;
    store->slot = 0;

    started = ngx_railgun_store_started(ngx_pid);

    for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {

        pid = (ngx_pid_t) sh->worker[i];

        if (pid != 0
            && (kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH)
            && (sh->worker_start[i] == 0
                || ngx_railgun_store_slot_live(sh, i)))
        {
            /* alive, or alive and taking the slot this very moment */
            continue;
        }

        if (ngx_atomic_cmp_set(&sh->worker[i], (ngx_atomic_uint_t) pid,
                               (ngx_atomic_uint_t) ngx_pid))
        {
            /* until the start time is ours, readers count nothing here */

            ngx_railgun_store_clear_slot(store, i);

            __atomic_store_n(&sh->worker_start[i], started,
                             __ATOMIC_RELEASE);

            store->slot = i;
            return;
        }
    }

    store->slot_tried = ngx_current_msec;

    ngx_log_error(NGX_LOG_WARN, store->log, 0,
                  "railgun: no free worker slot, WebSocket sessions of this "
                  "worker are not in railgun_websocket_connections until "
                  "one is free");
}


/* this worker's slot, looked for again now and then while it has none */

ngx_uint_t
ngx_railgun_store_slot(ngx_railgun_store_t *store)
{
    if (store->slot
        || ngx_current_msec - store->slot_tried < NGX_RAILGUN_STORE_SLOT_RETRY)
    {
        return store->slot;
    }

    ngx_railgun_store_claim_slot(store);

    return store->slot;
}


void
ngx_railgun_store_release_slot(ngx_railgun_store_t *store)
{
    ngx_uint_t  slot;

    slot = store->slot;

    if (slot == 0) {
        return;
    }

    store->slot = 0;

    __atomic_store_n(&store->sh->worker_start[slot], 0, __ATOMIC_RELEASE);

    ngx_railgun_store_clear_slot(store, slot);

    (void) ngx_atomic_cmp_set(&store->sh->worker[slot],
                              (ngx_atomic_uint_t) ngx_pid, 0);
}


/* live[i] tells whether gauge values in slot i count */

void
ngx_railgun_store_live_slots(ngx_railgun_store_t *store, u_char *live)
{
    ngx_uint_t  i;

    live[0] = 1;

    for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {
        live[i] = (u_char) ngx_railgun_store_slot_live(store->sh, i);
    }
}


static void
ngx_railgun_store_clear_slot(ngx_railgun_store_t *store, ngx_uint_t slot)
{
    ngx_uint_t             f;
    ngx_railgun_series_t  *s;

    for (f = 0; f < store->nfamilies; f++) {

        if (store->families[f].type != NGX_RAILGUN_WORKER_GAUGE) {
            continue;
        }

        for (s = ngx_railgun_store_first(store, f);
             s;
             s = ngx_railgun_store_next(s))
        {
            __atomic_store_n(&s->values[slot], 0, __ATOMIC_RELAXED);
        }

        __atomic_store_n(&store->sh->family[f].overflow->values[slot], 0,
                         __ATOMIC_RELAXED);
    }
}


/*
 * The owner is alive if its pid is, and the process with that pid started
 * when the owner did.  A slot whose start time is not yet written is being
 * taken over, and counts nothing.
 */

static ngx_uint_t
ngx_railgun_store_slot_live(ngx_railgun_store_sh_t *sh, ngx_uint_t slot)
{
    uint64_t   started;
    ngx_pid_t  pid;

    pid = (ngx_pid_t) __atomic_load_n(&sh->worker[slot], __ATOMIC_ACQUIRE);

    if (pid == 0) {
        return 0;
    }

    started = __atomic_load_n(&sh->worker_start[slot], __ATOMIC_ACQUIRE);

    if (started == 0) {
        return 0;
    }

    if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 0;
    }

    return ngx_railgun_store_started(pid) == started;
}


/*
 * When a process started, in clock ticks after boot: field 22 of
 * /proc/PID/stat, after the command name in parentheses, which may hold
 * spaces and parentheses itself.  Without /proc, every process is taken to
 * have started at 1, and a slot is as live as its pid.  A process that is
 * gone by the time its file is read, or a zombie that its parent has not
 * reaped yet, also gives 1, never its owner's time.
 */

uint64_t
ngx_railgun_store_started(ngx_pid_t pid)
{
    u_char     *p, *last, buf[1024], name[64];
    ssize_t     n;
    uint64_t    started;
    ngx_fd_t    fd;
    ngx_uint_t  field;

    ngx_sprintf(name, "/proc/%P/stat%Z", pid);

    fd = ngx_open_file(name, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        return 1;
    }

    n = ngx_read_fd(fd, buf, sizeof(buf));

    (void) ngx_close_file(fd);

    if (n <= 0) {
        return 1;
    }

    last = buf + n;

    for (p = last; p > buf && p[-1] != ')'; p--) { /* void */ }

    /* ") S ppid ...": the state is field 3; a zombie is dead */

    if (last - p > 2 && (p[1] == 'Z' || p[1] == 'X')) {
        return 1;
    }

    for (field = 2; p < last && field < 22; p++) {
        if (*p == ' ') {
            field++;
        }
    }

    started = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        started = started * 10 + (*p++ - '0');
    }

    return started ? started : 1;
}


/*
 * Keeps us as the latest observation of its bucket, with the exemplar's
 * label (rule 6).  Records are attached to a series the first time a scope
 * with railgun_exemplar observes it, not when it is made: a series made
 * before a reload added the directive gets them too.
 */

void
ngx_railgun_store_exemplar_set(ngx_railgun_store_t *store,
    ngx_railgun_series_t *s, uint64_t us, ngx_railgun_exemplar_t *ex)
{
    u_char                      *p;
    size_t                       len;
    uint64_t                     word, own, seq;
    uint64_t                     words[NGX_RAILGUN_EXEMPLAR_LABEL / 8];
    ngx_msec_t                   now, begin;
    ngx_uint_t                   i, n;
    ngx_railgun_exemplar_rec_t  *rec;

    if (s->buckets == NULL
        || ex->name.len == 0
        || ex->name.len + ex->value.len > NGX_RAILGUN_EXEMPLAR_LABEL)
    {
        return;
    }

    rec = (ngx_railgun_exemplar_rec_t *) (uintptr_t)
          __atomic_load_n(ngx_railgun_series_exemplars(s), __ATOMIC_ACQUIRE);

    if (rec == NULL) {
        rec = ngx_railgun_store_exemplars(store, s);

        if (rec == NULL) {
            return;
        }
    }

    rec += ngx_railgun_store_bucket(s->buckets, us);

    word = __atomic_load_n(&rec->seq, __ATOMIC_RELAXED);
    seq = word & NGX_RAILGUN_EXEMPLAR_SEQ;
    now = ngx_current_msec;

    if (seq & 1) {
        begin = (ngx_msec_t) (word >> NGX_RAILGUN_EXEMPLAR_SEQ_BITS);

        if ((ngx_msec_int_t) (now - begin) < NGX_RAILGUN_EXEMPLAR_STALE) {
            /* another writer is on it: the observation is counted only */
            return;
        }

        /* its writer died in the middle: take it over, still odd */
        seq += 2;

    } else {
        seq += 1;
    }

    /* the word odd and the write's start in one compare-and-swap */

    own = ((uint64_t) now << NGX_RAILGUN_EXEMPLAR_SEQ_BITS)
          | (seq & NGX_RAILGUN_EXEMPLAR_SEQ);

    if (!__atomic_compare_exchange_n(&rec->seq, &word, own, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    {
        return;
    }

    /* no field is seen written before the word is seen odd */
    __atomic_thread_fence(__ATOMIC_RELEASE);

    ngx_railgun_store_step(9);

    len = ex->name.len + ex->value.len;
    n = (len + 7) / 8;

    /* the bytes past the label in its last word are zero */
    words[n - 1] = 0;

    p = ngx_cpymem((u_char *) words, ex->name.data, ex->name.len);
    ngx_memcpy(p, ex->value.data, ex->value.len);

    __atomic_store_n(&rec->value_us, us, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->time_ms, ex->time_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&rec->len, ex->name.len | (ex->value.len << 16),
                     __ATOMIC_RELAXED);

    for (i = 0; i < n; i++) {
        __atomic_store_n(&rec->label[i], words[i], __ATOMIC_RELAXED);

        if (i == 0) {
            ngx_railgun_store_step(10);
        }
    }

    /* fails if the record was taken over meanwhile: nothing published */
    (void) __atomic_compare_exchange_n(&rec->seq, &own,
                                       (own & ~NGX_RAILGUN_EXEMPLAR_SEQ)
                                       | ((seq + 1) & NGX_RAILGUN_EXEMPLAR_SEQ),
                                       0, __ATOMIC_RELEASE,
                                       __ATOMIC_RELAXED);
}


/*
 * Carves a series' records, under the mutex; a zone that is full is not
 * asked again for a second, so that the request path does not queue on the
 * mutex for records it cannot get.
 */

static ngx_railgun_exemplar_rec_t *
ngx_railgun_store_exemplars(ngx_railgun_store_t *store,
    ngx_railgun_series_t *s)
{
    size_t                       size;
    ngx_railgun_exemplar_rec_t  *rec;

    if (store->exemplars_failed
        && ngx_current_msec - store->exemplars_failed
           < NGX_RAILGUN_STORE_EXEMPLAR_RETRY)
    {
        return NULL;
    }

    size = (s->buckets->n + 1) * sizeof(ngx_railgun_exemplar_rec_t);

    ngx_shmtx_lock(&store->shpool->mutex);

    rec = (ngx_railgun_exemplar_rec_t *) (uintptr_t)
          *ngx_railgun_series_exemplars(s);

    if (rec == NULL) {
        /* zeroed memory: no record, every sequence word even */
        rec = (size > store->sh->chunk_size)
              ? ngx_slab_calloc_locked(store->shpool, size)
              : ngx_railgun_store_carve(store, size);

        if (rec) {
            __atomic_store_n(ngx_railgun_series_exemplars(s),
                             (uint64_t) (uintptr_t) rec, __ATOMIC_RELEASE);
        }
    }

    ngx_shmtx_unlock(&store->shpool->mutex);

    if (rec == NULL) {
        store->exemplars_failed = ngx_current_msec ? ngx_current_msec : 1;

        ngx_log_error(NGX_LOG_WARN, store->log, 0,
                      "railgun: zone full, no exemplars for a series of "
                      "\"%V\"", &store->families[s->family].name);
    }

    return rec;
}


/*
 * A copy of the latest observation of a bucket (0 .. n, n is +Inf) that no
 * writer changed while it was read: NGX_OK, or NGX_DECLINED when there is
 * none, or when writers kept it busy for the three reads tried.
 */

ngx_int_t
ngx_railgun_store_exemplar(ngx_railgun_series_t *s, ngx_uint_t bucket,
    ngx_railgun_exemplar_copy_t *out)
{
    size_t                       name_len, value_len;
    uint64_t                     seq, len;
    uint64_t                     words[NGX_RAILGUN_EXEMPLAR_LABEL / 8];
    ngx_uint_t                   i, n, try;
    ngx_railgun_exemplar_rec_t  *rec;

    if (s->buckets == NULL || bucket > s->buckets->n) {
        return NGX_DECLINED;
    }

    rec = (ngx_railgun_exemplar_rec_t *) (uintptr_t)
          __atomic_load_n(ngx_railgun_series_exemplars(s), __ATOMIC_ACQUIRE);

    if (rec == NULL) {
        return NGX_DECLINED;
    }

    rec += bucket;

    for (try = 0; try < 3; try++) {

        seq = __atomic_load_n(&rec->seq, __ATOMIC_ACQUIRE);

        if (seq == 0) {
            return NGX_DECLINED;
        }

        if (seq & 1) {
            /* NGX_RAILGUN_EXEMPLAR_SEQ's low bit: a writer is on it */
            continue;
        }

        out->value_us = __atomic_load_n(&rec->value_us, __ATOMIC_RELAXED);
        out->time_ms = __atomic_load_n(&rec->time_ms, __ATOMIC_RELAXED);
        len = __atomic_load_n(&rec->len, __ATOMIC_RELAXED);

        /* a length read while a writer was on it is only a bound here */
        name_len = (size_t) (len & 0xffff);
        value_len = (size_t) ((len >> 16) & 0xffff);

        n = ngx_min(name_len + value_len, NGX_RAILGUN_EXEMPLAR_LABEL);
        n = (n + 7) / 8;

        for (i = 0; i < n; i++) {
            words[i] = __atomic_load_n(&rec->label[i], __ATOMIC_RELAXED);
        }

        __atomic_thread_fence(__ATOMIC_ACQUIRE);

        if (__atomic_load_n(&rec->seq, __ATOMIC_RELAXED) != seq) {
            continue;
        }

        if (name_len == 0
            || name_len + value_len > NGX_RAILGUN_EXEMPLAR_LABEL)
        {
            return NGX_DECLINED;
        }

        /*
         * a writer that stalled past NGX_RAILGUN_EXEMPLAR_STALE and went on
         * after the takeover wrote its words over the record published:
         * the word did not change, the name may hold another's value
         */

        if (!ngx_railgun_store_label_name((u_char *) words, name_len)) {
            return NGX_DECLINED;
        }

        out->name_len = name_len;
        out->value_len = value_len;
        ngx_memcpy(out->label, words, name_len + value_len);

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* [a-zA-Z_][a-zA-Z0-9_]*: what railgun_exemplar accepts as a name */

static ngx_uint_t
ngx_railgun_store_label_name(u_char *p, size_t len)
{
    u_char  c;
    size_t  i;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || (i > 0 && c >= '0' && c <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


ngx_int_t
ngx_railgun_store_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_railgun_store_t  *ostore = data;

    ngx_shm_zone_t          *old;
    ngx_railgun_store_t     *store;
    ngx_railgun_store_sh_t  *sh;

    store = shm_zone->data;

    if (ostore) {
        sh = ostore->sh;

        if (sh->magic == NGX_RAILGUN_STORE_MAGIC
            && sh->layout == NGX_RAILGUN_STORE_LAYOUT)
        {
            store->sh = sh;
            store->shpool = ostore->shpool;
            store->epoch = ++sh->epoch;
            return NGX_OK;
        }

        /*
         * A module of another layout is reading this zone.  The old workers
         * keep writing the structures they know, so they are left allocated
         * and a new header is made beside them.
         */

        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "railgun: zone \"%V\" has another layout, "
                      "counters are reset", &shm_zone->shm.name);

        store->shpool = ostore->shpool;

        return ngx_railgun_store_create(store, shm_zone);
    }

    store->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        store->sh = store->shpool->data;
        store->epoch = store->sh->epoch;
        return NGX_OK;
    }

    old = ngx_railgun_store_old_zone(shm_zone);

    if (old) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "railgun: zone \"%V\" size changed from %uz to %uz, "
                      "counters are reset", &shm_zone->shm.name,
                      old->shm.size, shm_zone->shm.size);
    }

    store->shpool->log_nomem = 0;

    return ngx_railgun_store_create(store, shm_zone);
}


static ngx_int_t
ngx_railgun_store_create(ngx_railgun_store_t *store, ngx_shm_zone_t *shm_zone)
{
    size_t                      len, nslots;
    ngx_uint_t                  f;
    ngx_railgun_store_sh_t     *sh;
    ngx_railgun_family_sh_t    *fam;
    ngx_railgun_family_conf_t  *fc;

    nslots = shm_zone->shm.size / (NGX_RAILGUN_STORE_MIN_SERIES * 3 / 4);
    nslots = ngx_max(nslots, 64);

    sh = ngx_slab_calloc(store->shpool, sizeof(ngx_railgun_store_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->table = ngx_slab_calloc(store->shpool,
                                offsetof(ngx_railgun_table_t, slot)
                                + nslots * sizeof(ngx_railgun_series_t *));
    if (sh->table == NULL) {
        return NGX_ERROR;
    }

    sh->table->nslots = nslots;

    sh->magic = NGX_RAILGUN_STORE_MAGIC;
    sh->layout = NGX_RAILGUN_STORE_LAYOUT;

    /* epoch 0 is no configuration's: a gauge given up goes out at once */
    sh->epoch = 1;
    store->epoch = 1;

    /* a 16m zone carves 64k chunks; the smallest zone, pages */
    sh->chunk_size = ngx_railgun_store_chunk_size(shm_zone->shm.size);
    sh->start_time = ngx_time();

    store->sh = sh;
    store->shpool->data = sh;

    len = sizeof(" in railgun zone \"\"") + shm_zone->shm.name.len;

    store->shpool->log_ctx = ngx_slab_alloc(store->shpool, len);
    if (store->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(store->shpool->log_ctx, " in railgun zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* every family's overflow series exists before any sample needs it */

    for (f = 0; f < store->nfamilies; f++) {
        fam = &sh->family[f];
        fc = &store->families[f];

        ngx_shmtx_lock(&store->shpool->mutex);

        fam->overflow = ngx_railgun_store_alloc(store, f,
                                                fc->overflow_key.data,
                                                fc->overflow_key.len, 0,
                                                store->default_buckets, 1);

        ngx_shmtx_unlock(&store->shpool->mutex);

        if (fam->overflow == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "railgun: zone \"%V\" of %uz bytes is too small "
                          "for its tables", &shm_zone->shm.name,
                          shm_zone->shm.size);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_shm_zone_t *
ngx_railgun_store_old_zone(ngx_shm_zone_t *shm_zone)
{
    ngx_uint_t        i;
    ngx_cycle_t      *old_cycle;
    ngx_list_part_t  *part;
    ngx_shm_zone_t   *zone;

    old_cycle = (ngx_cycle_t *) ngx_cycle;

    if (old_cycle == NULL || ngx_is_init_cycle(old_cycle)) {
        return NULL;
    }

    part = &old_cycle->shared_memory.part;
    zone = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }
            part = part->next;
            zone = part->elts;
            i = 0;
        }

        if (zone[i].tag == shm_zone->tag
            && zone[i].shm.name.len == shm_zone->shm.name.len
            && ngx_strncmp(zone[i].shm.name.data, shm_zone->shm.name.data,
                           shm_zone->shm.name.len)
               == 0)
        {
            return &zone[i];
        }
    }

    return NULL;
}


/* the native buckets of an observation (ngx_railgun_store_observe()) */

void
ngx_railgun_store_observe_native(ngx_railgun_series_t *s, uint64_t us)
{
    ngx_uint_t              i;
    ngx_railgun_buckets_t  *b;

    b = s->buckets;

    i = ngx_railgun_native_slot(b, us);

    if (i >= 2 + b->native) {
        /* rare: the second window's marker, before its count */
        __atomic_store_n(&s->values[ngx_railgun_native_first(b) + 1], 1,
                         __ATOMIC_RELAXED);
    }

    (void) __atomic_fetch_add(&s->values[ngx_railgun_native_first(b) + i],
                              1, __ATOMIC_RELAXED);
}
