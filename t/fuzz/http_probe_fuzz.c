
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of the HTTP probe's reply handling: the process
 * function of ngx_railgun_probe_http, driven the way the probe core drives
 * it.  Its contract: the whole reply so far sits in the exchange's bounded
 * buffer x->in (16 KB), from x->in->pos to p + n where p == x->in->last
 * and n is what the latest read added; n == 0 is the end of the
 * connection; a full buffer is "reply too large" unless process() decided.
 *
 * Input: byte 0 configures the probe:
 *     bits 0-1  status=: 200-299 (the default), 200, 200-204,418, 100-599
 *     bit 2     body= with a needle of the next byte % 16 + 1 bytes, which
 *               follow
 * then a byte N (0-31) and N bytes giving the sizes of the reads (cycled:
 * b < 128 reads b + 1 bytes, else (b - 127) * 256), then the reply.
 *
 * The reply is fed three times: in those reads, whole, and a byte at a time
 * (up to 4 KB); the buffer past p + n is poisoned, so a read past the reply
 * so far is an ASan report.  Aborts unless: process() returns NGX_AGAIN or
 * NGX_DONE, and NGX_DONE at the end of the reply; the result is one an HTTP
 * probe can have (ok, error, bad_status, bad_body), with a reason unless
 * it is ok; the three feedings end alike; and the result is that of a
 * plain reference reading: the status line is the first line of the first
 * 16 KB, "HTTP/1.x NNN" and a space or the end after the code, the code in
 * the status list; the body starts after the first blank line and must
 * hold the needle within the first 16 KB.
 *
 * Stand-ins for the nginx functions the file calls and the fuzzer does not
 * link: ngx_atoi (nginx's own code), and an ngx_pnalloc and an ngx_sprintf
 * that the configuration part alone uses.
 */

/* sources: src/ngx_railgun_probe_http.c */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define MAX_REPLY  (16 * 1024)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "http_probe_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


#include "probe_feed.h"


/* stand-ins for nginx */

/* nginx's ngx_atoi() */

ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    ngx_int_t  value, cutoff, cutlim;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 10;
    cutlim = NGX_MAX_INT_T_VALUE % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    check(0, "ngx_pnalloc is for the configuration only");
    return NULL;
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    check(0, "ngx_sprintf is for the configuration only");
    return buf;
}


/* feeding */

static outcome_t
feed(ngx_railgun_probe_t *probe, const uint8_t *reply, size_t len,
    const uint8_t *sizes, size_t nsizes, int mode)
{
    outcome_t  o;

    check(ngx_railgun_probe_http.max_reply == MAX_REPLY, "max_reply");

    o = probe_feed(&ngx_railgun_probe_http, probe, reply, len, sizes, nsizes,
                   mode, 256);

    check(o.result < NGX_RAILGUN_PROBE_NRESULTS, "result in range");
    check(o.result == NGX_RAILGUN_PROBE_OK
          || o.result == NGX_RAILGUN_PROBE_ERROR
          || o.result == NGX_RAILGUN_PROBE_BAD_STATUS
          || o.result == NGX_RAILGUN_PROBE_BAD_BODY, "an HTTP result");

    if (o.result == NGX_RAILGUN_PROBE_OK) {
        check(o.reason == NULL, "ok without a reason");

    } else {
        check(o.reason != NULL && o.reason[0] != '\0', "failure says why");
    }

    return o;
}


static void
same(outcome_t *a, outcome_t *b, const char *what)
{
    check(a->rc == b->rc, what);
    check(a->result == b->result, what);
    check((a->reason == NULL) == (b->reason == NULL), what);
    check(a->reason == NULL || strcmp(a->reason, b->reason) == 0, what);
}


/* the reference reading */

static const u_char *
find(const u_char *p, const u_char *end, const u_char *s, size_t len)
{
    for ( /* void */ ; (size_t) (end - p) >= len; p++) {
        if (memcmp(p, s, len) == 0) {
            return p;
        }
    }

    return NULL;
}


