
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nginx.h>
#include "ngx_http_railgun_module.h"


/*
 * The exposition: one walk over the zone, without a lock, written into a
 * chain of buffers.  Families are appended to and series never freed, so a
 * scrape racing an insert sees the new series or not, never a torn one.
 * Text format 0.0.4 and OpenMetrics 1.0 differ only in the TYPE/HELP names of
 * counters and the final "# EOF".
 */

#define NGX_HTTP_RAILGUN_BUF_SIZE   (64 * 1024)

/* ",le=\"" and "\"} " around up to 20 digits, a dot and 6 decimals */
#define NGX_HTTP_RAILGUN_LE_LEN     40

/* room for everything of a sample line but its label text */
#define NGX_HTTP_RAILGUN_LINE_ROOM  256


typedef struct {
    ngx_http_request_t       *request;
    ngx_chain_t              *out;
    ngx_chain_t             **last;
    ngx_buf_t                *buf;
    off_t                     size;
    ngx_railgun_store_t      *store;
    ngx_uint_t                openmetrics;   /* unsigned  openmetrics:1; */
    u_char                    live[NGX_RAILGUN_STORE_SLOTS];

    /* ",le=\"0.005\"} " of the last bucket list seen, +Inf included */
    ngx_railgun_buckets_t    *le_buckets;
    ngx_str_t                 le[NGX_RAILGUN_STORE_MAX_BUCKETS + 1];
    u_char                    le_text[(NGX_RAILGUN_STORE_MAX_BUCKETS + 1)
                                      * NGX_HTTP_RAILGUN_LE_LEN];
} ngx_http_railgun_render_t;


static ngx_uint_t ngx_http_railgun_wants_openmetrics(ngx_http_request_t *r);
static ngx_int_t ngx_http_railgun_render(ngx_http_railgun_render_t *rd,
    ngx_http_railgun_main_conf_t *rmcf);
static ngx_int_t ngx_http_railgun_render_family(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store, ngx_uint_t f);
static ngx_int_t ngx_http_railgun_render_series(ngx_http_railgun_render_t *rd,
    ngx_railgun_family_conf_t *fc, ngx_railgun_series_t *s);
static ngx_int_t ngx_http_railgun_render_status(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store);
static ngx_int_t ngx_http_railgun_render_values(ngx_http_railgun_render_t *rd,
    char *name, char *help, ngx_uint_t type, ngx_str_t *labels,
    uint64_t *values, ngx_uint_t n);
static ngx_int_t ngx_http_railgun_header(ngx_http_railgun_render_t *rd,
    ngx_str_t *name, char *help, ngx_uint_t type);
static u_char *ngx_http_railgun_reserve(ngx_http_railgun_render_t *rd,
    size_t size);
static void ngx_http_railgun_le(ngx_http_railgun_render_t *rd,
    ngx_railgun_buckets_t *b);
static u_char *ngx_http_railgun_sample(u_char *p, ngx_str_t *name,
    char *suffix, size_t suffix_len, ngx_railgun_series_t *s);
static u_char *ngx_http_railgun_uint(u_char *p, uint64_t n);
static u_char *ngx_http_railgun_seconds(u_char *p, uint64_t us);


/* TYPE words by the store's types, and "unknown" for OpenMetrics */

static char *ngx_http_railgun_types[] = {
    "counter", "gauge", "histogram", "gauge", "", "unknown"
};

#define NGX_HTTP_RAILGUN_UNKNOWN  5


