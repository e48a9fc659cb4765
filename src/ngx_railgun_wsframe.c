
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_wsframe.h"


enum {
    ngx_railgun_wsframe_first = NGX_RAILGUN_WSFRAME_FIRST,
    ngx_railgun_wsframe_second,
    ngx_railgun_wsframe_length,
    ngx_railgun_wsframe_mask,
    ngx_railgun_wsframe_payload = NGX_RAILGUN_WSFRAME_PAYLOAD,
    ngx_railgun_wsframe_failed = NGX_RAILGUN_WSFRAME_FAILED
};


#define NGX_RAILGUN_WS_FIN         0x80
#define NGX_RAILGUN_WS_RSV23       0x30   /* RSV1 may mean permessage-deflate */
#define NGX_RAILGUN_WS_OPCODE      0x0f
#define NGX_RAILGUN_WS_MASK        0x80
#define NGX_RAILGUN_WS_LEN         0x7f

#define NGX_RAILGUN_WS_CONTINUATION  0x0
#define NGX_RAILGUN_WS_TEXT          0x1
#define NGX_RAILGUN_WS_BINARY        0x2
#define NGX_RAILGUN_WS_CLOSE         0x8
#define NGX_RAILGUN_WS_PONG          0xa


static ngx_int_t ngx_railgun_wsframe_first_byte(ngx_railgun_wsframe_t *f,
    u_char c);
static ngx_int_t ngx_railgun_wsframe_header(ngx_railgun_wsframe_t *f);


ngx_int_t
ngx_railgun_wsframe_feed(ngx_railgun_wsframe_t *f, u_char *p, size_t n)
{
    u_char    *end, c, opcode;
    size_t     skip, i, k, need;
    uint64_t   len;

    if (f->failed) {
        return NGX_ERROR;
    }

    end = p + n;

    while (p < end) {

        switch (f->state) {

        case ngx_railgun_wsframe_first:

            /*
             * The common case, read at once: a whole header of a data frame
             * that may come here, and often its whole payload too.
             */

            if (end - p >= 2) {
                c = p[0];
                len = p[1] & NGX_RAILGUN_WS_LEN;
                need = (p[1] & NGX_RAILGUN_WS_MASK) ? 6 : 2;

                if (len >= 126) {
                    need += (len == 126) ? 2 : 8;
                }

                opcode = c & NGX_RAILGUN_WS_OPCODE;

                if ((size_t) (end - p) >= need
                    && !(c & NGX_RAILGUN_WS_RSV23)
                    && (f->fragmented
                        ? opcode == NGX_RAILGUN_WS_CONTINUATION
                        : opcode == NGX_RAILGUN_WS_TEXT
                          || opcode == NGX_RAILGUN_WS_BINARY))
                {
                    if (len >= 126) {
                        k = (len == 126) ? 2 : 8;
                        len = 0;

                        for (i = 0; i < k; i++) {
                            len = (len << 8) | p[2 + i];
                        }

                        if (len >> 63) {
                            goto failed;
                        }
                    }

                    p += need;
                    f->fin = (c & NGX_RAILGUN_WS_FIN) ? 1 : 0;
                    f->control = 0;

                    if (len <= (uint64_t) (end - p)) {
                        /* and the payload is here too */
                        p += len;
                        f->bytes += len;
                        ngx_railgun_wsframe_frame_end(f);
                        break;
                    }

                    f->remaining = len;
                    f->state = ngx_railgun_wsframe_payload;
                    break;
                }
            }

            if (ngx_railgun_wsframe_first_byte(f, *p++) != NGX_OK) {
                goto failed;
            }

            f->state = ngx_railgun_wsframe_second;
            break;

        case ngx_railgun_wsframe_second:
            c = *p++;

            f->length = c & NGX_RAILGUN_WS_LEN;
            f->need = (c & NGX_RAILGUN_WS_MASK) ? 4 : 0;

            if (f->length == 126 || f->length == 127) {
                if (f->control) {
                    goto failed;
                }

                /* the 16- or 64-bit length, then the mask */
                f->need += (f->length == 126) ? 2 : 8;
                f->length = 0;
                f->state = ngx_railgun_wsframe_length;
                f->remaining = (c & NGX_RAILGUN_WS_MASK) ? 4 : 0;
                break;
            }

            f->remaining = f->length;
            f->state = ngx_railgun_wsframe_mask;

            if (f->need == 0 && ngx_railgun_wsframe_header(f) != NGX_OK) {
                goto failed;
            }

            break;

        case ngx_railgun_wsframe_length:
            f->length = (f->length << 8) | *p++;
            f->need--;

            /* "remaining" holds the mask bytes still to come after it */
            if (f->need != f->remaining) {
                break;
            }

            if (f->length >> 63) {
                goto failed;
            }

            f->remaining = f->length;
            f->state = ngx_railgun_wsframe_mask;

            if (f->need == 0 && ngx_railgun_wsframe_header(f) != NGX_OK) {
                goto failed;
            }

            break;

        case ngx_railgun_wsframe_mask:
            p++;

            if (--f->need == 0 && ngx_railgun_wsframe_header(f) != NGX_OK) {
                goto failed;
            }

            break;

        default: /* ngx_railgun_wsframe_payload */
            skip = ngx_min((uint64_t) (end - p), f->remaining);

            p += skip;
            f->remaining -= skip;

            if (!f->control) {
                f->bytes += skip;
            }

            if (f->remaining == 0) {
                ngx_railgun_wsframe_frame_end(f);
            }
        }
    }

    return NGX_OK;

failed:

    /* neither a frame's start nor a payload, where the inline path counts */
    f->state = ngx_railgun_wsframe_failed;
    f->failed = 1;

    return NGX_ERROR;
}


/* FIN, RSV and opcode: what kind of frame, and is it allowed here */

static ngx_int_t
ngx_railgun_wsframe_first_byte(ngx_railgun_wsframe_t *f, u_char c)
{
    u_char  opcode;

    opcode = c & NGX_RAILGUN_WS_OPCODE;

    if (c & NGX_RAILGUN_WS_RSV23) {
        return NGX_ERROR;
    }

    switch (opcode) {

    case NGX_RAILGUN_WS_CONTINUATION:
        if (!f->fragmented) {
            return NGX_ERROR;
        }

        f->control = 0;
        break;

    case NGX_RAILGUN_WS_TEXT:
    case NGX_RAILGUN_WS_BINARY:
        if (f->fragmented) {
            return NGX_ERROR;
        }

        f->control = 0;
        break;

    default:
        if (opcode < NGX_RAILGUN_WS_CLOSE
            || opcode > NGX_RAILGUN_WS_PONG
            || !(c & NGX_RAILGUN_WS_FIN))
        {
            /* reserved opcode, or a fragmented control frame */
            return NGX_ERROR;
        }

        f->control = 1;
    }

    f->fin = (c & NGX_RAILGUN_WS_FIN) ? 1 : 0;

    return NGX_OK;
}


/* the whole header is read: f->remaining is the payload length */

static ngx_int_t
ngx_railgun_wsframe_header(ngx_railgun_wsframe_t *f)
{
    if (f->control && f->remaining > 125) {
        return NGX_ERROR;
    }

    if (f->remaining == 0) {
        ngx_railgun_wsframe_frame_end(f);
        return NGX_OK;
    }

    f->state = ngx_railgun_wsframe_payload;

    return NGX_OK;
}

