
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of the tunnel's WebSocket accounting itself: the
 * wrappers of src/ngx_http_railgun_websocket.c (the reader, the passer,
 * their inline paths, the session's flush timer and the close), driven the
 * way ngx_http_upstream_process_upgraded() drives c->send, on two fake
 * connections whose "nginx send" takes as many bytes as the input says (or
 * none: NGX_AGAIN) and moves c->sent by them.
 *
 * Input: one byte of options (bit 0: the "in" series are overflow series,
 * bit 1: the "out" ones; bits 2 and 3: the timer fires before the
 * upstream's close, before the log phase), then operations, each one byte
 * (its bit 3 the direction) and its arguments:
 *
 *   0, 1  append a frame to the direction's stream: opcode, fin, mask,
 *         RSV1, length and its encoding (7, 16 or 64 bits) from the input;
 *         a 64-bit one may be near 2^63, its payload then as much as the
 *         stream has room for
 *   2, 5, 6  a write of what is pending, as nginx makes one: its size and
 *         how much of it the send takes (maybe nothing) from the input
 *   3     the timer fires, if it is set
 *   4, 7  a raw byte appended to the stream
 *
 * then everything pending is written, in writes the input cuts, and the
 * session ends as nginx ends it: the upstream's pool cleanup, the log
 * phase, with the timer fired before either or not.  Aborts unless: the
 * passer's limit is never behind c->sent (a 64-bit length near 2^63 must
 * not wrap it); the zone never holds more than a plain reader fed every
 * byte sent so far counts; a fired timer leaves the zone equal to it; when
 * the zone is behind it, the timer is set (the 1 s bound); the timer is
 * never inserted twice nor deleted unset, and is not set after the
 * session's end; and at the end the zone holds exactly what the plain
 * reader counted, and each direction's protocol error once if it broke.
 */

/* sources: src/ngx_railgun_wsframe.c */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* the module's file, its static functions in reach */
#include "ngx_http_railgun_websocket.c"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define STREAM_MAX  (1 << 20)

typedef struct {
    u_char                 *buf;       /* the direction's stream */
    size_t                  len;
    size_t                  sent;      /* what nginx's send took */
    size_t                  budget;    /* what it takes at its next call */
    ngx_railgun_wsframe_t   ref;       /* a plain reader of what was sent */
    ngx_connection_t        c;
} fake_dir_t;


static fake_dir_t              dirs[2];
static ngx_uint_t              armed;
static ngx_uint_t              ended;
static ngx_log_t               fuzz_log;

/* the stubs' world */

ngx_module_t                   ngx_http_railgun_module;
ngx_rbtree_t                   ngx_event_timer_rbtree;
volatile ngx_msec_t            ngx_current_msec;
ngx_http_output_header_filter_pt  ngx_http_top_header_filter;


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "wstunnel_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


void
ngx_rbtree_insert(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    check(!armed, "the timer inserted twice");
    check(!ended, "the timer set after the session's end");
    armed = 1;
}


void
ngx_rbtree_delete(ngx_rbtree_t *tree, ngx_rbtree_node_t *node)
{
    check(armed, "the timer deleted unset");
    armed = 0;
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((char *) s1, (char *) s2, n);
}


ngx_http_railgun_ctx_t *
ngx_http_railgun_get_ctx(ngx_http_request_t *r)
{
    return r->ctx[0];
}


ngx_http_railgun_loc_conf_t *
ngx_http_railgun_account_conf(ngx_http_request_t *r,
    ngx_http_railgun_ctx_t *ctx)
{
    static ngx_http_railgun_loc_conf_t  rlcf;

    return &rlcf;
}


void
ngx_http_railgun_account(ngx_http_request_t *r, ngx_http_railgun_ctx_t *ctx,
    ngx_uint_t status, off_t sent)
{
}


ngx_int_t
ngx_http_railgun_exemplar_value(ngx_http_request_t *r,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_railgun_exemplar_t *ex)
{
    return NGX_DECLINED;
}


ngx_railgun_series_t *
ngx_railgun_store_series(ngx_railgun_store_t *store, ngx_uint_t family,
    u_char *key, size_t len, ngx_railgun_buckets_t *buckets)
{
    abort();
}


ngx_uint_t
ngx_railgun_store_slot(ngx_railgun_store_t *store)
{
    return 1;
}


void
ngx_railgun_store_observe_native(ngx_railgun_series_t *s, uint64_t us)
{
}


void
ngx_railgun_store_exemplar_set(ngx_railgun_store_t *store,
    ngx_railgun_series_t *s, uint64_t us, ngx_railgun_exemplar_t *ex)
{
}


ngx_pool_cleanup_t *
ngx_pool_cleanup_add(ngx_pool_t *p, size_t size)
{
    abort();
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    abort();
}


/* nginx's send: takes at most the budget, moves c->sent, feeds the ref */

static ssize_t
fake_send(ngx_connection_t *c, u_char *buf, size_t size)
{
    size_t       n;
    fake_dir_t  *fd;

    fd = (c == &dirs[0].c) ? &dirs[0] : &dirs[1];

    check(size > 0 && buf == fd->buf + fd->sent
          && fd->sent + size <= fd->len, "a send of what is pending");

    n = ngx_min(size, fd->budget);

    if (n == 0) {
        return NGX_AGAIN;
    }

    (void) ngx_railgun_wsframe_feed(&fd->ref, buf, n);

    fd->sent += n;
    c->sent += n;

    return n;
}


/* an input reader */

typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} input_t;


