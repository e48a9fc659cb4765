
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_render.h"

#if (defined __SSE2__)
#include <emmintrin.h>
#endif


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
 * A Metric is written straight into the buffer when the buffer has room
 * for the most it can take (it always fits an empty one); its length, and
 * its histogram's, are reserved the same way and made minimal.
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

/* a Bucket's Exemplar at most: its label, value, time and the tags */
#define NGX_HTTP_RAILGUN_PB_EXEMPLAR_MAX  (NGX_RAILGUN_EXEMPLAR_LABEL + 64)

#define NGX_HTTP_RAILGUN_PB_INF  __builtin_inf()

/*
 * The scratch area: a Bucket template a bucket, 16 bytes apart (tag,
 * length, the cumulative count's tag and a one-byte count to fill in, the
 * upper bound's 9 bytes), then the packed deltas.
 */
#define NGX_HTTP_RAILGUN_PB_TEMPLATE  16
#define NGX_HTTP_RAILGUN_PB_DELTAS                                            \
    (NGX_RAILGUN_STORE_MAX_BUCKETS * NGX_HTTP_RAILGUN_PB_TEMPLATE)


static ngx_int_t ngx_http_railgun_proto_begin(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_family(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_sample(ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_family_end(
    ngx_http_railgun_render_t *rd);
static ngx_int_t ngx_http_railgun_proto_end(ngx_http_railgun_render_t *rd);
static void ngx_http_railgun_proto_close(ngx_http_railgun_render_t *rd);
static u_char *ngx_http_railgun_proto_labels(u_char *p, u_char *key,
    size_t len);
static u_char *ngx_http_railgun_proto_labels_escaped(u_char *p, u_char *key,
    size_t len);
static u_char *ngx_http_railgun_proto_labels_bounded(u_char *p, u_char *key,
    size_t len, u_char *bounds);
static u_char *ngx_http_railgun_proto_histogram(ngx_http_railgun_render_t *rd,
    u_char *p);
static u_char *ngx_http_railgun_proto_bucket_ex(u_char *p, uint64_t cum,
    u_char *bound, ngx_railgun_exemplar_copy_t *ex);
static uint64_t ngx_http_railgun_proto_count(ngx_http_railgun_render_t *rd,
    ngx_railgun_native_t *nat);
static u_char *ngx_http_railgun_proto_native(ngx_http_railgun_render_t *rd,
    u_char *p, ngx_railgun_native_t *nat);


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
#if !(NGX_HAVE_LITTLE_ENDIAN)
    uint64_t    bits;
    ngx_uint_t  i;
#endif

    *p++ = ngx_http_railgun_pb_tag(field, NGX_HTTP_RAILGUN_PB_FIXED64);

#if (NGX_HAVE_LITTLE_ENDIAN)
    ngx_memcpy(p, &d, sizeof(double));
    p += sizeof(double);
#else
    ngx_memcpy(&bits, &d, sizeof(uint64_t));

    for (i = 0; i < 8; i++) {
        *p++ = (u_char) (bits >> (8 * i));
    }
#endif

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


/*
 * The length of what was written from start to p, into the width varint
 * reserved before start: what the length does not need is taken out by
 * moving the message back.  Returns the new end.  The width comes from a
 * bound of the length, so the move is rare.
 */

static ngx_inline u_char *
ngx_http_railgun_pb_close(u_char *len_at, size_t width, u_char *start,
    u_char *p)
{
    size_t  len, n;

    len = p - start;
    n = ngx_http_railgun_pb_varint_len(len);

    if (n < width) {
        ngx_memmove(len_at + n, start, len);
        p -= width - n;
    }

    (void) ngx_http_railgun_pb_varint(len_at, len);

    return p;
}


/* the bytes a varint of at most max takes */

static ngx_inline size_t
ngx_http_railgun_pb_width(size_t max)
{
    return (max < 0x80) ? 1 : (max < 0x4000) ? 2 : 3;
}


/*
 * The most the LabelPair messages of label text of len bytes take: a pair
 * adds at most 3 bytes to its text (1 with its comma), a pair is at least
 * 5 bytes of text, and a length of 128 or more a byte per 60 of text:
 * len + (3 len + 3) / 5 + len / 60 + 1, which len + len / 2 + len / 8 + 3
 * bounds with shifts rather than divisions.
 */

#define ngx_http_railgun_pb_labels_max(len)                                   \
    ((len) + ((len) >> 1) + ((len) >> 3) + 3)


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
    u_char                 *p, *len_at, *start;
    size_t                  need, width, hist;
    ngx_str_t              *name, *help;
    ngx_uint_t              type;
    ngx_railgun_series_t   *s;
    ngx_railgun_buckets_t  *b;

    /* the most the Metric can take */

    need = ngx_http_railgun_pb_labels_max(rd->sample.key_len) + 11;

    if (rd->family.type == NGX_RAILGUN_HISTOGRAM) {
        b = rd->sample.buckets;
        hist = 20 + b->n * 22;

        if (rd->sample.series && rd->sample.series->buckets->native) {
            hist += 64 + 24 * rd->sample.series->buckets->native;
        }

        if (rd->sample.ex_mask) {
            hist += (b->n + 1) * NGX_HTTP_RAILGUN_PB_EXEMPLAR_MAX;
        }

        need += 1 + ngx_http_railgun_pb_width(hist) + hist;
    }

    width = ngx_http_railgun_pb_width(need);
    need += 1 + width;

    name = &rd->family.name;
    help = &rd->family.help;

    if (rd->pb_open == NULL) {
        need += NGX_HTTP_RAILGUN_PB_PREFIX
                + 1 + ngx_http_railgun_pb_varint_len(name->len) + name->len
                + 1 + ngx_http_railgun_pb_varint_len(help->len) + help->len
                + 2;
    }

    /* 16 bytes to spare for the labels' 16-byte copies */

    if ((size_t) (rd->buf->end - rd->buf->last) < need + 16) {
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

    /* MetricFamily.metric, its length reserved as wide as the bound */

    *p++ = ngx_http_railgun_pb_tag(4, NGX_HTTP_RAILGUN_PB_LEN);
    len_at = p;
    p += width;
    start = p;

    s = rd->sample.series;

    if (s && (s->flags & NGX_RAILGUN_SERIES_BOUNDS)) {
        p = ngx_http_railgun_proto_labels_bounded(p, rd->sample.key,
                                                  rd->sample.key_len,
                                                  ngx_railgun_series_bounds(s));

    } else {
        p = ngx_http_railgun_proto_labels(p, rd->sample.key,
                                          rd->sample.key_len);
    }

    switch (rd->family.type) {

    case NGX_RAILGUN_HISTOGRAM:
        p = ngx_http_railgun_proto_histogram(rd, p);
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

    p = ngx_http_railgun_pb_close(len_at, width, start, p);

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
    u_char  *start;

    start = rd->pb_open;

    if (start == NULL) {
        return;
    }

    rd->pb_open = NULL;

    rd->buf->last = ngx_http_railgun_pb_close(start,
                                        NGX_HTTP_RAILGUN_PB_PREFIX,
                                        start + NGX_HTTP_RAILGUN_PB_PREFIX,
                                        rd->buf->last);
}


/*
 * The quotes and the backslashes of the label text, a chunk at a time:
 * 16 bytes with SSE2 (every x86-64 has it), else a word on little-endian
 * CPUs.  Each returns the chunk's quotes as a mask, PB_BITS bits a byte
 * from the lowest, and whether it has a backslash.
 */

/*
 * The bytes of the word w equal to c (c repeated in every byte): 0x80 in
 * each, exactly; the shorter "has a zero byte" test may also flag the byte
 * after a true one, which here would cut a value at a '#'.
 */

#define ngx_http_railgun_pb_bytes(w, c)                                       \
    (~(((((w) ^ (c)) & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL)     \
       | ((w) ^ (c)) | 0x7f7f7f7f7f7f7f7fULL))

#if (defined __SSE2__)

#define NGX_HTTP_RAILGUN_PB_CHUNK  16
#define NGX_HTTP_RAILGUN_PB_BITS   1

static ngx_inline uint64_t
ngx_http_railgun_pb_scan(u_char *p, ngx_uint_t *backslash)
{
    __m128i  v;

    v = _mm_loadu_si128((__m128i *) p);

    *backslash = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));

    return (uint64_t) _mm_movemask_epi8(_mm_cmpeq_epi8(v,
                                                       _mm_set1_epi8('"')));
}

#elif (NGX_HAVE_LITTLE_ENDIAN)

#define NGX_HTTP_RAILGUN_PB_CHUNK  8
#define NGX_HTTP_RAILGUN_PB_BITS   8

static ngx_inline uint64_t
ngx_http_railgun_pb_scan(u_char *p, ngx_uint_t *backslash)
{
    uint64_t  w;

    ngx_memcpy(&w, p, sizeof(uint64_t));

    *backslash = (ngx_http_railgun_pb_bytes(w, 0x5c5c5c5c5c5c5c5cULL) != 0);

    return ngx_http_railgun_pb_bytes(w, 0x2222222222222222ULL);
}

#endif


/*
 * A short copy without a call: label names and values are a few bytes.
 * Inlined whatever the compiler thinks of its size, at every label.
 */

#if (defined __GNUC__)
#define NGX_HTTP_RAILGUN_PB_INLINE  ngx_inline __attribute__((always_inline))
#else
#define NGX_HTTP_RAILGUN_PB_INLINE  ngx_inline
#endif

static NGX_HTTP_RAILGUN_PB_INLINE u_char *
ngx_http_railgun_pb_copy(u_char *dst, u_char *src, size_t len)
{
    uint32_t  a4, b4;
    uint64_t  a8, b8;
    u_char    a16[16], b16[16];

    if (len > 16 && len <= 32) {
        ngx_memcpy(a16, src, 16);
        ngx_memcpy(b16, src + len - 16, 16);
        ngx_memcpy(dst, a16, 16);
        ngx_memcpy(dst + len - 16, b16, 16);
        return dst + len;
    }

    if (len >= 8 && len <= 16) {
        ngx_memcpy(&a8, src, 8);
        ngx_memcpy(&b8, src + len - 8, 8);
        ngx_memcpy(dst, &a8, 8);
        ngx_memcpy(dst + len - 8, &b8, 8);
        return dst + len;
    }

    if (len >= 4 && len < 8) {
        ngx_memcpy(&a4, src, 4);
        ngx_memcpy(&b4, src + len - 4, 4);
        ngx_memcpy(dst, &a4, 4);
        ngx_memcpy(dst + len - 4, &b4, 4);
        return dst + len;
    }

    if (len < 4) {
        while (len--) {
            *dst++ = *src++;
        }

        return dst;
    }

    return ngx_cpymem(dst, src, len);
}


/*
 * A copy of at most 16 bytes as one 16-byte move, when the source has them
 * before last: the bytes past len are written over by what follows, and
 * the Metric's room has 16 bytes to spare for the last of them.
 */

static NGX_HTTP_RAILGUN_PB_INLINE u_char *
ngx_http_railgun_pb_copy16(u_char *dst, u_char *src, size_t len,
    u_char *last)
{
    if (len <= 16 && last - src >= 16) {
        ngx_memcpy(dst, src, 16);
        return dst + len;
    }

    return ngx_http_railgun_pb_copy(dst, src, len);
}


static NGX_HTTP_RAILGUN_PB_INLINE u_char *
ngx_http_railgun_pb_pair(u_char *p, u_char *name, size_t name_len,
    u_char *value, size_t value_len, u_char *last)
{
    /* Metric.label: LabelPair; all its lengths one byte, the rule */

    if (name_len + value_len < 0x80 - 4) {
        p[0] = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
        p[1] = (u_char) (name_len + value_len + 4);
        p[2] = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
        p[3] = (u_char) name_len;
        p = ngx_http_railgun_pb_copy16(p + 4, name, name_len, last);
        p[0] = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_LEN);
        p[1] = (u_char) value_len;

        return p + 2;
    }

    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p,
                       1 + ngx_http_railgun_pb_varint_len(name_len) + name_len
                       + 1 + ngx_http_railgun_pb_varint_len(value_len)
                       + value_len);

    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, name_len);
    p = ngx_http_railgun_pb_copy(p, name, name_len);

    *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, value_len);

    return p;
}


