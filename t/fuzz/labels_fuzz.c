
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of label value escaping: whatever the bytes of a value,
 * the escaped text fits NGX_RAILGUN_LABEL_ESCAPED_MAX (the output buffer is
 * a heap block of exactly that size, so a write past it is caught), is valid
 * UTF-8, has no raw line feed and no double quote or backslash that is not
 * escaped, and unescapes to a value that is valid UTF-8 too.
 */

/* sources: src/ngx_railgun_labels.c */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void check(int ok, const char *what);
static size_t utf8_valid(const u_char *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "labels_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


/* the length of the valid UTF-8 sequence at p, or 0 (RFC 3629) */

static size_t
utf8_valid(const u_char *p, size_t n)
{
    size_t    len, i;
    uint32_t  c, min;

    c = p[0];

    if (c < 0x80) {
        return 1;
    }

    if (c >= 0xc0 && c <= 0xdf) {
        len = 2; c &= 0x1f; min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3; c &= 0x0f; min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf7) {
        len = 4; c &= 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (n < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return len;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t   n, i, len;
    u_char  *src, *dst, *end, *plain, *q;

    /* the value from a heap copy of its exact size */

    src = malloc(size ? size : 1);
    dst = malloc(NGX_RAILGUN_LABEL_ESCAPED_MAX);
    plain = malloc(NGX_RAILGUN_LABEL_ESCAPED_MAX);
    check(src != NULL && dst != NULL && plain != NULL, "malloc");

    if (size) {
        memcpy(src, data, size);
    }

    end = ngx_railgun_label_escape(dst, src, size);

    check(end >= dst, "output end after its start");

    len = end - dst;

    check(len <= NGX_RAILGUN_LABEL_ESCAPED_MAX, "output within the bound");
    check(size == 0 || len > 0, "a value never escapes to nothing");

    for (i = 0; i < len; i += n) {
        n = utf8_valid(dst + i, len - i);
        check(n != 0, "output is valid UTF-8");
    }

    /* escapes: \\, \" and \n only; unescaped, the value is UTF-8 too */

    q = plain;

    for (i = 0; i < len; i++) {
        check(dst[i] != '\n', "no raw line feed");
        check(dst[i] != '"', "no unescaped double quote");

        if (dst[i] == '\\') {
            check(i + 1 < len, "no backslash at the end");
            i++;
            check(dst[i] == '\\' || dst[i] == '"' || dst[i] == 'n',
                  "only \\\\, \\\" and \\n escapes");
            *q++ = (dst[i] == 'n') ? '\n' : dst[i];
            continue;
        }

        *q++ = dst[i];
    }

    for (i = 0; i < (size_t) (q - plain); i += n) {
        n = utf8_valid(plain + i, q - plain - i);
        check(n != 0, "unescaped value is valid UTF-8");
    }

    /* a short value of plain printable ASCII is kept as it is */

    if (size <= NGX_RAILGUN_LABEL_MAX) {
        for (i = 0; i < size; i++) {
            if (data[i] < 0x20 || data[i] > 0x7e || data[i] == '"'
                || data[i] == '\\')
            {
                break;
            }
        }

        if (i == size) {
            check(len == size && memcmp(dst, data, size) == 0,
                  "plain ASCII kept");
        }
    }

    free(src);
    free(dst);
    free(plain);

    return 0;
}
