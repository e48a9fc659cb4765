
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"
#include "ngx_railgun_wsframe.h"


/*
 * A proxied request that upgrades is accounted as a request at its 101, so
 * the tunnel's life never reaches request latency, and its response bytes
 * are those of the 101 itself.  Only an upgrade to WebSocket, asked by the
 * client and answered by the upstream, is a session: its frames are counted
 * by wrapping the send of both tunnel connections: nginx moves every
 * tunnelled byte, those buffered at the upgrade included, through exactly
 * one dst->send (ngx_http_upstream_process_upgraded), and under TLS the
 * client connection's send sees plaintext.  Any other protocol (h2c, a
 * custom one) is a tunnel whose bytes are never looked at.  The session
 * ends at the log phase, which for an upgraded request runs when the tunnel
 * closes.
 */

#define NGX_HTTP_RAILGUN_WS_IN   0        /* from the client */
#define NGX_HTTP_RAILGUN_WS_OUT  1        /* to the client */

/*
 * The payload bytes that pass unread, and a message whose last write
 * passed, reach the zone this long after they passed, at the most.
 */
#define NGX_HTTP_RAILGUN_WS_FLUSH  1000       /* ms */


/*
 * One direction of a session.  "sent" and "limit" are positions in the
 * connection's c->sent, which nginx's send (and SSL's) moves by every byte
 * it sends: a write that ends at or before "limit", the payload's end, is
 * all inside a payload and passes unread; the next write that is read
 * counts what passed by c->sent - "sent", "sent" being c->sent after the
 * last write read, and so do the flush and the close.  "connection" is NULL
 * when none of them could count them: then every write is read.  The
 * frame reader's counts are those not yet in the zone.
 */

typedef struct {
    off_t                     limit;
    ngx_send_pt               send;        /* nginx's */
    ngx_send_pt               reader;
    ngx_send_pt               passer;
    off_t                     sent;
    ngx_railgun_wsframe_t     frame;
    ngx_connection_t         *connection;
    ngx_uint_t                direction;
    ngx_railgun_series_t     *messages;
    ngx_railgun_series_t     *bytes;
    ngx_railgun_series_t     *errors;
} ngx_http_railgun_ws_dir_t;


struct ngx_http_railgun_ws_s {
    uint64_t                   start;
    ngx_uint_t                 session;    /* unsigned  session:1; */
    ngx_uint_t                 slot;       /* of the gauge, 0 if none */
    ngx_http_railgun_ws_dir_t  dir[2];
    ngx_event_t                flush;      /* set while bytes pass unread */
    ngx_railgun_series_t      *active;
    ngx_railgun_series_t      *duration;
    ngx_pool_cleanup_t        *cleanup;    /* of the upstream connection */
};


static ngx_int_t ngx_http_railgun_websocket_filter(ngx_http_request_t *r);
static ssize_t ngx_http_railgun_websocket_read_in(ngx_connection_t *c,
    u_char *buf, size_t size);
static ssize_t ngx_http_railgun_websocket_read_out(ngx_connection_t *c,
    u_char *buf, size_t size);
static ssize_t ngx_http_railgun_websocket_pass_in(ngx_connection_t *c,
    u_char *buf, size_t size);
static ssize_t ngx_http_railgun_websocket_pass_out(ngx_connection_t *c,
    u_char *buf, size_t size);
static ssize_t ngx_http_railgun_websocket_reread_in(ngx_connection_t *c,
    u_char *buf, size_t size, ngx_http_railgun_ws_t *ws)
    __attribute__((noinline));
static ssize_t ngx_http_railgun_websocket_reread_out(ngx_connection_t *c,
    u_char *buf, size_t size, ngx_http_railgun_ws_t *ws)
    __attribute__((noinline));
static ngx_inline ssize_t ngx_http_railgun_websocket_read(
    ngx_connection_t *c, u_char *buf, size_t size, ngx_http_railgun_ws_t *ws,
    ngx_uint_t d, ngx_uint_t passer) __attribute__((always_inline));
