
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"
#include "ngx_http_railgun_render.h"


/*
 * The metrics handler.  A scrape is rendered as the client reads it: the
 * cursor of ngx_http_railgun_render.c fills one of two reusable buffers, the
 * buffer goes down the output chain, and more is rendered only when a buffer
 * has come back sent (ngx_chain_update_chains() gives back the buffers the
 * filters are done with).  What a scrape holds is thus two buffers and the
 * cursor, whatever the size of the zone or the speed of the client, and one
 * event renders at most one buffer before the worker serves others.
 */


#define NGX_HTTP_RAILGUN_BUF_SIZE      (64 * 1024)
#define NGX_HTTP_RAILGUN_NBUFS         2

/* buffers a worker renders in one round of its event loop, all scrapes */
#define NGX_HTTP_RAILGUN_ROUND         2

#define NGX_HTTP_RAILGUN_TEXT          0
#define NGX_HTTP_RAILGUN_OPENMETRICS   1
#define NGX_HTTP_RAILGUN_JSON          2
#define NGX_HTTP_RAILGUN_PROTO         3


typedef struct {
    ngx_http_railgun_render_t     rd;
    ngx_http_request_t           *request;   /* subrequests share a pool */
    ngx_chain_t                  *free;
    ngx_chain_t                  *busy;
    ngx_uint_t                    nbufs;
    ngx_int_t                     rc;        /* of the last output */
} ngx_http_railgun_scrape_t;


static ngx_uint_t ngx_http_railgun_format(ngx_http_request_t *r);
static ngx_int_t ngx_http_railgun_accept_q(ngx_http_request_t *r,
    ngx_str_t *type, ngx_uint_t proto);
static ngx_int_t ngx_http_railgun_reject(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf);
static void ngx_http_railgun_expose_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_railgun_expose_send(ngx_http_request_t *r,
    ngx_http_railgun_scrape_t *sc);
static ngx_http_railgun_scrape_t *ngx_http_railgun_get_scrape(
    ngx_http_request_t *r);
static void ngx_http_railgun_scrape_cleanup(void *data);
static ngx_uint_t ngx_http_railgun_may_render(void);
static void ngx_http_railgun_round_reset(ngx_event_t *ev);
static ngx_int_t ngx_http_railgun_add_header(ngx_http_request_t *r,
    char *key, char *lowcase, char *value);


/* scrapes this worker is sending now */
static ngx_uint_t             ngx_http_railgun_scrapes;

/* railgun_scrapes_rejected_total, found once per worker */
static ngx_railgun_series_t  *ngx_http_railgun_rejected;

/* buffers rendered in this round, and the event that starts the next */
static ngx_uint_t             ngx_http_railgun_rendered;
static ngx_event_t            ngx_http_railgun_round;


static ngx_str_t  ngx_http_railgun_types[] = {
    ngx_string("text/plain; version=0.0.4; charset=utf-8"),
    ngx_string("application/openmetrics-text; version=1.0.0; "
               "charset=utf-8"),
    ngx_string("application/json"),
    ngx_string("application/vnd.google.protobuf; "
               "proto=io.prometheus.client.MetricFamily; encoding=delimited")
};

/* the MIME type alone, which gzip_types matches */

static size_t  ngx_http_railgun_type_lens[] = {
    sizeof("text/plain") - 1,
    sizeof("application/openmetrics-text") - 1,
    sizeof("application/json") - 1,
    sizeof("application/vnd.google.protobuf") - 1
};


