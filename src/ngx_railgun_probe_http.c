
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"


/*
 * The HTTP probe: one HTTP/1.1 request with "Connection: close", then the
 * status line (interim 1xx responses skipped), the headers and, when a body
 * substring is asked for, the body: decoded when chunked, up to its
 * Content-Length, the end of the connection or of the bounded buffer.
 * Lines end in CRLF or a bare LF, as nginx reads them.
 */

#define NGX_RAILGUN_HTTP_MAX_REPLY  (16 * 1024)


typedef struct {
    off_t                          content_length;   /* -1: none */
    ngx_uint_t                     chunked;          /* unsigned  chunked:1; */
} ngx_railgun_http_headers_t;


/* the matcher of body= across the pieces of a chunked body */

typedef struct {
    ngx_str_t                     *needle;
    u_char                         carry[NGX_RAILGUN_PROBE_MAX_BODY];
    size_t                         ncarry;
} ngx_railgun_http_match_t;


static ngx_int_t ngx_railgun_http_init_conf(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
static ngx_int_t ngx_railgun_http_start(ngx_railgun_probe_exchange_t *x);
static ngx_int_t ngx_railgun_http_process(ngx_railgun_probe_exchange_t *x,
    u_char *p, size_t n);
static void ngx_railgun_http_finish(ngx_railgun_probe_exchange_t *x);
static ngx_int_t ngx_railgun_http_status(ngx_railgun_probe_t *probe,
    u_char *p, u_char *end, ngx_uint_t *code, ngx_uint_t *status);
static ngx_int_t ngx_railgun_http_line(u_char **pos, u_char *end,
    u_char **line, u_char **last);
static ngx_int_t ngx_railgun_http_headers(u_char **pos, u_char *end,
    ngx_railgun_http_headers_t *h);
static ngx_int_t ngx_railgun_http_chunked(ngx_railgun_probe_t *probe,
    u_char *p, u_char *end, ngx_uint_t *complete);
static ngx_uint_t ngx_railgun_http_match(ngx_railgun_http_match_t *m,
    u_char *p, size_t len);
static u_char *ngx_railgun_http_find(u_char *p, u_char *end, u_char *s,
    size_t len);


ngx_railgun_probe_proto_t  ngx_railgun_probe_http = {
    ngx_railgun_http_init_conf,
    ngx_railgun_http_start,
    ngx_railgun_http_process,
    ngx_railgun_http_finish,
    NGX_RAILGUN_HTTP_MAX_REPLY
};


static ngx_int_t
ngx_railgun_http_start(ngx_railgun_probe_exchange_t *x)
{
    return NGX_OK;
}


/*
 * Every call sees the whole reply so far in x->in (pos to last + n); the
 * reply is small and bounded, so reading it again costs little and keeps the
 * parser free of state.
 */

static ngx_int_t
ngx_railgun_http_process(ngx_railgun_probe_exchange_t *x, u_char *p,
    size_t n)
{
    off_t                        avail;
    u_char                      *pos, *end, *line, *last;
    ngx_int_t                    rc;
    ngx_uint_t                   code, status, eof, full, complete, found;
    const char                  *missing;
    ngx_railgun_probe_t         *probe;
    ngx_railgun_http_headers_t   h;

    probe = x->probe;
    pos = x->in->pos;
    end = p + n;
    eof = (n == 0);
    full = (end == x->in->end);

    /* the status line; interim responses (100, 103) and their headers */

    for ( ;; ) {

        if (ngx_railgun_http_line(&pos, end, &line, &last) != NGX_OK) {
            missing = "no status line";
            goto incomplete;
        }

        if (ngx_railgun_http_status(probe, line, last, &code, &status)
            != NGX_OK)
        {
            x->result = NGX_RAILGUN_PROBE_ERROR;
            x->reason = "bad status line";
            return NGX_DONE;
        }

        if (code >= 200 || code == 101) {
            break;
        }

        rc = ngx_railgun_http_headers(&pos, end, NULL);

        if (rc == NGX_AGAIN) {
            missing = "no end of header";
            goto incomplete;
        }

        if (rc == NGX_ERROR) {
            goto bad_header;
        }
    }

    if (status == 0) {
        x->result = NGX_RAILGUN_PROBE_BAD_STATUS;
        x->reason = "unexpected status";
        return NGX_DONE;
    }

    if (probe->body.len == 0) {
        x->result = NGX_RAILGUN_PROBE_OK;
        return NGX_DONE;
    }

    rc = ngx_railgun_http_headers(&pos, end, &h);

    if (rc == NGX_AGAIN) {
        missing = "no end of header";
        goto incomplete;
    }

    if (rc == NGX_ERROR) {
        goto bad_header;
    }

    if (h.chunked) {
        rc = ngx_railgun_http_chunked(probe, pos, end, &complete);

        if (rc == NGX_ERROR) {
            x->result = NGX_RAILGUN_PROBE_ERROR;
            x->reason = "bad chunked body";
            return NGX_DONE;
        }

        found = (rc == NGX_OK);

    } else {
        avail = end - pos;
        complete = 0;

        if (h.content_length >= 0 && avail >= h.content_length) {
            /* the whole body: an open connection waits for nothing more */
            avail = h.content_length;
            complete = 1;
        }

        found = (ngx_railgun_http_find(pos, pos + avail, probe->body.data,
                                       probe->body.len)
                 != NULL);
    }

    if (found) {
        x->result = NGX_RAILGUN_PROBE_OK;
        return NGX_DONE;
    }

    if (complete || eof || full) {
        x->result = NGX_RAILGUN_PROBE_BAD_BODY;
        x->reason = "body does not match";
        return NGX_DONE;
    }

    return NGX_AGAIN;

incomplete:

    /* a full buffer is "reply too large" for the probe core to say */

    if (eof) {
        x->result = NGX_RAILGUN_PROBE_ERROR;
        x->reason = missing;
        return NGX_DONE;
    }

    return NGX_AGAIN;

bad_header:

    x->result = NGX_RAILGUN_PROBE_ERROR;
    x->reason = "bad header";
    return NGX_DONE;
}


static void
ngx_railgun_http_finish(ngx_railgun_probe_exchange_t *x)
{
}


/* a line ending in LF, a CR before it dropped; NGX_AGAIN when incomplete */

static ngx_int_t
ngx_railgun_http_line(u_char **pos, u_char *end, u_char **line,
    u_char **last)
{
    u_char  *lf;

    lf = ngx_strlchr(*pos, end, LF);

    if (lf == NULL) {
        return NGX_AGAIN;
    }

    *line = *pos;
    *last = (lf > *pos && lf[-1] == CR) ? lf - 1 : lf;
    *pos = lf + 1;

    return NGX_OK;
}


/*
 * The header lines up to the empty one; with h, Content-Length and
 * "Transfer-Encoding: chunked" (which wins over a length, as in RFC 9112).
 */

static ngx_int_t
ngx_railgun_http_headers(u_char **pos, u_char *end,
    ngx_railgun_http_headers_t *h)
{
    u_char  *p, *line, *last, *colon, *v;
    off_t    len;

    if (h) {
        h->content_length = -1;
        h->chunked = 0;
    }

    p = *pos;

    for ( ;; ) {

        if (ngx_railgun_http_line(&p, end, &line, &last) != NGX_OK) {
            return NGX_AGAIN;
        }

        if (line == last) {
            *pos = p;
            return NGX_OK;
        }

        colon = ngx_strlchr(line, last, ':');

        if (colon == NULL || colon == line) {
            return NGX_ERROR;
        }

        if (h == NULL) {
            continue;
        }

        for (v = colon + 1; v < last && (*v == ' ' || *v == '\t'); v++) {
            /* void */
        }

        while (last > v && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (colon - line == sizeof("Content-Length") - 1
            && ngx_strncasecmp(line, (u_char *) "Content-Length",
                               colon - line)
               == 0)
        {
            len = ngx_atoof(v, last - v);

            if (len == NGX_ERROR
                || (h->content_length >= 0 && h->content_length != len))
            {
                return NGX_ERROR;
            }

            h->content_length = len;
            continue;
        }

        if (colon - line == sizeof("Transfer-Encoding") - 1
            && ngx_strncasecmp(line, (u_char *) "Transfer-Encoding",
                               colon - line)
               == 0)
        {
            /* chunked is the last coding when it is there at all */
            h->chunked = (last - v >= 7
                          && ngx_strncasecmp(last - 7, (u_char *) "chunked",
                                             7)
                             == 0);
        }
    }
}


/*
 * A chunked body from p: the data of its chunks, as far as it came, goes
 * through the matcher.  NGX_OK: found; NGX_DECLINED: not found, *complete
 * when the last chunk came; NGX_ERROR: not chunked encoding.
 */

static ngx_int_t
ngx_railgun_http_chunked(ngx_railgun_probe_t *probe, u_char *p, u_char *end,
    ngx_uint_t *complete)
{
    off_t                      size, avail;
    u_char                    *line, *last, *q;
    ngx_int_t                  d;
    ngx_railgun_http_match_t   m;

    *complete = 0;

    m.needle = &probe->body;
    m.ncarry = 0;

    for ( ;; ) {

        if (ngx_railgun_http_line(&p, end, &line, &last) != NGX_OK) {
            return NGX_DECLINED;
        }

        size = 0;

        for (q = line; q < last && *q != ';' && *q != ' ' && *q != '\t'; q++)
        {
            d = ngx_hextoi(q, 1);

            if (d == NGX_ERROR || size > (NGX_MAX_OFF_T_VALUE - d) / 16) {
                return NGX_ERROR;
            }

            size = size * 16 + d;
        }

        if (q == line) {
            return NGX_ERROR;
        }

        if (size == 0) {
            /* the last chunk: trailers are not looked at */
            *complete = 1;
            return NGX_DECLINED;
        }

        avail = end - p;

        if (ngx_railgun_http_match(&m, p, ngx_min(avail, size))) {
            return NGX_OK;
        }

        /* the chunk and the first byte after it; size + 1 may overflow */

        if (size >= avail) {
            return NGX_DECLINED;
        }

        p += size;

        /* the chunk's CRLF or LF */

        if (*p == CR) {
            if (end - p < 2) {
                return NGX_DECLINED;
            }

            p++;
        }

        if (*p != LF) {
            return NGX_ERROR;
        }

        p++;
    }
}


/*
 * Whether the needle is in the stream of pieces fed so far: each piece is
 * searched, and so is the seam between the last needle length - 1 bytes
 * before it and its start.
 */

static ngx_uint_t
ngx_railgun_http_match(ngx_railgun_http_match_t *m, u_char *p, size_t len)
{
    size_t   l, k, keep;
    u_char   seam[2 * NGX_RAILGUN_PROBE_MAX_BODY];

    l = m->needle->len;

    if (ngx_railgun_http_find(p, p + len, m->needle->data, l)) {
        return 1;
    }

    if (m->ncarry) {
        k = ngx_min(len, l - 1);

        ngx_memcpy(seam, m->carry, m->ncarry);
        ngx_memcpy(seam + m->ncarry, p, k);

        if (ngx_railgun_http_find(seam, seam + m->ncarry + k,
                                  m->needle->data, l))
        {
            return 1;
        }
    }

    /* the last l - 1 bytes of the stream are carried to the next piece */

    if (len >= l - 1) {
        ngx_memcpy(m->carry, p + len - (l - 1), l - 1);
        m->ncarry = l - 1;

    } else {
        keep = ngx_min(m->ncarry, l - 1 - len);
        ngx_memmove(m->carry, m->carry + m->ncarry - keep, keep);
        ngx_memcpy(m->carry + keep, p, len);
        m->ncarry = keep + len;
    }

    return 0;
}


/* the first occurrence of s in p..end, compared byte for byte */

static u_char *
ngx_railgun_http_find(u_char *p, u_char *end, u_char *s, size_t len)
{
    for ( /* void */ ; (size_t) (end - p) >= len; p++) {

        p = ngx_strlchr(p, end - len + 1, s[0]);

        if (p == NULL) {
            return NULL;
        }

        if (ngx_memcmp(p, s, len) == 0) {
            return p;
        }
    }

    return NULL;
}


/*
 * "HTTP/1.x NNN ...": *code is the code, *status the code if it is
 * accepted, else 0; an interim code is never judged
 */

static ngx_int_t
ngx_railgun_http_status(ngx_railgun_probe_t *probe, u_char *p, u_char *end,
    ngx_uint_t *code, ngx_uint_t *status)
{
    ngx_int_t                    c;
    ngx_uint_t                   i;
    ngx_railgun_probe_status_t  *st;

    if (end - p < 12 || ngx_strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return NGX_ERROR;
    }

    c = ngx_atoi(p + 9, 3);

    if (c < 100 || c > 599 || (end - p > 12 && p[12] != ' ')) {
        return NGX_ERROR;
    }

    *code = c;
    *status = 0;

    st = probe->status->elts;

    for (i = 0; i < probe->status->nelts; i++) {
        if ((ngx_uint_t) c >= st[i].low && (ngx_uint_t) c <= st[i].high) {
            *status = c;
            break;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_railgun_http_init_conf(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    size_t   len;
    u_char  *p;

    len = sizeof("GET  HTTP/1.1" CRLF "Host: " CRLF
                 "User-Agent: ngx-railgun probe" CRLF
                 "Connection: close" CRLF CRLF) - 1
          + probe->uri.len + probe->host.len;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    probe->request.data = p;
    probe->request.len = ngx_sprintf(p, "GET %V HTTP/1.1" CRLF
                                     "Host: %V" CRLF
                                     "User-Agent: ngx-railgun probe" CRLF
                                     "Connection: close" CRLF CRLF,
                                     &probe->uri, &probe->host)
                         - p;

    return NGX_OK;
}
