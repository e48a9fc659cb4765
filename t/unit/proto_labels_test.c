
/*
 * Copyright (C) ngx-railgun authors
 *
 * Unit tests of the protobuf encoder's label text to LabelPair messages
 * (ngx_http_railgun_proto_labels(), its chunked scan and 16-byte copies):
 * each label text is in a buffer of exactly its length and the output in
 * one of exactly the room proto_sample() checks for (the labels' bound and
 * the 16 bytes to spare), both from malloc(), so that under the sanitizers
 * (RAILGUN_TEST_ASAN=1) a byte read or written past either is reported.
 * In the zone the text is followed by the next series, where ASan would
 * see nothing.  The output is compared with LabelPairs encoded here, the
 * plain way.  Built twice: with SSE2, and with __SSE2__ undefined, for the
 * word-at-a-time scan of other little-endian CPUs.  Where the store would
 * keep a table of label boundaries (no escape, no value of 256 bytes or
 * more, at most 32 labels), ngx_http_railgun_proto_labels_bounded() is
 * checked the same way, the table in a buffer of its own exact length.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_railgun_render_proto.c"

#include <stdio.h>
#include <stdlib.h>


#define MAX_PAIRS  12
#define MAX_TEXT   4096


typedef struct {
    u_char   name[300];
    size_t   name_len;
    u_char   value[2100];
    size_t   value_len;
} pair_t;


static int       failures;
static int       tests;
static uint64_t  rnd = 88172645463325252ULL;


/* not called: the test renders no histogram */

void
ngx_railgun_store_native_read(ngx_railgun_series_t *s, uint64_t *out,
    ngx_railgun_native_t *nat, ngx_uint_t from, ngx_uint_t to)
{
    abort();
}


void
ngx_railgun_store_native_range(ngx_railgun_buckets_t *b, ngx_uint_t i,
    ngx_uint_t *from, ngx_uint_t *to)
{
    abort();
}


static uint64_t
next_rand(void)
{
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;

    return rnd;
}


static u_char *
varint(u_char *p, size_t v)
{
    while (v >= 0x80) {
        *p++ = (u_char) (v | 0x80);
        v >>= 7;
    }

    *p++ = (u_char) v;

    return p;
}


static size_t
varint_len(size_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


/* the label text as the store keeps it: name="value", values escaped */

static size_t
text_of(pair_t *pairs, size_t n, u_char *text)
{
    u_char  *p;
    size_t   i, j;

    p = text;

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, pairs[i].name, pairs[i].name_len);
        *p++ = '=';
        *p++ = '"';

        for (j = 0; j < pairs[i].value_len; j++) {
            switch (pairs[i].value[j]) {
            case '\\':
                *p++ = '\\';
                *p++ = '\\';
                break;
            case '"':
                *p++ = '\\';
                *p++ = '"';
                break;
            case '\n':
                *p++ = '\\';
                *p++ = 'n';
                break;
            default:
                *p++ = pairs[i].value[j];
            }
        }

        *p++ = '"';
    }

    return p - text;
}


static size_t
expected_of(pair_t *pairs, size_t n, u_char *out)
{
    u_char  *p;
    size_t   i, len;

    p = out;

    for (i = 0; i < n; i++) {
        len = 1 + varint_len(pairs[i].name_len) + pairs[i].name_len
              + 1 + varint_len(pairs[i].value_len) + pairs[i].value_len;
        *p++ = 0x0a;
        p = varint(p, len);
        *p++ = 0x0a;
        p = varint(p, pairs[i].name_len);
        p = ngx_cpymem(p, pairs[i].name, pairs[i].name_len);
        *p++ = 0x12;
        p = varint(p, pairs[i].value_len);
        p = ngx_cpymem(p, pairs[i].value, pairs[i].value_len);
    }

    return p - out;
}


/* the table the store would keep (a byte a label, the value's length) */

static ngx_int_t
bounds_of(pair_t *pairs, size_t n, u_char *bounds)
{
    size_t  i, j;

    if (n > NGX_RAILGUN_SERIES_MAX_BOUNDS) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (pairs[i].name_len == 0 || pairs[i].value_len > 255) {
            return 0;
        }

        for (j = 0; j < pairs[i].value_len; j++) {
            if (pairs[i].value[j] == '\\' || pairs[i].value[j] == '"'
                || pairs[i].value[j] == '\n')
            {
                return 0;
            }
        }

        bounds[i] = (u_char) pairs[i].value_len;
    }

    return 1;
}