static ngx_uint_t
in_byte(input_t *in)
{
    return (in->p < in->end) ? *in->p++ : 0;
}


static void
append(fake_dir_t *fd, const u_char *p, size_t n)
{
    if (fd->len + n > STREAM_MAX) {
        return;
    }

    ngx_memcpy(fd->buf + fd->len, p, n);
    fd->len += n;
}


static void
append_frame(fake_dir_t *fd, input_t *in)
{
    u_char      h[14], *pay;
    size_t      hl, i, room;
    uint64_t    len;
    ngx_uint_t  a, b, op, enc, huge;

    static const u_char  ops[] = { 1, 2, 0, 0, 9, 10, 8, 3 };

    a = in_byte(in);
    b = in_byte(in);
    huge = 0;

    op = ops[a & 7];
    enc = (a >> 5) & 3;               /* 0, 1: 7 bits; 2: 16; 3: 64 */

    switch (enc) {
    case 0:
    case 1:
        len = b & 0x7f;
        len = (len > 125) ? 125 : len;
        break;
    case 2:
        len = b * 64 + in_byte(in);   /* up to 16383 */
        break;
    default:
        len = b * 256 + in_byte(in);  /* up to 65535, in 64 bits */

        /* or near 2^63, never sent whole: c->sent + remaining overflows */
        if ((a & 0x80) && (b & 2)) {
            huge = 1;
            len = ((uint64_t) 1 << 63) - 1 - len;
        }
    }

    h[0] = (u_char) (((a & 8) ? 0 : 0x80) | ((a & 16) ? 0x40 : 0) | op);
    hl = 2;

    if (enc < 2) {
        h[1] = (u_char) len;

    } else if (enc == 2) {
        h[1] = 126;
        h[2] = (u_char) (len >> 8);
        h[3] = (u_char) len;
        hl = 4;

    } else {
        h[1] = 127;
        for (i = 0; i < 8; i++) {
            h[2 + i] = (u_char) (len >> (56 - 8 * i));
        }
        /* the top bit, now and then: a broken length */
        if ((a & 0x80) && (b & 1)) {
            h[2] |= 0x80;
        }
        hl = 10;
    }

    if (fd == &dirs[NGX_HTTP_RAILGUN_WS_IN] || (a & 0x80)) {
        h[1] |= 0x80;
        for (i = 0; i < 4; i++) {
            h[hl++] = (u_char) in_byte(in);
        }
    }

    if (huge) {
        /* the header and what room is left of its payload: all to come */
        if (fd->len + hl > STREAM_MAX) {
            return;
        }

        append(fd, h, hl);

        room = STREAM_MAX - fd->len;
        ngx_memset(fd->buf + fd->len, 'p', room);
        fd->len += room;

        return;
    }

    if (fd->len + hl + len > STREAM_MAX) {
        return;
    }

    append(fd, h, hl);

    pay = fd->buf + fd->len;
    ngx_memset(pay, 'p', len);
    fd->len += len;
}


/* one write nginx makes of what is pending, maybe partial */

