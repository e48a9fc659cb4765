
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
 * The write of a small message: n bytes that are exactly one unfragmented
 * data frame, header and payload, at a frame's start.  Counts it and
 * returns its payload length, or returns -1 and counts nothing.
 */

static ngx_inline off_t
ngx_railgun_wsframe_whole(ngx_railgun_wsframe_t *f, u_char *p, size_t n)
{
    u_char  c;
    size_t  need, len;

    if (f->state != NGX_RAILGUN_WSFRAME_FIRST || f->fragmented || f->failed
        || n < 2)
    {
        return -1;
    }

    /* FIN, text or binary; RSV1 may be permessage-deflate's */
    c = p[0] & 0xbf;

    if (c != 0x81 && c != 0x82) {
        return -1;
    }

    len = p[1] & 0x7f;
    need = (p[1] & 0x80) ? 6 : 2;

    if (len >= 126) {
        if (len == 127 || n < 4) {
            return -1;
        }

        len = (p[2] << 8) | p[3];
        need += 2;
    }

    if (need + len != n) {
        return -1;
    }

    /* the frame's flags as the byte-wise reader leaves them */
    f->fin = 1;
    f->control = 0;

    f->messages++;
    f->bytes += len;

    return (off_t) len;
}


/*
 * The same as ngx_railgun_wsframe_feed(), with the common cases of a
 * tunnel's write read inline: bytes in
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


/* what the tunnel does with a write: both of the above */

static ngx_inline ngx_int_t
ngx_railgun_wsframe_tunnel(ngx_railgun_wsframe_t *f, u_char *p, size_t n)
{
    if (ngx_railgun_wsframe_whole(f, p, n) >= 0) {
        return NGX_OK;
    }

    return ngx_railgun_wsframe_count(f, p, n);
}


#endif /* _NGX_RAILGUN_WSFRAME_H_INCLUDED_ */