static ssize_t ngx_http_railgun_websocket_count(ngx_connection_t *c,
    ngx_http_railgun_ws_t *ws, u_char *buf, ssize_t n, ngx_uint_t d)
    __attribute__((noinline));
static void ngx_http_railgun_websocket_flush(ngx_http_railgun_ws_dir_t *wd);
static void ngx_http_railgun_websocket_flush_handler(ngx_event_t *ev);
static void ngx_http_railgun_websocket_close(ngx_http_railgun_ws_dir_t *wd);
static void ngx_http_railgun_websocket_close_in(void *data);
static ngx_int_t ngx_http_railgun_websocket_series(ngx_http_request_t *r,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_http_railgun_ws_t *ws);
static ngx_uint_t ngx_http_railgun_is_websocket(ngx_http_request_t *r);
static ngx_uint_t ngx_http_railgun_has_websocket(ngx_str_t *value);


static ngx_str_t  ngx_http_railgun_directions[] = {
    ngx_string("in"),
    ngx_string("out")
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static ngx_int_t
ngx_http_railgun_websocket_filter(ngx_http_request_t *r)
{
    if (r->headers_out.status == NGX_HTTP_SWITCHING_PROTOCOLS
        && r->upstream
        && r->upstream->upgrade
        && r->upstream->peer.connection
        && r == r->main)
    {
        return ngx_http_railgun_websocket_start(r);
    }

    return ngx_http_next_header_filter(r);
}


/*
 * Not static: the header filter runs for every response, and this, kept out
 * of line, leaves it a few compares and a jump for all but a 101.  It runs
 * the rest of the header filters itself, so that the 101 is written when the
 * request is accounted.
 */

ngx_int_t
ngx_http_railgun_websocket_start(ngx_http_request_t *r)
{
    off_t                          sent;
    ngx_int_t                      rc;
    ngx_uint_t                     d, websocket;
    ngx_chain_t                   *cl;
    ngx_connection_t              *c;
    ngx_http_railgun_ws_t         *ws;
    ngx_http_railgun_ctx_t        *ctx;
    ngx_http_railgun_loc_conf_t   *rlcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    ctx = ngx_http_railgun_get_ctx(r);

    if (ctx == NULL || ctx->ws) {
        return ngx_http_next_header_filter(r);
    }

    /* the location that matched decides, as for the request */
    rlcf = ngx_http_railgun_account_conf(r, ctx);

    if (!rlcf->enable) {
        return ngx_http_next_header_filter(r);
    }

    /* the context may have been found through its cleanup only */
    ngx_http_set_ctx(r, ctx, ngx_http_railgun_module);

    websocket = ngx_http_railgun_is_websocket(r);

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR) {
        return rc;
    }

    /*
     * The handshake is the request: status 101, latency to now, and the
     * bytes of the 101, sent or still waiting in r->out for the flush that
     * ngx_http_upstream_upgrade() does next.
     */

    sent = r->connection->sent;

    for (cl = r->out; cl; cl = cl->next) {
        sent += ngx_buf_size(cl->buf);
    }

    ngx_http_railgun_account(r, ctx, NGX_HTTP_SWITCHING_PROTOCOLS, sent);

    ws = ngx_pcalloc(r->pool, sizeof(ngx_http_railgun_ws_t));
    if (ws == NULL) {
        return NGX_ERROR;
    }

    /* the log phase finds a tunnel accounted already */
    ctx->ws = ws;

    if (!websocket) {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "railgun upgrade is not to websocket, not counted");
        return rc;
    }

    if (ngx_http_railgun_websocket_series(r, rlcf, ws) != NGX_OK) {
        return NGX_ERROR;
    }

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);

    /*
     * The upstream connection is closed before the log phase: what passed
     * it unread is counted when its pool goes, while its c->sent is there.
     */

    c = r->upstream->peer.connection;

    if (c->pool) {
        ws->cleanup = ngx_pool_cleanup_add(c->pool, 0);
        if (ws->cleanup == NULL) {
            return NGX_ERROR;
        }

        ws->cleanup->handler = ngx_http_railgun_websocket_close_in;
        ws->cleanup->data = &ws->dir[NGX_HTTP_RAILGUN_WS_IN];
        ws->dir[NGX_HTTP_RAILGUN_WS_IN].connection = c;
    }

    ws->session = 1;
    ws->start = ngx_railgun_now_us();

    /* an overflow series counts its updates: the inline path adds blind */

    for (d = 0; d < 2; d++) {
        ws->dir[d].frame.apart =
            ((ws->dir[d].messages->flags | ws->dir[d].bytes->flags)
             & NGX_RAILGUN_SERIES_OVERFLOW) ? 1 : 0;
    }

    ws->flush.handler = ngx_http_railgun_websocket_flush_handler;
    ws->flush.data = ws;
    ws->flush.log = r->connection->log;
    ws->flush.cancelable = 1;

    /* a wrapper per direction: the connection tells it, and nothing else */

    ws->dir[NGX_HTTP_RAILGUN_WS_IN].direction = NGX_HTTP_RAILGUN_WS_IN;
    ws->dir[NGX_HTTP_RAILGUN_WS_IN].send = c->send;
    ws->dir[NGX_HTTP_RAILGUN_WS_IN].reader = ngx_http_railgun_websocket_read_in;
    ws->dir[NGX_HTTP_RAILGUN_WS_IN].passer = ngx_http_railgun_websocket_pass_in;
    c->send = ngx_http_railgun_websocket_read_in;

    c = r->connection;
    ws->dir[NGX_HTTP_RAILGUN_WS_OUT].connection = c;
    ws->dir[NGX_HTTP_RAILGUN_WS_OUT].direction = NGX_HTTP_RAILGUN_WS_OUT;
    ws->dir[NGX_HTTP_RAILGUN_WS_OUT].send = c->send;
    ws->dir[NGX_HTTP_RAILGUN_WS_OUT].reader =
                                          ngx_http_railgun_websocket_read_out;
    ws->dir[NGX_HTTP_RAILGUN_WS_OUT].passer =
                                          ngx_http_railgun_websocket_pass_out;
    c->send = ngx_http_railgun_websocket_read_out;

    /* the session leaves the gauge in the slot it entered it */

    ws->slot = ngx_railgun_store_slot(rmcf->store);
    ngx_railgun_store_gauge_add(ws->active, ws->slot, 1);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "railgun websocket session start");

    return rc;
}


