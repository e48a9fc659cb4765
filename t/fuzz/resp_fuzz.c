
/*
 * Copyright (C) ngx-railgun authors
 *
 * libFuzzer target of the Redis probe's reply handling: the process
 * function of ngx_railgun_probe_redis (hiredis' reader with the module's
 * own reply functions, the INFO fields, the results), driven the way the
 * probe core drives it: the reply bytes land in the exchange's bounded
 * buffer x->in (64 KB) and process() sees each read as (x->in->last, n),
 * n == 0 being the end of the connection; a full buffer is "reply too
 * large".
 *
 * Input: byte 0 configures the probe and the mode:
 *     bit 0  a password (AUTH first)     bits 3-4  role: any, master,
 *     bit 1  a user too (AUTH user pw)             replica, any
 *     bit 2  a database (SELECT)         bit 5     structured mode
 *     bit 6  structured: cut the stream  bit 7     structured: junk after
 * byte 1 is N (0-31), then N bytes give the sizes of the reads (cycled:
 * b < 128 reads b + 1 bytes, else (b - 127) * 256), then the rest is:
 *   - raw mode: the reply stream itself;
 *   - structured mode: choices that make a well-formed RESP stream of
 *     status, error, integer, nil, INFO bulk and array replies, whose
 *     outcome a plain reference model of the probe's contract predicts.
 *
 * Every stream is fed three times: in those reads, whole, and a byte at a
 * time (up to 4 KB); the bytes past the current read are poisoned, so a
 * read past the input is an ASan report.  Aborts unless: process() returns
 * NGX_AGAIN or NGX_DONE, and NGX_DONE at the end of the stream; a result
 * is one a Redis probe can have (ok, error, bad_role, auth), with a reason
 * unless it is ok, and ok only with the INFO fields taken; the three
 * feedings end alike; and in structured mode the result and the gauges
 * are those of the reference.
 *
 * The stand-ins below replace the few nginx functions the file calls and
 * the fuzzer does not link: pool allocations (kept in an arena freed after
 * each input), ngx_atoof (ngx_numbers.h, with nginx's other number
 * parsers) and an ngx_sprintf of "%i".
 */

/* sources: src/ngx_railgun_probe_redis.c */
/* libs: -lhiredis */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define MAX_REPLY     (64 * 1024)
#define MAX_ALLOCS    4096
#define MAX_REPLIES   16
#define STREAM_MAX    (2 * MAX_REPLY + 16384)


/* what the structured generator made, for the reference */

enum { R_STATUS, R_ERROR, R_INTEGER, R_NIL, R_BULK, R_ARRAY };

typedef struct {
    int          kind;
    size_t       text;        /* offset of the text in the stream */
    size_t       len;
    size_t       end;         /* the reply is whole at this offset */
} gen_reply_t;


typedef struct {
    const uint8_t  *p;
    const uint8_t  *end;
} choices_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* stand-ins for nginx */

static void    *allocs[MAX_ALLOCS];
static size_t   nallocs;


static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "resp_fuzz: invariant broken: %s\n", what);
        abort();
    }
}


#include "probe_feed.h"
#include "ngx_numbers.h"


static void *
arena_alloc(size_t size, int zero)
{
    void  *p;

    check(nallocs < MAX_ALLOCS, "arena full");

    p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);
    check(p != NULL, "malloc");

    allocs[nallocs++] = p;

    return p;
}


static void
arena_free(void)
{
    while (nallocs) {
        free(allocs[--nallocs]);
    }
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    return arena_alloc(size, 1);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return arena_alloc(size, 0);
}


/* "%i" and plain text only: all the file formats */

u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);

    while (*fmt) {
        if (fmt[0] == '%' && fmt[1] == 'i') {
            buf += sprintf((char *) buf, "%ld", (long) va_arg(args, ngx_int_t));
            fmt += 2;
            continue;
        }

        check(*fmt != '%', "ngx_sprintf stand-in: unknown format");
        *buf++ = *fmt++;
    }

    va_end(args);

    return buf;
}


/* feeding */

static outcome_t
feed(ngx_railgun_probe_t *probe, const uint8_t *stream, size_t len,
    const uint8_t *sizes, size_t nsizes, int mode)
{
    outcome_t  o;

    check(ngx_railgun_probe_redis.max_reply == MAX_REPLY, "max_reply");

    o = probe_feed(&ngx_railgun_probe_redis, probe, stream, len, sizes,
                   nsizes, mode, 1024);

    /* a result a Redis probe can have, said why */

    probe_feed_said(&o);
    check(o.result == NGX_RAILGUN_PROBE_OK
          || o.result == NGX_RAILGUN_PROBE_ERROR
          || o.result == NGX_RAILGUN_PROBE_BAD_ROLE
          || o.result == NGX_RAILGUN_PROBE_AUTH, "a Redis result");

    if (o.result == NGX_RAILGUN_PROBE_OK) {
        check(o.have_info, "ok with the INFO fields");

    } else {
        check(!o.have_info, "no INFO fields taken from a failure");
    }

    return o;
}


