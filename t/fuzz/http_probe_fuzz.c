
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
 * plain reference reading of the first 16 KB: lines end in LF, a CR before
 * it dropped; the status line "HTTP/1.x NNN" and a space or the end after
 * the code (100-599); an interim 1xx (not 101) and its header lines are
 * skipped; the code in the status list; header lines with a colon, up to
 * an empty line; the body decoded when "Transfer-Encoding" ends in
 * "chunked" (each chunk's data is searched as soon as it is added), else
 * cut at Content-Length, and it must hold the needle.
 *
 * Stand-ins for the nginx functions the file calls and the fuzzer does not
 * link: ngx_atoi, ngx_atoof and ngx_hextoi (ngx_numbers.h), ngx_strncasecmp
 * (nginx's own code), and an ngx_pnalloc and an ngx_sprintf that the
 * configuration part alone uses.
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
#include "ngx_numbers.h"


/* stand-ins for nginx */

/* nginx's ngx_strncasecmp() */

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;

        if (c1 == c2) {

            if (c1) {
                n--;
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
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

    probe_feed_said(&o);
    check(o.result == NGX_RAILGUN_PROBE_OK
          || o.result == NGX_RAILGUN_PROBE_ERROR
          || o.result == NGX_RAILGUN_PROBE_BAD_STATUS
          || o.result == NGX_RAILGUN_PROBE_BAD_BODY, "an HTTP result");

    return o;
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


/* the next line of p..end without its LF and a CR before it, or -1 */

static ssize_t
next_line(const u_char **p, const u_char *end, const u_char **line)
{
    const u_char  *lf;
    size_t         e;

    lf = memchr(*p, '\n', end - *p);
    if (lf == NULL) {
        return -1;
    }

    *line = *p;
    e = lf - *p;

    if (e && lf[-1] == '\r') {
        e--;
    }

    *p = lf + 1;

    return e;
}


static int
has_colon(const u_char *line, ssize_t e)
{
    const u_char  *c;

    c = memchr(line, ':', e);

    return c != NULL && c != line;
}


static int
name_is(const u_char *line, ssize_t e, const char *name)
{
    size_t  n;

    n = strlen(name);

    return (size_t) e > n && line[n] == ':'
           && ngx_strncasecmp((u_char *) line, (u_char *) name, n) == 0;
}


static ngx_uint_t
reference(ngx_railgun_probe_t *probe, const u_char *d, size_t len)
{
    int                          code, chunked, hex;
    off_t                        cl, v, size, avail;
    size_t                       w, i, dl;
    ssize_t                      e;
    u_char                      *dec;
    const u_char                *p, *end, *line, *s, *t;
    ngx_railgun_probe_status_t  *st;

    w = ngx_min(len, (size_t) MAX_REPLY);
    p = d;
    end = d + w;

    for ( ;; ) {
        e = next_line(&p, end, &line);
        if (e < 0) {
            return NGX_RAILGUN_PROBE_ERROR;
        }

        if (e < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ') {
            return NGX_RAILGUN_PROBE_ERROR;
        }

        for (i = 9, code = 0; i < 12; i++) {
            if (line[i] < '0' || line[i] > '9') {
                return NGX_RAILGUN_PROBE_ERROR;
            }
            code = code * 10 + line[i] - '0';
        }

        if (code < 100 || code > 599 || (e > 12 && line[12] != ' ')) {
            return NGX_RAILGUN_PROBE_ERROR;
        }

        if (code >= 200 || code == 101) {
            break;
        }

        /* an interim response: its header lines */

        while ((e = next_line(&p, end, &line)) != 0) {
            if (e < 0) {
                return NGX_RAILGUN_PROBE_ERROR;
            }

            if (!has_colon(line, e)) {
                return NGX_RAILGUN_PROBE_ERROR;
            }
        }
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

    cl = -1;
    chunked = 0;

    while ((e = next_line(&p, end, &line)) != 0) {
        if (e < 0 || !has_colon(line, e)) {
            return NGX_RAILGUN_PROBE_ERROR;
        }

        s = memchr(line, ':', e) + 1;
        t = line + e;

        while (s < t && (*s == ' ' || *s == '\t')) {
            s++;
        }

        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) {
            t--;
        }

        if (name_is(line, e, "Content-Length")) {
            v = ngx_atoof((u_char *) s, t - s);

            if (v == NGX_ERROR || (cl >= 0 && cl != v)) {
                return NGX_RAILGUN_PROBE_ERROR;
            }

            cl = v;

        } else if (name_is(line, e, "Transfer-Encoding")) {
            chunked = (t - s >= 7
                       && ngx_strncasecmp((u_char *) t - 7,
                                          (u_char *) "chunked", 7) == 0);
        }
    }

    if (!chunked) {
        avail = end - p;

        if (cl >= 0 && avail > cl) {
            avail = cl;
        }

        return find(p, p + avail, probe->body.data, probe->body.len)
               ? NGX_RAILGUN_PROBE_OK : NGX_RAILGUN_PROBE_BAD_BODY;
    }

    /* the chunks decoded into a copy, searched as each is added */

    dec = malloc(w + 1);
    check(dec != NULL, "malloc");
    dl = 0;

    for ( ;; ) {
        e = next_line(&p, end, &line);
        if (e < 0) {
            break;
        }

        size = 0;

        for (i = 0; i < (size_t) e && line[i] != ';' && line[i] != ' '
                    && line[i] != '\t'; i++)
        {
            hex = ngx_hextoi((u_char *) &line[i], 1);

            if (hex == NGX_ERROR || size > (NGX_MAX_OFF_T_VALUE - hex) / 16) {
                free(dec);
                return NGX_RAILGUN_PROBE_ERROR;
            }

            size = size * 16 + hex;
        }

        if (i == 0) {
            free(dec);
            return NGX_RAILGUN_PROBE_ERROR;
        }

        if (size == 0) {
            break;
        }

        avail = end - p;

        memcpy(dec + dl, p, ngx_min(avail, size));
        dl += ngx_min(avail, size);

        if (find(dec, dec + dl, probe->body.data, probe->body.len)) {
            free(dec);
            return NGX_RAILGUN_PROBE_OK;
        }

        if (size >= avail) {
            break;
        }

        p += size;

        if (*p == '\r') {
            if (end - p < 2) {
                break;
            }
            p++;
        }

        if (*p != '\n') {
            free(dec);
            return NGX_RAILGUN_PROBE_ERROR;
        }

        p++;
    }

    free(dec);

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
    probe_same(&a, &b, "read in pieces or whole: the same outcome");

    if (len <= 4096) {
        c = feed(&probe, reply, len, sizes, nsizes, 2);
        probe_same(&a, &c, "read whole or a byte at a time: the same outcome");
    }

    check(a.result == reference(&probe, reply, len),
          "the result of the reference reading");

    free(reply);
    free(nd);

    return 0;
}
