
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
 * status line, the headers and, when a body substring is asked for, the body
 * up to the end of the connection or of the bounded buffer.
 */

#define NGX_RAILGUN_HTTP_MAX_REPLY  (16 * 1024)


static ngx_int_t ngx_railgun_http_init_conf(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
static ngx_int_t ngx_railgun_http_start(ngx_railgun_probe_exchange_t *x);
static ngx_int_t ngx_railgun_http_process(ngx_railgun_probe_exchange_t *x,
    u_char *p, size_t n);
static void ngx_railgun_http_finish(ngx_railgun_probe_exchange_t *x);
static ngx_int_t ngx_railgun_http_status(ngx_railgun_probe_t *probe,
    u_char *p, u_char *end, ngx_uint_t *status);
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
    u_char               *start, *end, *eol, *body;
    ngx_uint_t            status, eof;
    ngx_railgun_probe_t  *probe;

    probe = x->probe;
    start = x->in->pos;
    end = p + n;
    eof = (n == 0);

    eol = ngx_strlchr(start, end, '\n');

    if (eol == NULL) {
        if (eof) {
            x->result = NGX_RAILGUN_PROBE_ERROR;
            x->reason = "no status line";
            return NGX_DONE;
        }

        return NGX_AGAIN;
    }

    if (ngx_railgun_http_status(probe, start, eol, &status) != NGX_OK) {
        x->result = NGX_RAILGUN_PROBE_ERROR;
        x->reason = "bad status line";
        return NGX_DONE;
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

    body = ngx_railgun_http_find(start, end, (u_char *) CRLF CRLF, 4);

    if (body == NULL) {
        if (eof) {
            x->result = NGX_RAILGUN_PROBE_ERROR;
            x->reason = "no end of header";
            return NGX_DONE;
        }

        return NGX_AGAIN;
    }

    body += 4;

    if (ngx_railgun_http_find(body, end, probe->body.data, probe->body.len)
        != NULL)
    {
        x->result = NGX_RAILGUN_PROBE_OK;
        return NGX_DONE;
    }

    if (eof || x->in->last + n == x->in->end) {
        x->result = NGX_RAILGUN_PROBE_BAD_BODY;
        x->reason = "body does not match";
        return NGX_DONE;
    }

    return NGX_AGAIN;
}


static void
ngx_railgun_http_finish(ngx_railgun_probe_exchange_t *x)
{
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


/* "HTTP/1.x NNN ...": *status is the code if it is accepted, else 0 */

static ngx_int_t
ngx_railgun_http_status(ngx_railgun_probe_t *probe, u_char *p, u_char *end,
    ngx_uint_t *status)
{
    ngx_int_t                    code;
    ngx_uint_t                   i;
    ngx_railgun_probe_status_t  *st;

    if (end - p < 12 || ngx_strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return NGX_ERROR;
    }

    code = ngx_atoi(p + 9, 3);

    if (code < 100 || (end - p > 12 && p[12] != ' ' && p[12] != '\r')) {
        return NGX_ERROR;
    }

    *status = 0;

    st = probe->status->elts;

    for (i = 0; i < probe->status->nelts; i++) {
        if ((ngx_uint_t) code >= st[i].low && (ngx_uint_t) code <= st[i].high)
        {
            *status = code;
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
