
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_RAILGUN_STORE_H_INCLUDED_
#define _NGX_RAILGUN_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The store is the shared zone: series of counters and histograms, found by
 * the hash of their rendered label text.  It knows nothing of HTTP, of the
 * families' names or of the exposition format: a family is a number, a key is
 * the label text "a=\"x\",b=\"y\"" exactly as it will be printed.
 */


/*
 * Ordering rules.  Every process that reads or writes the zone without its
 * mutex follows them; the zone is shared by workers that may run on weakly
 * ordered CPUs (ARM64, POWER) and that may die at any instruction.
 *
 * 1. Values are 64 bits on every architecture (ngx_atomic_t is 32 bits on
 *    i386 and armhf) and 8-byte aligned.  They are changed only with
 *    __atomic_fetch_add(), __atomic_store_n() or a compare-and-swap, and read
 *    with __atomic_load_n(), through the functions below: a plain 64-bit
 *    access may be split in two on a 32-bit CPU.  Counter and histogram
 *    updates are __ATOMIC_RELAXED: they order nothing, and a reader may see
 *    a bucket count before the sum it goes with.
 *
 * 2. Pointers that make a structure reachable (a family's head and each
 *    series' next, the table's slots) are published with a release store,
 *    after the structure is completely written, and read without the mutex
 *    with an acquire load (ngx_railgun_store_first(), _next()).  Whoever
 *    loads such a pointer sees everything written before it was published.
 *
 * 3. A series is published in its family's list (where the exposition finds
 *    it) before its table slot (where samples find it): a sample never goes
 *    to a series that a scrape cannot show.  Every change of structure takes
 *    the slab pool's mutex and records its intent (sh->pending) first, so a
 *    worker killed at any step leaves a state that readers accept and that
 *    the next holder of the mutex completes (ngx_railgun_store_recover()).
 *    Nothing in the zone is ever freed, so no reader meets a stale pointer.
 *
 * 4. Change markers: a writer that changes state other processes act on
 *    (the probe states) writes the state first, then increments
 *    sh->generation with __ATOMIC_RELEASE (ngx_railgun_store_changed()); a
 *    reader loads sh->generation with __ATOMIC_ACQUIRE
 *    (ngx_railgun_store_generation()) before it reads the states.  If it
 *    then acts on generation g, it saw at least the states written before
 *    g.  Markers are compared for equality only, so they are native words
 *    (ngx_atomic_t): a wrap does no harm.
 *
 * 5. Worker slots: only the owner of a slot writes its gauge values.  An
 *    owner takes a slot by compare-and-swap of its pid, clears what a dead
 *    owner left, then publishes its start time (release).  A reader counts a
 *    slot's values only while the pid and the start time name a live process
 *    (ngx_railgun_store_live_slots()): a dead worker's share is dropped at
 *    once, even when its pid was reused.
 *
 * 6. Exemplars: a histogram series' records (one per bucket, +Inf included)
 *    are carved under the mutex, zeroed, and their address published in
 *    the series' word after its sum (ngx_railgun_series_exemplars()) with
 *    a release store; readers load it with acquire, as in rule 2.
 *    A record is a sequence lock with no lock: a writer compare-and-swaps
 *    its sequence word from even e to e + 1 (an odd word: another writer is
 *    on it, and this observation does not replace it), issues a release
 *    fence, writes the fields with relaxed stores, and ends with a
 *    compare-and-swap of e + 1 to e + 2 with release.  A reader loads the
 *    word with acquire, copies the fields with relaxed loads, issues an
 *    acquire fence and loads the word again: an odd word, or one that
 *    changed, is not a record (ngx_railgun_store_exemplar()).  A writer that
 *    died in the middle leaves the word odd: a writer that finds it odd for
 *    NGX_RAILGUN_EXEMPLAR_STALE ms takes it over from o to o + 2, still odd,
 *    and ends with o + 3.  The time a write began is in the word itself,
 *    set by the compare-and-swap that makes it odd, so that no writer ever
 *    sees a live write's word with an older write's time.  The first
 *    writer's final compare-and-swap then fails, and it publishes nothing;
 *    a writer only stalled may still store over what the taker published,
 *    so a reader bounds the lengths and checks the name it copied.
 */