/*
 * Both the client's Upgrade and the upstream's answer name "websocket"
 * (RFC 6455, 4.1 and 4.2.2): a comma-separated list of protocols, each
 * compared without case, a "/version" allowed.  An HTTP/2 request has no
 * Upgrade (RFC 9113, 8.2.2), yet nginx proxies one and tunnels a 101 on the
 * stream's fake connection, whose send writes to the shared socket: that is
 * no WebSocket session, and its bytes are no frames of one.
 */

static ngx_uint_t
ngx_http_railgun_is_websocket(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    if (r->http_version > NGX_HTTP_VERSION_11
        || r->headers_in.upgrade == NULL
        || !ngx_http_railgun_has_websocket(&r->headers_in.upgrade->value))
    {
        return 0;
    }

    part = &r->upstream->headers_in.headers.part;
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

        if (h[i].hash
            && h[i].key.len == sizeof("Upgrade") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Upgrade",
                               sizeof("Upgrade") - 1)
               == 0
            && ngx_http_railgun_has_websocket(&h[i].value))
        {
            return 1;
        }
    }

    return 0;
}


static ngx_uint_t
ngx_http_railgun_has_websocket(ngx_str_t *value)
{
    u_char  *p, *last, *start;

    p = value->data;
    last = p + value->len;

    while (p < last) {

        while (p < last && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ',' && *p != '/' && *p != ' '
               && *p != '\t')
        {
            p++;
        }

        if (p - start == sizeof("websocket") - 1
            && ngx_strncasecmp(start, (u_char *) "websocket",
                               sizeof("websocket") - 1)
               == 0)
        {
            return 1;
        }

        while (p < last && *p != ',') {
            p++;
        }
    }

    return 0;
}