static void
same(outcome_t *a, outcome_t *b, const char *what)
{
    probe_same(a, b, what);
    check(a->have_info == b->have_info, what);

    if (a->have_info) {
        check(a->memory_used == b->memory_used, what);
        check(a->memory_max == b->memory_max, what);
        check(a->clients == b->clients, what);
    }
}


/* the structured generator */

static unsigned
choose(choices_t *c)
{
    return c->p < c->end ? *c->p++ : 0;
}


static void
put(u_char *s, size_t *len, const void *p, size_t n)
{
    check(*len + n <= STREAM_MAX, "stream space");
    memcpy(s + *len, p, n);
    *len += n;
}


static void
puts_(u_char *s, size_t *len, const char *p)
{
    put(s, len, p, strlen(p));
}


static const char  *errors[] = {
    "ERR unknown command 'SELECT'",
    "ERR DB index is out of range",
    "NOAUTH Authentication required.",
    "NOAUTH",
    "NOAUTHENTICATION",
    "WRONGPASS invalid username-password pair or user is disabled.",
    "WRONGPASSWORD",
    "LOADING Redis is loading the dataset in memory",
    "LOADIN",
    "ERR invalid password",
    "NOPERM this user has no permissions to run the 'info' command",
    "",
};

static const char  *statuses[] = {
    "PONG", "OK", "", "role:slave", "QUEUED",
};

static const char  *words[] = {
    "master", "slave", "replica", "sentinel", "up", "down", "0", "1", "",
    "12345", "9223372036854775807", "9223372036854775808", "-5", "4x",
    "18446744073709551615", " master", "master ", "up\r",
};

static const char  *fields[] = {
    "role", "master_link_status", "loading", "used_memory", "maxmemory",
    "connected_clients", "used_memory_rss", "maxmemory_policy",
    "async_loading", "connected_slaves", "Role", "# Replication",
    "keyspace_hits", "keyspace_misses", "evicted_keys", "pubsub_channels",
    "master_repl_offset", "slave_repl_offset",
};


static void
gen_info_line(choices_t *c, u_char *s, size_t *len)
{
    u_char    num[32];
    unsigned  f, v, i;
    uint64_t  n;

    f = choose(c);

    if (f % 16 == 15) {
        /* some junk */
        v = choose(c) % 24;
        for (i = 0; i < v; i++) {
            num[0] = (u_char) (choose(c) | 1);   /* never \0 nor \n */
            put(s, len, num, 1);
        }

    } else {
        puts_(s, len, fields[f % (sizeof(fields) / sizeof(fields[0]))]);
        puts_(s, len, ":");

        v = choose(c);

        if (v & 0x80) {
            /* a number of 0-8 bytes of choices */
            n = 0;
            for (i = v & 7; i; i--) {
                n = n << 8 | choose(c);
            }
            put(s, len, num, sprintf((char *) num, "%llu",
                                     (unsigned long long) n));

        } else {
            puts_(s, len, words[v % (sizeof(words) / sizeof(words[0]))]);
        }
    }

    switch (choose(c) % 4) {
    case 0:
        puts_(s, len, "\n");
        break;
    case 3:
        break;      /* the last line may have no end */
    default:
        puts_(s, len, "\r\n");
    }
}


/* one reply; returns 0 when the stream is long enough */