#if (defined NGX_HTTP_RAILGUN_PB_CHUNK)

/*
 * The next quote of the label text, from the mask of the chunk at *w on:
 * NULL at the end of the text, or, with *backslash set, at a backslash.
 * The last chunk is the text's last bytes, the quotes of those read
 * before masked off, so that nothing past the text is read.
 */

static ngx_inline u_char *
ngx_http_railgun_pb_next_quote(u_char **w, uint64_t *quotes, u_char *last,
    ngx_uint_t *backslash)
{
    u_char    *c, *q;
    uint64_t   m;

    m = *quotes;
    c = *w;

    while (m == 0) {
        c += NGX_HTTP_RAILGUN_PB_CHUNK;

        if (c >= last) {
            return NULL;
        }

        if (last - c < NGX_HTTP_RAILGUN_PB_CHUNK) {
            q = c;
            c = last - NGX_HTTP_RAILGUN_PB_CHUNK;
            m = ngx_http_railgun_pb_scan(c, backslash)
                & ~(uint64_t) 0 << (NGX_HTTP_RAILGUN_PB_BITS * (q - c));

        } else {
            m = ngx_http_railgun_pb_scan(c, backslash);
        }

        if (*backslash) {
            return NULL;
        }
    }

    *w = c;
    *quotes = m & (m - 1);

    return c + __builtin_ctzll(m) / NGX_HTTP_RAILGUN_PB_BITS;
}