/*
 * Every write of the tunnel comes to one of two wrappers per direction: the
 * reader, while frame headers are due, and the passer, inside a payload,
 * where a write that stays inside it passes unread: a compare and a jump to
 * nginx's send, however big the frame.  Both tunnel connections have the
 * request as their data.  A write read goes to the zone at once; what
 * passes unread, when the next write is read, or from the session's timer
 * (ngx_http_railgun_websocket_flush_handler()), set while bytes pass
 * unread: the write that ends a payload passes too, and its message is
 * counted at the next write read, or by the timer.
 */

#define ngx_http_railgun_ws(c)                                               \
    (((ngx_http_railgun_ctx_t *) ngx_http_get_module_ctx(                    \
          (ngx_http_request_t *) (c)->data, ngx_http_railgun_module))->ws)


static ssize_t
ngx_http_railgun_websocket_read_in(ngx_connection_t *c, u_char *buf,
    size_t size)
{
    return ngx_http_railgun_websocket_read(c, buf, size,
                                           ngx_http_railgun_ws(c),
                                           NGX_HTTP_RAILGUN_WS_IN, 0);
}


static ssize_t
ngx_http_railgun_websocket_read_out(ngx_connection_t *c, u_char *buf,
    size_t size)
{
    return ngx_http_railgun_websocket_read(c, buf, size,
                                           ngx_http_railgun_ws(c),
                                           NGX_HTTP_RAILGUN_WS_OUT, 0);
}


static ssize_t
ngx_http_railgun_websocket_pass_in(ngx_connection_t *c, u_char *buf,
    size_t size)
{
    ngx_http_railgun_ws_t      *ws;
    ngx_http_railgun_ws_dir_t  *wd;

    ws = ngx_http_railgun_ws(c);
    wd = &ws->dir[NGX_HTTP_RAILGUN_WS_IN];

    if (c->sent + (off_t) size <= wd->limit) {
        return wd->send(c, buf, size);
    }

    /* the reader's again, unless this write leaves a payload unended */
    return ngx_http_railgun_websocket_reread_in(c, buf, size, ws);
}


/* out of line, so that a write passed unread saves no registers */

static ssize_t
ngx_http_railgun_websocket_reread_in(ngx_connection_t *c, u_char *buf,
    size_t size, ngx_http_railgun_ws_t *ws)
{
    return ngx_http_railgun_websocket_read(c, buf, size, ws,
                                           NGX_HTTP_RAILGUN_WS_IN, 1);
}


static ssize_t
ngx_http_railgun_websocket_pass_out(ngx_connection_t *c, u_char *buf,
    size_t size)
{
    ngx_http_railgun_ws_t      *ws;
    ngx_http_railgun_ws_dir_t  *wd;

    ws = ngx_http_railgun_ws(c);
    wd = &ws->dir[NGX_HTTP_RAILGUN_WS_OUT];

    if (c->sent + (off_t) size <= wd->limit) {
        return wd->send(c, buf, size);
    }

    return ngx_http_railgun_websocket_reread_out(c, buf, size, ws);
}


static ssize_t
ngx_http_railgun_websocket_reread_out(ngx_connection_t *c, u_char *buf,
    size_t size, ngx_http_railgun_ws_t *ws)
{
    return ngx_http_railgun_websocket_read(c, buf, size, ws,
                                           NGX_HTTP_RAILGUN_WS_OUT, 1);
}