#define NGX_RAILGUN_STORE_MAX_FAMILIES  32
#define NGX_RAILGUN_STORE_MAX_BUCKETS   32
#define NGX_RAILGUN_STORE_MAX_KEY       2048

#define NGX_RAILGUN_SERIES_OVERFLOW     0x0001
#define NGX_RAILGUN_SERIES_BOUNDS       0x0002

/* the most labels a series' table of label boundaries describes */
#define NGX_RAILGUN_SERIES_MAX_BOUNDS   32

/*
 * An exemplar's label name and value together, in bytes: OpenMetrics allows
 * 128 UTF-8 characters for both, and a character is at least one byte.
 */
#define NGX_RAILGUN_EXEMPLAR_LABEL      128

/* a record whose writer began this long ago, in ms, is taken over */
#define NGX_RAILGUN_EXEMPLAR_STALE      1000

/*
 * An exemplar record's sequence word: the sequence in the low 24 bits, odd
 * while a writer is on it, and above it ngx_current_msec when that write
 * began (40 bits: 34 years of a monotonic clock since boot).
 */
#define NGX_RAILGUN_EXEMPLAR_SEQ_BITS   24
#define NGX_RAILGUN_EXEMPLAR_SEQ        0xffffffULL

/*
 * A gauge keeps one value per worker slot, so that what a dead worker held is
 * dropped with it.  Slot 0 belongs to no worker and stays 0: a worker that
 * found no free slot does not move per-worker gauges until it gets one.
 */
#define NGX_RAILGUN_STORE_SLOTS         64


typedef struct ngx_railgun_buckets_s  ngx_railgun_buckets_t;
typedef struct ngx_railgun_series_s   ngx_railgun_series_t;
typedef struct ngx_railgun_exemplar_rec_s  ngx_railgun_exemplar_rec_t;


/*
 * Native histograms (Prometheus' sparse exponential buckets) beside the
 * classic ones.  Bucket i of schema s holds the observations v with
 * 2^((i-1)/2^s) < v <= 2^(i/2^s) seconds.  A series keeps, after the
 * classic counts and the sum:
 *
 *   values[n + 3]                the zero bucket: v <= 2^-10 s (976 us),
 *                                a boundary of every schema from -1 up;
 *                                nginx's whole milliseconds put only 0 ms
 *                                there;
 *   values[n + 4]                1 once the second window took a count:
 *                                until then a scrape reads the first alone;
 *   values[n + 5 ...]            "native" counts of buckets offset ...
 *                                offset + native - 1 at the schema;
 *   values[n + 5 + native ...]   when "coarse" is not 0, as many counts at
 *                                schema - coarse, for what lies above the
 *                                first window: the exposition then merges
 *                                the first window into this one, index
 *                                (i + 2^coarse - 1) >> coarse.
 *
 * So memory is bounded by 2 + 2 * native words, and an observation above the
 * first window lowers the resolution instead of being dropped; "coarse" is
 * the least reduction whose window reaches 2^64 us.  (values[n + 2] is the
 * address of the exemplar records, rule 6.)
 *
 * The index of v microseconds, without floating point: with v = m * 2^e,
 * 1 <= m < 2, and K = 2^s * log2(10^6) = base + f, i = 2^s * e - base +
 * the number of tau[k] = 2^((k + f) / 2^s) below m (k < 2^s); tau are Q63
 * fixed point, computed once by ngx_railgun_store_native_init().  A schema
 * below 0 is computed at 0 and shifted.  Right shifts of negative indices
 * are arithmetic, as in GCC and Clang.
 */

#define NGX_RAILGUN_NATIVE_ZERO_US      976
#define NGX_RAILGUN_NATIVE_MIN_SCHEMA   (-4)
#define NGX_RAILGUN_NATIVE_MAX_SCHEMA   8
#define NGX_RAILGUN_NATIVE_MIN_BUCKETS  8
#define NGX_RAILGUN_NATIVE_MAX_BUCKETS  1024


/*
 * Upper bounds of a histogram, in microseconds, interned in the zone with
 * the native settings; bound[] holds the n classic bounds, then the ntau
 * thresholds of the native index.
 */

