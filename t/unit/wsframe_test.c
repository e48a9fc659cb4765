
/*
 * Copyright (C) ngx-railgun authors
 *
 * Unit tests of the passive WebSocket frame reader: every sequence is fed
 * whole and then again one byte at a time, and through the tunnel's inline
 * path (ngx_railgun_wsframe_tunnel) in writes of many sizes, the writes
 * inside a payload passed unread as the tunnel does, and must count the
 * same.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_railgun_wsframe.h"

#include <stdio.h>
#include <stdlib.h>


static int  failures;
static int  tests;


/* appends one frame; a masked frame gets a 4-byte key and masked payload */

static size_t
frame(u_char *p, int fin, int opcode, int masked, uint64_t len)
{
    u_char    *start;
    uint64_t   i;

    start = p;

    *p++ = (u_char) ((fin ? 0x80 : 0) | opcode);

    if (len < 126) {
        *p++ = (u_char) ((masked ? 0x80 : 0) | len);

    } else if (len < 65536) {
        *p++ = (u_char) ((masked ? 0x80 : 0) | 126);
        *p++ = (u_char) (len >> 8);
        *p++ = (u_char) len;

    } else {
        *p++ = (u_char) ((masked ? 0x80 : 0) | 127);
        for (i = 0; i < 8; i++) {
            *p++ = (u_char) (len >> (56 - 8 * i));
        }
    }

    if (masked) {
        *p++ = 0x37; *p++ = 0xfa; *p++ = 0x21; *p++ = 0x3d;
    }

    for (i = 0; i < len; i++) {
        *p++ = (u_char) (i * 7);
    }

    return p - start;
}


static void
check(const char *name, u_char *buf, size_t n, uint64_t messages,
    uint64_t bytes, ngx_int_t rc)
{
    size_t                 i, k, len, pos, limit;
    ngx_int_t              whole_rc, byte_rc, count_rc, trc;
    ngx_railgun_wsframe_t  whole, bytewise, counted;

    static size_t  pieces[] = { 1, 2, 3, 4, 6, 7, 8, 131, 4096, 65536,
                                (size_t) -1 };

    memset(&whole, 0, sizeof(whole));
    memset(&bytewise, 0, sizeof(bytewise));

    whole_rc = ngx_railgun_wsframe_feed(&whole, buf, n);

    byte_rc = NGX_OK;
    for (i = 0; i < n; i++) {
        if (ngx_railgun_wsframe_feed(&bytewise, buf + i, 1) != NGX_OK) {
            byte_rc = NGX_ERROR;
        }
    }

    tests++;

    /*
     * The tunnel, in writes of several sizes: a write that ends within the
     * span is not read, the next write read is told how many passed, and
     * so is the close.
     */

    for (k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
        memset(&counted, 0, sizeof(counted));
        count_rc = NGX_OK;
        pos = 0;
        limit = 0;

        for (i = 0; i < n; i += pieces[k]) {
            len = ngx_min(pieces[k], n - i);

            if (i + len <= limit) {
                continue;
            }

            trc = ngx_railgun_wsframe_tunnel(&counted,
                               counted.state == NGX_RAILGUN_WSFRAME_PAYLOAD
                               ? i - pos : 0,
                               buf + i, len);

            if (trc == NGX_ERROR) {
                count_rc = NGX_ERROR;
            }

            pos = i + len;
            limit = pos + ngx_railgun_wsframe_span(&counted);
        }

        if (counted.state == NGX_RAILGUN_WSFRAME_PAYLOAD) {
            ngx_railgun_wsframe_skip(&counted, n - pos);
        }

        if (counted.messages != messages || counted.bytes != bytes
            || count_rc != rc)
        {
            failures++;
            printf("not ok %d - %s: in writes of %zu, %llu/%llu rc %d, "
                   "expected %llu/%llu rc %d\n", tests, name, pieces[k],
                   (unsigned long long) counted.messages,
                   (unsigned long long) counted.bytes, (int) count_rc,
                   (unsigned long long) messages, (unsigned long long) bytes,
                   (int) rc);
            return;
        }
    }

    if (whole.messages != messages || whole.bytes != bytes
        || whole_rc != rc || bytewise.messages != messages
        || bytewise.bytes != bytes || byte_rc != rc)
    {
        failures++;
        printf("not ok %d - %s: whole %llu/%llu rc %d, bytewise %llu/%llu "
               "rc %d, expected %llu/%llu rc %d\n", tests, name,
               (unsigned long long) whole.messages,
               (unsigned long long) whole.bytes, (int) whole_rc,
               (unsigned long long) bytewise.messages,
               (unsigned long long) bytewise.bytes, (int) byte_rc,
               (unsigned long long) messages, (unsigned long long) bytes,
               (int) rc);
        return;
    }

    printf("ok %d - %s\n", tests, name);
}