#endif


/*
 * The label text a="x",b="y" as LabelPair messages.  Without a backslash
 * in the text, the rule, every quote is a value's start or end, and the
 * text is read once, a chunk at a time: each chunk's quotes as a bit mask,
 * taken lowest first.  A backslash sends the whole text to the unescaping
 * loop, from the start.
 */

static u_char *
ngx_http_railgun_proto_labels(u_char *p, u_char *key, size_t len)
{
#if (defined NGX_HTTP_RAILGUN_PB_CHUNK)
    u_char      *start, *last, *w, *q, *name, *value;
    uint64_t     quotes;
    ngx_uint_t   backslash;

    if (len < NGX_HTTP_RAILGUN_PB_CHUNK) {
        return ngx_http_railgun_proto_labels_escaped(p, key, len);
    }

    start = p;
    last = key + len;
    name = key;
    w = key;

    quotes = ngx_http_railgun_pb_scan(w, &backslash);

    if (backslash) {
        return ngx_http_railgun_proto_labels_escaped(start, key, len);
    }

    for ( ;; ) {
        q = ngx_http_railgun_pb_next_quote(&w, &quotes, last, &backslash);

        /* name="value": the quote follows the '=' */

        if (q == NULL || q - name < 2) {
            break;
        }

        value = q + 1;

        q = ngx_http_railgun_pb_next_quote(&w, &quotes, last, &backslash);

        if (q == NULL) {
            break;
        }

        p = ngx_http_railgun_pb_pair(p, name, value - 2 - name, value,
                                     q - value, last);
        p = ngx_http_railgun_pb_copy16(p, value, q - value, last);

        name = q + 2;                /* '",' */
    }

    if (backslash) {
        return ngx_http_railgun_proto_labels_escaped(start, key, len);
    }

    return p;

#else

    return ngx_http_railgun_proto_labels_escaped(p, key, len);

#endif
}