struct ngx_railgun_buckets_s {
    ngx_railgun_buckets_t          *next;
    ngx_uint_t                      n;
    ngx_uint_t                      native;      /* counts a window, or 0 */
    ngx_int_t                       schema;
    ngx_uint_t                      ntau;
    ngx_uint_t                      pow;         /* schema, at least 0 */
    ngx_uint_t                      shift;       /* -schema, at least 0 */
    ngx_int_t                       base;
    ngx_int_t                       offset;      /* of the first window */
    ngx_uint_t                      coarse;      /* 0: no second window */
    ngx_int_t                       coarse_offset;
    uint64_t                        bound[1];
};


/* the first native value of a series: after the sum and the exemplars */
#define ngx_railgun_native_first(b)  ((b)->n + 3)

#define ngx_railgun_native_values(b)                                          \
    ((b)->native ? 2 + (b)->native * ((b)->coarse ? 2 : 1) : 0)


/* a snapshot of a series' native counts, merged to one window */

typedef struct {
    uint64_t                        zero;
    ngx_int_t                       schema;
    ngx_int_t                       offset;     /* index of counts[0] */
    ngx_uint_t                      first;      /* of the counts not 0 */
    ngx_uint_t                      last;       /* past them; 0: none */
} ngx_railgun_native_t;


/*
 * A series lives in the zone and is never freed.  values[] holds one word
 * for a counter; for a histogram, one count per bucket (not cumulative) with
 * +Inf last, then the sum of observations in microseconds, then the address
 * of its exemplar records, or 0 (rule 6), then the native counts if its
 * buckets have them (see above).  An overflow
 * series has one more word, values[nvalues]: the updates it took, that is
 * railgun_series_dropped_total.  The label text follows the values.
 *
 * With NGX_RAILGUN_SERIES_BOUNDS in flags, the label text, a="x",b="y",
 * has no backslash, and a byte a label follows it: the value's length,
 * below 256.  The protobuf exposition cuts the text into LabelPair
 * messages with them instead of looking for the quotes at every scrape
 * (a name ends at its '=', a value may have one); the table costs a byte
 * a label, 11 for a request label set's four series, some of them in the
 * padding to 8 bytes.
 */

struct ngx_railgun_series_s {
    ngx_railgun_series_t *volatile  next;
    ngx_railgun_buckets_t          *buckets;
    uint32_t                        hash;
    uint16_t                        family;
    uint16_t                        flags;
    uint16_t                        key_len;
    uint16_t                        nvalues;
    uint32_t                        epoch;       /* see ngx_railgun_store_own */
    uint64_t                        values[1] __attribute__((aligned(8)));
};


#define ngx_railgun_series_key(s)                                             \
    ((u_char *) &(s)->values[(s)->nvalues                                     \
                             + ((s)->flags & NGX_RAILGUN_SERIES_OVERFLOW)])

/* the table of label boundaries, with NGX_RAILGUN_SERIES_BOUNDS */
#define ngx_railgun_series_bounds(s)                                          \
    (ngx_railgun_series_key(s) + (s)->key_len)

/* a histogram's word that holds the address of its exemplar records */
#define ngx_railgun_series_exemplars(s)  (&(s)->values[(s)->buckets->n + 2])


/*
 * The latest observation of a histogram bucket (rule 6): 160 bytes, all
 * 64-bit words, so that a reader copies them with atomic loads on 32-bit
 * CPUs too.  len is the label name's length, and the value's << 16; label[]
 * holds the name, then the value, as given: escaped when rendered.
 */

struct ngx_railgun_exemplar_rec_s {
    uint64_t                        seq;         /* and when its write began */
    uint64_t                        value_us;
    uint64_t                        time_ms;     /* wall clock */
    uint64_t                        len;
    uint64_t                        label[NGX_RAILGUN_EXEMPLAR_LABEL / 8];
};


/* what the request path gives: the value is cut to fit already */

typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       value;
    uint64_t                        time_ms;     /* ms since the epoch */
} ngx_railgun_exemplar_t;


