
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_render.h"


/*
 * The Prometheus protobuf format: length-delimited io.prometheus.client
 * MetricFamily messages (the client model's metrics.proto), written by the
 * few lines of encoder below rather than a generic library: every message
 * here is known, and the walk's snapshot goes straight to the wire.
 *
 * A family is streamed as one MetricFamily message per buffer it spans,
 * each with the family's name, help and type: a length prefix must precede
 * the message, and the family's series are still being read when the
 * buffer is full.  The prefix is reserved at its widest (3 bytes: a
 * buffer is below 2 MB) and the message moved back over what the length
 * did not need when the buffer closes it, so every varint is minimal.
 * Prometheus takes the series of messages of the same name one after
 * another (t/proto.t checks 10,000 series over many buffers).
 *
 * A Metric is encoded whole into the scratch area first, then copied after
 * its tag and length: it always fits an empty buffer.
 */


#define NGX_HTTP_RAILGUN_PB_VARINT   0
#define NGX_HTTP_RAILGUN_PB_FIXED64  1
#define NGX_HTTP_RAILGUN_PB_LEN      2

#define ngx_http_railgun_pb_tag(field, type)  (u_char) ((field) << 3 | (type))

/* MetricFamily.type */
#define NGX_HTTP_RAILGUN_PB_COUNTER    0
#define NGX_HTTP_RAILGUN_PB_GAUGE      1
#define NGX_HTTP_RAILGUN_PB_HISTOGRAM  4

/* room of the family's length prefix: 3 varint bytes, 2^21 */
#define NGX_HTTP_RAILGUN_PB_PREFIX  3

/* 2^-10 s, the zero bucket's threshold (NGX_RAILGUN_NATIVE_ZERO_US) */
#define NGX_HTTP_RAILGUN_PB_ZERO_THRESHOLD  0.0009765625

/* a Metric's body, then a histogram's, in the scratch area */
#define NGX_HTTP_RAILGUN_PB_METRIC  (NGX_HTTP_RAILGUN_PROTO_SCRATCH / 2)


