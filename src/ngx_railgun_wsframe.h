
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_RAILGUN_WSFRAME_H_INCLUDED_
#define _NGX_RAILGUN_WSFRAME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * A passive WebSocket frame reader (RFC 6455, section 5.2): it is fed the
 * bytes of one direction of a tunnel as they pass, in pieces of any size,
 * reads frame headers, skips payloads without looking at them, and counts
 * data messages and their payload bytes.  It never copies or changes a byte.
 */


typedef struct {
    uint64_t       remaining;    /* payload bytes left in the current frame */
    uint64_t       length;       /* the extended length being read */

    uint64_t       messages;     /* completed data messages */
    uint64_t       bytes;        /* payload bytes of data frames */

    /* bytes, not bit fields: each is read and written per frame */
    u_char         state;
    u_char         need;         /* bytes left of a length or mask */
    u_char         fin;
    u_char         control;
    u_char         fragmented;   /* a data message awaits its final frame */
    u_char         failed;
} ngx_railgun_wsframe_t;


/*
 * Reads n bytes; returns NGX_OK, or NGX_ERROR once the stream breaks the
 * protocol, after which the reader stays failed and counts nothing more.
 */
ngx_int_t ngx_railgun_wsframe_feed(ngx_railgun_wsframe_t *f, u_char *p,
    size_t n);


#endif /* _NGX_RAILGUN_WSFRAME_H_INCLUDED_ */
