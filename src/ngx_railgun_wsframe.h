
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


/* the states the inline path below knows; the others are the reader's */
#define NGX_RAILGUN_WSFRAME_FIRST    0
#define NGX_RAILGUN_WSFRAME_PAYLOAD  4


/*
 * Reads n bytes; returns NGX_OK, or NGX_ERROR once the stream breaks the
 * protocol, after which the reader stays failed and counts nothing more.
 */
ngx_int_t ngx_railgun_wsframe_feed(ngx_railgun_wsframe_t *f, u_char *p,
    size_t n);


/*
 * The same, with the common cases of a tunnel's write read inline: bytes in
 * the middle of a payload or that end it, and an unfragmented data frame
 * with a 7- or 16-bit length at the start of the bytes.  A write of a big
 * frame's payload so costs a few compares, however big the frame.
 */

static ngx_inline ngx_int_t
ngx_railgun_wsframe_count(ngx_railgun_wsframe_t *f, u_char *p, size_t n)
{
    u_char    c;
    size_t    need;
    uint64_t  len;

    if (f->failed) {
        return NGX_ERROR;
    }

    if (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) {

        if (f->remaining > n) {
            f->remaining -= n;
            f->bytes += f->control ? 0 : n;
            return NGX_OK;
        }

        if (f->remaining == n && !f->control) {
            /* the frame ends with these bytes */
            f->remaining = 0;
            f->bytes += n;
            f->state = NGX_RAILGUN_WSFRAME_FIRST;

            if (f->fin) {
                f->messages++;
                f->fragmented = 0;

            } else {
                f->fragmented = 1;
            }

            return NGX_OK;
        }

    } else if (f->state == NGX_RAILGUN_WSFRAME_FIRST
               && n >= 4 && !f->fragmented)
    {
        /* FIN, text or binary; RSV1 may be permessage-deflate's */
        c = p[0] & 0xbf;

        if ((c == 0x81 || c == 0x82) && (p[1] & 0x7f) != 127) {
            len = p[1] & 0x7f;
            need = (p[1] & 0x80) ? 6 : 2;

            if (len == 126) {
                len = (p[2] << 8) | p[3];
                need += 2;
            }

            if (n >= need) {
                n -= need;
                f->control = 0;
                f->fin = 1;

                if (len > n) {
                    f->bytes += n;
                    f->remaining = len - n;
                    f->state = NGX_RAILGUN_WSFRAME_PAYLOAD;
                    return NGX_OK;
                }

                f->bytes += len;
                f->messages++;

                if (len == n) {
                    return NGX_OK;
                }

                return ngx_railgun_wsframe_feed(f, p + need + len, n - len);
            }
        }
    }

    return ngx_railgun_wsframe_feed(f, p, n);
}


#endif /* _NGX_RAILGUN_WSFRAME_H_INCLUDED_ */