static ngx_int_t ngx_http_railgun_proto_begin(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_family(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_sample(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_family_end(
    ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_end(ngx_http_railgun_render_t *rd);
static void ngx_http_railgun_proto_close(ngx_http_railgun_render_t *rd);
static u_char *ngx_http_railgun_proto_labels(u_char *p, u_char *key,
    size_t len);
static u_char *ngx_http_railgun_proto_histogram(ngx_http_railgun_render_t *rd,
    u_char *p);
static u_char *ngx_http_railgun_proto_native(ngx_http_railgun_render_t *rd,
    u_char *p, uint64_t *count);


ngx_http_railgun_format_t  ngx_http_railgun_format_proto = {
    ngx_http_railgun_proto_begin,
    ngx_http_railgun_proto_family,
    ngx_http_railgun_proto_sample,
    ngx_http_railgun_proto_family_end,
    ngx_http_railgun_proto_end
};


static ngx_inline size_t
ngx_http_railgun_pb_varint_len(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


static ngx_inline u_char *
ngx_http_railgun_pb_varint(u_char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (u_char) (v | 0x80);
        v >>= 7;
    }

    *p++ = (u_char) v;

    return p;
}


static ngx_inline uint64_t
ngx_http_railgun_pb_zigzag(int64_t v)
{
    return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}


/* a double, little-endian whatever the CPU */

static ngx_inline u_char *
ngx_http_railgun_pb_double(u_char *p, ngx_uint_t field, double d)
{
    uint64_t    bits;
    ngx_uint_t  i;

    ngx_memcpy(&bits, &d, sizeof(uint64_t));

    *p++ = ngx_http_railgun_pb_tag(field, NGX_HTTP_RAILGUN_PB_FIXED64);

    for (i = 0; i < 8; i++) {
        *p++ = (u_char) (bits >> (8 * i));
    }

    return p;
}


static ngx_inline u_char *
ngx_http_railgun_pb_string(u_char *p, ngx_uint_t field, u_char *s,
    size_t len)
{
    *p++ = ngx_http_railgun_pb_tag(field, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, len);

    return ngx_cpymem(p, s, len);
}


static ngx_int_t
ngx_http_railgun_proto_begin(ngx_http_railgun_render_t *rd)
{
    return NGX_OK;
}


/* the family's header waits for its first sample, in the buffer it takes */

static ngx_int_t
ngx_http_railgun_proto_family(ngx_http_railgun_render_t *rd)
{
    rd->pb_open = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_proto_sample(ngx_http_railgun_render_t *rd)
{
    u_char     *p, *m, *start;
    size_t      len, need;
    ngx_str_t  *name, *help;
    ngx_uint_t  type;

    /* the Metric, whole */

    start = rd->scratch;

    p = ngx_http_railgun_proto_labels(start, rd->sample.key,
                                      rd->sample.key_len);

    switch (rd->family.type) {

    case NGX_RAILGUN_HISTOGRAM:
        m = ngx_http_railgun_proto_histogram(rd,
                                      rd->scratch + NGX_HTTP_RAILGUN_PB_METRIC);
        len = m - (rd->scratch + NGX_HTTP_RAILGUN_PB_METRIC);

        *p++ = ngx_http_railgun_pb_tag(7, NGX_HTTP_RAILGUN_PB_LEN);
        p = ngx_http_railgun_pb_varint(p, len);
        p = ngx_cpymem(p, rd->scratch + NGX_HTTP_RAILGUN_PB_METRIC, len);
        break;

    case NGX_RAILGUN_COUNTER:
        /* Metric.counter: Counter.value */
        *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = 9;
        p = ngx_http_railgun_pb_double(p, 1, (double) rd->sample.v[0]);
        break;

    default: /* NGX_RAILGUN_GAUGE, NGX_RAILGUN_WORKER_GAUGE */
        /* Metric.gauge: Gauge.value */
        *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = 9;
        p = ngx_http_railgun_pb_double(p, 1,
                                       rd->sample.negative
                                       ? - (double) rd->sample.v[0]
                                       : (double) rd->sample.v[0]);
    }

    len = p - start;

    need = 1 + ngx_http_railgun_pb_varint_len(len) + len;

    name = &rd->family.name;
    help = &rd->family.help;

    if (rd->pb_open == NULL) {
        need += NGX_HTTP_RAILGUN_PB_PREFIX
                + 1 + ngx_http_railgun_pb_varint_len(name->len) + name->len
                + 1 + ngx_http_railgun_pb_varint_len(help->len) + help->len
                + 2;
    }

    if ((size_t) (rd->buf->end - rd->buf->last) < need) {
        ngx_http_railgun_proto_close(rd);
        return NGX_AGAIN;
    }

    p = rd->buf->last;

    if (rd->pb_open == NULL) {
        rd->pb_open = p;
        p += NGX_HTTP_RAILGUN_PB_PREFIX;

        switch (rd->family.type) {
        case NGX_RAILGUN_COUNTER:
            type = NGX_HTTP_RAILGUN_PB_COUNTER;
            break;
        case NGX_RAILGUN_HISTOGRAM:
            type = NGX_HTTP_RAILGUN_PB_HISTOGRAM;
            break;
        default:
            type = NGX_HTTP_RAILGUN_PB_GAUGE;
        }

        p = ngx_http_railgun_pb_string(p, 1, name->data, name->len);
        p = ngx_http_railgun_pb_string(p, 2, help->data, help->len);
        *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_VARINT);
        *p++ = (u_char) type;
    }

    /* MetricFamily.metric */
    p = ngx_http_railgun_pb_string(p, 4, start, len);

    rd->buf->last = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_proto_family_end(ngx_http_railgun_render_t *rd)
{
    ngx_http_railgun_proto_close(rd);

    return NGX_OK;
}


static ngx_int_t
ngx_http_railgun_proto_end(ngx_http_railgun_render_t *rd)
{
    return NGX_OK;
}


/* the length of the family's message in this buffer, its prefix minimal */

static void
ngx_http_railgun_proto_close(ngx_http_railgun_render_t *rd)
{
    u_char  *start, *p;
    size_t   len, n;

    start = rd->pb_open;

    if (start == NULL) {
        return;
    }

    rd->pb_open = NULL;

    len = rd->buf->last - start - NGX_HTTP_RAILGUN_PB_PREFIX;
    n = ngx_http_railgun_pb_varint_len(len);

    if (n < NGX_HTTP_RAILGUN_PB_PREFIX) {
        ngx_memmove(start + n, start + NGX_HTTP_RAILGUN_PB_PREFIX, len);
        rd->buf->last -= NGX_HTTP_RAILGUN_PB_PREFIX - n;
    }

    p = ngx_http_railgun_pb_varint(start, len);

    (void) p;
}


/*
 * The label text a="x",b="y" as LabelPair messages: the values unescaped
 * from the text format's \\, \" and \n.
 */

static u_char *
ngx_http_railgun_proto_labels(u_char *p, u_char *key, size_t len)
{
    u_char  *last, *name, *value, *q;
    size_t   name_len, value_len, esc;

    last = key + len;

    while (key < last) {
        name = key;

        while (key < last && *key != '=') {
            key++;
        }

        name_len = key - name;

        /* '="' */
        key += 2;

        if (key > last) {
            break;
        }

        value = key;
        esc = 0;

        for (q = key; q < last && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < last) {
                q++;
                esc++;
            }
        }

        value_len = (q - value) - esc;
        key = q + 2;             /* '",' */

        /* Metric.label: LabelPair */
        *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
        p = ngx_http_railgun_pb_varint(p,
                       1 + ngx_http_railgun_pb_varint_len(name_len) + name_len
                       + 1 + ngx_http_railgun_pb_varint_len(value_len)
                       + value_len);

        p = ngx_http_railgun_pb_string(p, 1, name, name_len);

        *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_LEN);
        p = ngx_http_railgun_pb_varint(p, value_len);

        if (esc == 0) {
            p = ngx_cpymem(p, value, value_len);
            continue;
        }

        for ( /* void */ ; value < q; value++) {
            if (*value == '\\' && value + 1 < q) {
                value++;
                *p++ = (*value == 'n') ? '\n' : *value;

            } else {
                *p++ = *value;
            }
        }
    }

    return p;
}


/*
 * Histogram: the count and sum, the classic buckets (cumulative, without
 * +Inf: Prometheus adds it from the count) and, where kept, the native
 * fields.  With native buckets the count is theirs, so that the native
 * histogram adds up exactly; a classic count read a moment apart never
 * exceeds it.
 */

static u_char *
ngx_http_railgun_proto_histogram(ngx_http_railgun_render_t *rd, u_char *p)
{
    u_char                 *nat, *q;
    uint64_t                count, cum;
    ngx_uint_t              i, n;
    ngx_railgun_buckets_t  *b;

    b = rd->sample.buckets;
    n = b->n;

    count = rd->sample.v[n];

    /* the native fields first, in the scratch's end, for their count */

    nat = NULL;
    q = NULL;

    if (rd->sample.series && rd->sample.series->buckets->native) {
        nat = rd->scratch + NGX_HTTP_RAILGUN_PROTO_SCRATCH
              - NGX_HTTP_RAILGUN_PROTO_NATIVE;
        q = ngx_http_railgun_proto_native(rd, nat, &count);
    }

    /* sample_count, sample_sum */
    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, count);
    p = ngx_http_railgun_pb_double(p, 2,
                                   (double) rd->sample.v[n + 1] / 1000000.0);

    for (i = 0; i < n; i++) {
        cum = ngx_min(rd->sample.v[i], count);

        /* Histogram.bucket: Bucket */
        *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = (u_char) (1 + ngx_http_railgun_pb_varint_len(cum) + 9);
        *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, cum);
        p = ngx_http_railgun_pb_double(p, 2,
                                       (double) b->bound[i] / 1000000.0);

        /*
         * Bucket.exemplar (field 3, an Exemplar message) goes here, inside
         * the Bucket and counted in its length, once the store keeps them.
         */
    }

    if (nat) {
        p = ngx_cpymem(p, nat, q - nat);
    }

    return p;
}


/*
 * schema, zero_threshold, zero_count, positive_span and positive_delta of
 * the series' native counts, merged to one schema by the store; gaps of
 * one or two empty buckets are bridged by zero counts, as Prometheus'
 * clients do, rather than opening a span.
 */

static u_char *
ngx_http_railgun_proto_native(ngx_http_railgun_render_t *rd, u_char *p,
    uint64_t *count)
{
    u_char      *d, *deltas;
    int64_t      prev;
    uint64_t     zero, total, *c, span;
    ngx_int_t    schema, offset, last;
    ngx_uint_t   j, k, native, first;

    c = rd->native;
    native = rd->sample.series->buckets->native;

    zero = ngx_railgun_store_native_read(rd->sample.series, c, &schema,
                                         &offset);

    *p++ = ngx_http_railgun_pb_tag(5, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, ngx_http_railgun_pb_zigzag(schema));
    p = ngx_http_railgun_pb_double(p, 6, NGX_HTTP_RAILGUN_PB_ZERO_THRESHOLD);
    *p++ = ngx_http_railgun_pb_tag(7, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, zero);

    total = zero;

    /* the deltas, packed, go after the spans: kept aside meanwhile */

    deltas = rd->scratch + NGX_HTTP_RAILGUN_PROTO_SCRATCH
             - NGX_HTTP_RAILGUN_PROTO_NATIVE / 2;
    d = deltas;
    prev = 0;
    last = 0;
    first = 1;

    for (j = 0; j < native; j = k) {

        if (c[j] == 0) {
            k = j + 1;
            continue;
        }

        /* a span from j: up to a run of three empty buckets */

        for (k = j + 1; k < native; k++) {
            if (c[k] == 0
                && (k + 1 >= native || c[k + 1] == 0)
                && (k + 2 >= native || c[k + 2] == 0))
            {
                break;
            }
        }

        /* the first span's offset is its index, the others' the gap */

        span = ngx_http_railgun_pb_zigzag(first ? offset + (ngx_int_t) j
                                                : offset + (ngx_int_t) j - last);
        first = 0;

        /* Histogram.positive_span: BucketSpan */
        *p++ = ngx_http_railgun_pb_tag(12, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = (u_char) (2 + ngx_http_railgun_pb_varint_len(span)
                         + ngx_http_railgun_pb_varint_len(k - j));
        *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, span);
        *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, k - j);

        last = offset + (ngx_int_t) k;

        for ( /* void */ ; j < k; j++) {
            d = ngx_http_railgun_pb_varint(d,
                               ngx_http_railgun_pb_zigzag((int64_t) c[j] - prev));
            prev = (int64_t) c[j];
            total += c[j];
        }
    }

    if (d > deltas) {
        /* Histogram.positive_delta, packed */
        *p++ = ngx_http_railgun_pb_tag(13, NGX_HTTP_RAILGUN_PB_LEN);
        p = ngx_http_railgun_pb_varint(p, d - deltas);
        p = ngx_cpymem(p, deltas, d - deltas);
    }

    *count = total;

    return p;
}
