
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

    /*
     * Bytes, not bit fields: each is read and written per frame; the first
     * four side by side, as an inline path may test them together (one
     * 32-bit word: ngx_railgun_wsframe_word()).
     */
    u_char         state;
    u_char         fragmented;   /* a data message awaits its final frame */
    u_char         failed;
    u_char         apart;        /* the caller's, never the reader's */
    u_char         need;         /* bytes left of a length or mask */
    u_char         fin;          /* with control: one 16-bit load */
    u_char         control;
} ngx_railgun_wsframe_t;


/*
 * state, fragmented, failed and apart, in one load: 0 at a frame's start
 * outside a message, NGX_RAILGUN_WSFRAME_WORD_PAYLOAD inside a payload not
 * in a fragmented message, "apart" 0 in both
 */

static ngx_inline uint32_t
ngx_railgun_wsframe_word(ngx_railgun_wsframe_t *f)
{
    uint32_t  w;

    ngx_memcpy(&w, &f->state, sizeof(uint32_t));

    return w;
}


/* fin set and control not, in one load: a data message's final frame */

static ngx_inline ngx_uint_t
ngx_railgun_wsframe_data_fin(ngx_railgun_wsframe_t *f)
{
    uint16_t  w;

    ngx_memcpy(&w, &f->fin, sizeof(uint16_t));

#if (NGX_HAVE_LITTLE_ENDIAN)
    return w == 0x0001;
#else
    return w == 0x0100;
#endif
}


/*
 * The states the inline path below knows; the others are the reader's.  A
 * failed reader is in a state of its own, neither at a frame's start nor in
 * a payload, so that the inline path needs no test of f->failed.
 */
#define NGX_RAILGUN_WSFRAME_FIRST    0
#define NGX_RAILGUN_WSFRAME_PAYLOAD  4
#define NGX_RAILGUN_WSFRAME_FAILED   5

/* the word of PAYLOAD with the other three bytes 0, whatever the byte order */
#if (NGX_HAVE_LITTLE_ENDIAN)
#define NGX_RAILGUN_WSFRAME_WORD_PAYLOAD  NGX_RAILGUN_WSFRAME_PAYLOAD
#else
#define NGX_RAILGUN_WSFRAME_WORD_PAYLOAD  (NGX_RAILGUN_WSFRAME_PAYLOAD << 24)
#endif


/*
 * Reads n bytes; returns NGX_OK, or NGX_ERROR once the stream breaks the
 * protocol, after which the reader stays failed and counts nothing more.
 */
ngx_int_t ngx_railgun_wsframe_feed(ngx_railgun_wsframe_t *f, u_char *p,
    size_t n);


/*
 * The tunnel's reading of a write, inline for its common cases (the
 * functions below), the rest by ngx_railgun_wsframe_feed().  The tunnel
 * does not read every write: inside a payload, a write that does not end it
 * passes unread, and is told at the next write read (or at the close).
 */


/*
 * How many of the bytes to come may pass unread: the rest of the current
 * frame's payload, 0 outside a payload.  The write that ends a frame may
 * pass too: its message is counted when the bytes that passed are told
 * (ngx_railgun_wsframe_skip()), at the next write read or sooner.
 */

static ngx_inline uint64_t
ngx_railgun_wsframe_span(ngx_railgun_wsframe_t *f)
{
    return (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) ? f->remaining : 0;
}


/* n bytes of the payload that do not end it */

static ngx_inline void
ngx_railgun_wsframe_inside(ngx_railgun_wsframe_t *f, uint64_t n)
{
    f->remaining -= n;
    f->bytes += f->control ? 0 : n;
}


/* a frame's last byte: a data message ends with its final frame */

static ngx_inline void
ngx_railgun_wsframe_frame_end(ngx_railgun_wsframe_t *f)
{
    if (!f->control) {
        if (f->fin) {
            f->messages++;
            f->fragmented = 0;

        } else {
            f->fragmented = 1;
        }
    }

    f->state = NGX_RAILGUN_WSFRAME_FIRST;
}


/*
 * n bytes of the payload, at most its rest, read or passed unread: the
 * frame ends with its last byte, and a data message with its final frame.
 */

static ngx_inline void
ngx_railgun_wsframe_skip(ngx_railgun_wsframe_t *f, uint64_t n)
{
    ngx_railgun_wsframe_inside(f, n);

    if (f->remaining == 0) {
        ngx_railgun_wsframe_frame_end(f);
    }
}


/*
 * n bytes inside a payload: if they are the rest of a data message's last
 * frame, counts them and the message and returns 1; else returns 0 and
 * counts nothing.
 */

