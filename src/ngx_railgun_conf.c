
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_conf.h"


/* a decimal number of at most 9 digits, or NGX_ERROR */

ngx_int_t
ngx_railgun_conf_number(u_char *p, size_t len)
{
    ngx_int_t  n;

    if (len == 0 || len > 9) {
        return NGX_ERROR;
    }

    for (n = 0; len; len--, p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        n = n * 10 + (*p - '0');
    }

    return n;
}


/*
 * "200-299,301,302": status codes and ranges of 100 to 599; returns how
 * many ranges were written, or NGX_ERROR.
 */

ngx_int_t
ngx_railgun_conf_status(u_char *p, size_t len,
    ngx_railgun_conf_status_t *ranges, ngx_uint_t max)
{
    u_char      *end, *comma, *dash;
    ngx_int_t    low, high;
    ngx_uint_t   n;

    end = p + len;
    n = 0;

    if (len == 0) {
        return NGX_ERROR;
    }

    for ( ;; ) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        dash = ngx_strlchr(p, comma, '-');

        low = ngx_railgun_conf_number(p, (dash ? dash : comma) - p);
        high = dash ? ngx_railgun_conf_number(dash + 1, comma - dash - 1)
                    : low;

        if (low < 100 || high > 599 || high < low || n == max) {
            return NGX_ERROR;
        }

        ranges[n].low = low;
        ranges[n].high = high;
        n++;

        if (comma == end) {
            return n;
        }

        p = comma + 1;
    }
}


/*
 * Seconds with up to 6 decimals, "0.005" or "10", as microseconds; NGX_ERROR
 * unless more than 0 and at most NGX_RAILGUN_CONF_MAX_US.
 */

int64_t
ngx_railgun_conf_seconds(u_char *p, size_t len)
{
    u_char      *end;
    int64_t      us;
    ngx_uint_t   digits, decimals, dot;

    end = p + len;
    us = 0;
    digits = 0;
    decimals = 0;
    dot = 0;

    for ( /* void */ ; p < end; p++) {

        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || decimals == 6) {
            return NGX_ERROR;
        }

        us = us * 10 + (*p - '0');
        digits++;

        if (dot) {
            decimals++;
        }

        if (us > NGX_RAILGUN_CONF_MAX_US) {
            return NGX_ERROR;
        }
    }

    if (digits == 0) {
        return NGX_ERROR;
    }

    for ( /* void */ ; decimals < 6; decimals++) {
        us *= 10;

        if (us > NGX_RAILGUN_CONF_MAX_US) {
            return NGX_ERROR;
        }
    }

    return us ? us : NGX_ERROR;
}


/*
 * A railgun_gate item, "NAME", "NAME:min=N" or "NAME:min=N%": NGX_OK with
 * the minimum, NGX_DECLINED for a bare name (*min is 1), or NGX_ERROR.
 */

ngx_int_t
ngx_railgun_conf_gate(u_char *p, size_t len, size_t *name_len,
    ngx_uint_t *min, ngx_uint_t *percent)
{
    u_char     *colon, *v, *end;
    ngx_int_t   n;

    end = p + len;

    *min = 1;
    *percent = 0;

    colon = ngx_strlchr(p, end, ':');

    if (colon == NULL) {
        *name_len = len;
        return len ? NGX_DECLINED : NGX_ERROR;
    }

    *name_len = colon - p;

    v = colon + 1;

    if (colon == p || end - v < 5 || ngx_strncmp(v, "min=", 4) != 0) {
        return NGX_ERROR;
    }

    v += 4;

    if (end[-1] == '%') {
        *percent = 1;
        end--;
    }

    n = ngx_railgun_conf_number(v, end - v);

    if (n == NGX_ERROR || n == 0 || (*percent && n > 100)) {
        return NGX_ERROR;
    }

    *min = n;

    return NGX_OK;
}
