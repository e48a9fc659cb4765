
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_RAILGUN_CONF_H_INCLUDED_
#define _NGX_RAILGUN_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Parsers of directive values: pure functions of their bytes, so that a
 * fuzzer can call them without a configuration (t/fuzz/conf_fuzz.c).
 */


#define NGX_RAILGUN_CONF_MAX_STATUS  16

/* 1e6 seconds, in microseconds: longer than any sensible bucket */
#define NGX_RAILGUN_CONF_MAX_US      1000000000000LL


typedef struct {
    ngx_uint_t                     low;
    ngx_uint_t                     high;
} ngx_railgun_conf_status_t;


ngx_int_t ngx_railgun_conf_number(u_char *p, size_t len);
ngx_int_t ngx_railgun_conf_status(u_char *p, size_t len,
    ngx_railgun_conf_status_t *ranges, ngx_uint_t max);
int64_t ngx_railgun_conf_seconds(u_char *p, size_t len);
ngx_int_t ngx_railgun_conf_gate(u_char *p, size_t len, size_t *name_len,
    ngx_uint_t *min, ngx_uint_t *percent);


#endif /* _NGX_RAILGUN_CONF_H_INCLUDED_ */