/*
 * What a reader gets (ngx_railgun_store_exemplar()): the name's bytes are
 * label[0 .. name_len - 1], the value's follow; neither is escaped.
 */

typedef struct {
    uint64_t                        value_us;
    uint64_t                        time_ms;     /* ms since the epoch */
    size_t                          name_len;
    size_t                          value_len;
    u_char                          label[NGX_RAILGUN_EXEMPLAR_LABEL];
} ngx_railgun_exemplar_copy_t;


/* the table of series: open addressing, insert only */

typedef struct {
    ngx_uint_t                      nslots;
    ngx_railgun_series_t *volatile  slot[1];
} ngx_railgun_table_t;


typedef struct {
    ngx_uint_t                      nseries;     /* under the mutex */
    ngx_railgun_series_t           *overflow;
    ngx_railgun_series_t *volatile  head;
    ngx_railgun_series_t           *last;        /* may lag after a crash */
    ngx_atomic_t                    logged;
} ngx_railgun_family_sh_t;


typedef struct {
    uint32_t                        magic;
    uint32_t                        layout;
    ngx_atomic_t                    worker[NGX_RAILGUN_STORE_SLOTS]; /* pid */
    uint64_t                        worker_start[NGX_RAILGUN_STORE_SLOTS];
    ngx_atomic_t                    generation;  /* of probe states */
    ngx_atomic_t                    epoch;       /* configurations loaded */
    time_t                          start_time;
    ngx_railgun_buckets_t          *buckets;
    u_char                         *chunk;       /* series are carved here */
    size_t                          chunk_used;
    size_t                          chunk_size;
    ngx_uint_t                      nseries;     /* in all families */
    ngx_railgun_series_t           *pending;     /* an insert under way */
    ngx_railgun_table_t            *table;
    ngx_railgun_family_sh_t         family[NGX_RAILGUN_STORE_MAX_FAMILIES];
} ngx_railgun_store_sh_t;


#define NGX_RAILGUN_COUNTER       0
#define NGX_RAILGUN_GAUGE         1   /* one value, set */
#define NGX_RAILGUN_HISTOGRAM     2
#define NGX_RAILGUN_WORKER_GAUGE  3   /* one value per worker slot, summed */
#define NGX_RAILGUN_STATE         4   /* not exposed: a caller's record */

#define NGX_RAILGUN_STATE_VALUES  4


/*
 * What the caller tells the store about a family: the store itself uses only
 * the type and the overflow series' label text; the rest is for whoever
 * renders the family.
 */

typedef struct {
    ngx_str_t                       name;
    ngx_str_t                       help;
    ngx_uint_t                      type;
    ngx_str_t                       overflow_key;
    ngx_uint_t                      bounded;     /* by configuration: no cap */
} ngx_railgun_family_conf_t;


typedef struct {
    ngx_railgun_store_sh_t         *sh;
    ngx_slab_pool_t                *shpool;
    ngx_railgun_family_conf_t      *families;
    ngx_uint_t                      nfamilies;
    ngx_railgun_buckets_t          *default_buckets;
    ngx_uint_t                      max_series;
    ngx_uint_t                      slot;        /* this worker's, or 0 */
    ngx_msec_t                      slot_tried;  /* when it last found none */
    ngx_uint_t                      epoch;       /* of this configuration */
    ngx_msec_t                      exemplars_failed; /* zone full, when */
    ngx_log_t                      *log;
} ngx_railgun_store_t;


ngx_int_t ngx_railgun_store_init_zone(ngx_shm_zone_t *shm_zone, void *data);
void ngx_railgun_store_native_init(ngx_railgun_buckets_t *b,
    ngx_int_t schema, ngx_uint_t native);
size_t ngx_railgun_store_series_size(ngx_railgun_buckets_t *b, size_t len);
size_t ngx_railgun_store_chunk_size(size_t zone);
void ngx_railgun_store_native_read(ngx_railgun_series_t *s,
    uint64_t *out, ngx_railgun_native_t *nat, ngx_uint_t from, ngx_uint_t to);
void ngx_railgun_store_native_range(ngx_railgun_buckets_t *b, ngx_uint_t i,
    ngx_uint_t *from, ngx_uint_t *to);