/*
 * The length of a label's name: the bytes before the first '=', which a
 * name never has; 16 bytes at a time with SSE2, 8 on little-endian CPUs,
 * where the text has them left, else byte by byte.
 */

static NGX_HTTP_RAILGUN_PB_INLINE size_t
ngx_http_railgun_pb_name_len(u_char *name, u_char *last)
{
    u_char    *p;
#if (defined __SSE2__)
    uint32_t   m;
#endif
#if (NGX_HAVE_LITTLE_ENDIAN)
    uint64_t   w;
#endif

#if (defined __SSE2__)
    if (last - name >= 16) {
        m = _mm_movemask_epi8(_mm_cmpeq_epi8(
                                  _mm_loadu_si128((__m128i *) name),
                                  _mm_set1_epi8('=')));

        if (m) {
            return __builtin_ctz(m);
        }
    }
#endif

#if (NGX_HAVE_LITTLE_ENDIAN)
    if (last - name >= 8) {
        ngx_memcpy(&w, name, sizeof(uint64_t));
        w = ngx_http_railgun_pb_bytes(w, 0x3d3d3d3d3d3d3d3dULL);

        if (w) {
            return __builtin_ctzll(w) / 8;
        }
    }
#endif

    for (p = name; p < last && *p != '='; p++) { /* void */ }

    return p - name;
}