/*
 * A write that is read: a frame header, or what follows a payload, is in
 * it.  Inline, the common cases: a write that is one whole data frame, and
 * a frame header whose payload goes on past the write (after a frame that
 * passed unread to its end, maybe); the rest out of line.  A direction
 * whose series may be an overflow series is kept "apart" from them, so that
 * they add to the zone without looking.  "passer": the passer's write, which
 * goes back to the reader unless a payload goes on (count() sets c->send).
 */

static ngx_inline ssize_t
ngx_http_railgun_websocket_read(ngx_connection_t *c, u_char *buf,
    size_t size, ngx_http_railgun_ws_t *ws, ngx_uint_t d, ngx_uint_t passer)
{
    size_t                      need, len;
    ssize_t                     n;
    uint32_t                    word;
    ngx_railgun_wsframe_t      *f;
    ngx_http_railgun_ws_dir_t  *wd;

    wd = &ws->dir[d];

    n = wd->send(c, buf, size);

    if (n <= 0) {
        return n;
    }

    f = &wd->frame;
    word = ngx_railgun_wsframe_word(f);

    if (word != 0) {

        /*
         * An unfragmented message whose payload passed unread to its end,
         * "limit" (nginx's send moved c->sent by n), counts here.
         */

        if (word != NGX_RAILGUN_WSFRAME_WORD_PAYLOAD
            || c->sent - n != wd->limit
            || !ngx_railgun_wsframe_data_fin(f))
        {
            return ngx_http_railgun_websocket_count(c, ws, buf, n, d);
        }

        ngx_railgun_store_add_real(wd->messages, 1);
        ngx_railgun_store_add_real(wd->bytes, f->bytes + f->remaining);

        len = ngx_railgun_wsframe_data(buf, n, &need);

        if (len > (size_t) n && need <= (size_t) n) {
            /* the next frame's payload goes on: the state stays */
            f->bytes = n - need;
            goto payload;
        }

        f->bytes = 0;
        f->remaining = 0;
        f->state = NGX_RAILGUN_WSFRAME_FIRST;

        if (len == (size_t) n) {
            goto whole;
        }

        return ngx_http_railgun_websocket_count(c, ws, buf, n, d);
    }

    /* at a frame's start, outside a message; "len" is the frame's */

    len = ngx_railgun_wsframe_data(buf, n, &need);

    if (len == (size_t) n) {

    whole:

        if (passer) {
            c->send = wd->reader;
        }

        ngx_railgun_store_add_real(wd->messages, 1);
        ngx_railgun_store_add_real(wd->bytes, len - need);

        return n;
    }

    if (len < (size_t) n || need > (size_t) n || wd->connection == NULL) {
        return ngx_http_railgun_websocket_count(c, ws, buf, n, d);
    }

    f->fin = 1;
    f->control = 0;
    f->bytes = n - need;
    f->state = NGX_RAILGUN_WSFRAME_PAYLOAD;

payload:

    /* the payload goes on: the rest of it may pass unread */

    f->remaining = len - n;

    wd->sent = c->sent;
    wd->limit = c->sent + f->remaining;

    if (!passer) {
        c->send = wd->passer;
    }

    if (!ws->flush.timer_set) {
        ngx_add_timer(&ws->flush, NGX_HTTP_RAILGUN_WS_FLUSH);
    }

    return n;
}


/* the rest of the writes read, out of line */