static int
gen_reply(choices_t *c, u_char *s, size_t *len, gen_reply_t *r)
{
    char      head[32];
    u_char    body[8192];
    size_t    blen, n, i;
    unsigned  kind, k;

    if (*len > MAX_REPLY + 1024) {
        return 0;
    }

    kind = choose(c) % 16;

    switch (kind) {

    case 0: case 1: case 2:
        r->kind = R_STATUS;
        puts_(s, len, "+");
        r->text = *len;
        puts_(s, len, statuses[choose(c) % 5]);
        r->len = *len - r->text;
        puts_(s, len, "\r\n");
        break;

    case 3: case 4:
        r->kind = R_ERROR;
        puts_(s, len, "-");
        r->text = *len;
        puts_(s, len, errors[choose(c) % (sizeof(errors) / sizeof(errors[0]))]);
        r->len = *len - r->text;
        puts_(s, len, "\r\n");
        break;

    case 5:
        r->kind = R_INTEGER;
        puts_(s, len, ":42\r\n");
        break;

    case 6:
        r->kind = R_NIL;
        puts_(s, len, "$-1\r\n");
        break;

    case 7: case 8:
        r->kind = R_ARRAY;
        k = choose(c) % 4;
        if (k == 3) {
            puts_(s, len, "*200000000\r\n");
        } else {
            n = sprintf(head, "*%u\r\n", k);
            put(s, len, head, n);
        }
        r->end = *len;
        for (i = 0; i < k; i++) {
            puts_(s, len, "$1\r\nx\r\n");
        }
        return 1;

    default:
        r->kind = R_BULK;
        blen = 0;

        k = choose(c);

        if (k == 255) {
            /* a big one, toward the 64 KB bound */
            n = (size_t) choose(c) << 8 | choose(c);
            n = ngx_min(n, STREAM_MAX - *len - 64);
            put(s, len, head, sprintf(head, "$%zu\r\n", n));
            r->text = *len;
            memset(s + *len, 'x', n);
            *len += n;
            r->len = n;
            puts_(s, len, "\r\n");
            break;
        }

        /* lines are under 64 bytes: 23 of them fit */
        for (i = k % 24; i; i--) {
            gen_info_line(c, body, &blen);
        }

        put(s, len, head, sprintf(head, "$%zu\r\n", blen));
        r->text = *len;
        put(s, len, body, blen);
        r->len = blen;
        puts_(s, len, "\r\n");
        break;
    }

    r->end = *len;
    return 1;
}


/* the reference: the probe's contract, for well-formed replies */

static int
field(const u_char *line, size_t n, const char *name, const u_char **v,
    size_t *vlen)
{
    size_t  len = strlen(name);

    if (n <= len || memcmp(line, name, len) != 0 || line[len] != ':') {
        return 0;
    }

    *v = line + len + 1;
    *vlen = n - len - 1;

    if (*vlen && (*v)[*vlen - 1] == '\r') {
        (*vlen)--;
    }

    return 1;
}


static int
is(const u_char *v, size_t n, const char *s)
{
    return n == strlen(s) && memcmp(v, s, n) == 0;
}


static uint64_t
number(const u_char *v, size_t n)
{
    size_t    i;
    uint64_t  x;

    if (n == 0 || n > 19) {
        return 0;
    }

    for (i = 0, x = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
        x = x * 10 + (v[i] - '0');
    }

    return x > (uint64_t) INT64_MAX ? 0 : x;
}


