
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_render.h"


/*
 * The JSON exposition (docs/metrics.md has the schema): the families of the
 * text format, in its order, with the same samples; labels as an object,
 * histograms with cumulative buckets.  A sample is written whole: its label
 * text is at most NGX_RAILGUN_STORE_MAX_KEY bytes, and no byte of it takes
 * more than 6 in JSON ("\u00XX"), so a sample always fits an empty buffer.
 *
 * Label values are read back from the label text, whose escapes are the text
 * format's (\\, \" and \n), and written as RFC 8259 strings: ", \ and the
 * control characters escaped, any byte that does not start a valid UTF-8
 * sequence replaced by U+FFFD.
 */


#define ngx_http_railgun_room(rd, size)                                       \
    ((size_t) ((rd)->buf->end - (rd)->buf->last) >= (size_t) (size))

/* a bucket: {"le":<20 digits, dot, 6>,"count":<20 digits>}, */
#define NGX_HTTP_RAILGUN_JSON_BUCKET  64


static ngx_int_t ngx_http_railgun_json_begin(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_json_family(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_json_sample(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_json_family_end(
    ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_json_end(ngx_http_railgun_render_t *rd);
static u_char *ngx_http_railgun_json_labels(u_char *p, u_char *key,
    size_t len);
static u_char *ngx_http_railgun_json_string(u_char *p, u_char *s, size_t len);


ngx_http_railgun_format_t  ngx_http_railgun_format_json = {
    ngx_http_railgun_json_begin,
    ngx_http_railgun_json_family,
    ngx_http_railgun_json_sample,
    ngx_http_railgun_json_family_end,
    ngx_http_railgun_json_end
};


static ngx_str_t  ngx_http_railgun_json_types[] = {
    ngx_string("counter"),
    ngx_string("gauge"),
    ngx_string("histogram"),
    ngx_string("gauge")
};


static ngx_int_t
ngx_http_railgun_json_begin(ngx_http_railgun_render_t *rd)
{
    u_char      *p;
    ngx_time_t  *tp;

    if (!ngx_http_railgun_room(rd, 256)) {
        return NGX_AGAIN;
    }

    tp = ngx_timeofday();

    p = ngx_sprintf(rd->buf->last,
                    "{\"version\":\"" NGX_HTTP_RAILGUN_VERSION "\","
                    "\"start_time\":%T.0,\"time\":%T.%03M,\"families\":[",
                    rd->store->sh->start_time, tp->sec, tp->msec);

    rd->buf->last = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_json_family(ngx_http_railgun_render_t *rd)
{
    u_char     *p;
    ngx_str_t  *type;

    if (!ngx_http_railgun_room(rd, 6 * (rd->family.name.len
                                        + rd->family.help.len) + 128))
    {
        return NGX_AGAIN;
    }

    type = &ngx_http_railgun_json_types[rd->family.type];

    p = rd->buf->last;

    if (rd->nfamilies) {
        *p++ = ',';
    }

    p = ngx_cpymem(p, "{\"name\":", 8);
    p = ngx_http_railgun_json_string(p, rd->family.name.data,
                                     rd->family.name.len);
    p = ngx_cpymem(p, ",\"type\":\"", 9);
    p = ngx_cpymem(p, type->data, type->len);
    p = ngx_cpymem(p, "\",\"help\":", 9);
    p = ngx_http_railgun_json_string(p, rd->family.help.data,
                                     rd->family.help.len);
    p = ngx_cpymem(p, ",\"samples\":[", 12);

    rd->buf->last = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_json_sample(ngx_http_railgun_render_t *rd)
{
    u_char                     *p;
    size_t                      need;
    ngx_uint_t                  i, n;
    ngx_http_railgun_sample_t  *x;

    x = &rd->sample;

    n = (rd->family.type == NGX_RAILGUN_HISTOGRAM) ? x->buckets->n + 1 : 0;

    need = 6 * x->key_len + (n + 2) * NGX_HTTP_RAILGUN_JSON_BUCKET + 64;

    if (!ngx_http_railgun_room(rd, need)) {
        return NGX_AGAIN;
    }

    p = rd->buf->last;

    if (rd->nsamples) {
        *p++ = ',';
    }

    p = ngx_cpymem(p, "{\"labels\":{", 11);
    p = ngx_http_railgun_json_labels(p, x->key, x->key_len);
    *p++ = '}';

    if (n == 0) {
        p = ngx_cpymem(p, ",\"value\":", 9);

        if (x->negative) {
            *p++ = '-';
        }

        p = ngx_http_railgun_uint(p, x->v[0]);

    } else {
        p = ngx_cpymem(p, ",\"buckets\":[", 12);

        for (i = 0; i < n; i++) {
            if (i) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, "{\"le\":", 6);

            if (i < n - 1) {
                p = ngx_http_railgun_seconds(p, x->buckets->bound[i], 1);

            } else {
                p = ngx_cpymem(p, "\"+Inf\"", 6);
            }

            p = ngx_cpymem(p, ",\"count\":", 9);
            p = ngx_http_railgun_uint(p, x->v[i]);
            *p++ = '}';
        }

        p = ngx_cpymem(p, "],\"sum\":", 8);
        p = ngx_http_railgun_seconds(p, x->v[n], 1);
        p = ngx_cpymem(p, ",\"count\":", 9);
        p = ngx_http_railgun_uint(p, x->v[n - 1]);
    }

    *p++ = '}';

    rd->buf->last = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_json_family_end(ngx_http_railgun_render_t *rd)
{
    if (!ngx_http_railgun_room(rd, 2)) {
        return NGX_AGAIN;
    }

    *rd->buf->last++ = ']';
    *rd->buf->last++ = '}';

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_json_end(ngx_http_railgun_render_t *rd)
{
    if (!ngx_http_railgun_room(rd, 3)) {
        return NGX_AGAIN;
    }

    *rd->buf->last++ = ']';
    *rd->buf->last++ = '}';
    *rd->buf->last++ = '\n';

    return NGX_OK;
}


/* name="value",name="value" as "name":"value","name":"value" */

static u_char *
ngx_http_railgun_json_labels(u_char *p, u_char *key, size_t len)
{
    u_char  *last, *name, *v;
    u_char   buf[NGX_RAILGUN_STORE_MAX_KEY];

    last = key + len;

    while (key < last) {
        name = key;

        while (key < last && *key != '=') {
            key++;
        }

        p = ngx_http_railgun_json_string(p, name, key - name);
        *p++ = ':';

        /* skip ="; unescape up to the closing quote */

        key += 2;
        v = buf;

        while (key < last && *key != '"') {
            if (*key == '\\' && key + 1 < last) {
                key++;
                *v++ = (*key == 'n') ? '\n' : *key;

            } else {
                *v++ = *key;
            }

            key++;
        }

        p = ngx_http_railgun_json_string(p, buf, v - buf);

        /* the quote, then the comma before the next label */

        key++;

        if (key < last && *key == ',') {
            *p++ = ',';
            key++;
        }
    }

    return p;
}


static u_char *
ngx_http_railgun_json_string(u_char *p, u_char *s, size_t len)
{
    size_t   n;
    u_char  *last;

    static u_char  hex[] = "0123456789abcdef";

    last = s + len;

    *p++ = '"';

    while (s < last) {

        if (*s >= 0x80) {
            n = ngx_railgun_utf8_char_len(s, last - s);

            if (n == 0) {
                /* U+FFFD REPLACEMENT CHARACTER */
                *p++ = 0xef;
                *p++ = 0xbf;
                *p++ = 0xbd;
                s++;
                continue;
            }

            p = ngx_cpymem(p, s, n);
            s += n;
            continue;
        }

        switch (*s) {

        case '"':
        case '\\':
            *p++ = '\\';
            *p++ = *s;
            break;

        case '\n':
            *p++ = '\\';
            *p++ = 'n';
            break;

        default:
            if (*s < 0x20 || *s == 0x7f) {
                *p++ = '\\';
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[*s >> 4];
                *p++ = hex[*s & 0xf];

            } else {
                *p++ = *s;
            }
        }

        s++;
    }

    *p++ = '"';

    return p;
}
