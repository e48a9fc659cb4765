
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of the parsers of directive values (src/ngx_railgun_conf.c):
 * status lists of railgun_probe and railgun_check, the seconds of
 * railgun_buckets, and the items of railgun_gate.  Byte 0 of the input
 * chooses the parser, the rest is the value.  Aborts unless every result
 * is one the directive may use: ranges within 100-599 and in order, no
 * more than asked for; seconds above 0 and within the bound, and written
 * back in the shortest form they parse to the same microseconds; a gate
 * name shorter than the item and a minimum from 1 (at most 100 as a
 * percentage); and unless a value with a byte no parser accepts fails.
 */

/* sources: src/ngx_railgun_conf.c */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "conf_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


static int
only(u_char *p, size_t len, const char *allowed)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] == '\0' || strchr(allowed, p[i]) == NULL) {
            return 0;
        }
    }

    return 1;
}


static void
status(u_char *p, size_t len)
{
    ngx_int_t                  n, i;
    ngx_uint_t                 max;
    ngx_railgun_conf_status_t  ranges[NGX_RAILGUN_CONF_MAX_STATUS];

    max = len % NGX_RAILGUN_CONF_MAX_STATUS + 1;

    n = ngx_railgun_conf_status(p, len, ranges, max);

    if (n == NGX_ERROR) {
        return;
    }

    check(only(p, len, "0123456789,-"), "a status list of digits");
    check(n >= 1 && (ngx_uint_t) n <= max, "as many ranges as allowed");

    for (i = 0; i < n; i++) {
        check(ranges[i].low >= 100 && ranges[i].high <= 599
              && ranges[i].low <= ranges[i].high, "a range of statuses");
    }
}


static void
seconds(u_char *p, size_t len)
{
    char      buf[64];
    int64_t   us, again;
    size_t    n;

    us = ngx_railgun_conf_seconds(p, len);

    if (us == NGX_ERROR) {
        return;
    }

    check(only(p, len, "0123456789."), "seconds of digits");
    check(us > 0 && us <= NGX_RAILGUN_CONF_MAX_US, "seconds in range");

    /* written back as the exposition writes "le", it parses the same */

    n = snprintf(buf, sizeof(buf), "%lld.%06lld", (long long) (us / 1000000),
                 (long long) (us % 1000000));

    while (buf[n - 1] == '0') {
        n--;
    }

    if (buf[n - 1] == '.') {
        n--;
    }

    again = ngx_railgun_conf_seconds((u_char *) buf, n);

    check(again == us, "seconds written back parse the same");
}


static void
gate(u_char *p, size_t len)
{
    size_t      name;
    ngx_int_t   rc;
    ngx_uint_t  min, percent;

    rc = ngx_railgun_conf_gate(p, len, &name, &min, &percent);

    if (rc == NGX_ERROR) {
        return;
    }

    check(name >= 1 && name <= len, "a name within the item");
    check(min >= 1 && (!percent || min <= 100), "a minimum");

    if (rc == NGX_DECLINED) {
        check(name == len && min == 1 && !percent, "a bare name");

    } else {
        check(name < len && p[name] == ':', "a name before its minimum");
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *p;

    if (size == 0) {
        return 0;
    }

    /* an exact copy: a read past the value is an ASan report */

    p = malloc(size - 1 ? size - 1 : 1);
    check(p != NULL, "malloc");
    memcpy(p, data + 1, size - 1);

    switch (data[0] % 3) {

    case 0:
        status(p, size - 1);
        break;

    case 1:
        seconds(p, size - 1);
        break;

    default:
        gate(p, size - 1);
    }

    free(p);

    return 0;
}