ngx_int_t
ngx_http_railgun_expose_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_uint_t                     format, max;
    ngx_pool_cleanup_t            *cln;
    ngx_http_railgun_scrape_t     *sc;
    ngx_http_railgun_loc_conf_t   *rlcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);
    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_railgun_module);

    if (ngx_http_railgun_rejected == NULL) {
        /* shown from the first scrape on, 0 until a scrape is rejected */
        ngx_http_railgun_rejected = ngx_railgun_store_series(rmcf->store,
                                       NGX_HTTP_RAILGUN_SCRAPES_REJECTED,
                                       (u_char *) "", 0, NULL);
    }

    /*
     * The format is negotiated, so a cache must key on Accept; and a scrape
     * is "now", never to be served again from a cache.
     */

    if (ngx_http_railgun_add_header(r, "Vary", "vary", "Accept") != NGX_OK
        || ngx_http_railgun_add_header(r, "Cache-Control", "cache-control",
                                       "no-store")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    max = rlcf->max_scrapes ? rlcf->max_scrapes
                            : NGX_HTTP_RAILGUN_MAX_SCRAPES;

    if (r->method != NGX_HTTP_HEAD && ngx_http_railgun_scrapes >= max) {
        return ngx_http_railgun_reject(r, rmcf);
    }

    format = ngx_http_railgun_format(r);

    r->headers_out.content_type = ngx_http_railgun_types[format];
    r->headers_out.content_type_len = ngx_http_railgun_type_lens[format];
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.status = NGX_HTTP_OK;

    /* the length is not known before the end: chunked, or close */
    r->headers_out.content_length_n = -1;

    if (r->method == NGX_HTTP_HEAD) {
        /* HEAD renders nothing */
        return ngx_http_send_header(r);
    }

    sc = ngx_pcalloc(r->pool, sizeof(ngx_http_railgun_scrape_t));
    if (sc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_railgun_scrape_cleanup;
    cln->data = sc;

    sc->request = r;

    ngx_http_railgun_scrapes++;

    ngx_http_railgun_render_init(&sc->rd, rmcf->store,
                                 format == NGX_HTTP_RAILGUN_JSON
                                 ? &ngx_http_railgun_format_json
                                 : format == NGX_HTTP_RAILGUN_PROTO
                                 ? &ngx_http_railgun_format_proto
                                 : &ngx_http_railgun_format_text);

    sc->rd.openmetrics = (format == NGX_HTTP_RAILGUN_OPENMETRICS);
    sc->rd.exemplars = (rmcf->exemplars != NULL);

    if (format == NGX_HTTP_RAILGUN_PROTO) {
        sc->rd.scratch = ngx_palloc(r->pool, NGX_HTTP_RAILGUN_PROTO_SCRATCH);
        sc->rd.native = ngx_palloc(r->pool, NGX_RAILGUN_NATIVE_MAX_BUCKETS
                                            * sizeof(uint64_t));

        if (sc->rd.scratch == NULL || sc->rd.native == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    rc = ngx_http_railgun_expose_send(r, sc);

    if (rc != NGX_DONE) {
        return rc;
    }

    /* the rest from the write event; ngx_http_finalize_request() ends it */

    r->main->count++;
    r->write_event_handler = ngx_http_railgun_expose_writer;
    r->read_event_handler = ngx_http_test_reading;

    return NGX_DONE;
}


/*
 * ?format=json, then Accept by q-value: the protobuf format, OpenMetrics
 * or JSON, whichever is asked for most, ties in that order (Prometheus asks
 * first for the protobuf format with native histograms on, for OpenMetrics
 * otherwise); the text format 0.0.4 when it is asked for more, or when none
 * of the three is acceptable (q=0 refuses a type, as RFC 9110 says).
 */

static ngx_uint_t
ngx_http_railgun_format(ngx_http_request_t *r)
{
    ngx_str_t  value;
    ngx_int_t  proto, om, js, text;

    static ngx_str_t  pb = ngx_string("application/vnd.google.protobuf");
    static ngx_str_t  omt = ngx_string("application/openmetrics-text");
    static ngx_str_t  plain = ngx_string("text/plain");
    static ngx_str_t  json = ngx_string("application/json");

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK
        && value.len == 4 && ngx_strncasecmp(value.data, (u_char *) "json", 4)
                             == 0)
    {
        return NGX_HTTP_RAILGUN_JSON;
    }

    proto = ngx_http_railgun_accept_q(r, &pb, 1);
    om = ngx_http_railgun_accept_q(r, &omt, 0);
    js = ngx_http_railgun_accept_q(r, &json, 0);
    text = ngx_http_railgun_accept_q(r, &plain, 0);

    if (proto > 0 && proto >= om && proto >= js && proto >= text) {
        return NGX_HTTP_RAILGUN_PROTO;
    }

    if (om > 0 && om >= js && om >= text) {
        return NGX_HTTP_RAILGUN_OPENMETRICS;
    }

    if (js > 0 && js >= text) {
        return NGX_HTTP_RAILGUN_JSON;
    }

    return NGX_HTTP_RAILGUN_TEXT;
}


/*
 * The greatest q, in thousandths, of the media ranges of Accept that are
 * the type (and, with proto, name the MetricFamily message, delimited), or
 * -1 where none is: "type;a=b;q=0.5, other".
 */

static ngx_int_t
ngx_http_railgun_accept_q(ngx_http_request_t *r, ngx_str_t *type,
    ngx_uint_t proto)
{
    u_char           *p, *last, *e, *name, *v;
    size_t            nlen, vlen;
    ngx_int_t         best, q, d;
    ngx_uint_t        i, match, msg, delimited;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    best = -1;

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

        if (h[i].key.len != sizeof("Accept") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Accept",
                               sizeof("Accept") - 1)
               != 0)
        {
            continue;
        }

        p = h[i].value.data;
        last = p + h[i].value.len;

        while (p < last) {

            /* a media range: the type, then ";name=value" parameters */

            while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            for (e = p; e < last && *e != ';' && *e != ','
                        && *e != ' ' && *e != '\t'; e++)
            { /* void */ }

            match = ((size_t) (e - p) == type->len
                     && ngx_strncasecmp(p, type->data, type->len) == 0);
            msg = 0;
            delimited = 0;
            q = 1000;

            p = e;

            while (p < last && *p != ',') {
                if (*p == ';' || *p == ' ' || *p == '\t') {
                    p++;
                    continue;
                }

                name = p;

                while (p < last && *p != '=' && *p != ';' && *p != ',') {
                    p++;
                }

                nlen = p - name;

                if (p < last && *p == '=') {
                    p++;
                }

                if (p < last && *p == '"') {

                    /*
                     * a quoted-string: its ',' and ';' are the value's,
                     * its quoted pairs skipped (RFC 9110, 5.6.4)
                     */

                    for (v = ++p; p < last && *p != '"'; p++) {
                        if (*p == '\\' && p + 1 < last) {
                            p++;
                        }
                    }

                    vlen = p - v;

                    if (p < last) {
                        p++;
                    }

                } else {
                    v = p;

                    while (p < last && *p != ';' && *p != ','
                           && *p != ' ' && *p != '\t')
                    {
                        p++;
                    }

                    vlen = p - v;
                }

                if (nlen == 1 && (*name == 'q' || *name == 'Q')) {

                    /*
                     * 0, 0.x, 1, 1.0...: thousandths; out of the grammar,
                     * what is 1 or more is 1, not 0 ("q=2" as "q=10")
                     */

                    q = (vlen && *v >= '1' && *v <= '9') ? 1000 : 0;

                    if (q == 0 && vlen > 2 && v[0] == '0' && v[1] == '.') {
                        for (d = 100, e = v + 2;
                             e < v + vlen && d && *e >= '0' && *e <= '9';
                             e++, d /= 10)
                        {
                            q += (*e - '0') * d;
                        }
                    }

                } else if (nlen == 5
                           && ngx_strncasecmp(name, (u_char *) "proto", 5)
                              == 0)
                {
                    msg = (vlen == sizeof("io.prometheus.client.MetricFamily")
                                   - 1
                           && ngx_strncmp(v, (u_char *)
                                          "io.prometheus.client.MetricFamily",
                                          vlen)
                              == 0);

                } else if (nlen == 8
                           && ngx_strncasecmp(name, (u_char *) "encoding", 8)
                              == 0)
                {
                    delimited = (vlen == 9
                                 && ngx_strncasecmp(v, (u_char *) "delimited",
                                                    9)
                                    == 0);
                }
            }

            if (match && (!proto || (msg && delimited)) && q > best) {
                best = q;
            }
        }
    }

    return best;
}