/*
 * The label text as LabelPair messages, cut where the series' table of
 * label boundaries says (a byte a label: the value's length; the name is
 * what precedes the '='); the text has no backslash then.
 */

static u_char *
ngx_http_railgun_proto_labels_bounded(u_char *p, u_char *key, size_t len,
    u_char *bounds)
{
    u_char  *last, *name, *value;
    size_t   name_len, value_len;

    last = key + len;
    name = key;

    while (name < last) {
        value_len = *bounds++;
        name_len = ngx_http_railgun_pb_name_len(name, last);

        value = name + name_len + 2;            /* '="' */

        p = ngx_http_railgun_pb_pair(p, name, name_len, value, value_len,
                                     last);
        p = ngx_http_railgun_pb_copy16(p, value, value_len, last);

        name = value + value_len + 2;           /* '",' */
    }

    return p;
}


/* the label text with the values unescaped from \\, \" and \n */

static u_char *
ngx_http_railgun_proto_labels_escaped(u_char *p, u_char *key, size_t len)
{
    u_char  *last, *name, *value, *q, *r;
    size_t   value_len;

    last = key + len;

    while (key < last) {
        name = key;

        while (key < last && *key != '=') {
            key++;
        }

        value = key + 2;             /* '="' */

        if (value > last) {
            break;
        }

        value_len = 0;

        for (q = value; q < last && *q != '"'; q++, value_len++) {
            if (*q == '\\' && q + 1 < last) {
                q++;
            }
        }

        p = ngx_http_railgun_pb_pair(p, name, key - name, value, value_len,
                                     last);

        for (r = value; r < q; r++) {
            if (*r == '\\' && r + 1 < q) {
                r++;
                *p++ = (*r == 'n') ? '\n' : *r;

            } else {
                *p++ = *r;
            }
        }

        key = q + 2;                 /* '",' */
    }

    return p;
}


/*
 * Metric.histogram: the count and sum, the classic buckets (cumulative,
 * without +Inf: Prometheus adds it from the count) and, where kept, the
 * native fields.  With native buckets the count is theirs, so that the
 * native histogram adds up exactly; a classic count read a moment apart
 * is never shown above it.  The upper bounds are encoded once per bucket
 * list, in the scratch area.
 */