static ssize_t
ngx_http_railgun_websocket_count(ngx_connection_t *c,
    ngx_http_railgun_ws_t *ws, u_char *buf, ssize_t n, ngx_uint_t d)
{
    ngx_int_t                   rc;
    ngx_railgun_wsframe_t      *f;
    ngx_http_railgun_ws_dir_t  *wd;

    wd = &ws->dir[d];
    f = &wd->frame;

    rc = ngx_railgun_wsframe_tunnel(f,
                                    f->state == NGX_RAILGUN_WSFRAME_PAYLOAD
                                    ? c->sent - n - wd->sent : 0,
                                    buf, n);

    if (rc == NGX_ERROR) {
        ngx_railgun_store_add(wd->errors, 1);

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "railgun: websocket frames %s the client break "
                      "the protocol, no longer counted",
                      wd->direction == NGX_HTTP_RAILGUN_WS_IN ? "from" : "to");
    }

    ngx_http_railgun_websocket_flush(wd);

    wd->sent = c->sent;

    if (f->failed) {
        /* nothing more is read: the writes go to nginx's send directly */
        c->send = wd->send;
        return n;
    }

    if (f->state != NGX_RAILGUN_WSFRAME_PAYLOAD || wd->connection == NULL) {
        /* no timer or close would count what passed: every write is read */
        c->send = wd->reader;
        return n;
    }

    /*
     * A 64-bit length may end past what an off_t holds: the limit would
     * wrap negative, and the passer pass nothing; it stops short instead.
     */

    wd->limit = c->sent
                + (off_t) ngx_min(f->remaining,
                                  (uint64_t) (NGX_MAX_OFF_T_VALUE - c->sent));
    c->send = wd->passer;

    if (!ws->flush.timer_set) {
        ngx_add_timer(&ws->flush, NGX_HTTP_RAILGUN_WS_FLUSH);
    }

    return n;
}


/* a direction's counts to the zone */

static void
ngx_http_railgun_websocket_flush(ngx_http_railgun_ws_dir_t *wd)
{
    ngx_railgun_wsframe_t  *f;

    f = &wd->frame;

    if (f->messages) {
        ngx_railgun_store_add(wd->messages, f->messages);
        f->messages = 0;
    }

    if (f->bytes) {
        ngx_railgun_store_add(wd->bytes, f->bytes);
        f->bytes = 0;
    }
}


/*
 * The timer: what passed unread so far of a payload, which may be its end
 * and its message's, goes to the zone; again NGX_HTTP_RAILGUN_WS_FLUSH
 * later while a payload goes on.
 */

static void
ngx_http_railgun_websocket_flush_handler(ngx_event_t *ev)
{
    ngx_uint_t                  d, passing;
    ngx_railgun_wsframe_t      *f;
    ngx_http_railgun_ws_t      *ws;
    ngx_http_railgun_ws_dir_t  *wd;

    ws = ev->data;
    passing = 0;

    for (d = 0; d < 2; d++) {
        wd = &ws->dir[d];
        f = &wd->frame;

        if (wd->connection && f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) {
            ngx_railgun_wsframe_skip(f, wd->connection->sent - wd->sent);
            wd->sent = wd->connection->sent;

            passing |= (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD);
        }

        ngx_http_railgun_websocket_flush(wd);
    }

    if (passing) {
        ngx_add_timer(ev, NGX_HTTP_RAILGUN_WS_FLUSH);
    }
}


/*
 * The end of a direction: what passed unread since the last write read
 * (a frame cut short by the close), and the bytes not yet in the zone.
 */

static void
ngx_http_railgun_websocket_close(ngx_http_railgun_ws_dir_t *wd)
{
    ngx_railgun_wsframe_t  *f;

    f = &wd->frame;

    if (wd->connection) {
        if (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) {
            ngx_railgun_wsframe_skip(f, wd->connection->sent - wd->sent);
        }

        wd->connection = NULL;
    }

    ngx_http_railgun_websocket_flush(wd);
}


/* the upstream connection's pool goes just before the connection closes */

static void
ngx_http_railgun_websocket_close_in(void *data)
{
    ngx_http_railgun_ws_dir_t  *wd = data;

    ngx_http_railgun_websocket_close(wd);
}