ngx_railgun_series_t *ngx_railgun_store_series(ngx_railgun_store_t *store,
    ngx_uint_t family, u_char *key, size_t len,
    ngx_railgun_buckets_t *buckets);
size_t ngx_railgun_store_used(ngx_railgun_store_t *store);
void ngx_railgun_store_claim_slot(ngx_railgun_store_t *store);
ngx_uint_t ngx_railgun_store_slot(ngx_railgun_store_t *store);
void ngx_railgun_store_release_slot(ngx_railgun_store_t *store);
void ngx_railgun_store_live_slots(ngx_railgun_store_t *store,
    u_char *live);
uint64_t ngx_railgun_store_started(ngx_pid_t pid);
void ngx_railgun_store_observe_native(ngx_railgun_series_t *s, uint64_t us);
void ngx_railgun_store_exemplar_set(ngx_railgun_store_t *store,
    ngx_railgun_series_t *s, uint64_t us, ngx_railgun_exemplar_t *ex);
ngx_int_t ngx_railgun_store_exemplar(ngx_railgun_series_t *s,
    ngx_uint_t bucket, ngx_railgun_exemplar_copy_t *out);


/* rule 1: every value access */

static ngx_inline uint64_t
ngx_railgun_store_value(ngx_railgun_series_t *s, ngx_uint_t i)
{
    return __atomic_load_n(&s->values[i], __ATOMIC_RELAXED);
}


/* an update that went to an overflow series is one dropped sample */

static ngx_inline void
ngx_railgun_store_count_drop(ngx_railgun_series_t *s)
{
    if (s->flags & NGX_RAILGUN_SERIES_OVERFLOW) {
        (void) __atomic_fetch_add(&s->values[s->nvalues], 1,
                                  __ATOMIC_RELAXED);
    }
}


static ngx_inline void
ngx_railgun_store_add(ngx_railgun_series_t *s, uint64_t n)
{
    (void) __atomic_fetch_add(&s->values[0], n, __ATOMIC_RELAXED);

    ngx_railgun_store_count_drop(s);
}


/* an add to a series its caller knows is no overflow series */

static ngx_inline void
ngx_railgun_store_add_real(ngx_railgun_series_t *s, uint64_t n)
{
    (void) __atomic_fetch_add(&s->values[0], n, __ATOMIC_RELAXED);
}


static ngx_inline void
ngx_railgun_store_set(ngx_railgun_series_t *s, ngx_uint_t i, uint64_t v)
{
    __atomic_store_n(&s->values[i], v, __ATOMIC_RELAXED);

    ngx_railgun_store_count_drop(s);
}


/* a full barrier, as ngx_atomic_cmp_set() is */

