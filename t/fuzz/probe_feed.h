
/*
 * Copyright (C) ngx-railgun authors
 *
 * The feeding shared by the probe reply fuzz targets: a reply handed to a
 * protocol's process() the way the probe core does, in reads of sizes the
 * input chose (mode 0), whole (1) or a byte at a time (2), in a buffer of
 * the protocol's max_reply whose part past the reply so far is poisoned.
 * probe_feed_said() and probe_same() are the checks every target makes
 * of an outcome and of two feedings of one reply.  The including file
 * defines check() first.
 */


#ifndef _PROBE_FEED_H_INCLUDED_
#define _PROBE_FEED_H_INCLUDED_


#include <sanitizer/asan_interface.h>


typedef struct {
    ngx_int_t    rc;
    ngx_uint_t   result;
    const char  *reason;
    ngx_uint_t   have_info;
    uint64_t     memory_used;
    uint64_t     memory_max;
    uint64_t     clients;
} outcome_t;


static size_t
read_size(const uint8_t *sizes, size_t nsizes, size_t k, size_t total,
    size_t max_reads)
{
    size_t  n, least;

    if (nsizes == 0) {
        n = 1024;

    } else {
        n = sizes[k % nsizes];
        n = n < 128 ? n + 1 : (n - 127) * 256;
    }

    /* at most about max_reads reads of the reply */
    least = total / max_reads + 1;

    return n < least ? least : n;
}


/* mode 0: in the reads of the input, 1: whole, 2: a byte at a time */

static outcome_t
probe_feed(ngx_railgun_probe_proto_t *proto, ngx_railgun_probe_t *probe,
    const uint8_t *reply, size_t len, const uint8_t *sizes, size_t nsizes,
    int mode, size_t max_reads)
{
    size_t                         off, n, k;
    u_char                        *buf;
    ngx_buf_t                      b;
    outcome_t                      o;
    ngx_railgun_probe_exchange_t   x;

    ngx_memzero(&x, sizeof(ngx_railgun_probe_exchange_t));
    ngx_memzero(&b, sizeof(ngx_buf_t));
    ngx_memzero(&o, sizeof(outcome_t));

    buf = malloc(proto->max_reply);
    check(buf != NULL, "malloc");

    b.start = buf;
    b.pos = buf;
    b.last = buf;
    b.end = buf + proto->max_reply;

    x.probe = probe;
    x.in = &b;

    check(proto->start(&x) == NGX_OK, "start");

    off = 0;

    for (k = 0; /* void */; k++) {

        if (b.last == b.end) {
            /* the core: a reply larger than the buffer is a failure */
            o.rc = NGX_DONE;
            x.result = NGX_RAILGUN_PROBE_ERROR;
            x.reason = "reply too large";
            break;
        }

        n = mode == 0 ? read_size(sizes, nsizes, k, len, max_reads)
            : mode == 1 ? len : 1;

        n = ngx_min(n, (size_t) (b.end - b.last));
        n = ngx_min(n, len - off);

        if (n) {
            memcpy(b.last, reply + off, n);
        }

        /* nothing past the reply so far may be read */
        ASAN_POISON_MEMORY_REGION(b.last + n, b.end - b.last - n);

        o.rc = proto->process(&x, b.last, n);

        ASAN_UNPOISON_MEMORY_REGION(b.last + n, b.end - b.last - n);

        check(o.rc == NGX_AGAIN || o.rc == NGX_DONE,
              "process returns NGX_AGAIN or NGX_DONE");

        if (n == 0) {
            check(o.rc == NGX_DONE, "the end of the reply ends it");
            break;
        }

        b.last += n;
        off += n;

        if (o.rc == NGX_DONE) {
            break;
        }
    }

    o.result = x.result;
    o.reason = x.reason;
    o.have_info = x.have_info;
    o.memory_used = x.memory_used;
    o.memory_max = x.memory_max;
    o.clients = x.clients;

    proto->finish(&x);

    free(buf);

    return o;
}


/* a result in range, with a reason unless it is ok */

static void
probe_feed_said(outcome_t *o)
{
    check(o->result < NGX_RAILGUN_PROBE_NRESULTS, "result in range");

    if (o->result == NGX_RAILGUN_PROBE_OK) {
        check(o->reason == NULL, "ok without a reason");

    } else {
        check(o->reason != NULL && o->reason[0] != '\0', "failure says why");
    }
}


/* two feedings of one reply ended alike */

static void
probe_same(outcome_t *a, outcome_t *b, const char *what)
{
    check(a->rc == b->rc, what);
    check(a->result == b->result, what);
    check((a->reason == NULL) == (b->reason == NULL), what);
    check(a->reason == NULL || strcmp(a->reason, b->reason) == 0, what);
}


#endif /* _PROBE_FEED_H_INCLUDED_ */
