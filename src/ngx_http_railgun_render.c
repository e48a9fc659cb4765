
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nginx.h>
#include "ngx_http_railgun_render.h"


/*
 * The walk over the zone, without a lock.  Families are a fixed table and a
 * family's series list is only ever appended to, series never freed: the
 * cursor keeps the last series it rendered and goes on from its "next", read
 * when it gets there.  A series appended meanwhile is shown if it comes after
 * the cursor and not otherwise; none is shown twice, and a family's header
 * and samples are written in one run.
 */


#define NGX_HTTP_RAILGUN_BEGIN    0
#define NGX_HTTP_RAILGUN_OPEN     1
#define NGX_HTTP_RAILGUN_SAMPLES  2
#define NGX_HTTP_RAILGUN_CLOSE    3
#define NGX_HTTP_RAILGUN_END      4
#define NGX_HTTP_RAILGUN_DONE     5


/* a plain load: the store's writers only add */
#define ngx_http_railgun_value(s, i)  ngx_railgun_store_value(s, i)


/* the families that are not in the zone, after those that are */

enum {
    NGX_HTTP_RAILGUN_X_DROPPED = 0,
#if (NGX_STAT_STUB)
    NGX_HTTP_RAILGUN_X_CONNECTIONS,
    NGX_HTTP_RAILGUN_X_ACCEPTED,
    NGX_HTTP_RAILGUN_X_HANDLED,
#endif
    NGX_HTTP_RAILGUN_X_ZONE,
    NGX_HTTP_RAILGUN_X_START,
    NGX_HTTP_RAILGUN_X_BUILD,
    NGX_HTTP_RAILGUN_NEXTRA
};


static ngx_http_railgun_family_t  ngx_http_railgun_extra[] = {

    [NGX_HTTP_RAILGUN_X_DROPPED] =
    { ngx_string("railgun_series_dropped_total"),
      ngx_string("Samples routed to a family's overflow series: "
                 "railgun_max_series or the zone was full."),
      NGX_RAILGUN_COUNTER },

#if (NGX_STAT_STUB)

    [NGX_HTTP_RAILGUN_X_CONNECTIONS] =
    { ngx_string("railgun_nginx_connections"),
      ngx_string("Client connections by state, as stub_status counts them."),
      NGX_RAILGUN_GAUGE },

    [NGX_HTTP_RAILGUN_X_ACCEPTED] =
    { ngx_string("railgun_nginx_connections_accepted_total"),
      ngx_string("Client connections accepted."),
      NGX_RAILGUN_COUNTER },

    [NGX_HTTP_RAILGUN_X_HANDLED] =
    { ngx_string("railgun_nginx_connections_handled_total"),
      ngx_string("Client connections handled."),
      NGX_RAILGUN_COUNTER },

#endif

    [NGX_HTTP_RAILGUN_X_ZONE] =
    { ngx_string("railgun_zone_bytes"),
      ngx_string("Bytes of the shared zone, used and in all."),
      NGX_RAILGUN_GAUGE },

    [NGX_HTTP_RAILGUN_X_START] =
    { ngx_string("railgun_start_time_seconds"),
      ngx_string("Unix time the counters started from."),
      NGX_RAILGUN_GAUGE },

    [NGX_HTTP_RAILGUN_X_BUILD] =
    { ngx_string("railgun_build_info"),
      ngx_string("Versions of the module and of nginx."),
      NGX_RAILGUN_GAUGE }
};