static void
check(const char *name, pair_t *pairs, size_t n, int verbose)
{
    u_char   text[MAX_TEXT * 2 + 64], want[MAX_TEXT * 2 + 64];
    u_char   table[MAX_PAIRS];
    u_char  *key, *out, *end, *bounds;
    size_t   len, want_len, room;

    len = text_of(pairs, n, text);
    want_len = expected_of(pairs, n, want);

    /* exactly the text, exactly the room: ASan sees a byte past either */

    key = malloc(len ? len : 1);
    ngx_memcpy(key, text, len);

    room = ngx_http_railgun_pb_labels_max(len) + 16;
    out = malloc(room);

    end = ngx_http_railgun_proto_labels(out, key, len);

    tests++;

    if ((size_t) (end - out) > room
        || (size_t) (end - out) != want_len
        || ngx_memcmp(out, want, want_len) != 0)
    {
        failures++;
        printf("not ok %d - %s: text \"%.*s\" (%zu bytes): %zd bytes, "
               "%zu expected\n", tests, name, (int) ngx_min(len, 200), text,
               len, end - out, want_len);

    } else if (verbose) {
        printf("ok %d - %s\n", tests, name);
    }

    if (n && bounds_of(pairs, n, table)) {
        bounds = malloc(n);
        ngx_memcpy(bounds, table, n);
        ngx_memset(out, 0, room);

        end = ngx_http_railgun_proto_labels_bounded(out, key, len, bounds);

        tests++;

        if ((size_t) (end - out) > room
            || (size_t) (end - out) != want_len
            || ngx_memcmp(out, want, want_len) != 0)
        {
            failures++;
            printf("not ok %d - %s, with the table: text \"%.*s\" (%zu "
                   "bytes): %zd bytes, %zu expected\n", tests, name,
                   (int) ngx_min(len, 200), text, len, end - out, want_len);

        } else if (verbose) {
            printf("ok %d - %s, with the table\n", tests, name);
        }

        free(bounds);
    }

    free(out);
    free(key);
}


static void
fill(u_char *s, size_t len, const char *alphabet)
{
    size_t  i, n;

    n = strlen(alphabet);

    for (i = 0; i < len; i++) {
        s[i] = (u_char) alphabet[next_rand() % n];
    }
}


static void
one(pair_t *p, const char *name, const char *value)
{
    p->name_len = strlen(name);
    ngx_memcpy(p->name, name, p->name_len);
    p->value_len = strlen(value);
    ngx_memcpy(p->value, value, p->value_len);
}


int
main(void)
{
    int      fuzz_failures, k;
    char     buf[64];
    size_t   i, j, n, t, nlen, vlen;
    pair_t   pairs[MAX_PAIRS];

    static const char  *names = "abcdefghijklmnopqrstuvwxyz_0123456789";
    static const char  *plain = "abcxyz/.-=,: 0189";
    static const char  *hostile = "a=,\" \\\n\x80\xff{}";

    /* named cases about the chunk's and the one-byte length's bounds */

    one(&pairs[0], "a", "");
    check("a=\"\", shorter than a chunk", pairs, 1, 1);

    one(&pairs[0], "method", "GET");
    one(&pairs[1], "code", "");
    check("an empty value, 22 bytes", pairs, 2, 1);

    one(&pairs[0], "path", "/a=b\",c=\"d");
    check("a value with = and \", (escaped)", pairs, 1, 1);

    one(&pairs[0], "path", "/a=b,c=d\\");
    one(&pairs[1], "x", "");
    check("a value ending in a backslash, then an empty one", pairs, 2, 1);

    for (t = 14; t <= 50; t++) {
        /* the text t bytes long: x="..." has 4 bytes around the value */
        one(&pairs[0], "x", "");
        pairs[0].value_len = t - 4;
        ngx_memset(pairs[0].value, 'v', t - 4);
        snprintf(buf, sizeof(buf), "one label, %zu bytes of text", t);
        check(buf, pairs, 1, 1);
    }

    for (vlen = 115; vlen <= 135; vlen++) {
        for (nlen = 1; nlen <= 12; nlen += 11) {
            pairs[0].name_len = nlen;
            ngx_memset(pairs[0].name, 'n', nlen);
            pairs[0].value_len = vlen;
            ngx_memset(pairs[0].value, 'v', vlen);
            one(&pairs[1], "b", "y");
            snprintf(buf, sizeof(buf), "name %zu and value %zu bytes",
                        nlen, vlen);
            check(buf, pairs, 2, 1);
        }
    }

    for (n = 1; n <= MAX_PAIRS; n++) {
        for (vlen = 0; vlen <= 2; vlen++) {
            for (i = 0; i < n; i++) {
                pairs[i].name_len = 1;
                pairs[i].name[0] = 'a' + i;
                pairs[i].value_len = vlen;
                ngx_memset(pairs[i].value, 'v', vlen);
            }

            snprintf(buf, sizeof(buf), "%zu labels of %zu-byte values",
                     n, vlen);
            check(buf, pairs, n, 1);
        }
    }

    /* random label sets, plain and hostile values, short and long */

    fuzz_failures = failures;

    for (k = 0; k < 200000; k++) {
        n = 1 + next_rand() % 6;

        for (i = 0; i < n; i++) {
            pairs[i].name_len = 1 + next_rand() % ((k & 1) ? 20 : 6);
            fill(pairs[i].name, pairs[i].name_len, names);

            switch (next_rand() % 8) {
            case 0:
                vlen = 0;
                break;
            case 1:
                vlen = 100 + next_rand() % 60;
                break;
            case 2:
                vlen = next_rand() % 600;
                break;
            default:
                vlen = next_rand() % 24;
            }

            pairs[i].value_len = vlen;
            fill(pairs[i].value, vlen, (next_rand() % 4) ? plain : hostile);

            /* now and then a lone escape somewhere in a long text */
            if (vlen && next_rand() % 16 == 0) {
                j = next_rand() % vlen;
                pairs[i].value[j] = "\\\"\n"[next_rand() % 3];
            }
        }

        check("random labels", pairs, n, 0);
    }

    tests++;

    if (failures == fuzz_failures) {
        printf("ok %d - 200000 random label texts\n", tests);

    } else {
        printf("not ok %d - 200000 random label texts\n", tests);
    }

    return failures ? 1 : 0;
}