void
ngx_http_railgun_websocket_end(ngx_http_request_t *r,
    ngx_http_railgun_ctx_t *ctx)
{
    uint64_t                       us;
    ngx_uint_t                     d;
    ngx_railgun_exemplar_t         ex;
    ngx_http_railgun_ws_t         *ws;
    ngx_http_railgun_loc_conf_t   *rlcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    ws = ctx->ws;

    if (!ws->session) {
        return;
    }

    /*
     * The upstream connection is closed by now, and its direction ended
     * with its pool; the client's connection is not closed yet.
     */

    r->connection->send = ws->dir[NGX_HTTP_RAILGUN_WS_OUT].send;

    if (ws->cleanup && ws->dir[NGX_HTTP_RAILGUN_WS_IN].connection) {
        /* should it be open still, its pool must not end it again */
        ws->cleanup->handler = NULL;
    }

    for (d = 0; d < 2; d++) {
        ngx_http_railgun_websocket_close(&ws->dir[d]);
    }

    if (ws->flush.timer_set) {
        ngx_del_timer(&ws->flush);
    }

    us = ngx_railgun_now_us() - ws->start;

    ngx_railgun_store_observe(ws->duration, us);

    /* the exemplar as the session ends: its time is the observation's */

    rlcf = ngx_http_railgun_account_conf(r, ctx);

    if (rlcf->exemplar
        && ngx_http_railgun_exemplar_value(r, rlcf, &ex) == NGX_OK)
    {
        rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);
        ngx_railgun_store_exemplar_set(rmcf->store, ws->duration, us, &ex);
    }

    ngx_railgun_store_gauge_add(ws->active, ws->slot, -1);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "railgun websocket session end");
}


static ngx_int_t
ngx_http_railgun_websocket_series(ngx_http_request_t *r,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_http_railgun_ws_t *ws)
{
    u_char                        *p, *direction;
    u_char                         key[2 * NGX_RAILGUN_LABEL_ESCAPED_MAX
                                       + 64];
    size_t                         len;
    ngx_str_t                      path;
    ngx_uint_t                     d;
    ngx_railgun_store_t           *store;
    ngx_http_railgun_srv_conf_t   *rscf;
    ngx_http_railgun_main_conf_t  *rmcf;

    rscf = ngx_http_get_module_srv_conf(r, ngx_http_railgun_module);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);
    store = rmcf->store;

    if (rlcf->path_vars == NULL) {
        path = rlcf->path;

    } else if (ngx_http_complex_value(r, rlcf->path_vars, &path) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key, "server=\"", sizeof("server=\"") - 1);
    p = ngx_railgun_label_escape(p, rscf->name.data, rscf->name.len);
    p = ngx_cpymem(p, "\",path=\"", sizeof("\",path=\"") - 1);
    p = ngx_railgun_label_escape(p, path.data, path.len);
    *p++ = '"';

    len = p - key;

    ws->active = ngx_railgun_store_series(store,
                                          NGX_HTTP_RAILGUN_WS_CONNECTIONS,
                                          key, len, NULL);
    ws->duration = ngx_railgun_store_series(store,
                                            NGX_HTTP_RAILGUN_WS_DURATION,
                                            key, len, rlcf->ws_buckets);

    ngx_railgun_store_add(ngx_railgun_store_series(store,
                                      NGX_HTTP_RAILGUN_WS_CONNECTIONS_TOTAL,
                                      key, len, NULL),
                          1);

    direction = p;

    for (d = 0; d < 2; d++) {
        p = ngx_cpymem(direction, ",direction=\"",
                       sizeof(",direction=\"") - 1);
        p = ngx_cpymem(p, ngx_http_railgun_directions[d].data,
                       ngx_http_railgun_directions[d].len);
        *p++ = '"';

        ws->dir[d].messages = ngx_railgun_store_series(store,
                                               NGX_HTTP_RAILGUN_WS_MESSAGES,
                                               key, p - key, NULL);
        ws->dir[d].bytes = ngx_railgun_store_series(store,
                                                NGX_HTTP_RAILGUN_WS_BYTES,
                                                key, p - key, NULL);
        ws->dir[d].errors = ngx_railgun_store_series(store,
                                        NGX_HTTP_RAILGUN_WS_PROTOCOL_ERRORS,
                                        key, p - key, NULL);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_railgun_websocket_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_railgun_websocket_filter;

    return NGX_OK;
}
