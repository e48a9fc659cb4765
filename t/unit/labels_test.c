
/*
 * Copyright (C) ngx-railgun authors
 *
 * Unit tests of label value escaping and UTF-8 repair.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_labels.h"

#include <stdio.h>


static int  failures;
static int  tests;


static void
check(const char *name, const char *in, size_t len, const char *expected)
{
    u_char  out[NGX_RAILGUN_LABEL_ESCAPED_MAX], *end;

    end = ngx_railgun_label_escape(out, (u_char *) in, len);

    tests++;

    if ((size_t) (end - out) != strlen(expected)
        || memcmp(out, expected, end - out) != 0)
    {
        failures++;
        printf("not ok %d - %s: got \"%.*s\"\n", tests, name,
               (int) (end - out), out);
        return;
    }

    printf("ok %d - %s\n", tests, name);
}


int
main(void)
{
    char    big[NGX_RAILGUN_LABEL_MAX + 10];
    u_char  out[NGX_RAILGUN_LABEL_ESCAPED_MAX], *end;

    check("plain", "/api/v1/", 8, "/api/v1/");
    check("empty", "", 0, "");
    check("quote", "a\"b", 3, "a\\\"b");
    check("backslash", "a\\b", 3, "a\\\\b");
    check("newline", "a\nb", 3, "a\\nb");
    check("valid two-byte UTF-8", "caf\xc3\xa9", 5, "caf\xc3\xa9");
    check("valid four-byte UTF-8", "\xf0\x9f\x9a\x80", 4, "\xf0\x9f\x9a\x80");
    check("lone continuation byte", "a\x80z", 3, "a\xef\xbf\xbdz");
    check("invalid lead byte", "\xff", 1, "\xef\xbf\xbd");
    check("overlong slash", "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd");
    check("surrogate", "\xed\xa0\x80", 3,
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    check("truncated sequence at the end", "ab\xe2\x82", 4,
          "ab\xef\xbf\xbd\xef\xbf\xbd");
    check("above U+10FFFF", "\xf4\x90\x80\x80", 4,
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");

    /* the worst case fits the documented bound */
    memset(big, 0xff, sizeof(big));
    end = ngx_railgun_label_escape(out, (u_char *) big, sizeof(big));

    tests++;
    if ((size_t) (end - out) != 3 * NGX_RAILGUN_LABEL_MAX) {
        failures++;
        printf("not ok %d - long invalid value cut to the bound\n", tests);

    } else {
        printf("ok %d - long invalid value cut to the bound\n", tests);
    }

    /* a character across the cut is left out whole, not repaired */
    memset(big, 'x', NGX_RAILGUN_LABEL_MAX - 1);
    memcpy(big + NGX_RAILGUN_LABEL_MAX - 1, "\xe2\x9c\x93", 3);
    end = ngx_railgun_label_escape(out, (u_char *) big,
                                   NGX_RAILGUN_LABEL_MAX + 2);

    tests++;
    if ((size_t) (end - out) != NGX_RAILGUN_LABEL_MAX - 1) {
        failures++;
        printf("not ok %d - cut at a character boundary\n", tests);

    } else {
        printf("ok %d - cut at a character boundary\n", tests);
    }

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