ngx_int_t
ngx_http_railgun_expose_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_railgun_render_t      rd;
    ngx_http_railgun_main_conf_t  *rmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);

    ngx_memzero(&rd, sizeof(ngx_http_railgun_render_t));

    rd.request = r;
    rd.last = &rd.out;
    rd.openmetrics = ngx_http_railgun_wants_openmetrics(r);

    if (ngx_http_railgun_render(&rd, rmcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* content_type_len is the MIME type alone: gzip_types matches it */

    if (rd.openmetrics) {
        ngx_str_set(&r->headers_out.content_type,
                    "application/openmetrics-text; version=1.0.0; "
                    "charset=utf-8");
        r->headers_out.content_type_len =
                                 sizeof("application/openmetrics-text") - 1;

    } else {
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
        r->headers_out.content_type_len = sizeof("text/plain") - 1;
    }

    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = rd.size;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    rd.buf->last_buf = (r == r->main) ? 1 : 0;
    rd.buf->last_in_chain = 1;

    return ngx_http_output_filter(r, rd.out);
}


static ngx_uint_t
ngx_http_railgun_wants_openmetrics(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Accept") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1)
               == 0
            && ngx_strcasestrn(h[i].value.data,
                               "application/openmetrics-text",
                               sizeof("application/openmetrics-text") - 2)
               != NULL)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_railgun_render(ngx_http_railgun_render_t *rd,
    ngx_http_railgun_main_conf_t *rmcf)
{
    u_char       *p;
    ngx_uint_t    f;
    ngx_chain_t  *cl;

    rd->store = rmcf->store;

    /* gauges count the slots of live workers only */
    ngx_railgun_store_live_slots(rmcf->store, rd->live);

    for (f = 0; f < NGX_HTTP_RAILGUN_NFAMILIES; f++) {
        if (ngx_http_railgun_render_family(rd, rmcf->store, f) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_railgun_render_status(rd, rmcf->store) != NGX_OK) {
        return NGX_ERROR;
    }

    if (rd->openmetrics) {
        p = ngx_http_railgun_reserve(rd, sizeof("# EOF\n"));
        if (p == NULL) {
            return NGX_ERROR;
        }

        rd->buf->last = ngx_cpymem(p, "# EOF\n", sizeof("# EOF\n") - 1);
    }

    if (rd->buf == NULL && ngx_http_railgun_reserve(rd, 1) == NULL) {
        return NGX_ERROR;
    }

    for (cl = rd->out; cl; cl = cl->next) {
        rd->size += cl->buf->last - cl->buf->pos;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_render_family(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store, ngx_uint_t f)
{
    ngx_uint_t                  i;
    ngx_railgun_series_t       *s;
    ngx_railgun_family_sh_t    *fam;
    ngx_railgun_family_conf_t  *fc;

    fc = &store->families[f];
    fam = &store->sh->family[f];

    if (fc->type == NGX_RAILGUN_STATE) {
        return NGX_OK;
    }

    if (ngx_http_railgun_header(rd, &fc->name, (char *) fc->help.data,
                                fc->type)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (s = ngx_railgun_store_first(store, f);
         s;
         s = ngx_railgun_store_next(s))
    {

        if (fc->type == NGX_RAILGUN_GAUGE
            && s->epoch < (uint32_t) store->epoch)
        {
            /*
             * No configuration since this worker's owns it: what it measured
             * was removed.  An old worker still answering during a reload
             * sees the new epoch's gauges too.
             */
            continue;
        }

        if (ngx_http_railgun_render_series(rd, fc, s) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* the overflow series shows once something went there */

    s = fam->overflow;

    for (i = 0; i < s->nvalues; i++) {
        if (ngx_railgun_store_value(s, i)) {
            return ngx_http_railgun_render_series(rd, fc, s);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_render_series(ngx_http_railgun_render_t *rd,
    ngx_railgun_family_conf_t *fc, ngx_railgun_series_t *s)
{
    u_char                 *p;
    int64_t                 gauge;
    uint64_t                total;
    ngx_uint_t              i;
    ngx_railgun_buckets_t  *b;

    if (fc->type != NGX_RAILGUN_HISTOGRAM) {
        p = ngx_http_railgun_reserve(rd, s->key_len
                                         + NGX_HTTP_RAILGUN_LINE_ROOM);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_http_railgun_sample(p, &fc->name, "", 0, s);

        if (fc->type == NGX_RAILGUN_COUNTER) {
            p = ngx_http_railgun_uint(p, ngx_railgun_store_value(s, 0));

        } else {
            gauge = (int64_t) ngx_railgun_store_value(s, 0);

            if (fc->type == NGX_RAILGUN_WORKER_GAUGE) {
                for (i = 1; i < NGX_RAILGUN_STORE_SLOTS; i++) {
                    if (rd->live[i]) {
                        gauge += (int64_t) ngx_railgun_store_value(s, i);
                    }
                }
            }

            if (gauge < 0) {
                *p++ = '-';
                gauge = -gauge;
            }

            p = ngx_http_railgun_uint(p, (uint64_t) gauge);
        }

        *p++ = '\n';

        rd->buf->last = p;

        return NGX_OK;
    }

    b = s->buckets;

    /* every bucket line, +Inf, _sum and _count */
    p = ngx_http_railgun_reserve(rd, (b->n + 3) * (s->key_len
                                              + NGX_HTTP_RAILGUN_LINE_ROOM));
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b != rd->le_buckets) {
        ngx_http_railgun_le(rd, b);
    }

    total = 0;

    for (i = 0; i <= b->n; i++) {
        total += ngx_railgun_store_value(s, i);

        p = ngx_cpymem(p, fc->name.data, fc->name.len);
        p = ngx_cpymem(p, "_bucket{", 8);
        p = ngx_cpymem(p, ngx_railgun_series_key(s), s->key_len);
        p = ngx_cpymem(p, rd->le[i].data, rd->le[i].len);
        p = ngx_http_railgun_uint(p, total);
        *p++ = '\n';
    }

    p = ngx_http_railgun_sample(p, &fc->name, "_sum", 4, s);
    p = ngx_http_railgun_seconds(p, ngx_railgun_store_value(s, b->n + 1));
    *p++ = '\n';

    p = ngx_http_railgun_sample(p, &fc->name, "_count", 6, s);
    p = ngx_http_railgun_uint(p, total);
    *p++ = '\n';

    rd->buf->last = p;

    return NGX_OK;
}


/* the "le" labels of a bucket list, rendered once for all its series */

static void
ngx_http_railgun_le(ngx_http_railgun_render_t *rd, ngx_railgun_buckets_t *b)
{
    u_char      *p;
    ngx_uint_t   i;

    p = rd->le_text;

    for (i = 0; i <= b->n; i++) {
        rd->le[i].data = p;

        p = ngx_cpymem(p, ",le=\"", 5);

        if (i < b->n) {
            p = ngx_http_railgun_seconds(p, b->bound[i]);

        } else {
            p = ngx_cpymem(p, "+Inf", 4);
        }

        p = ngx_cpymem(p, "\"} ", 3);

        rd->le[i].len = p - rd->le[i].data;
    }

    rd->le_buckets = b;
}


/* writes "name[suffix]{key} " */

static u_char *
ngx_http_railgun_sample(u_char *p, ngx_str_t *name, char *suffix,
    size_t suffix_len, ngx_railgun_series_t *s)
{
    p = ngx_cpymem(p, name->data, name->len);
    p = ngx_cpymem(p, suffix, suffix_len);
    *p++ = '{';
    p = ngx_cpymem(p, ngx_railgun_series_key(s), s->key_len);
    *p++ = '}';
    *p++ = ' ';

    return p;
}


static ngx_int_t
ngx_http_railgun_render_status(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store)
{
    u_char      *p;
    ngx_str_t    name;
    ngx_uint_t   f;

    static ngx_str_t  states[] = {
        ngx_string("state=\"active\""),
        ngx_string("state=\"reading\""),
        ngx_string("state=\"writing\""),
        ngx_string("state=\"waiting\"")
    };

    static ngx_str_t  zone[] = {
        ngx_string("state=\"used\""),
        ngx_string("state=\"size\"")
    };

    static ngx_str_t  build[] = {
        ngx_string("version=\"" NGX_HTTP_RAILGUN_VERSION "\","
                   "nginx_version=\"" NGINX_VERSION "\"")
    };

    uint64_t  values[4];

    ngx_str_set(&name, "railgun_series_dropped_total");

    if (ngx_http_railgun_header(rd, &name,
                                "Samples routed to a family's overflow "
                                "series: railgun_max_series or the zone "
                                "was full.",
                                NGX_RAILGUN_COUNTER)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (f = 0; f < store->nfamilies; f++) {

        if (store->families[f].type == NGX_RAILGUN_STATE) {
            continue;
        }

        p = ngx_http_railgun_reserve(rd, NGX_HTTP_RAILGUN_LINE_ROOM);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(p, "railgun_series_dropped_total{family=\"%V\"} ",
                        &store->families[f].name);
        p = ngx_http_railgun_uint(p, ngx_railgun_store_dropped(store, f));
        *p++ = '\n';

        rd->buf->last = p;
    }

#if (NGX_STAT_STUB)

    values[0] = *ngx_stat_active;
    values[1] = *ngx_stat_reading;
    values[2] = *ngx_stat_writing;
    values[3] = *ngx_stat_waiting;

    if (ngx_http_railgun_render_values(rd, "railgun_nginx_connections",
                                "Client connections by state, as "
                                "stub_status counts them.",
                                NGX_RAILGUN_GAUGE, states, values, 4)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    values[0] = *ngx_stat_accepted;

    if (ngx_http_railgun_render_values(rd,
                                "railgun_nginx_connections_accepted_total",
                                "Client connections accepted.",
                                NGX_RAILGUN_COUNTER, NULL, values, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    values[0] = *ngx_stat_handled;

    if (ngx_http_railgun_render_values(rd,
                                "railgun_nginx_connections_handled_total",
                                "Client connections handled.",
                                NGX_RAILGUN_COUNTER, NULL, values, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#endif

    values[0] = ngx_railgun_store_used(store);
    values[1] = store->shpool->end - (u_char *) store->shpool;

    if (ngx_http_railgun_render_values(rd, "railgun_zone_bytes",
                                "Bytes of the shared zone, used and in all.",
                                NGX_RAILGUN_GAUGE, zone, values, 2)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    values[0] = store->sh->start_time;

    if (ngx_http_railgun_render_values(rd, "railgun_start_time_seconds",
                                "Unix time the counters started from.",
                                NGX_RAILGUN_GAUGE, NULL, values, 1)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    values[0] = 1;

    return ngx_http_railgun_render_values(rd, "railgun_build_info",
                                "Versions of the module and of nginx.",
                                NGX_RAILGUN_GAUGE, build, values, 1);
}


/* a family outside the store: n samples, each with its label text or none */

static ngx_int_t
ngx_http_railgun_render_values(ngx_http_railgun_render_t *rd, char *name,
    char *help, ngx_uint_t type, ngx_str_t *labels, uint64_t *values,
    ngx_uint_t n)
{
    u_char      *p;
    ngx_str_t    family;
    ngx_uint_t   i;

    family.data = (u_char *) name;
    family.len = ngx_strlen(name);

    if (ngx_http_railgun_header(rd, &family, help, type) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        p = ngx_http_railgun_reserve(rd, NGX_HTTP_RAILGUN_LINE_ROOM);
        if (p == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, family.data, family.len);

        if (labels) {
            *p++ = '{';
            p = ngx_cpymem(p, labels[i].data, labels[i].len);
            *p++ = '}';
        }

        *p++ = ' ';
        p = ngx_http_railgun_uint(p, values[i]);
        *p++ = '\n';

        rd->buf->last = p;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_header(ngx_http_railgun_render_t *rd, ngx_str_t *name,
    char *help, ngx_uint_t type)
{
    u_char      *p;
    size_t       len, help_len;
    ngx_uint_t   f;
    ngx_str_t   *other;

    len = name->len;
    help_len = ngx_strlen(help);

    /* an OpenMetrics counter family is named without its "_total" */

    if (rd->openmetrics && type == NGX_RAILGUN_COUNTER
        && len > 6 && ngx_strncmp(name->data + len - 6, "_total", 6) == 0)
    {
        len -= 6;

        /*
         * ... unless that name is another family's, as the gauge
         * railgun_websocket_connections is for the counter
         * railgun_websocket_connections_total: then the counter keeps its
         * name as a family of type "unknown", which OpenMetrics allows.
         */

        for (f = 0; f < rd->store->nfamilies; f++) {
            other = &rd->store->families[f].name;

            if (other->len == len
                && ngx_strncmp(other->data, name->data, len) == 0)
            {
                len += 6;
                type = NGX_HTTP_RAILGUN_UNKNOWN;
                break;
            }
        }
    }

    p = ngx_http_railgun_reserve(rd, 2 * len + help_len + 64);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(p, "# HELP ", 7);
    p = ngx_cpymem(p, name->data, len);
    *p++ = ' ';
    p = ngx_cpymem(p, help, help_len);
    p = ngx_cpymem(p, "\n# TYPE ", 8);
    p = ngx_cpymem(p, name->data, len);
    *p++ = ' ';
    p = ngx_cpymem(p, ngx_http_railgun_types[type],
                   ngx_strlen(ngx_http_railgun_types[type]));
    *p++ = '\n';

    rd->buf->last = p;

    return NGX_OK;
}


static u_char *
ngx_http_railgun_reserve(ngx_http_railgun_render_t *rd, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (rd->buf && (size_t) (rd->buf->end - rd->buf->last) >= size) {
        return rd->buf->last;
    }

    b = ngx_create_temp_buf(rd->request->pool,
                            ngx_max(size, NGX_HTTP_RAILGUN_BUF_SIZE));
    if (b == NULL) {
        return NULL;
    }

    cl = ngx_alloc_chain_link(rd->request->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    *rd->last = cl;
    rd->last = &cl->next;
    rd->buf = b;

    return b->last;
}


static u_char *
ngx_http_railgun_uint(u_char *p, uint64_t n)
{
    u_char   tmp[NGX_INT64_LEN], *t;

    t = tmp + NGX_INT64_LEN;

    do {
        *--t = (u_char) (n % 10 + '0');
        n /= 10;
    } while (n);

    return ngx_cpymem(p, t, tmp + NGX_INT64_LEN - t);
}


/* microseconds as seconds, the shortest way: 5000 is "0.005", 1e6 is "1" */

static u_char *
ngx_http_railgun_seconds(u_char *p, uint64_t us)
{
    u_char      frac[6];
    ngx_uint_t  n, len;

    p = ngx_http_railgun_uint(p, us / 1000000);

    n = us % 1000000;

    if (n == 0) {
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
