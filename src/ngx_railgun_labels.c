
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_labels.h"




/*
 * Writes a label value as the text exposition format wants it between double
 * quotes: backslash, double quote and line feed escaped, and every byte that
 * does not start a valid UTF-8 sequence replaced by U+FFFD, so that nothing
 * a client sends can end the value, the line or the UTF-8 of the scrape.
 */

u_char *
ngx_railgun_label_escape(u_char *dst, u_char *src, size_t len)
{
    size_t   n;
    u_char  *end;

    len = ngx_railgun_utf8_cut(src, len, NGX_RAILGUN_LABEL_MAX);

    end = src + len;

    while (src < end) {

        if (*src < 0x80) {

            switch (*src) {

            case '\\':
                *dst++ = '\\';
                *dst++ = '\\';
                break;

            case '"':
                *dst++ = '\\';
                *dst++ = '"';
                break;

            case '\n':
                *dst++ = '\\';
                *dst++ = 'n';
                break;

            default:
                *dst++ = *src;
            }

            src++;
            continue;
        }

        n = ngx_railgun_utf8_char_len(src, end - src);

        if (n == 0) {
            /* U+FFFD REPLACEMENT CHARACTER */
            *dst++ = 0xef;
            *dst++ = 0xbf;
            *dst++ = 0xbd;
            src++;
            continue;
        }

        dst = ngx_cpymem(dst, src, n);
        src += n;
    }

    return dst;
}


/*
 * The length of p cut to at most max bytes, backing off a character that the
 * cut would split (at most 3 bytes: past those, the bytes were no UTF-8).
 */

size_t
ngx_railgun_utf8_cut(u_char *p, size_t len, size_t max)
{
    size_t  min;

    if (len <= max) {
        return len;
    }

    min = (max > 3) ? max - 3 : 0;

    for (len = max; len > min && (p[len] & 0xc0) == 0x80; len--) {
        /* void */
    }

    return len;
}


/* the length of the valid UTF-8 sequence at p, or 0 (RFC 3629, section 4) */

size_t
ngx_railgun_utf8_char_len(u_char *p, size_t n)
{
    size_t    len, i;
    uint32_t  c, min;

    c = p[0];

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        c &= 0x1f;
        min = 0x80;

    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        c &= 0x0f;
        min = 0x800;

    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        c &= 0x07;
        min = 0x10000;

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