static ngx_inline ngx_uint_t
ngx_railgun_wsframe_last(ngx_railgun_wsframe_t *f, size_t n)
{
    if (f->remaining != n || !f->fin || f->control) {
        return 0;
    }

    f->remaining = 0;
    f->state = NGX_RAILGUN_WSFRAME_FIRST;
    f->fragmented = 0;
    f->messages++;
    f->bytes += n;

    return 1;
}


/*
 * The first n bytes of a write at a frame's start, outside a message: if
 * they begin an unfragmented text or binary frame with a 7- or 16-bit
 * length (RSV1 may be permessage-deflate's) and hold its length, returns
 * the frame's length, header and payload, and sets *need to the header's,
 * which may be more than n (its mask to come); else returns 0.  It changes
 * nothing: the caller counts.
 */

static ngx_inline size_t
ngx_railgun_wsframe_data(u_char *p, size_t n, size_t *need)
{
    u_char  c;
    size_t  len, hlen;

    if (n < 2) {
        return 0;
    }

    c = p[0] & 0xbf;

    if (c != 0x81 && c != 0x82) {
        return 0;
    }

    c = p[1];
    len = c & 0x7f;
    hlen = 2 + ((c & 0x80) >> 5);              /* the mask bit: 4 bytes */

    if (len >= 126) {
        if (len == 127 || n < 4) {
            return 0;
        }

        len = (p[2] << 8) | p[3];
        hlen += 2;
    }

    *need = hlen;

    return hlen + len;
}


/*
 * n bytes at a frame's start, outside a message: an unfragmented text or
 * binary frame with a 7- or 16-bit length (RSV1 may be permessage-deflate's)
 * that is all of the n bytes, or whose header is and whose payload goes on
 * past them.  Returns NGX_DONE for the first, a message counted, NGX_AGAIN
 * for the second, the reader in the payload, and NGX_DECLINED, nothing
 * changed, for anything else.
 */

static ngx_inline ngx_int_t
ngx_railgun_wsframe_start(ngx_railgun_wsframe_t *f, u_char *p, size_t n)
{
    u_char  c;
    size_t  need, len;

    if (f->state != NGX_RAILGUN_WSFRAME_FIRST || f->fragmented || n < 2) {
        return NGX_DECLINED;
    }

    c = p[0] & 0xbf;

    if (c != 0x81 && c != 0x82) {
        return NGX_DECLINED;
    }

    c = p[1];
    len = c & 0x7f;
    need = 2 + ((c >> 5) & 4);                 /* the mask bit: 4 bytes */

    if (len >= 126) {
        if (len == 127 || n < 4) {
            return NGX_DECLINED;
        }

        len = (p[2] << 8) | p[3];
        need += 2;
    }

    if (need + len == n) {
        f->fin = 1;
        f->control = 0;
        f->messages++;
        f->bytes += len;

        return NGX_DONE;
    }

    if (need + len < n || need > n) {
        return NGX_DECLINED;
    }

    f->fin = 1;
    f->control = 0;
    f->bytes += n - need;
    f->remaining = len - (n - need);
    f->state = NGX_RAILGUN_WSFRAME_PAYLOAD;

    return NGX_AGAIN;
}


/*
 * What the tunnel does with a write it reads: first "unread" bytes that
 * passed since the last write it read, no more than the span it was told
 * then (0 outside a payload; they may end the frame, and its message),
 * then the n bytes of this write.  Returns NGX_DONE when the write ended
 * a message and held nothing else, the reader at a frame's start;
 * NGX_AGAIN when it ended inside a payload and held no frame's end, so that
 * only payload bytes were counted; otherwise as ngx_railgun_wsframe_feed().
 */

static ngx_inline ngx_int_t
ngx_railgun_wsframe_tunnel(ngx_railgun_wsframe_t *f, uint64_t unread,
    u_char *p, size_t n)
{
    ngx_int_t  rc;

    if (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) {
        ngx_railgun_wsframe_skip(f, unread);
    }

    if (f->state == NGX_RAILGUN_WSFRAME_PAYLOAD) {

        if (ngx_railgun_wsframe_last(f, n)) {
            return NGX_DONE;
        }

        if (f->remaining > n) {
            ngx_railgun_wsframe_inside(f, n);
            return NGX_AGAIN;
        }

    } else {
        rc = ngx_railgun_wsframe_start(f, p, n);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_railgun_wsframe_feed(f, p, n);
}


#endif /* _NGX_RAILGUN_WSFRAME_H_INCLUDED_ */
