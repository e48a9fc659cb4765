
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_HTTP_RAILGUN_RENDER_H_INCLUDED_
#define _NGX_HTTP_RAILGUN_RENDER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"


/*
 * The exposition is rendered by a cursor that walks the zone into whatever
 * buffer it is given and stops when the buffer is full; the next call goes on
 * from where it stopped.  The walk (ngx_http_railgun_render.c) knows the
 * families and takes a snapshot of each sample; a format (text, JSON) only
 * writes what it is given.
 */


/* ",le=\"" and "\"} " around up to 20 digits, a dot and 6 decimals */
#define NGX_HTTP_RAILGUN_LE_LEN     40

/* the protobuf format's scratch area: encoded bounds, packed deltas */
#define NGX_HTTP_RAILGUN_PROTO_SCRATCH  (16 * 1024)

/* room for everything of a sample line but its name and label text */
#define NGX_HTTP_RAILGUN_LINE_ROOM  64

/*
 * An OpenMetrics exemplar after a bucket's count: " # {", the label's name
 * and escaped value (3 bytes a source byte at most, in all at most 3 times
 * NGX_RAILGUN_EXEMPLAR_LABEL), "=\"", "\"} ", the value in seconds (up to
 * 27 bytes) and " " and the time (up to 24).
 */
#define NGX_HTTP_RAILGUN_EXEMPLAR_ROOM  (3 * NGX_RAILGUN_EXEMPLAR_LABEL + 64)


typedef struct ngx_http_railgun_render_s  ngx_http_railgun_render_t;


/* a family as rendered */

typedef struct {
    ngx_str_t                    name;
    ngx_str_t                    help;
    ngx_uint_t                   type;       /* NGX_RAILGUN_COUNTER, ... */
} ngx_http_railgun_family_t;


/*
 * A sample: its label text exactly as the text format prints it (no braces
 * when empty) and the values read once when the walk reached it, so that a
 * histogram split over two buffers stays one consistent sample.  A
 * histogram's counts are cumulative, +Inf last, then the sum in
 * microseconds.  Its exemplars are copied then too, for the formats that
 * show them (OpenMetrics): bit i of ex_mask tells that ex[i] holds the
 * exemplar of bucket i.
 */

typedef struct {
    u_char                      *key;
    size_t                       key_len;
    ngx_railgun_series_t        *series;     /* or NULL: not in the zone */
    ngx_railgun_buckets_t       *buckets;
    ngx_uint_t                   negative;   /* a gauge below zero */
    uint64_t                     v[NGX_RAILGUN_STORE_MAX_BUCKETS + 2];
    uint64_t                     ex_mask;
    ngx_railgun_exemplar_copy_t  ex[NGX_RAILGUN_STORE_MAX_BUCKETS + 1];
} ngx_http_railgun_sample_t;


/*
 * Each call writes at rd->buf->last and returns NGX_OK, or NGX_AGAIN when the
 * buffer has no room for what comes next; sample() may have written part of a
 * sample then, and goes on at rd->line.  What one call needs always fits an
 * empty buffer.
 */

typedef struct {
    ngx_int_t  (*begin)(ngx_http_railgun_render_t *rd);
    ngx_int_t  (*family)(ngx_http_railgun_render_t *rd);
    ngx_int_t  (*sample)(ngx_http_railgun_render_t *rd);
    ngx_int_t  (*family_end)(ngx_http_railgun_render_t *rd);
    ngx_int_t  (*end)(ngx_http_railgun_render_t *rd);
} ngx_http_railgun_format_t;


struct ngx_http_railgun_render_s {
    ngx_railgun_store_t         *store;
    ngx_http_railgun_format_t   *format;
    ngx_buf_t                   *buf;
    ngx_uint_t                   openmetrics;  /* unsigned  openmetrics:1; */

    /*
     * railgun_exemplar is in the configuration: the zone keeps the records
     * of a configuration that had it, which are not shown after a reload
     * that removed it everywhere
     */
    ngx_uint_t                   exemplars;    /* unsigned  exemplars:1; */

    /* the cursor */
    ngx_uint_t                   phase;
    ngx_uint_t                   index;      /* family, then within it */
    ngx_uint_t                   sub;
    ngx_railgun_series_t        *prev;       /* last series rendered */
    ngx_uint_t                   pending;    /* sample taken, not all out */
    ngx_uint_t                   line;       /* of the pending sample */
    ngx_uint_t                   nfamilies;  /* rendered so far */
    ngx_uint_t                   nsamples;   /* of the current family */

    ngx_http_railgun_family_t    family;
    ngx_http_railgun_sample_t    sample;

    u_char                       live[NGX_RAILGUN_STORE_SLOTS];
    u_char                       key[128];   /* of a sample outside the zone */

    /* the protobuf format's (ngx_http_railgun_render_proto.c) */
    u_char                      *scratch;    /* PROTO_SCRATCH bytes */
    uint64_t                    *native;     /* NATIVE_MAX_BUCKETS counts */
    u_char                      *pb_open;    /* the family's message */
    ngx_railgun_buckets_t       *pb_buckets; /* whose bounds are encoded */
    ngx_uint_t                   pb_from[NGX_RAILGUN_STORE_MAX_BUCKETS + 1];
    ngx_uint_t                   pb_to[NGX_RAILGUN_STORE_MAX_BUCKETS + 1];

    /* the "le" text of the last bucket list seen, +Inf included */
    ngx_railgun_buckets_t       *le_buckets;
    ngx_str_t                    le[NGX_RAILGUN_STORE_MAX_BUCKETS + 1];
    u_char                       le_text[(NGX_RAILGUN_STORE_MAX_BUCKETS + 1)
                                         * NGX_HTTP_RAILGUN_LE_LEN];
};


void ngx_http_railgun_render_init(ngx_http_railgun_render_t *rd,
    ngx_railgun_store_t *store, ngx_http_railgun_format_t *format);
ngx_int_t ngx_http_railgun_render(ngx_http_railgun_render_t *rd);

u_char *ngx_http_railgun_seconds(u_char *p, uint64_t us, ngx_uint_t dot);

/*
 * A number in decimal: most sample values are one digit (bucket counts,
 * request counts), so that is the short way; otherwise the length first,
 * then the digits from the last one, straight into the output.
 */

static ngx_inline u_char *
ngx_http_railgun_uint(u_char *p, uint64_t n)
{
    u_char    *e;
    uint64_t   t;

    if (n < 10) {
        *p = (u_char) ('0' + n);
        return p + 1;
    }

    e = p + 2;

    for (t = n / 100; t; t /= 10) {
        e++;
    }

    p = e;

    do {
        *--p = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return e;
}


extern ngx_http_railgun_format_t  ngx_http_railgun_format_text;
extern ngx_http_railgun_format_t  ngx_http_railgun_format_json;
extern ngx_http_railgun_format_t  ngx_http_railgun_format_proto;


#endif /* _NGX_HTTP_RAILGUN_RENDER_H_INCLUDED_ */