/*
 * Past max_scrapes a scrape costs a counter and a 503: the scrapes in
 * progress keep their pace and nothing else on the worker waits.
 */

static ngx_int_t
ngx_http_railgun_reject(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf)
{
    if (ngx_http_railgun_rejected) {
        ngx_railgun_store_add(ngx_http_railgun_rejected, 1);
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "railgun: %ui scrapes in progress, scrape rejected",
                  ngx_http_railgun_scrapes);

    if (ngx_http_railgun_add_header(r, "Retry-After", "retry-after", "1")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_SERVICE_UNAVAILABLE;
}


static void
ngx_http_railgun_expose_writer(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_event_t                *wev;
    ngx_connection_t           *c;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_railgun_scrape_t  *sc;

    c = r->connection;
    wev = c->write;

    clcf = ngx_http_get_module_loc_conf(r->main, ngx_http_core_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;

        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (wev->delayed || r->aio) {
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    sc = ngx_http_railgun_get_scrape(r);

    if (sc == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rc = ngx_http_railgun_expose_send(r, sc);

    if (rc == NGX_DONE) {
        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
}


/*
 * Renders into a free buffer and passes it on.  NGX_DONE: more to come, on
 * an event armed or posted here; otherwise the body has been passed on
 * whole and this is what the output filters returned, for
 * ngx_http_finalize_request().
 */

static ngx_int_t
ngx_http_railgun_expose_send(ngx_http_request_t *r,
    ngx_http_railgun_scrape_t *sc)
{
    ngx_int_t                  rc;
    ngx_buf_t                 *b;
    ngx_uint_t                 rendered;
    ngx_chain_t               *cl;
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r->main, ngx_http_core_module);

    if (sc->busy) {
        /* what the filters hold, before anything new */

        rc = ngx_http_output_filter(r, NULL);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        cl = NULL;
        ngx_chain_update_chains(r->pool, &sc->free, &sc->busy, &cl,
                                (ngx_buf_tag_t) &ngx_http_railgun_module);
        sc->rc = rc;
    }

    for (rendered = 0; /* void */ ; rendered++) {

        if (sc->free == NULL && sc->nbufs < NGX_HTTP_RAILGUN_NBUFS) {
            b = ngx_create_temp_buf(r->pool, NGX_HTTP_RAILGUN_BUF_SIZE);
            if (b == NULL) {
                return NGX_ERROR;
            }

            b->tag = (ngx_buf_tag_t) &ngx_http_railgun_module;

            cl = ngx_alloc_chain_link(r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = b;
            cl->next = NULL;

            sc->free = cl;
            sc->nbufs++;
        }

        if (sc->free == NULL) {
            /* both buffers are still on their way: wait until one is sent */
            break;
        }

        if (rendered || !ngx_http_railgun_may_render()) {
            /*
             * One buffer an event, a few a round: the socket takes more,
             * but the other connections of this worker come first.  Posted
             * to the next round, after the events that are ready then.
             */
            ngx_post_event(wev, &ngx_posted_next_events);
            return NGX_DONE;
        }

        cl = sc->free;
        sc->free = cl->next;
        cl->next = NULL;

        b = cl->buf;
        b->pos = b->start;
        b->last = b->start;

        sc->rd.buf = b;

        rc = ngx_http_railgun_render(&sc->rd);

        /* one a buffer: t/stream_events.t counts them per event */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "railgun: scrape buffer rendered: %uz bytes%s",
                       (size_t) (b->last - b->pos),
                       rc == NGX_OK ? ", the last" : "");

        if (rc == NGX_OK) {
            b->last_buf = (r == r->main) ? 1 : 0;
            b->last_in_chain = 1;

            if (b->last == b->pos && !b->last_buf) {
                b->sync = 1;
            }

        } else if (b->last == b->pos) {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "railgun: a sample does not fit a buffer");
            return NGX_ERROR;
        }

        rc = ngx_http_output_filter(r, cl);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        ngx_chain_update_chains(r->pool, &sc->free, &sc->busy, &cl,
                                (ngx_buf_tag_t) &ngx_http_railgun_module);
        sc->rc = rc;

        if (b->last_in_chain) {
            /* all passed on; the core sends what the filters still hold */
            return rc;
        }
    }

    if (sc->rc == NGX_OK) {
        /*
         * Nothing is waiting for the socket, yet no buffer came back:
         * a filter keeps them to send more at once (postpone_output larger
         * than a buffer, say).  A flush makes it let go.
         */

        rc = ngx_http_send_special(r, NGX_HTTP_FLUSH);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        cl = NULL;
        ngx_chain_update_chains(r->pool, &sc->free, &sc->busy, &cl,
                                (ngx_buf_tag_t) &ngx_http_railgun_module);
        sc->rc = rc;

        if (sc->free) {
            ngx_post_event(wev, &ngx_posted_next_events);
            return NGX_DONE;
        }
    }

    if (!wev->delayed) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


/*
 * However many scrapes a worker sends, one round of its event loop renders
 * at most NGX_HTTP_RAILGUN_ROUND buffers, so that a request, a probe's
 * reply or the gate waits for a few buffers at most, not one per scrape.
 * The round ends with the events posted to ngx_posted_next_events: the
 * first render of a round posts the event that resets the count, ahead of
 * the scrapes it puts off.
 */

static ngx_uint_t
ngx_http_railgun_may_render(void)
{
    if (ngx_http_railgun_rendered == 0) {
        ngx_http_railgun_round.handler = ngx_http_railgun_round_reset;
        ngx_http_railgun_round.log = ngx_cycle->log;
        ngx_post_event(&ngx_http_railgun_round, &ngx_posted_next_events);
    }

    if (ngx_http_railgun_rendered >= NGX_HTTP_RAILGUN_ROUND) {
        return 0;
    }

    ngx_http_railgun_rendered++;

    return 1;
}


static void
ngx_http_railgun_round_reset(ngx_event_t *ev)
{
    ngx_http_railgun_rendered = 0;
}


/*
 * The request's context slot belongs to the accounting of the request: the
 * scrape is found by its pool cleanup instead, a short list.
 */

static ngx_http_railgun_scrape_t *
ngx_http_railgun_get_scrape(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_railgun_scrape_t  *sc;

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_railgun_scrape_cleanup) {
            sc = cln->data;

            if (sc->request == r) {
                return sc;
            }
        }
    }

    return NULL;
}


static void
ngx_http_railgun_scrape_cleanup(void *data)
{
    ngx_http_railgun_scrapes--;
}


static ngx_int_t
ngx_http_railgun_add_header(ngx_http_request_t *r, char *key, char *lowcase,
    char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) key;
    h->key.len = ngx_strlen(key);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);
    h->lowcase_key = (u_char *) lowcase;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}
