
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
 * it.  Nothing is ever freed, so a reader never meets a stale pointer.
 */


#define NGX_RAILGUN_STORE_MAGIC   0x6e67726c   /* "ngrl" */
#define NGX_RAILGUN_STORE_LAYOUT  6

/* a zone byte budget per slot: 16m gives 65536 slots, 512k of pointers */
#define NGX_RAILGUN_STORE_SLOT_BYTES  256

#define NGX_RAILGUN_STORE_LOG_EVERY   60000


static ngx_int_t ngx_railgun_store_create(ngx_railgun_store_t *store,
    ngx_shm_zone_t *shm_zone);
static ngx_railgun_series_t *ngx_railgun_store_find(
    ngx_railgun_store_sh_t *sh, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_uint_t *slot);
static ngx_railgun_series_t *ngx_railgun_store_insert(
    ngx_railgun_store_t *store, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_railgun_buckets_t *buckets);
static ngx_railgun_series_t *ngx_railgun_store_alloc(
    ngx_railgun_store_t *store, ngx_uint_t family, u_char *key, size_t len,
    uint32_t hash, ngx_railgun_buckets_t *buckets);
static void *ngx_railgun_store_carve(ngx_railgun_store_t *store,
    size_t size);
static ngx_railgun_buckets_t *ngx_railgun_store_intern(
    ngx_railgun_store_t *store, ngx_railgun_buckets_t *buckets);
static ngx_railgun_series_t *ngx_railgun_store_overflow(
    ngx_railgun_store_t *store, ngx_uint_t family, const char *why);
static ngx_shm_zone_t *ngx_railgun_store_old_zone(ngx_shm_zone_t *shm_zone);
static void ngx_railgun_store_clear_slot(ngx_railgun_store_t *store,
    ngx_uint_t slot);
static ngx_uint_t ngx_railgun_store_pid_alive(ngx_pid_t pid);


