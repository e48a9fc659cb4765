
/*
 * Copyright (C) ngx-railgun authors
 *
 * Stand-ins for nginx's number parsers, which the fuzz targets do not
 * link: ngx_atoi() and ngx_atoof() (the same decimal parse, up to their
 * type's maximum: no sign, no space, NGX_ERROR on anything else or an
 * overflow) and ngx_hextoi(), as src/core/ngx_string.c has them.
 */


#ifndef _NGX_NUMBERS_H_INCLUDED_
#define _NGX_NUMBERS_H_INCLUDED_


static int64_t
ngx_numbers_decimal(u_char *line, size_t n, int64_t max)
{
    int64_t  value, cutoff, cutlim;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = max / 10;
    cutlim = max % 10;

    for (value = 0; n--; line++) {
        if (*line < '0' || *line > '9') {
            return NGX_ERROR;
        }

        if (value >= cutoff && (value > cutoff || *line - '0' > cutlim)) {
            return NGX_ERROR;
        }

        value = value * 10 + (*line - '0');
    }

    return value;
}


ngx_int_t
ngx_atoi(u_char *line, size_t n)
{
    return (ngx_int_t) ngx_numbers_decimal(line, n, NGX_MAX_INT_T_VALUE);
}


off_t
ngx_atoof(u_char *line, size_t n)
{
    return (off_t) ngx_numbers_decimal(line, n, NGX_MAX_OFF_T_VALUE);
}


ngx_int_t
ngx_hextoi(u_char *line, size_t n)
{
    u_char     c, ch;
    ngx_int_t  value, cutoff;

    if (n == 0) {
        return NGX_ERROR;
    }

    cutoff = NGX_MAX_INT_T_VALUE / 16;

    for (value = 0; n--; line++) {
        if (value > cutoff) {
            return NGX_ERROR;
        }

        ch = *line;

        if (ch >= '0' && ch <= '9') {
            value = value * 16 + (ch - '0');
            continue;
        }

        c = (u_char) (ch | 0x20);

        if (c >= 'a' && c <= 'f') {
            value = value * 16 + (c - 'a' + 10);
            continue;
        }

        return NGX_ERROR;
    }

    return value;
}


#endif /* _NGX_NUMBERS_H_INCLUDED_ */