int
main(void)
{
    u_char  *buf, *p;
    size_t   sizes[] = { 0, 1, 125, 126, 65535, 65536, 3 * 1024 * 1024 };
    size_t   i;
    char     name[64];

    buf = malloc(8 * 1024 * 1024);
    if (buf == NULL) {
        return 2;
    }

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        sprintf(name, "unmasked binary of %zu bytes", sizes[i]);
        check(name, buf, frame(buf, 1, 2, 0, sizes[i]), 1, sizes[i], NGX_OK);

        sprintf(name, "masked text of %zu bytes", sizes[i]);
        check(name, buf, frame(buf, 1, 1, 1, sizes[i]), 1, sizes[i], NGX_OK);
    }

    /* a fragmented message with control frames between its fragments */
    p = buf;
    p += frame(p, 0, 1, 1, 10);
    p += frame(p, 1, 9, 1, 4);           /* ping */
    p += frame(p, 0, 0, 1, 300);
    p += frame(p, 1, 10, 1, 0);          /* pong */
    p += frame(p, 1, 0, 1, 70000);
    p += frame(p, 1, 8, 1, 2);           /* close */
    check("fragments count once, control frames not at all", buf, p - buf,
          1, 10 + 300 + 70000, NGX_OK);

    p = buf;
    p += frame(p, 1, 1, 0, 5);
    p += frame(p, 1, 2, 0, 0);
    p += frame(p, 1, 1, 0, 200);
    check("three messages back to back", buf, p - buf, 3, 205, NGX_OK);

    p = buf;
    p += frame(p, 1, 1, 0, 5);
    p += frame(p, 1, 0, 0, 5);
    check("continuation without a message stops counting", buf, p - buf,
          1, 5, NGX_ERROR);

    p = buf;
    p += frame(p, 0, 1, 0, 5);
    p += frame(p, 1, 2, 0, 5);
    check("a new message inside a fragmented one", buf, p - buf, 0, 5,
          NGX_ERROR);

    p = buf;
    p += frame(p, 1, 3, 0, 5);
    check("reserved opcode", buf, p - buf, 0, 0, NGX_ERROR);

    p = buf;
    p += frame(p, 1, 9, 0, 126);
    check("control frame longer than 125", buf, p - buf, 0, 0, NGX_ERROR);

    p = buf;
    p += frame(p, 0, 9, 0, 1);
    check("fragmented control frame", buf, p - buf, 0, 0, NGX_ERROR);

    p = buf;
    p += frame(p, 1, 1, 0, 1);
    buf[0] |= 0x20;
    check("RSV2 set", buf, p - buf, 0, 0, NGX_ERROR);

    p = buf;
    p += frame(p, 1, 1, 0, 1);
    buf[0] |= 0x40;
    check("RSV1 (permessage-deflate) allowed", buf, p - buf, 1, 1, NGX_OK);

    p = buf;
    *p++ = 0x82; *p++ = 127;
    *p++ = 0x80; memset(p, 0, 7); p += 7;
    check("64-bit length with the top bit set", buf, p - buf, 0, 0,
          NGX_ERROR);

    p = buf;
    p += frame(p, 1, 2, 1, 1000);
    check("a frame cut short counts its bytes so far", buf, p - buf - 400,
          0, 600, NGX_OK);

    free(buf);

    printf("1..%d\n", tests);

    return failures ? 1 : 0;
}