ngx_railgun_series_t *
ngx_railgun_store_series(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, ngx_railgun_buckets_t *buckets)
{
    uint32_t                 hash;
    ngx_uint_t               i;
    ngx_railgun_series_t    *s;
    ngx_railgun_store_sh_t  *sh;

    sh = store->sh;

    if (len > NGX_RAILGUN_STORE_MAX_KEY) {
        return ngx_railgun_store_overflow(store, family, "label text too long");
    }

    hash = ngx_murmur_hash2(key, len) ^ (uint32_t) (family * 0x9e3779b1);

    s = ngx_railgun_store_find(sh, family, key, len, hash, &i);

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
ngx_railgun_store_find(ngx_railgun_store_sh_t *sh, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_uint_t *slot)
{
    ngx_uint_t             i, mask;
    ngx_railgun_series_t  *s;

    mask = sh->nslots - 1;

    for (i = hash & mask; /* void */ ; i = (i + 1) & mask) {

        s = sh->slots[i];

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
    }
}


static ngx_railgun_series_t *
ngx_railgun_store_insert(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_railgun_buckets_t *buckets)
{
    ngx_uint_t                i, total, f;
    const char               *why;
    ngx_railgun_series_t     *s;
    ngx_railgun_store_sh_t   *sh;
    ngx_railgun_family_sh_t  *fam;

    sh = store->sh;
    fam = &sh->family[family];
    why = NULL;

    ngx_shmtx_lock(&store->shpool->mutex);

    /* another worker may have inserted it since the lock-free probe */

    s = ngx_railgun_store_find(sh, family, key, len, hash, &i);

    if (s) {
        ngx_shmtx_unlock(&store->shpool->mutex);
        return s;
    }

    total = 0;
    for (f = 0; f < store->nfamilies; f++) {
        total += sh->family[f].nseries;
    }

    if (fam->nseries >= store->max_series
        && !store->families[family].bounded)
    {
        why = "railgun_max_series reached";

    } else if (total >= sh->nslots - sh->nslots / 4) {
        why = "series table full";

    } else {
        s = ngx_railgun_store_alloc(store, family, key, len, hash, buckets);

        if (s == NULL) {
            why = "zone full";

        } else {
            /* publish only a completely written series */
            ngx_memory_barrier();

            sh->slots[i] = s;

            if (fam->last) {
                fam->last->next = s;

            } else {
                fam->head = s;
            }

            fam->last = s;
            fam->nseries++;
        }
    }

    ngx_shmtx_unlock(&store->shpool->mutex);

    if (why) {
        return ngx_railgun_store_overflow(store, family, why);
    }

    return s;
}


static ngx_railgun_series_t *
ngx_railgun_store_alloc(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, uint32_t hash, ngx_railgun_buckets_t *buckets)
{
    size_t                 size;
    ngx_uint_t             nvalues;
    ngx_railgun_series_t  *s;

    if (store->families[family].type == NGX_RAILGUN_HISTOGRAM) {
        buckets = ngx_railgun_store_intern(store, buckets);
        if (buckets == NULL) {
            return NULL;
        }

        /* one count per bucket, +Inf, then the sum */
        nvalues = buckets->n + 2;

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

    size = offsetof(ngx_railgun_series_t, values)
           + nvalues * sizeof(ngx_atomic_t) + len;

    s = ngx_railgun_store_carve(store, size);
    if (s == NULL) {
        return NULL;
    }

    s->buckets = buckets;
    s->hash = hash;
    s->family = (uint16_t) family;
    s->key_len = (uint16_t) len;
    s->nvalues = (uint16_t) nvalues;
    ngx_memcpy(ngx_railgun_series_key(s), key, len);

    return s;
}


#define NGX_RAILGUN_STORE_CHUNK  (64 * 1024)


/*
 * Series are never freed, so they are carved one after another out of large
 * slab chunks instead of each taking a power-of-two slab slot: a counter
 * with 60 bytes of labels takes 104 bytes, not 128.  Called under the mutex.
 */

static void *
ngx_railgun_store_carve(ngx_railgun_store_t *store, size_t size)
{
    u_char                  *p;
    ngx_railgun_store_sh_t  *sh;

    sh = store->sh;
    size = ngx_align(size, sizeof(ngx_atomic_t));

    if (size > sh->chunk_size) {
        return NULL;
    }

    if ((size_t) (sh->chunk_end - sh->chunk) < size) {
        p = ngx_slab_calloc_locked(store->shpool, sh->chunk_size);
        if (p == NULL) {
            return NULL;
        }

        sh->chunk = p;
        sh->chunk_end = p + sh->chunk_size;
    }

    p = sh->chunk;
    sh->chunk += size;

    return p;
}


static ngx_railgun_buckets_t *
ngx_railgun_store_intern(ngx_railgun_store_t *store,
    ngx_railgun_buckets_t *buckets)
{
    size_t                  size;
    ngx_railgun_buckets_t  *b;

    size = offsetof(ngx_railgun_buckets_t, bound)
           + buckets->n * sizeof(uint64_t);

    for (b = store->sh->buckets; b; b = b->next) {
        if (b->n == buckets->n
            && ngx_memcmp(b->bound, buckets->bound,
                          buckets->n * sizeof(uint64_t))
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
 * reload with the same ngx_worker numbers, hence slots owned by pid.
 */

void
ngx_railgun_store_claim_slot(ngx_railgun_store_t *store)
{
    ngx_pid_t                pid;
    ngx_uint_t               i;
    ngx_railgun_store_sh_t  *sh;

    sh = store->sh;
    store->slot = 0;

    for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {

        pid = (ngx_pid_t) sh->worker[i];

        if (pid != 0 && ngx_railgun_store_pid_alive(pid)) {
            continue;
        }

        if (ngx_atomic_cmp_set(&sh->worker[i], (ngx_atomic_uint_t) pid,
                               (ngx_atomic_uint_t) ngx_pid))
        {
            if (pid != 0) {
                ngx_railgun_store_clear_slot(store, i);
            }

            store->slot = i;
            return;
        }
    }

    ngx_log_error(NGX_LOG_WARN, store->log, 0,
                  "railgun: no free worker slot, gauges of this worker "
                  "are kept in the shared slot");
}


void
ngx_railgun_store_release_slot(ngx_railgun_store_t *store)
{
    if (store->slot == 0) {
        return;
    }

    ngx_railgun_store_clear_slot(store, store->slot);

    (void) ngx_atomic_cmp_set(&store->sh->worker[store->slot],
                              (ngx_atomic_uint_t) ngx_pid, 0);
}


/* live[i] tells whether gauge values in slot i count */

void
ngx_railgun_store_live_slots(ngx_railgun_store_t *store, u_char *live)
{
    ngx_pid_t   pid;
    ngx_uint_t  i;

    live[0] = 1;

    for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {
        pid = (ngx_pid_t) store->sh->worker[i];
        live[i] = (pid != 0 && ngx_railgun_store_pid_alive(pid));
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

        for (s = store->sh->family[f].head; s; s = s->next) {
            s->values[slot] = 0;
        }

        store->sh->family[f].overflow->values[slot] = 0;
    }
}


static ngx_uint_t
ngx_railgun_store_pid_alive(ngx_pid_t pid)
{
    return kill(pid, 0) == 0 || ngx_errno != NGX_ESRCH;
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
                      "railgun zone \"%V\" has another layout, "
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
                      "railgun zone \"%V\" size changed from %uz to %uz, "
                      "counters are reset", &shm_zone->shm.name,
                      old->shm.size, shm_zone->shm.size);
    }

    store->shpool->log_nomem = 0;

    return ngx_railgun_store_create(store, shm_zone);
}


static ngx_int_t
ngx_railgun_store_create(ngx_railgun_store_t *store, ngx_shm_zone_t *shm_zone)
{
    size_t                      len, slots;
    ngx_uint_t                  f;
    ngx_railgun_store_sh_t     *sh;
    ngx_railgun_family_sh_t    *fam;
    ngx_railgun_family_conf_t  *fc;

    slots = 1;
    while (slots * 2 * NGX_RAILGUN_STORE_SLOT_BYTES <= shm_zone->shm.size) {
        slots *= 2;
    }

    sh = ngx_slab_calloc(store->shpool, sizeof(ngx_railgun_store_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->slots = ngx_slab_calloc(store->shpool, slots * sizeof(void *));
    if (sh->slots == NULL) {
        return NGX_ERROR;
    }

    sh->magic = NGX_RAILGUN_STORE_MAGIC;
    sh->layout = NGX_RAILGUN_STORE_LAYOUT;
    sh->nslots = slots;

    /* a 16m zone carves 64k chunks; the smallest zone, pages */
    sh->chunk_size = ngx_min(ngx_max(shm_zone->shm.size / 256, ngx_pagesize),
                             NGX_RAILGUN_STORE_CHUNK);
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

        fam->overflow = ngx_railgun_store_alloc(store, f,
                                                fc->overflow_key.data,
                                                fc->overflow_key.len, 0,
                                                store->default_buckets);
        if (fam->overflow == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "railgun zone \"%V\" of %uz bytes is too small "
                          "for its tables", &shm_zone->shm.name,
                          shm_zone->shm.size);
            return NGX_ERROR;
        }

        fam->overflow->flags = NGX_RAILGUN_SERIES_OVERFLOW;
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