static u_char *
ngx_http_railgun_proto_histogram(ngx_http_railgun_render_t *rd, u_char *p)
{
    u_char                 *len_at, *start, *bound, *t;
    size_t                  width;
    uint64_t                count, cum, ex_mask, *v;
    ngx_uint_t              i, n, lo, hi, from, to;
    ngx_railgun_native_t    nat;
    ngx_railgun_buckets_t  *b;

    b = rd->sample.buckets;
    n = b->n;
    bound = rd->scratch;

    if (rd->pb_buckets != b) {
        for (i = 0; i < n; i++) {
            t = bound + NGX_HTTP_RAILGUN_PB_TEMPLATE * i;
            ngx_memzero(t, NGX_HTTP_RAILGUN_PB_TEMPLATE);
            t[0] = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
            t[1] = 11;
            t[2] = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
            (void) ngx_http_railgun_pb_double(t + 4, 2,
                                      (double) b->bound[i] / 1000000.0);
        }

        /* the native counts that each classic bucket's observations reach */

        for (i = 0; b->native && i <= n; i++) {
            ngx_railgun_store_native_range(b, i, &rd->pb_from[i],
                                           &rd->pb_to[i]);
        }

        rd->pb_buckets = b;
    }

    width = 20 + n * 22;

    if (rd->sample.series && rd->sample.series->buckets->native) {
        width += 64 + 24 * rd->sample.series->buckets->native;
    }

    if (rd->sample.ex_mask) {
        width += (n + 1) * NGX_HTTP_RAILGUN_PB_EXEMPLAR_MAX;
    }

    width = ngx_http_railgun_pb_width(width);

    *p++ = ngx_http_railgun_pb_tag(7, NGX_HTTP_RAILGUN_PB_LEN);
    len_at = p;
    p += width;
    start = p;

    count = rd->sample.v[n];

    if (rd->sample.series && rd->sample.series->buckets->native) {

        /*
         * Only the native counts of the classic buckets that have counts
         * are read: from the first of those to the last
         */

        v = rd->sample.v;
        from = 0;
        to = 0;

        if (v[n]) {
            for (lo = 0; v[lo] == 0; lo++) { /* void */ }
            for (hi = lo; v[hi] != v[n]; hi++) { /* void */ }

            from = rd->pb_from[lo];
            to = rd->pb_to[hi];
        }

        ngx_railgun_store_native_read(rd->sample.series, rd->native, &nat,
                                      from, to);
        count = ngx_http_railgun_proto_count(rd, &nat);

    } else {
        nat.schema = NGX_MAX_INT_T_VALUE;
    }

    /* sample_count, sample_sum */
    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, count);
    p = ngx_http_railgun_pb_double(p, 2,
                                   (double) rd->sample.v[n + 1] / 1000000.0);

    /*
     * The sample's fields in locals: every byte written through p may
     * alias them, and they would be read again for each bucket.
     */

    v = rd->sample.v;
    ex_mask = rd->sample.ex_mask;

    for (i = 0; i < n; i++, bound += NGX_HTTP_RAILGUN_PB_TEMPLATE) {
        cum = ngx_min(v[i], count);

        if (ex_mask & ((uint64_t) 1 << i)) {
            p = ngx_http_railgun_proto_bucket_ex(p, cum, bound + 4,
                                                 &rd->sample.ex[i]);
            continue;
        }

        /*
         * Histogram.bucket: Bucket, from its template when the count
         * takes one byte (the 3 bytes past it are written over next, or
         * are in the Metric's 16 to spare)
         */

        if (cum < 0x80) {
            ngx_memcpy(p, bound, NGX_HTTP_RAILGUN_PB_TEMPLATE);
            p[3] = (u_char) cum;
            p += 13;
            continue;
        }

        *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = (u_char) (1 + ngx_http_railgun_pb_varint_len(cum) + 9);
        *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, cum);
        p = ngx_cpymem(p, bound + 4, 9);
    }

    /*
     * The +Inf bucket is left to the count, unless it has an exemplar to
     * carry: then it is written, as Prometheus' clients do.
     */

    if (ex_mask & ((uint64_t) 1 << n)) {
        u_char  inf[9];

        (void) ngx_http_railgun_pb_double(inf, 2,
                                          (double) NGX_HTTP_RAILGUN_PB_INF);
        p = ngx_http_railgun_proto_bucket_ex(p, count, inf,
                                             &rd->sample.ex[n]);
    }

    if (nat.schema != NGX_MAX_INT_T_VALUE) {
        p = ngx_http_railgun_proto_native(rd, p, &nat);
    }

    return ngx_http_railgun_pb_close(len_at, width, start, p);
}


/*
 * A Bucket with its Exemplar (field 3): the exemplar's label as a
 * LabelPair, its value in seconds, its time as a Timestamp.  The label's
 * bytes are the variable's, cut to the store's bound; they are not
 * escaped, protobuf strings need not be.
 */

static u_char *
ngx_http_railgun_proto_bucket_ex(u_char *p, uint64_t cum, u_char *bound,
    ngx_railgun_exemplar_copy_t *ex)
{
    size_t    pair, ts, exl;
    uint64_t  sec, nanos;

    sec = ex->time_ms / 1000;
    nanos = ex->time_ms % 1000 * 1000000;

    pair = 1 + ngx_http_railgun_pb_varint_len(ex->name_len) + ex->name_len
           + 1 + ngx_http_railgun_pb_varint_len(ex->value_len)
           + ex->value_len;
    ts = 1 + ngx_http_railgun_pb_varint_len(sec)
         + (nanos ? 1 + ngx_http_railgun_pb_varint_len(nanos) : 0);
    exl = 1 + ngx_http_railgun_pb_varint_len(pair) + pair
          + 9
          + 1 + ngx_http_railgun_pb_varint_len(ts) + ts;

    /* Histogram.bucket: Bucket */
    *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p,
                                 1 + ngx_http_railgun_pb_varint_len(cum) + 9
                                 + 1 + ngx_http_railgun_pb_varint_len(exl)
                                 + exl);
    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, cum);
    p = ngx_cpymem(p, bound, 9);

    /* Bucket.exemplar: Exemplar */
    *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, exl);

    /* Exemplar.label: LabelPair */
    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, pair);
    p = ngx_http_railgun_pb_string(p, 1, ex->label, ex->name_len);
    p = ngx_http_railgun_pb_string(p, 2, ex->label + ex->name_len,
                                   ex->value_len);

    /* Exemplar.value, Exemplar.timestamp: Timestamp */
    p = ngx_http_railgun_pb_double(p, 2, (double) ex->value_us / 1000000.0);
    *p++ = ngx_http_railgun_pb_tag(3, NGX_HTTP_RAILGUN_PB_LEN);
    p = ngx_http_railgun_pb_varint(p, ts);
    *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, sec);

    if (nanos) {
        *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, nanos);
    }

    return p;
}