static ngx_inline ngx_uint_t
ngx_railgun_store_cas(ngx_railgun_series_t *s, ngx_uint_t i, uint64_t old,
    uint64_t v)
{
    return __atomic_compare_exchange_n(&s->values[i], &old, v, 0,
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}


/* railgun_series_dropped_total of a family */

static ngx_inline uint64_t
ngx_railgun_store_dropped(ngx_railgun_store_t *store, ngx_uint_t family)
{
    ngx_railgun_series_t  *s;

    s = store->sh->family[family].overflow;

    return __atomic_load_n(&s->values[s->nvalues], __ATOMIC_RELAXED);
}


/* rule 2: walking a family's list without the mutex */

static ngx_inline ngx_railgun_series_t *
ngx_railgun_store_first(ngx_railgun_store_t *store, ngx_uint_t family)
{
    return __atomic_load_n(&store->sh->family[family].head,
                           __ATOMIC_ACQUIRE);
}


static ngx_inline ngx_railgun_series_t *
ngx_railgun_store_next(ngx_railgun_series_t *s)
{
    return __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
}


/* rule 4: the probe states' change marker */

static ngx_inline void
ngx_railgun_store_changed(ngx_railgun_store_t *store)
{
    (void) __atomic_fetch_add(&store->sh->generation, 1, __ATOMIC_RELEASE);
}


static ngx_inline ngx_atomic_uint_t
ngx_railgun_store_generation(ngx_railgun_store_t *store)
{
    return __atomic_load_n(&store->sh->generation, __ATOMIC_ACQUIRE);
}


/*
 * A gauge that only the configuration keeps alive (a probe's state, say)
 * is owned by the configuration of this epoch; a scrape leaves out gauges
 * that the configuration of the worker answering it does not own, where a
 * counter would stay.  A reload that fails leaves the old workers, and their
 * epoch, in charge.
 */

static ngx_inline void
ngx_railgun_store_own(ngx_railgun_store_t *store, ngx_railgun_series_t *s)
{
    s->epoch = (uint32_t) store->epoch;
}


/* a monotonic clock in microseconds: latency, not wall time */

static ngx_inline uint64_t
ngx_railgun_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/*
 * A per-worker gauge moves in the slot that ngx_railgun_store_slot()
 * returned when its session began; slot 0 is no slot, and moves nothing.
 */

static ngx_inline void
ngx_railgun_store_gauge_add(ngx_railgun_series_t *s, ngx_uint_t slot,
    int64_t n)
{
    if (slot == 0) {
        return;
    }

    (void) __atomic_fetch_add(&s->values[slot], (uint64_t) n,
                              __ATOMIC_RELAXED);

    ngx_railgun_store_count_drop(s);
}


/* the bucket an observation goes to: b->n is +Inf */

static ngx_inline ngx_uint_t
ngx_railgun_store_bucket(ngx_railgun_buckets_t *b, uint64_t us)
{
    ngx_uint_t  i;

    for (i = 0; i < b->n; i++) {
        if (us <= b->bound[i]) {
            break;
        }
    }

    return i;
}


/* the native bucket index of us > 0 at the schema of b */

static ngx_inline ngx_int_t
ngx_railgun_native_index(ngx_railgun_buckets_t *b, uint64_t us)
{
    uint64_t         m;
    ngx_int_t        i;
    ngx_uint_t       e, lo, hi, mid;
    const uint64_t  *tau;

    e = 63 - __builtin_clzll(us);
    m = us << (63 - e);

    tau = &b->bound[b->n];
    lo = 0;
    hi = b->ntau;

    while (lo < hi) {
        mid = (lo + hi) / 2;

        if (tau[mid] < m) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    i = (ngx_int_t) (e << b->pow) - b->base + (ngx_int_t) lo;

    if (b->shift) {
        i = (i + ((ngx_int_t) 1 << b->shift) - 1) >> b->shift;
    }

    return i;
}


/*
 * Where us goes among the native values of b: 0 is the zero bucket, 2 the
 * first window's first count, 2 + native the second's.
 */

static ngx_inline ngx_uint_t
ngx_railgun_native_slot(ngx_railgun_buckets_t *b, uint64_t us)
{
    ngx_int_t  i, r;

    if (us <= NGX_RAILGUN_NATIVE_ZERO_US) {
        return 0;
    }

    i = ngx_railgun_native_index(b, us);
    r = i - b->offset;

    if (r < (ngx_int_t) b->native) {
        return 2 + r;
    }

    if (b->coarse == 0) {
        return 1 + b->native;
    }

    r = ((i + ((ngx_int_t) 1 << b->coarse) - 1) >> b->coarse)
        - b->coarse_offset;

    if (r >= (ngx_int_t) b->native) {
        /* above 2^64 us at schema -4 only: cannot be reached */
        r = b->native - 1;
    }

    return 2 + b->native + r;
}


static ngx_inline void
ngx_railgun_store_observe(ngx_railgun_series_t *s, uint64_t us)
{
    ngx_uint_t              i;
    ngx_railgun_buckets_t  *b;

    b = s->buckets;

    i = ngx_railgun_store_bucket(b, us);

    (void) __atomic_fetch_add(&s->values[i], 1, __ATOMIC_RELAXED);
    (void) __atomic_fetch_add(&s->values[b->n + 1], us, __ATOMIC_RELAXED);

    if (b->native) {
        /* out of line, so that the classic update stays inlined */
        ngx_railgun_store_observe_native(s, us);
    }

    ngx_railgun_store_count_drop(s);
}


#endif /* _NGX_RAILGUN_STORE_H_INCLUDED_ */