static ngx_int_t ngx_http_railgun_render_family(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_next_sample(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_next_series(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_next_extra(ngx_http_railgun_render_t *rd);
static void ngx_http_railgun_take(ngx_http_railgun_render_t *rd,
    ngx_railgun_series_t *s);
static void ngx_http_railgun_set(ngx_http_railgun_render_t *rd, char *key,
    uint64_t value);


void
ngx_http_railgun_render_init(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store, ngx_http_railgun_format_t *format)
{
    ngx_memzero(rd, sizeof(ngx_http_railgun_render_t));

    rd->store = store;
    rd->format = format;

    /* gauges count the slots of the workers live when the scrape began */
    ngx_railgun_store_live_slots(store, rd->live);
}


/* fills rd->buf: NGX_OK when all is written, NGX_AGAIN when it is full */

ngx_int_t
ngx_http_railgun_render(ngx_http_railgun_render_t *rd)
{
    ngx_int_t  rc;

    for ( ;; ) {

        switch (rd->phase) {

        case NGX_HTTP_RAILGUN_BEGIN:
            if (rd->format->begin(rd) != NGX_OK) {
                return NGX_AGAIN;
            }

            rd->index = 0;
            rd->phase = NGX_HTTP_RAILGUN_OPEN;
            break;

        case NGX_HTTP_RAILGUN_OPEN:
            if (rd->index >= rd->store->nfamilies + NGX_HTTP_RAILGUN_NEXTRA) {
                rd->phase = NGX_HTTP_RAILGUN_END;
                break;
            }

            if (ngx_http_railgun_render_family(rd) != NGX_OK) {
                rd->index++;
                break;
            }

            if (rd->format->family(rd) != NGX_OK) {
                return NGX_AGAIN;
            }

            rd->sub = 0;
            rd->prev = NULL;
            rd->pending = 0;
            rd->nsamples = 0;
            rd->phase = NGX_HTTP_RAILGUN_SAMPLES;
            break;

        case NGX_HTTP_RAILGUN_SAMPLES:
            if (!rd->pending) {
                rc = ngx_http_railgun_next_sample(rd);

                if (rc == NGX_DONE) {
                    rd->phase = NGX_HTTP_RAILGUN_CLOSE;
                    break;
                }

                rd->pending = 1;
                rd->line = 0;
            }

            if (rd->format->sample(rd) != NGX_OK) {
                return NGX_AGAIN;
            }

            rd->pending = 0;
            rd->nsamples++;
            break;

        case NGX_HTTP_RAILGUN_CLOSE:
            if (rd->format->family_end(rd) != NGX_OK) {
                return NGX_AGAIN;
            }

            rd->nfamilies++;
            rd->index++;
            rd->phase = NGX_HTTP_RAILGUN_OPEN;
            break;

        case NGX_HTTP_RAILGUN_END:
            if (rd->format->end(rd) != NGX_OK) {
                return NGX_AGAIN;
            }

            rd->phase = NGX_HTTP_RAILGUN_DONE;
            break;

        default: /* NGX_HTTP_RAILGUN_DONE */
            return NGX_OK;
        }
    }
}


/* the family at rd->index, or NGX_DECLINED for one not exposed */

static ngx_int_t
ngx_http_railgun_render_family(ngx_http_railgun_render_t *rd)
{
    ngx_railgun_family_conf_t  *fc;

    if (rd->index >= rd->store->nfamilies) {
        rd->family = ngx_http_railgun_extra[rd->index - rd->store->nfamilies];
        return NGX_OK;
    }

    fc = &rd->store->families[rd->index];

    if (fc->type == NGX_RAILGUN_STATE) {
        return NGX_DECLINED;
    }

    rd->family.name = fc->name;
    rd->family.help = fc->help;
    rd->family.type = fc->type;

    return NGX_OK;
}


/* the next sample of the family into rd->sample, or NGX_DONE */

static ngx_int_t
ngx_http_railgun_next_sample(ngx_http_railgun_render_t *rd)
{
    if (rd->index < rd->store->nfamilies) {
        return ngx_http_railgun_next_series(rd);
    }

    return ngx_http_railgun_next_extra(rd);
}


static ngx_int_t
ngx_http_railgun_next_series(ngx_http_railgun_render_t *rd)
{
    ngx_uint_t                i;
    ngx_railgun_series_t     *s;
    ngx_railgun_store_t      *store;
    ngx_railgun_family_sh_t  *fam;

    store = rd->store;
    fam = &store->sh->family[rd->index];

    if (rd->sub == 0) {
        s = rd->prev ? ngx_railgun_store_next(rd->prev)
                     : ngx_railgun_store_first(store, rd->index);

        for ( /* void */ ; s; s = ngx_railgun_store_next(s)) {

            if (rd->family.type == NGX_RAILGUN_GAUGE
                && s->epoch < (uint32_t) store->epoch)
            {
                /*
                 * No configuration since this worker's owns it: what it
                 * measured was removed.  An old worker still answering
                 * during a reload sees the new epoch's gauges too.
                 */
                continue;
            }

            rd->prev = s;
            ngx_http_railgun_take(rd, s);

            return NGX_OK;
        }

        rd->sub = 1;
    }

    if (rd->sub == 1) {
        rd->sub = 2;

        /* the overflow series shows once something went there */

        s = fam->overflow;

        if (s == NULL) {
            /* a zone made by a module that had fewer families */
            return NGX_DONE;
        }

        for (i = 0; i < s->nvalues; i++) {
            if (ngx_railgun_store_value(s, i)) {
                ngx_http_railgun_take(rd, s);
                return NGX_OK;
            }
        }
    }

    return NGX_DONE;
}


/* a snapshot of a series' values */

static void
ngx_http_railgun_take(ngx_http_railgun_render_t *rd, ngx_railgun_series_t *s)
{
    int64_t                     gauge;
    uint64_t                    total;
    ngx_uint_t                  i;
    ngx_railgun_buckets_t      *b;
    ngx_http_railgun_sample_t  *x;

    x = &rd->sample;

    x->key = ngx_railgun_series_key(s);
    x->key_len = s->key_len;
    x->series = s;
    x->negative = 0;

    switch (rd->family.type) {

    case NGX_RAILGUN_HISTOGRAM:
        b = s->buckets;
        x->buckets = b;
        total = 0;

        for (i = 0; i <= b->n; i++) {
            total += ngx_http_railgun_value(s, i);
            x->v[i] = total;
        }

        x->v[b->n + 1] = ngx_http_railgun_value(s, b->n + 1);

        x->ex_mask = 0;

        /* the formats that show exemplars: OpenMetrics, protobuf */

        if ((rd->openmetrics || rd->scratch)
            && rd->exemplars
            && ngx_http_railgun_value(s, b->n + 2) != 0)
        {
            for (i = 0; i <= b->n; i++) {
                if (ngx_railgun_store_exemplar(s, i, &x->ex[i]) == NGX_OK) {
                    x->ex_mask |= (uint64_t) 1 << i;
                }
            }
        }

        break;

    case NGX_RAILGUN_GAUGE:
    case NGX_RAILGUN_WORKER_GAUGE:
        gauge = (int64_t) ngx_http_railgun_value(s, 0);

        if (rd->family.type == NGX_RAILGUN_WORKER_GAUGE) {
            for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {
                if (rd->live[i]) {
                    gauge += (int64_t) ngx_http_railgun_value(s, i);
                }
            }
        }

        if (gauge < 0) {
            x->negative = 1;
            gauge = -gauge;
        }

        x->v[0] = (uint64_t) gauge;
        break;

    default: /* NGX_RAILGUN_COUNTER */
        x->v[0] = ngx_http_railgun_value(s, 0);
    }
}


static ngx_int_t
ngx_http_railgun_next_extra(ngx_http_railgun_render_t *rd)
{
    u_char                      *p;
    ngx_str_t                   *build;
    ngx_uint_t                   f;
    ngx_railgun_store_t         *store;
    ngx_railgun_family_conf_t   *fc;

#if (NGX_STAT_STUB)
    static char  *states[] = {
        "state=\"active\"", "state=\"reading\"",
        "state=\"writing\"", "state=\"waiting\""
    };
#endif

    store = rd->store;
    rd->sample.series = NULL;

    switch (rd->index - store->nfamilies) {

    case NGX_HTTP_RAILGUN_X_DROPPED:

        /* one sample per family of the zone that is exposed */

        for (f = rd->sub; f < store->nfamilies; f++) {
            fc = &store->families[f];

            if (fc->type == NGX_RAILGUN_STATE) {
                continue;
            }

            p = ngx_cpymem(rd->key, "family=\"", 8);
            p = ngx_cpymem(p, fc->name.data,
                           ngx_min(fc->name.len, sizeof(rd->key) - 10));
            *p++ = '"';

            rd->sample.key = rd->key;
            rd->sample.key_len = p - rd->key;
            rd->sample.negative = 0;
            rd->sample.v[0] = ngx_railgun_store_dropped(store, f);

            rd->sub = f + 1;

            return NGX_OK;
        }

        return NGX_DONE;

#if (NGX_STAT_STUB)

    case NGX_HTTP_RAILGUN_X_CONNECTIONS:

        switch (rd->sub++) {
        case 0:
            ngx_http_railgun_set(rd, states[0], *ngx_stat_active);
            return NGX_OK;
        case 1:
            ngx_http_railgun_set(rd, states[1], *ngx_stat_reading);
            return NGX_OK;
        case 2:
            ngx_http_railgun_set(rd, states[2], *ngx_stat_writing);
            return NGX_OK;
        case 3:
            ngx_http_railgun_set(rd, states[3], *ngx_stat_waiting);
            return NGX_OK;
        }

        return NGX_DONE;

    case NGX_HTTP_RAILGUN_X_ACCEPTED:

        if (rd->sub++ == 0) {
            ngx_http_railgun_set(rd, "", *ngx_stat_accepted);
            return NGX_OK;
        }

        return NGX_DONE;

    case NGX_HTTP_RAILGUN_X_HANDLED:

        if (rd->sub++ == 0) {
            ngx_http_railgun_set(rd, "", *ngx_stat_handled);
            return NGX_OK;
        }

        return NGX_DONE;

#endif

    case NGX_HTTP_RAILGUN_X_ZONE:

        switch (rd->sub++) {
        case 0:
            ngx_http_railgun_set(rd, "state=\"used\"",
                                 ngx_railgun_store_used(store));
            return NGX_OK;
        case 1:
            ngx_http_railgun_set(rd, "state=\"size\"",
                                 store->shpool->end - (u_char *) store->shpool);
            return NGX_OK;
        }

        return NGX_DONE;

    case NGX_HTTP_RAILGUN_X_START:

        if (rd->sub++ == 0) {
            ngx_http_railgun_set(rd, "", store->sh->start_time);
            return NGX_OK;
        }

        return NGX_DONE;

    default: /* NGX_HTTP_RAILGUN_X_BUILD */

        if (rd->sub++ == 0) {
            build = ngx_http_railgun_build_labels();

            rd->sample.key = build->data;
            rd->sample.key_len = build->len;
            rd->sample.negative = 0;
            rd->sample.v[0] = 1;

            return NGX_OK;
        }

        return NGX_DONE;
    }
}


static void
ngx_http_railgun_set(ngx_http_railgun_render_t *rd, char *key,
    uint64_t value)
{
    rd->sample.key = (u_char *) key;
    rd->sample.key_len = ngx_strlen(key);
    rd->sample.negative = 0;
    rd->sample.v[0] = value;
}


/*
 * Microseconds as seconds, the shortest way: 5000 is "0.005", 1e6 is "1";
 * or, with dot, always with a fraction ("1.0"), as OpenMetrics writes a
 * float canonically and as JSON tells a float from an integer.
 */

u_char *
ngx_http_railgun_seconds(u_char *p, uint64_t us, ngx_uint_t dot)
{
    u_char      frac[6];
    ngx_uint_t  n, len;

    p = ngx_http_railgun_uint(p, us / 1000000);

    n = us % 1000000;

    if (n == 0) {
        if (dot) {
            *p++ = '.';
            *p++ = '0';
        }

        return p;
    }

    for (len = 6; len; len--) {
        frac[len - 1] = (u_char) (n % 10 + '0');
        n /= 10;
    }

    for (len = 6; frac[len - 1] == '0'; len--) { /* void */ }

    *p++ = '.';

    return ngx_cpymem(p, frac, len);
}
