
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_render.h"


/*
 * The text formats: Prometheus 0.0.4 and OpenMetrics 1.0.  They differ in
 * the HELP/TYPE names of counters (OpenMetrics drops "_total"; no family
 * name is another's without it), in the "le" values (OpenMetrics writes
 * floats canonically: "1.0", not "1") and in the final "# EOF".
 */


#define ngx_http_railgun_room(rd, size)                                       \
    ((size_t) ((rd)->buf->end - (rd)->buf->last) >= (size_t) (size))


static ngx_int_t ngx_http_railgun_text_begin(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_text_family(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_text_sample(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_text_histogram(
    ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_text_family_end(
    ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_text_end(ngx_http_railgun_render_t *rd);
static void ngx_http_railgun_text_le(ngx_http_railgun_render_t *rd,
    ngx_railgun_buckets_t *b);
static u_char *ngx_http_railgun_text_name(u_char *p,
    ngx_http_railgun_render_t *rd, char *suffix, size_t len);


ngx_http_railgun_format_t  ngx_http_railgun_format_text = {
    ngx_http_railgun_text_begin,
    ngx_http_railgun_text_family,
    ngx_http_railgun_text_sample,
    ngx_http_railgun_text_family_end,
    ngx_http_railgun_text_end
};


/* TYPE words by the store's types */

static ngx_str_t  ngx_http_railgun_types[] = {
    ngx_string("counter"),
    ngx_string("gauge"),
    ngx_string("histogram"),
    ngx_string("gauge")
};



static ngx_int_t
ngx_http_railgun_text_begin(ngx_http_railgun_render_t *rd)
{
    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_text_family(ngx_http_railgun_render_t *rd)
{
    u_char     *p;
    size_t      len;
    ngx_str_t  *name, *type;

    name = &rd->family.name;
    type = &ngx_http_railgun_types[rd->family.type];
    len = name->len;

    if (!ngx_http_railgun_room(rd, 2 * len + rd->family.help.len + 64)) {
        return NGX_AGAIN;
    }

    /* an OpenMetrics counter family is named without its "_total" */

    if (rd->openmetrics && rd->family.type == NGX_RAILGUN_COUNTER
        && len > 6 && ngx_strncmp(name->data + len - 6, "_total", 6) == 0)
    {
        len -= 6;
    }

    p = rd->buf->last;

    p = ngx_cpymem(p, "# HELP ", 7);
    p = ngx_cpymem(p, name->data, len);
    *p++ = ' ';
    p = ngx_cpymem(p, rd->family.help.data, rd->family.help.len);
    p = ngx_cpymem(p, "\n# TYPE ", 8);
    p = ngx_cpymem(p, name->data, len);
    *p++ = ' ';
    p = ngx_cpymem(p, type->data, type->len);
    *p++ = '\n';

    rd->buf->last = p;

    return NGX_OK;
}


/* "name[suffix]{key} ", or "name[suffix] " for a sample without labels */

static u_char *
ngx_http_railgun_text_name(u_char *p, ngx_http_railgun_render_t *rd,
    char *suffix, size_t len)
{
    p = ngx_cpymem(p, rd->family.name.data, rd->family.name.len);
    p = ngx_cpymem(p, suffix, len);

    if (rd->sample.key_len) {
        *p++ = '{';
        p = ngx_cpymem(p, rd->sample.key, rd->sample.key_len);
        *p++ = '}';
    }

    *p++ = ' ';

    return p;
}


static ngx_int_t
ngx_http_railgun_text_sample(ngx_http_railgun_render_t *rd)
{
    u_char                     *p;
    ngx_http_railgun_sample_t  *x;

    if (rd->family.type == NGX_RAILGUN_HISTOGRAM) {
        return ngx_http_railgun_text_histogram(rd);
    }

    x = &rd->sample;

    if (!ngx_http_railgun_room(rd, rd->family.name.len + x->key_len
                                   + NGX_HTTP_RAILGUN_LINE_ROOM))
    {
        return NGX_AGAIN;
    }

    p = ngx_http_railgun_text_name(rd->buf->last, rd, "", 0);

    if (x->negative) {
        *p++ = '-';
    }

    p = ngx_http_railgun_uint(p, x->v[0]);
    *p++ = '\n';

    rd->buf->last = p;

    return NGX_OK;
}


/* a line at a time: the n + 1 buckets, _sum and _count */

static ngx_int_t
ngx_http_railgun_text_histogram(ngx_http_railgun_render_t *rd)
{
    u_char                     *p;
    size_t                      need;
    ngx_uint_t                  n;
    ngx_http_railgun_sample_t  *x;

    x = &rd->sample;
    n = x->buckets->n;

    if (x->buckets != rd->le_buckets) {
        ngx_http_railgun_text_le(rd, x->buckets);
    }

    need = rd->family.name.len + x->key_len + NGX_HTTP_RAILGUN_LE_LEN
           + NGX_HTTP_RAILGUN_LINE_ROOM;

    p = rd->buf->last;

    for ( /* void */ ; rd->line < n + 3; rd->line++) {

        if ((size_t) (rd->buf->end - p) < need) {
            rd->buf->last = p;
            return NGX_AGAIN;
        }

        if (rd->line <= n) {
            p = ngx_cpymem(p, rd->family.name.data, rd->family.name.len);
            p = ngx_cpymem(p, "_bucket{", 8);

            if (x->key_len) {
                p = ngx_cpymem(p, x->key, x->key_len);
                p = ngx_cpymem(p, rd->le[rd->line].data,
                               rd->le[rd->line].len);

            } else {
                /* no comma before "le" */
                p = ngx_cpymem(p, rd->le[rd->line].data + 1,
                               rd->le[rd->line].len - 1);
            }

            p = ngx_http_railgun_uint(p, x->v[rd->line]);

        } else if (rd->line == n + 1) {
            p = ngx_http_railgun_text_name(p, rd, "_sum", 4);
            p = ngx_http_railgun_seconds(p, x->v[n + 1], 0);

        } else {
            p = ngx_http_railgun_text_name(p, rd, "_count", 6);
            p = ngx_http_railgun_uint(p, x->v[n]);
        }

        *p++ = '\n';
    }

    rd->buf->last = p;

    return NGX_OK;
}


/* the "le" labels of a bucket list, rendered once for all its series */

static void
ngx_http_railgun_text_le(ngx_http_railgun_render_t *rd,
    ngx_railgun_buckets_t *b)
{
    u_char      *p;
    ngx_uint_t   i;

    p = rd->le_text;

    for (i = 0; i <= b->n; i++) {
        rd->le[i].data = p;

        p = ngx_cpymem(p, ",le=\"", 5);

        if (i < b->n) {
            p = ngx_http_railgun_seconds(p, b->bound[i], rd->openmetrics);

        } else {
            p = ngx_cpymem(p, "+Inf", 4);
        }

        p = ngx_cpymem(p, "\"} ", 3);

        rd->le[i].len = p - rd->le[i].data;
    }

    rd->le_buckets = b;
}


static ngx_int_t
ngx_http_railgun_text_family_end(ngx_http_railgun_render_t *rd)
{
    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_text_end(ngx_http_railgun_render_t *rd)
{
    if (!rd->openmetrics) {
        return NGX_OK;
    }

    if (!ngx_http_railgun_room(rd, sizeof("# EOF\n") - 1)) {
        return NGX_AGAIN;
    }

    rd->buf->last = ngx_cpymem(rd->buf->last, "# EOF\n",
                               sizeof("# EOF\n") - 1);

    return NGX_OK;
}