static void
write_some(ngx_http_railgun_ws_t *ws, fake_dir_t *fd, input_t *in)
{
    size_t      size, pending;
    ngx_uint_t  a, b;

    pending = fd->len - fd->sent;

    if (pending == 0) {
        return;
    }

    a = in_byte(in);
    b = in_byte(in);

    switch (a >> 6) {
    case 0:
        size = a + 1;
        break;
    case 1:
        size = (a & 0x3f) * 256 + b + 1;
        break;
    default:
        size = pending;
    }

    size = ngx_min(size, pending);

    if ((b & 0xc0) == 0xc0) {
        fd->budget = 0;

    } else if (b & 0x80) {
        fd->budget = (b & 0x3f) + 1;

    } else {
        fd->budget = size;
    }

    (void) fd->c.send(&fd->c, fd->buf + fd->sent, size);
}


static void
fire(ngx_http_railgun_ws_t *ws)
{
    if (!armed) {
        return;
    }

    /* as ngx_event_expire_timers() */
    ngx_rbtree_delete(&ngx_event_timer_rbtree, &ws->flush.timer);
    ws->flush.timer_set = 0;
    ws->flush.timedout = 1;
    ws->flush.handler(&ws->flush);
}


static uint64_t
zone(ngx_railgun_series_t *s)
{
    return s->values[0];
}