static ngx_uint_t
reference(ngx_railgun_probe_t *probe, const u_char *d, size_t len)
{
    int                          code;
    size_t                       w, e, i;
    const u_char                *eol, *body;
    ngx_railgun_probe_status_t  *st;

    w = ngx_min(len, (size_t) MAX_REPLY);

    eol = memchr(d, '\n', w);
    if (eol == NULL) {
        return NGX_RAILGUN_PROBE_ERROR;
    }

    e = eol - d;

    if (e < 12 || memcmp(d, "HTTP/1.", 7) != 0 || d[8] != ' ') {
        return NGX_RAILGUN_PROBE_ERROR;
    }

    for (i = 9, code = 0; i < 12; i++) {
        if (d[i] < '0' || d[i] > '9') {
            return NGX_RAILGUN_PROBE_ERROR;
        }
        code = code * 10 + d[i] - '0';
    }

    if (code < 100 || (e > 12 && d[12] != ' ' && d[12] != '\r')) {
        return NGX_RAILGUN_PROBE_ERROR;
    }

    st = probe->status->elts;

    for (i = 0; i < probe->status->nelts; i++) {
        if ((ngx_uint_t) code >= st[i].low && (ngx_uint_t) code <= st[i].high)
        {
            break;
        }
    }

    if (i == probe->status->nelts) {
        return NGX_RAILGUN_PROBE_BAD_STATUS;
    }

    if (probe->body.len == 0) {
        return NGX_RAILGUN_PROBE_OK;
    }

    body = find(d, d + w, (u_char *) "\r\n\r\n", 4);
    if (body == NULL) {
        return NGX_RAILGUN_PROBE_ERROR;
    }

    if (find(body + 4, d + w, probe->body.data, probe->body.len)) {
        return NGX_RAILGUN_PROBE_OK;
    }

    return NGX_RAILGUN_PROBE_BAD_BODY;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                       nsizes, len, needle;
    u_char                      *reply, *nd;
    unsigned                     cfg;
    outcome_t                    a, b, c;
    ngx_array_t                  statuses;
    const uint8_t               *p, *end, *sizes;
    ngx_railgun_probe_t          probe;
    ngx_railgun_probe_status_t   st[2];

    static const ngx_railgun_probe_status_t  lists[4][2] = {
        { { 200, 299 }, { 0, 0 } },
        { { 200, 200 }, { 0, 0 } },
        { { 200, 204 }, { 418, 418 } },
        { { 100, 599 }, { 0, 0 } },
    };

    p = data;
    end = data + size;

    if (p == end) {
        return 0;
    }

    cfg = *p++;

    /* the probe, as the configuration makes it */

    ngx_memzero(&probe, sizeof(ngx_railgun_probe_t));

    ngx_str_set(&probe.name, "fuzz");
    ngx_str_set(&probe.target, "127.0.0.1:8080");
    probe.type = NGX_RAILGUN_PROBE_HTTP;

    st[0] = lists[cfg & 3][0];
    st[1] = lists[cfg & 3][1];

    ngx_memzero(&statuses, sizeof(ngx_array_t));
    statuses.elts = st;
    statuses.nelts = (cfg & 3) == 2 ? 2 : 1;
    statuses.size = sizeof(ngx_railgun_probe_status_t);
    statuses.nalloc = 2;
    probe.status = &statuses;

    nd = NULL;

    if (cfg & 4) {
        if (p == end) {
            return 0;
        }

        needle = *p++ % 16 + 1;

        if ((size_t) (end - p) < needle) {
            return 0;
        }

        /* a heap copy of its exact size */
        nd = malloc(needle);
        check(nd != NULL, "malloc");
        memcpy(nd, p, needle);
        p += needle;

        probe.body.data = nd;
        probe.body.len = needle;
    }

    if (p == end) {
        free(nd);
        return 0;
    }

    nsizes = *p++ % 32;

    if ((size_t) (end - p) < nsizes) {
        free(nd);
        return 0;
    }

    sizes = p;
    p += nsizes;
    len = end - p;

    reply = malloc(len ? len : 1);
    check(reply != NULL, "malloc");
    memcpy(reply, p, len);

    a = feed(&probe, reply, len, sizes, nsizes, 0);
    b = feed(&probe, reply, len, sizes, nsizes, 1);
    same(&a, &b, "read in pieces or whole: the same outcome");

    if (len <= 4096) {
        c = feed(&probe, reply, len, sizes, nsizes, 2);
        same(&a, &c, "read whole or a byte at a time: the same outcome");
    }

    check(a.result == reference(&probe, reply, len),
          "the result of the reference reading");

    free(reply);
    free(nd);

    return 0;
}
