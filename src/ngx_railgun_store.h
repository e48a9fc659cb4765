
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


#define NGX_RAILGUN_STORE_MAX_FAMILIES  32
#define NGX_RAILGUN_STORE_MAX_BUCKETS   32
#define NGX_RAILGUN_STORE_MAX_KEY       2048

#define NGX_RAILGUN_SERIES_OVERFLOW     0x0001

/*
 * A gauge keeps one value per worker slot, so that what a dead worker held is
 * dropped with it.  Slot 0 is shared by workers that found no free slot.
 */
#define NGX_RAILGUN_STORE_SLOTS         64


typedef struct ngx_railgun_buckets_s  ngx_railgun_buckets_t;
typedef struct ngx_railgun_series_s   ngx_railgun_series_t;


/* upper bounds of a histogram, in microseconds, interned in the zone */

struct ngx_railgun_buckets_s {
    ngx_railgun_buckets_t          *next;
    ngx_uint_t                      n;
    uint64_t                        bound[1];
};


/*
 * A series lives in the zone and is never freed.  values[] holds one word
 * for a counter; for a histogram, one count per bucket (not cumulative) with
 * +Inf last, then the sum of observations in microseconds.  The label text
 * follows the values.
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
    ngx_atomic_t                    values[1];
};


#define ngx_railgun_series_key(s)  ((u_char *) &(s)->values[(s)->nvalues])


typedef struct {
    ngx_atomic_t                    nseries;
    ngx_atomic_t                    dropped;
    ngx_railgun_series_t           *overflow;
    ngx_railgun_series_t *volatile  head;
    ngx_railgun_series_t           *last;
    ngx_atomic_t                    logged;
} ngx_railgun_family_sh_t;


/*
 * generation and probe states: the one prober of a round writes a probe's
 * state words (relaxed), then increments generation with release order; a
 * balancer loads generation with acquire order before it reads any state,
 * so a worker that has seen a generation sees the states behind it and
 * never records a generation with the states of an older one.
 */

typedef struct {
    uint32_t                        magic;
    uint32_t                        layout;
    ngx_atomic_t                    worker[NGX_RAILGUN_STORE_SLOTS]; /* pid */
    ngx_atomic_t                    generation;  /* of probe states */
    ngx_atomic_t                    epoch;       /* configurations loaded */
    ngx_uint_t                      nslots;
    time_t                          start_time;
    ngx_railgun_buckets_t          *buckets;
    u_char                         *chunk;       /* series are carved here */
    u_char                         *chunk_end;
    size_t                          chunk_size;
    ngx_railgun_family_sh_t         family[NGX_RAILGUN_STORE_MAX_FAMILIES];
    ngx_railgun_series_t *volatile *slots;
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
    ngx_uint_t                      slot;        /* this worker's */
    ngx_uint_t                      epoch;       /* of this configuration */
    ngx_log_t                      *log;
} ngx_railgun_store_t;


ngx_int_t ngx_railgun_store_init_zone(ngx_shm_zone_t *shm_zone, void *data);
ngx_railgun_series_t *ngx_railgun_store_series(ngx_railgun_store_t *store,
    ngx_uint_t family, u_char *key, size_t len,
    ngx_railgun_buckets_t *buckets);
size_t ngx_railgun_store_used(ngx_railgun_store_t *store);
void ngx_railgun_store_claim_slot(ngx_railgun_store_t *store);
void ngx_railgun_store_release_slot(ngx_railgun_store_t *store);
void ngx_railgun_store_live_slots(ngx_railgun_store_t *store,
    u_char *live);


static ngx_inline void
ngx_railgun_store_add(ngx_railgun_series_t *s, ngx_atomic_int_t n)
{
    (void) ngx_atomic_fetch_add(&s->values[0], n);
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


/* a gauge moves in this worker's slot only */

static ngx_inline void
ngx_railgun_store_gauge_add(ngx_railgun_store_t *store,
    ngx_railgun_series_t *s, ngx_atomic_int_t n)
{
    (void) ngx_atomic_fetch_add(&s->values[store->slot], n);
}


static ngx_inline void
ngx_railgun_store_observe(ngx_railgun_series_t *s, uint64_t us)
{
    ngx_uint_t              i;
    ngx_railgun_buckets_t  *b;

    b = s->buckets;

    for (i = 0; i < b->n; i++) {
        if (us <= b->bound[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&s->values[i], 1);
    (void) ngx_atomic_fetch_add(&s->values[b->n + 1], us);
}


#endif /* _NGX_RAILGUN_STORE_H_INCLUDED_ */