static outcome_t
reference(ngx_railgun_probe_t *probe, const u_char *s, gen_reply_t *r,
    size_t nr, size_t stream_len)
{
    size_t         i, limit, idx, first_info, n, vlen;
    outcome_t      o;
    const u_char  *p, *end, *eol, *v;

    ngx_memzero(&o, sizeof(outcome_t));

    limit = ngx_min(stream_len, (size_t) MAX_REPLY);
    first_info = probe->commands - 5;     /* the INFO sections */
    idx = 0;
    o.result = NGX_RAILGUN_PROBE_OK;

    for (i = 0; i < nr; i++) {

        if (r[i].end > limit) {
            break;
        }

        if (r[i].kind == R_ARRAY) {
            o.result = NGX_RAILGUN_PROBE_ERROR;
            return o;
        }

        if (r[i].kind == R_ERROR) {
            p = s + r[i].text;
            n = r[i].len;

            if ((probe->password.len && idx == 0)
                || (n >= 7 && memcmp(p, "NOAUTH ", 7) == 0)
                || (n >= 9 && memcmp(p, "WRONGPASS", 9) == 0))
            {
                o.result = NGX_RAILGUN_PROBE_AUTH;

            } else {
                o.result = NGX_RAILGUN_PROBE_ERROR;
            }

            return o;
        }

        if (r[i].kind == R_BULK && idx >= first_info) {
            p = s + r[i].text;
            end = p + r[i].len;

            for ( /* void */ ; p < end; p = eol + 1) {
                eol = memchr(p, '\n', end - p);
                if (eol == NULL) {
                    eol = end;
                }

                n = eol - p;

                if (field(p, n, "role", &v, &vlen)) {
                    if ((probe->role == NGX_RAILGUN_ROLE_MASTER
                         && !is(v, vlen, "master"))
                        || (probe->role == NGX_RAILGUN_ROLE_REPLICA
                            && !is(v, vlen, "slave")))
                    {
                        if (o.result == NGX_RAILGUN_PROBE_OK) {
                            o.result = NGX_RAILGUN_PROBE_BAD_ROLE;
                        }
                    }

                } else if (field(p, n, "master_link_status", &v, &vlen)) {
                    if (!is(v, vlen, "up")
                        && o.result == NGX_RAILGUN_PROBE_OK)
                    {
                        o.result = NGX_RAILGUN_PROBE_BAD_ROLE;
                    }

                } else if (field(p, n, "loading", &v, &vlen)) {
                    if (!is(v, vlen, "0")
                        && o.result == NGX_RAILGUN_PROBE_OK)
                    {
                        o.result = NGX_RAILGUN_PROBE_ERROR;
                    }

                } else if (field(p, n, "used_memory", &v, &vlen)) {
                    o.memory_used = number(v, vlen);

                } else if (field(p, n, "maxmemory", &v, &vlen)) {
                    o.memory_max = number(v, vlen);

                } else if (field(p, n, "connected_clients", &v, &vlen)) {
                    o.clients = number(v, vlen);
                }
            }

            if (o.result != NGX_RAILGUN_PROBE_OK) {
                return o;
            }
        }

        if (++idx == probe->commands) {
            o.have_info = 1;
            return o;
        }
    }

    /* cut short, or too large */
    o.result = NGX_RAILGUN_PROBE_ERROR;
    return o;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                nsizes, len, nr, cut;
    u_char               *stream;
    unsigned              cfg;
    outcome_t             a, b, c, want;
    choices_t             ch;
    ngx_conf_t            cf;
    gen_reply_t           replies[MAX_REPLIES];
    const uint8_t        *sizes, *rest;
    ngx_railgun_probe_t   probe;

    if (size < 2) {
        return 0;
    }

    cfg = data[0];
    nsizes = data[1] % 32;

    if (size < 2 + nsizes) {
        return 0;
    }

    sizes = data + 2;
    rest = data + 2 + nsizes;
    len = size - 2 - nsizes;

    /* the probe, made as the configuration makes it */

    ngx_memzero(&probe, sizeof(ngx_railgun_probe_t));
    ngx_memzero(&cf, sizeof(ngx_conf_t));

    ngx_str_set(&probe.name, "fuzz");
    ngx_str_set(&probe.target, "127.0.0.1:6379");
    probe.type = NGX_RAILGUN_PROBE_REDIS;
    probe.db = -1;

    if (cfg & 1) {
        ngx_str_set(&probe.password, "s3cret");

        if (cfg & 2) {
            ngx_str_set(&probe.user, "probe");
        }
    }

    if (cfg & 4) {
        probe.db = 3;
    }

    probe.role = (cfg >> 3 & 3) == 3 ? NGX_RAILGUN_ROLE_ANY : cfg >> 3 & 3;

    check(ngx_railgun_probe_redis.init_conf(&cf, &probe) == NGX_OK,
          "init_conf");
    check(probe.commands == 6 + !!(cfg & 1) + !!(cfg & 4), "commands");
    check(probe.request.len > 0, "a request");

    nr = 0;

    if (cfg & 0x20) {
        /* structured */

        stream = malloc(STREAM_MAX);
        check(stream != NULL, "malloc");

        ch.p = rest;
        ch.end = rest + len;
        len = 0;

        while (nr < MAX_REPLIES && ch.p < ch.end
               && gen_reply(&ch, stream, &len, &replies[nr]))
        {
            nr++;
        }

        if ((cfg & 0x80) && nr + 2 <= MAX_REPLIES) {
            /* one more reply, an array, then junk that is no RESP */
            replies[nr].kind = R_STATUS;
            puts_(stream, &len, "+");
            replies[nr].text = len;
            puts_(stream, &len, "PONG");
            replies[nr].len = 4;
            puts_(stream, &len, "\r\n");
            replies[nr++].end = len;

            replies[nr].kind = R_ARRAY;
            puts_(stream, &len, "*3\r\n");
            replies[nr++].end = len;

            puts_(stream, &len, " garbage \r\n");
        }

        if (cfg & 0x40) {
            /* cut where the last two bytes of the input say */
            cut = (size_t) data[size - 1] << 8 | data[size - 2];
            len = len ? cut % len : 0;
        }

    } else {
        stream = malloc(len ? len : 1);
        check(stream != NULL, "malloc");
        memcpy(stream, rest, len);
    }

    a = feed(&probe, stream, len, sizes, nsizes, 0);
    b = feed(&probe, stream, len, sizes, nsizes, 1);
    same(&a, &b, "read in pieces or whole: the same outcome");

    if (len <= 4096) {
        c = feed(&probe, stream, len, sizes, nsizes, 2);
        same(&a, &c, "read whole or a byte at a time: the same outcome");
    }

    if (cfg & 0x20) {
        want = reference(&probe, stream, replies, nr, len);

        check(a.result == want.result, "the result of the reference");
        check(a.have_info == want.have_info, "INFO taken as the reference");

        if (want.have_info) {
            check(a.memory_used == want.memory_used, "used_memory");
            check(a.memory_max == want.memory_max, "maxmemory");
            check(a.clients == want.clients, "connected_clients");
        }
    }

    free(stream);
    arena_free();

    return 0;
}
