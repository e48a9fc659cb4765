
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of the passive WebSocket frame reader.
 *
 * Input: one byte N (0-31), N bytes that give the sizes of the pieces the
 * stream is fed in (cycled; 0 feeds an empty piece), then the stream.
 *
 * The stream is fed three times, whole, in those pieces and one byte at a
 * time, each piece from a heap copy of its exact size so that a read past
 * a piece is caught.  The pieces go the tunnel's way: a piece that ends
 * within the span the reader gave at the last piece read is not read, the
 * next piece read is told how many bytes passed, and so is the end.  Aborts unless: a failed reader stays failed and counts
 * nothing more; counts never decrease and never exceed what was fed; feed
 * returns NGX_ERROR exactly when the reader is failed; the three feedings
 * end in the same state; and the counts and the result are those of a
 * plain reference reading of the whole stream (RFC 6455, 5.2).
 */

/* sources: src/ngx_railgun_wsframe.c */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_wsframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    uint64_t  messages;
    uint64_t  bytes;
    int       failed;
} ref_result_t;


static void check(int ok, const char *what);
static void feed_piece(ngx_railgun_wsframe_t *f, const uint8_t *p,
    size_t n, uint64_t *fed, int tunnel, uint64_t unread);
static void feed(ngx_railgun_wsframe_t *f, u_char *copy, size_t n,
    uint64_t *fed, int tunnel, uint64_t unread);
static void same(ngx_railgun_wsframe_t *a, ngx_railgun_wsframe_t *b,
    const char *what);
