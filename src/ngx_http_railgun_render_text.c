
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
 * floats canonically: "1.0", not "1"), in the final "# EOF", and in the
 * exemplars that OpenMetrics shows after a bucket's count.
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
static u_char *ngx_http_railgun_text_exemplar(u_char *p,
    ngx_railgun_exemplar_copy_t *ex);


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


/*
 * The sample writers copy what they use into locals: every byte written
 * through an u_char pointer may alias the render state as far as the
 * compiler knows, and would make it read each field again.
 */

static ngx_inline u_char *
ngx_http_railgun_text_name(u_char *p, ngx_str_t *name, char *suffix,
    size_t len, u_char *key, size_t key_len)
{
    p = ngx_cpymem(p, name->data, name->len);
    p = ngx_cpymem(p, suffix, len);

    if (key_len) {
        *p++ = '{';
        p = ngx_cpymem(p, key, key_len);
        *p++ = '}';
    }

    *p++ = ' ';

    return p;
}


static ngx_int_t
ngx_http_railgun_text_sample(ngx_http_railgun_render_t *rd)
{
    u_char                     *p;
    ngx_str_t                   name;
    ngx_http_railgun_sample_t  *x;

    if (rd->family.type == NGX_RAILGUN_HISTOGRAM) {
        return ngx_http_railgun_text_histogram(rd);
    }

    x = &rd->sample;
    name = rd->family.name;
    p = rd->buf->last;

    if ((size_t) (rd->buf->end - p)
        < name.len + x->key_len + NGX_HTTP_RAILGUN_LINE_ROOM)
    {
        return NGX_AGAIN;
    }

    p = ngx_http_railgun_text_name(p, &name, "", 0, x->key, x->key_len);

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
    u_char                     *p, *end, *key;
    size_t                      need, key_len;
    uint64_t                   *v, ex_mask;
    ngx_str_t                   name, *le;
    ngx_uint_t                  n, line;
    ngx_http_railgun_sample_t  *x;

    x = &rd->sample;
    n = x->buckets->n;

    if (x->buckets != rd->le_buckets) {
        ngx_http_railgun_text_le(rd, x->buckets);
    }

    name = rd->family.name;
    key = x->key;
    key_len = x->key_len;
    v = x->v;
    le = rd->le;
    line = rd->line;
    ex_mask = x->ex_mask;

    need = name.len + key_len + NGX_HTTP_RAILGUN_LE_LEN
           + NGX_HTTP_RAILGUN_LINE_ROOM;

    if (ex_mask) {
        need += NGX_HTTP_RAILGUN_EXEMPLAR_ROOM;
    }

    p = rd->buf->last;
    end = rd->buf->end;

    for ( /* void */ ; line < n + 3; line++) {

        if ((size_t) (end - p) < need) {
            rd->buf->last = p;
            rd->line = line;
            return NGX_AGAIN;
        }

        if (line <= n) {
            p = ngx_cpymem(p, name.data, name.len);
            p = ngx_cpymem(p, "_bucket{", 8);

            if (key_len) {
                p = ngx_cpymem(p, key, key_len);
                p = ngx_cpymem(p, le[line].data, le[line].len);

            } else {
                /* no comma before "le" */
                p = ngx_cpymem(p, le[line].data + 1, le[line].len - 1);
            }

            p = ngx_http_railgun_uint(p, v[line]);

            if (ex_mask & ((uint64_t) 1 << line)) {
                p = ngx_http_railgun_text_exemplar(p, &x->ex[line]);
            }

        } else if (line == n + 1) {
            p = ngx_http_railgun_text_name(p, &name, "_sum", 4, key, key_len);
            p = ngx_http_railgun_seconds(p, v[n + 1], 0);

        } else {
            p = ngx_http_railgun_text_name(p, &name, "_count", 6, key,
                                           key_len);
            p = ngx_http_railgun_uint(p, v[n]);
        }

        *p++ = '\n';
    }

    rd->buf->last = p;
    rd->line = line;

    return NGX_OK;
}


/*
 * " # {request_id=\"...\"} 0.087 1733100000.123": the label's value escaped
 * as every label value is, the value in seconds, the time in seconds with
 * its milliseconds.
 */

static u_char *
ngx_http_railgun_text_exemplar(u_char *p, ngx_railgun_exemplar_copy_t *ex)
{
    uint64_t  ms;

    p = ngx_cpymem(p, " # {", 4);
    p = ngx_cpymem(p, ex->label, ex->name_len);
    *p++ = '=';
    *p++ = '"';
    p = ngx_railgun_label_escape(p, ex->label + ex->name_len, ex->value_len);
    p = ngx_cpymem(p, "\"} ", 3);
    p = ngx_http_railgun_seconds(p, ex->value_us, 0);
    *p++ = ' ';

    ms = ex->time_ms % 1000;

    p = ngx_http_railgun_uint(p, ex->time_ms / 1000);
    *p++ = '.';
    *p++ = (u_char) ('0' + ms / 100);
    *p++ = (u_char) ('0' + ms / 10 % 10);
    *p++ = (u_char) ('0' + ms % 10);

    return p;
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