/* the count of the native buckets: the zero bucket's and the others' */

static uint64_t
ngx_http_railgun_proto_count(ngx_http_railgun_render_t *rd,
    ngx_railgun_native_t *nat)
{
    uint64_t    total;
    ngx_uint_t  j;

    total = nat->zero;

    for (j = nat->first; j < nat->last; j++) {
        total += rd->native[j];
    }

    return total;
}


/*
 * schema, zero_threshold, zero_count, positive_span and positive_delta of
 * the native counts that the store merged to one schema; gaps of one or two
 * empty buckets are bridged by zero counts, as Prometheus' clients do,
 * rather than opening a span.  The packed deltas follow all the spans, so
 * they are kept aside in the scratch area meanwhile.
 */

static u_char *
ngx_http_railgun_proto_native(ngx_http_railgun_render_t *rd, u_char *p,
    ngx_railgun_native_t *nat)
{
    u_char      *d, *deltas;
    int64_t      prev;
    uint64_t    *c, span;
    ngx_int_t    last;
    ngx_uint_t   j, k, end, first;

    c = rd->native;

    *p++ = ngx_http_railgun_pb_tag(5, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, ngx_http_railgun_pb_zigzag(nat->schema));
    p = ngx_http_railgun_pb_double(p, 6, NGX_HTTP_RAILGUN_PB_ZERO_THRESHOLD);
    *p++ = ngx_http_railgun_pb_tag(7, NGX_HTTP_RAILGUN_PB_VARINT);
    p = ngx_http_railgun_pb_varint(p, nat->zero);

    deltas = rd->scratch + NGX_HTTP_RAILGUN_PB_DELTAS;
    d = deltas;
    prev = 0;
    last = 0;
    first = 1;
    end = nat->last;

    for (j = nat->first; j < end; j = k) {

        if (c[j] == 0) {
            k = j + 1;
            continue;
        }

        /* a span from j: up to a run of three empty buckets */

        for (k = j + 1; k < end; k++) {
            if (c[k] == 0
                && (k + 1 >= end || c[k + 1] == 0)
                && (k + 2 >= end || c[k + 2] == 0))
            {
                break;
            }
        }

        /* the first span's offset is its index, the others' the gap */

        span = ngx_http_railgun_pb_zigzag(first
                                          ? nat->offset + (ngx_int_t) j
                                          : nat->offset + (ngx_int_t) j
                                            - last);
        first = 0;

        /* Histogram.positive_span: BucketSpan */
        *p++ = ngx_http_railgun_pb_tag(12, NGX_HTTP_RAILGUN_PB_LEN);
        *p++ = (u_char) (2 + ngx_http_railgun_pb_varint_len(span)
                         + ngx_http_railgun_pb_varint_len(k - j));
        *p++ = ngx_http_railgun_pb_tag(1, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, span);
        *p++ = ngx_http_railgun_pb_tag(2, NGX_HTTP_RAILGUN_PB_VARINT);
        p = ngx_http_railgun_pb_varint(p, k - j);

        last = nat->offset + (ngx_int_t) k;

        for ( /* void */ ; j < k; j++) {
            d = ngx_http_railgun_pb_varint(d,
                             ngx_http_railgun_pb_zigzag((int64_t) c[j] - prev));
            prev = (int64_t) c[j];
        }
    }

    if (d > deltas) {
        /* Histogram.positive_delta, packed */
        *p++ = ngx_http_railgun_pb_tag(13, NGX_HTTP_RAILGUN_PB_LEN);
        p = ngx_http_railgun_pb_varint(p, d - deltas);
        p = ngx_cpymem(p, deltas, d - deltas);
    }

    return p;
}