static ref_result_t reference(const uint8_t *p, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "wsframe_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


/* feeds one piece from a heap copy of its exact size */

static void
feed_piece(ngx_railgun_wsframe_t *f, const uint8_t *p, size_t n,
    uint64_t *fed, int tunnel, uint64_t unread)
{
    u_char  *copy;

    copy = malloc(n ? n : 1);
    check(copy != NULL, "malloc");

    if (n) {
        memcpy(copy, p, n);
    }

    feed(f, copy, n, fed, tunnel, unread);

    free(copy);
}


/*
 * The tunnel's inline reading of a write at a frame's start
 * (ngx_railgun_wsframe_data()) against the reader's: a whole frame is one
 * message of its payload; a header whose payload goes on leaves the reader
 * in the payload, with the rest of it to come.
 */

static void
data_check(ngx_railgun_wsframe_t *f, u_char *copy, size_t n)
{
    size_t                 len, need;
    ngx_railgun_wsframe_t  r;

    if (f->state != NGX_RAILGUN_WSFRAME_FIRST || f->fragmented) {
        return;
    }

    len = ngx_railgun_wsframe_data(copy, n, &need);

    if (len == 0 || len < n || (len > n && need > n)) {
        return;
    }

    memset(&r, 0, sizeof(r));
    check(ngx_railgun_wsframe_feed(&r, copy, n) == NGX_OK,
          "data: a frame the reader takes");

    if (len == n) {
        check(r.messages == 1 && r.bytes == n - need
              && r.state == NGX_RAILGUN_WSFRAME_FIRST,
              "data: a whole frame, one message");

    } else {
        check(r.messages == 0 && r.bytes == n - need
              && r.state == NGX_RAILGUN_WSFRAME_PAYLOAD
              && r.remaining == len - n && r.fin && !r.control,
              "data: a payload that goes on");
    }
}


/*
 * feeds n bytes at copy, after "unread" bytes that passed unread (*fed has
 * them already), checking the invariants
 */

static void
feed(ngx_railgun_wsframe_t *f, u_char *copy, size_t n, uint64_t *fed,
    int tunnel, uint64_t unread)
{
    ngx_int_t               rc;
    ngx_uint_t              ended;
    ngx_railgun_wsframe_t   before;

    before = *f;

    /* the split pieces go the tunnel's way, its inline path first */
    if (tunnel) {
        check(unread == 0 || f->state == NGX_RAILGUN_WSFRAME_PAYLOAD,
              "bytes pass unread only inside a payload");
        check(unread <= f->remaining || unread == 0,
              "bytes that pass unread go no further than the payload");

        /* the unread bytes may end a message: at most one */
        ended = (unread && unread == f->remaining && f->fin && !f->control)
                ? 1 : 0;

        data_check(f, copy, n);

        rc = ngx_railgun_wsframe_tunnel(f, unread, copy, n);

        check(rc != NGX_DONE || f->messages == before.messages + ended + 1,
              "NGX_DONE: one message");
        check(rc != NGX_DONE || f->state == NGX_RAILGUN_WSFRAME_FIRST,
              "NGX_DONE: at a frame's start");

        check(rc != NGX_AGAIN
              || (f->messages == before.messages + ended
                  && f->state == NGX_RAILGUN_WSFRAME_PAYLOAD),
              "NGX_AGAIN: no message, inside a payload");

        if (rc == NGX_DONE || rc == NGX_AGAIN) {
            rc = NGX_OK;
        }

    } else {
        check(unread == 0, "unread only in the tunnel");
        rc = ngx_railgun_wsframe_feed(f, copy, n);
    }

    *fed += n;

    check(rc == NGX_OK || rc == NGX_ERROR, "feed returns NGX_OK or NGX_ERROR");
    check((rc == NGX_ERROR) == (f->failed == 1),
          "NGX_ERROR exactly when failed");

    if (before.failed) {
        check(f->failed, "a failed reader stays failed");
        check(f->messages == before.messages && f->bytes == before.bytes,
              "a failed reader counts nothing");
    }

    check(f->messages >= before.messages, "messages never decrease");
    check(f->bytes >= before.bytes, "bytes never decrease");
    check(f->bytes - before.bytes <= n + unread, "no more payload than fed");
    check(f->bytes <= *fed, "bytes within what was fed");

    /* a message takes at least 2 header bytes */
    check(f->messages * 2 <= *fed, "messages within what was fed");
}


static void
same(ngx_railgun_wsframe_t *a, ngx_railgun_wsframe_t *b, const char *what)
{
    check(a->messages == b->messages, what);
    check(a->bytes == b->bytes, what);
    check(a->failed == b->failed, what);

    if (a->failed) {
        return;
    }

    check(a->state == b->state, what);
    check(a->remaining == b->remaining, what);
    check(a->need == b->need, what);
    check(a->fin == b->fin, what);
    check(a->control == b->control, what);
    check(a->fragmented == b->fragmented, what);
}


/*
 * The reference: reads whole frames from a buffer, the way RFC 6455 lays
 * them out, stopping where the buffer ends; a violation is found as soon as
 * the byte that shows it is there.
 */

static ref_result_t
reference(const uint8_t *p, size_t n)
{
    int           fragmented, fin, control;
    size_t        pos, i, ext;
    uint8_t       b0, b1, opcode;
    uint64_t      len, avail;
    ref_result_t  r;

    memset(&r, 0, sizeof(r));
    fragmented = 0;
    pos = 0;

    while (pos < n) {
        b0 = p[pos];
        fin = (b0 & 0x80) != 0;
        opcode = b0 & 0x0f;
        control = opcode >= 8;

        if (b0 & 0x30) {                       /* RSV2, RSV3 */
            goto failed;
        }

        if (opcode == 0 && !fragmented) {      /* continuation of nothing */
            goto failed;
        }

        if ((opcode == 1 || opcode == 2) && fragmented) {
            goto failed;                       /* data inside a message */
        }

        if ((opcode >= 3 && opcode <= 7) || opcode >= 0xb) {
            goto failed;                       /* reserved */
        }

        if (control && !fin) {                 /* fragmented control */
            goto failed;
        }

        if (pos + 1 >= n) {
            break;
        }

        b1 = p[pos + 1];
        len = b1 & 0x7f;

        if (control && len > 125) {
            goto failed;
        }

        ext = (len == 126) ? 2 : (len == 127) ? 8 : 0;

        if (pos + 2 + ext > n) {
            break;
        }

        if (ext) {
            len = 0;
            for (i = 0; i < ext; i++) {
                len = (len << 8) | p[pos + 2 + i];
            }

            if (len >> 63) {
                goto failed;
            }
        }

        pos += 2 + ext + ((b1 & 0x80) ? 4 : 0);

        if (pos > n) {
            break;
        }

        avail = n - pos;
        if (avail > len) {
            avail = len;
        }

        if (!control) {
            r.bytes += avail;
        }

        pos += avail;

        if (avail < len) {
            break;
        }

        if (!control) {
            if (fin) {
                r.messages++;
                fragmented = 0;

            } else {
                fragmented = 1;
            }
        }
    }

    return r;

failed:

    r.failed = 1;

    return r;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                  nctl, pos, piece, i, zeros, last, limit;
    u_char                 *one;
    uint64_t                fed;
    const uint8_t          *ctl, *stream;
    ref_result_t            ref;
    ngx_railgun_wsframe_t   whole, split, bytes;

    if (size == 0) {
        return 0;
    }

    nctl = data[0] % 32;

    if (1 + nctl > size) {
        return 0;
    }

    ctl = data + 1;
    stream = data + 1 + nctl;
    size -= 1 + nctl;

    /* whole */

    ngx_memzero(&whole, sizeof(ngx_railgun_wsframe_t));
    fed = 0;
    feed_piece(&whole, stream, size, &fed, 0, 0);

    /* in the pieces the input asks for */

    ngx_memzero(&split, sizeof(ngx_railgun_wsframe_t));
    fed = 0;
    pos = 0;
    zeros = 0;
    last = 0;           /* where the last piece read ended */
    limit = 0;          /* pieces that end by here pass unread */

    for (i = 0; pos < size; i++) {
        piece = nctl ? ctl[i % nctl] : size;

        if (piece == 0) {
            feed_piece(&split, stream + pos, 0, &fed, 1,
                       split.state == NGX_RAILGUN_WSFRAME_PAYLOAD
                       ? pos - last : 0);
            last = pos;
            limit = pos + ngx_railgun_wsframe_span(&split);

            /* only empty pieces asked for: go on a byte at a time */
            if (++zeros < nctl) {
                continue;
            }

            piece = 1;
        }

        zeros = 0;

        if (piece > size - pos) {
            piece = size - pos;
        }

        if (pos + piece <= limit) {
            /* inside the payload: not read */
            fed += piece;
            pos += piece;
            continue;
        }

        feed_piece(&split, stream + pos, piece, &fed, 1,
                   split.state == NGX_RAILGUN_WSFRAME_PAYLOAD
                   ? pos - last : 0);
        pos += piece;
        last = pos;
        limit = pos + ngx_railgun_wsframe_span(&split);
    }

    /* the end: what passed unread since the last piece read */

    if (split.state == NGX_RAILGUN_WSFRAME_PAYLOAD) {
        check(size - last <= split.remaining, "the end passed unread");
        ngx_railgun_wsframe_skip(&split, size - last);
    }

    /* a byte at a time, from a heap block of one byte */

    ngx_memzero(&bytes, sizeof(ngx_railgun_wsframe_t));
    fed = 0;

    one = malloc(1);
    check(one != NULL, "malloc");

    for (pos = 0; pos < size; pos++) {
        *one = stream[pos];
        feed(&bytes, one, 1, &fed, 0, 0);
    }

    free(one);

    same(&whole, &split, "whole and split feeding end alike");
    same(&whole, &bytes, "whole and bytewise feeding end alike");

    ref = reference(stream, size);

    check(whole.failed == ref.failed, "result as the reference reading");
    check(whole.messages == ref.messages, "messages as the reference reading");
    check(whole.bytes == ref.bytes, "bytes as the reference reading");

    return 0;
}