static void
invariants(ngx_http_railgun_ws_t *ws, ngx_uint_t after_fire)
{
    ngx_uint_t                  d, behind;
    ngx_http_railgun_ws_dir_t  *wd;

    check(armed == (ngx_uint_t) ws->flush.timer_set, "timer_set is true");

    behind = 0;

    for (d = 0; d < 2; d++) {
        wd = &ws->dir[d];

        /* a passer whose limit is behind c->sent passes nothing */
        check(dirs[d].c.send != wd->passer || wd->limit >= dirs[d].c.sent,
              "the passer's limit is at or past c->sent");

        check(zone(wd->messages) <= dirs[d].ref.messages,
              "the zone's messages are never ahead of the bytes sent");
        check(zone(wd->bytes) <= dirs[d].ref.bytes,
              "the zone's bytes are never ahead of the bytes sent");

        if (zone(wd->messages) != dirs[d].ref.messages
            || zone(wd->bytes) != dirs[d].ref.bytes)
        {
            behind = 1;
        }
    }

    if (after_fire) {
        check(!behind, "a fired timer leaves the zone with all that passed");
    }

    check(!behind || armed, "the zone is behind only while the timer is set");
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                      n;
    input_t                     in;
    ngx_uint_t                  d, op, options, i, adds;
    ngx_http_request_t          r;
    ngx_http_railgun_ws_t       ws;
    ngx_http_railgun_ctx_t      ctx;
    ngx_railgun_series_t       *series[6];
    void                       *rctx[1];
    ngx_http_railgun_ws_dir_t  *wd;

    static u_char  *bufs[2];

    ngx_railgun_buckets_t       buckets;
    struct {
        ngx_railgun_series_t    s;
        uint64_t                more[4];
    } hist;

    if (size < 1) {
        return 0;
    }

    for (d = 0; d < 2; d++) {
        if (bufs[d] == NULL) {
            bufs[d] = malloc(STREAM_MAX);
        }
    }

    in.p = data;
    in.end = data + size;
    options = in_byte(&in);

    ngx_memzero(&r, sizeof(r));
    ngx_memzero(&ws, sizeof(ws));
    ngx_memzero(&ctx, sizeof(ctx));
    ngx_memzero(dirs, sizeof(dirs));
    armed = 0;
    ended = 0;

    rctx[0] = &ctx;
    r.ctx = rctx;
    r.connection = &dirs[NGX_HTTP_RAILGUN_WS_OUT].c;
    ctx.ws = &ws;

    /* the series: values[0], and the drops after it in an overflow one */
    for (i = 0; i < 6; i++) {
        series[i] = calloc(1, sizeof(ngx_railgun_series_t)
                              + 2 * sizeof(uint64_t));
        series[i]->nvalues = 1;
        if (options & (1 << (i / 3))) {
            series[i]->flags = NGX_RAILGUN_SERIES_OVERFLOW;
        }
    }

    /* as ngx_http_railgun_websocket_start() */

    for (d = 0; d < 2; d++) {
        wd = &ws.dir[d];

        dirs[d].buf = bufs[d];
        dirs[d].c.data = &r;
        dirs[d].c.log = &fuzz_log;
        dirs[d].c.sent = 1000 * (d + 1);   /* the handshake's bytes */

        wd->messages = series[3 * d];
        wd->bytes = series[3 * d + 1];
        wd->errors = series[3 * d + 2];
        wd->direction = d;
        wd->connection = &dirs[d].c;
        wd->send = fake_send;
        wd->frame.apart =
            ((wd->messages->flags | wd->bytes->flags)
             & NGX_RAILGUN_SERIES_OVERFLOW) ? 1 : 0;
    }

    /* the duration, a histogram of no buckets; the gauge, no slot */
    ngx_memzero(&hist, sizeof(hist));
    ngx_memzero(&buckets, sizeof(buckets));
    hist.s.buckets = &buckets;
    hist.s.nvalues = 2;
    ws.duration = &hist.s;
    ws.active = &hist.s;
    ws.slot = 0;

    ws.session = 1;
    ws.flush.handler = ngx_http_railgun_websocket_flush_handler;
    ws.flush.data = &ws;
    ws.flush.log = &fuzz_log;
    ws.flush.cancelable = 1;

    ws.dir[0].reader = ngx_http_railgun_websocket_read_in;
    ws.dir[0].passer = ngx_http_railgun_websocket_pass_in;
    ws.dir[1].reader = ngx_http_railgun_websocket_read_out;
    ws.dir[1].passer = ngx_http_railgun_websocket_pass_out;
    dirs[0].c.send = ngx_http_railgun_websocket_read_in;
    dirs[1].c.send = ngx_http_railgun_websocket_read_out;

    while (in.p < in.end) {
        op = in_byte(&in);
        d = (op >> 3) & 1;

        switch (op & 7) {
        case 0:
        case 1:
            append_frame(&dirs[d], &in);
            break;
        case 2:
        case 5:
        case 6:
            write_some(&ws, &dirs[d], &in);
            invariants(&ws, 0);
            break;
        case 3:
            fire(&ws);
            invariants(&ws, 1);
            break;
        default:
            n = in_byte(&in);
            append(&dirs[d], (u_char *) &n, 1);
        }
    }

    /* the rest, in whole writes; a send that takes nothing, then all */

    for (d = 0; d < 2; d++) {
        while (dirs[d].sent < dirs[d].len) {
            dirs[d].budget = (dirs[d].sent & 1) ? 0 : 7;
            (void) dirs[d].c.send(&dirs[d].c, dirs[d].buf + dirs[d].sent,
                                  dirs[d].len - dirs[d].sent);
            invariants(&ws, 0);
            dirs[d].budget = dirs[d].len;
            if (dirs[d].sent < dirs[d].len) {
                (void) dirs[d].c.send(&dirs[d].c,
                                      dirs[d].buf + dirs[d].sent,
                                      dirs[d].len - dirs[d].sent);
                invariants(&ws, 0);
            }
        }
    }

    /* maybe a fire before the end: the upstream's pool, then the log phase */

    if (options & 4) {
        fire(&ws);
        invariants(&ws, 1);
    }

    ngx_http_railgun_websocket_close_in(&ws.dir[NGX_HTTP_RAILGUN_WS_IN]);

    if (options & 8) {
        fire(&ws);
        invariants(&ws, 1);
    }

    ngx_http_railgun_websocket_end(&r, &ctx);
    ended = 1;

    check(!armed, "the timer is deleted at the session's end");

    for (d = 0; d < 2; d++) {
        wd = &ws.dir[d];

        check(zone(wd->messages) == dirs[d].ref.messages,
              "the end: every message");
        check(zone(wd->bytes) == dirs[d].ref.bytes, "the end: every byte");
        check(zone(wd->errors) == (dirs[d].ref.failed ? 1 : 0),
              "the end: the error, once");

        adds = (wd->messages->flags & NGX_RAILGUN_SERIES_OVERFLOW)
               ? wd->messages->values[1] : 0;
        check(!(wd->messages->flags & NGX_RAILGUN_SERIES_OVERFLOW)
              || zone(wd->messages) == 0 || adds > 0,
              "an overflow series counts its drops");
    }

    for (i = 0; i < 6; i++) {
        free(series[i]);
    }

    return 0;
}
