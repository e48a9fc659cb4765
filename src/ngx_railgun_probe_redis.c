
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>


/*
 * The Redis probe: hiredis formats the pipelined request (AUTH, SELECT, PING,
 * INFO replication, persistence, memory, clients) and its reader parses the
 * replies, while nginx does all the I/O.  The reader is made with our own
 * reply functions: hiredis' default ones allocate by the length a reply
 * declares, so a hostile "*200000000" would reserve gigabytes.  Ours keep
 * nothing, look at each reply in place and refuse arrays; the probe core
 * caps the bytes fed.
 */

#define NGX_RAILGUN_REDIS_MAX_REPLY  (64 * 1024)


typedef struct {
    redisReader                   *reader;
    ngx_railgun_probe_exchange_t  *exchange;
    ngx_uint_t                     index;       /* the reply being read */
    ngx_uint_t                     first_info;  /* index of INFO replication */
    ngx_uint_t                     failed;      /* unsigned  failed:1; */
} ngx_railgun_redis_ctx_t;


static ngx_int_t ngx_railgun_redis_init_conf(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
static ngx_int_t ngx_railgun_redis_start(ngx_railgun_probe_exchange_t *x);
static ngx_int_t ngx_railgun_redis_process(ngx_railgun_probe_exchange_t *x,
    u_char *p, size_t n);
static void ngx_railgun_redis_finish(ngx_railgun_probe_exchange_t *x);
static void *ngx_railgun_redis_string(const redisReadTask *task, char *str,
    size_t len);
static void *ngx_railgun_redis_array(const redisReadTask *task, int n);
static void *ngx_railgun_redis_integer(const redisReadTask *task,
    long long value);
static void *ngx_railgun_redis_nil(const redisReadTask *task);
static void ngx_railgun_redis_free(void *obj);
static void ngx_railgun_redis_fail(ngx_railgun_redis_ctx_t *ctx,
    ngx_uint_t result, const char *reason);
static void ngx_railgun_redis_info(ngx_railgun_redis_ctx_t *ctx,
    u_char *p, u_char *end);
static uint64_t ngx_railgun_redis_number(ngx_str_t *value);
static ngx_int_t ngx_railgun_redis_field(u_char *line, u_char *end,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_railgun_redis_append(ngx_conf_t *cf, ngx_str_t *request,
    int argc, const char **argv, const size_t *lens);


ngx_railgun_probe_proto_t  ngx_railgun_probe_redis = {
    ngx_railgun_redis_init_conf,
    ngx_railgun_redis_start,
    ngx_railgun_redis_process,
    ngx_railgun_redis_finish,
    NGX_RAILGUN_REDIS_MAX_REPLY
};


static redisReplyObjectFunctions  ngx_railgun_redis_functions = {
    ngx_railgun_redis_string,
    ngx_railgun_redis_array,
    ngx_railgun_redis_integer,
    ngx_railgun_redis_nil,
    ngx_railgun_redis_free
};


/* what our reply functions hand back: nothing is kept */
static int  ngx_railgun_redis_reply;


static const char  *ngx_railgun_redis_sections[] = {
    "replication", "persistence", "memory", "clients", "stats"
};

#define NGX_RAILGUN_REDIS_NSECTIONS                                          \
    (sizeof(ngx_railgun_redis_sections) / sizeof(ngx_railgun_redis_sections[0]))

/* what x->offsets collects: a replica's lag needs all three */
#define NGX_RAILGUN_REDIS_MASTER_OFFSET   1
#define NGX_RAILGUN_REDIS_REPLICA_OFFSET  2
#define NGX_RAILGUN_REDIS_IS_REPLICA      4
#define NGX_RAILGUN_REDIS_LAG             7


static ngx_int_t
ngx_railgun_redis_start(ngx_railgun_probe_exchange_t *x)
{
    ngx_railgun_redis_ctx_t  *ctx;

    ctx = ngx_pcalloc(x->pool, sizeof(ngx_railgun_redis_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->reader = redisReaderCreateWithFunctions(&ngx_railgun_redis_functions);
    if (ctx->reader == NULL) {
        return NGX_ERROR;
    }

    ctx->reader->privdata = ctx;
    ctx->exchange = x;
    ctx->first_info = x->probe->commands - NGX_RAILGUN_REDIS_NSECTIONS;

    x->data = ctx;

    return NGX_OK;
}


static ngx_int_t
ngx_railgun_redis_process(ngx_railgun_probe_exchange_t *x, u_char *p,
    size_t n)
{
    void                     *reply;
    ngx_railgun_redis_ctx_t  *ctx;

    ctx = x->data;

    if (n == 0) {
        ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR,
                               "connection closed early");
        return NGX_DONE;
    }

    if (redisReaderFeed(ctx->reader, (const char *) p, n) != REDIS_OK) {
        ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR, "bad reply");
        return NGX_DONE;
    }

    for ( ;; ) {
        reply = NULL;

        if (redisReaderGetReply(ctx->reader, &reply) != REDIS_OK) {
            /* a protocol error, or an array our functions refused */
            ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR,
                                   "bad reply");
            return NGX_DONE;
        }

        if (reply == NULL) {
            return NGX_AGAIN;
        }

        if (ctx->failed) {
            return NGX_DONE;
        }

        if (++ctx->index == x->probe->commands) {
            break;
        }
    }

    x->have_info = 1;

    /* the probe core looks for a lag only where INFO gave all of it */

    if (x->offsets != NGX_RAILGUN_REDIS_LAG) {
        x->offsets = 0;
    }

    if (x->result == NGX_RAILGUN_PROBE_OK) {
        x->reason = NULL;
    }

    return NGX_DONE;
}


static void
ngx_railgun_redis_finish(ngx_railgun_probe_exchange_t *x)
{
    ngx_railgun_redis_ctx_t  *ctx;

    ctx = x->data;

    if (ctx && ctx->reader) {
        redisReaderFree(ctx->reader);
        ctx->reader = NULL;
    }
}


/* status, error and bulk string replies, read in place */

static void *
ngx_railgun_redis_string(const redisReadTask *task, char *str, size_t len)
{
    u_char                   *p;
    ngx_uint_t                auth;
    ngx_railgun_probe_t      *probe;
    ngx_railgun_redis_ctx_t  *ctx;

    ctx = task->privdata;
    probe = ctx->exchange->probe;
    p = (u_char *) str;

    if (ctx->failed || task->parent != NULL) {
        return &ngx_railgun_redis_reply;
    }

    auth = (probe->password.len && ctx->index == 0);

    if (task->type == REDIS_REPLY_ERROR) {

        if (auth
            || (len >= 7 && ngx_strncmp(p, "NOAUTH ", 7) == 0)
            || (len >= 9 && ngx_strncmp(p, "WRONGPASS", 9) == 0))
        {
            ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_AUTH,
                                   "authentication failed");

        } else if (len >= 7 && ngx_strncmp(p, "LOADING", 7) == 0) {
            ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR,
                                   "loading the dataset");

        } else {
            ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR,
                                   "error reply");
        }

        return &ngx_railgun_redis_reply;
    }

    if (ctx->index >= ctx->first_info && task->type == REDIS_REPLY_STRING) {
        ngx_railgun_redis_info(ctx, p, p + len);
    }

    return &ngx_railgun_redis_reply;
}


static void *
ngx_railgun_redis_array(const redisReadTask *task, int n)
{
    /* no command we send answers with an array: refuse it unread */
    return NULL;
}


static void *
ngx_railgun_redis_integer(const redisReadTask *task, long long value)
{
    return &ngx_railgun_redis_reply;
}


static void *
ngx_railgun_redis_nil(const redisReadTask *task)
{
    return &ngx_railgun_redis_reply;
}


static void
ngx_railgun_redis_free(void *obj)
{
    /* nothing was allocated */
}


static void
ngx_railgun_redis_fail(ngx_railgun_redis_ctx_t *ctx, ngx_uint_t result,
    const char *reason)
{
    if (ctx->failed) {
        return;
    }

    ctx->failed = 1;
    ctx->exchange->result = result;
    ctx->exchange->reason = reason;
}


/* "field:value\r\n" lines of INFO */

static void
ngx_railgun_redis_info(ngx_railgun_redis_ctx_t *ctx, u_char *p, u_char *end)
{
    u_char                        *eol;
    ngx_str_t                      v;
    ngx_railgun_probe_t           *probe;
    ngx_railgun_probe_exchange_t  *x;

    x = ctx->exchange;
    probe = x->probe;

    for ( /* void */ ; p < end; p = eol + 1) {

        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        if (ngx_railgun_redis_field(p, eol, "role", &v) == NGX_OK) {

            if (v.len == 5 && ngx_strncmp(v.data, "slave", 5) == 0) {
                x->offsets |= NGX_RAILGUN_REDIS_IS_REPLICA;
            }

            if ((probe->role == NGX_RAILGUN_ROLE_MASTER
                 && !(v.len == 6 && ngx_strncmp(v.data, "master", 6) == 0))
                || (probe->role == NGX_RAILGUN_ROLE_REPLICA
                    && !(v.len == 5 && ngx_strncmp(v.data, "slave", 5) == 0)))
            {
                ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_BAD_ROLE,
                                       "wrong role");
            }

        } else if (ngx_railgun_redis_field(p, eol, "master_link_status", &v)
                   == NGX_OK)
        {
            if (!(v.len == 2 && ngx_strncmp(v.data, "up", 2) == 0)) {
                ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_BAD_ROLE,
                                       "replica's link to its master "
                                       "is down");
            }

        } else if (ngx_railgun_redis_field(p, eol, "loading", &v) == NGX_OK) {

            if (!(v.len == 1 && v.data[0] == '0')) {
                ngx_railgun_redis_fail(ctx, NGX_RAILGUN_PROBE_ERROR,
                                       "loading the dataset");
            }

        } else if (ngx_railgun_redis_field(p, eol, "used_memory", &v)
                   == NGX_OK)
        {
            x->memory_used = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "maxmemory", &v)
                   == NGX_OK)
        {
            x->memory_max = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "connected_clients", &v)
                   == NGX_OK)
        {
            x->clients = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "keyspace_hits", &v)
                   == NGX_OK)
        {
            x->keyspace_hits = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "keyspace_misses", &v)
                   == NGX_OK)
        {
            x->keyspace_misses = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "evicted_keys", &v)
                   == NGX_OK)
        {
            x->evicted_keys = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "pubsub_channels", &v)
                   == NGX_OK)
        {
            x->pubsub_channels = ngx_railgun_redis_number(&v);

        } else if (ngx_railgun_redis_field(p, eol, "master_repl_offset", &v)
                   == NGX_OK)
        {
            x->master_offset = ngx_railgun_redis_number(&v);
            x->offsets |= NGX_RAILGUN_REDIS_MASTER_OFFSET;

        } else if (ngx_railgun_redis_field(p, eol, "slave_repl_offset", &v)
                   == NGX_OK)
        {
            x->replica_offset = ngx_railgun_redis_number(&v);
            x->offsets |= NGX_RAILGUN_REDIS_REPLICA_OFFSET;
        }
    }
}


static ngx_int_t
ngx_railgun_redis_field(u_char *line, u_char *end, const char *name,
    ngx_str_t *value)
{
    size_t  len;

    len = ngx_strlen(name);

    if ((size_t) (end - line) <= len
        || ngx_strncmp(line, name, len) != 0
        || line[len] != ':')
    {
        return NGX_DECLINED;
    }

    value->data = line + len + 1;
    value->len = end - value->data;

    if (value->len && value->data[value->len - 1] == '\r') {
        value->len--;
    }

    return NGX_OK;
}


/* an INFO number; a value that is not one reads as 0 */

static uint64_t
ngx_railgun_redis_number(ngx_str_t *value)
{
    off_t  n;

    n = ngx_atoof(value->data, value->len);

    return n == NGX_ERROR ? 0 : (uint64_t) n;
}


/* the request never changes: it is made once, at configuration */

static ngx_int_t
ngx_railgun_redis_init_conf(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    u_char       db[NGX_INT_T_LEN];
    size_t       lens[3];
    ngx_uint_t   i;
    const char  *argv[3];

    ngx_str_null(&probe->request);
    probe->commands = 0;

    if (probe->password.len) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = (const char *) probe->user.data;
        lens[1] = probe->user.len;
        argv[2] = (const char *) probe->password.data;
        lens[2] = probe->password.len;

        if (probe->user.len) {
            if (ngx_railgun_redis_append(cf, &probe->request, 3, argv, lens)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            argv[1] = argv[2];
            lens[1] = lens[2];

            if (ngx_railgun_redis_append(cf, &probe->request, 2, argv, lens)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        probe->commands++;
    }

    if (probe->db >= 0) {
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = (const char *) db;
        lens[1] = ngx_sprintf(db, "%i", probe->db) - db;

        if (ngx_railgun_redis_append(cf, &probe->request, 2, argv, lens)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        probe->commands++;
    }

    argv[0] = "PING";
    lens[0] = 4;

    if (ngx_railgun_redis_append(cf, &probe->request, 1, argv, lens)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    probe->commands++;

    /* one section per INFO: Redis before 7 takes no more */

    for (i = 0; i < NGX_RAILGUN_REDIS_NSECTIONS; i++) {
        argv[0] = "INFO";
        lens[0] = 4;
        argv[1] = ngx_railgun_redis_sections[i];
        lens[1] = ngx_strlen(ngx_railgun_redis_sections[i]);

        if (ngx_railgun_redis_append(cf, &probe->request, 2, argv, lens)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        probe->commands++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_railgun_redis_append(ngx_conf_t *cf, ngx_str_t *request, int argc,
    const char **argv, const size_t *lens)
{
    int      len;
    char    *cmd;
    u_char  *p;

    len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(cf->pool, request->len + len);
    if (p == NULL) {
        redisFreeCommand(cmd);
        return NGX_ERROR;
    }

    if (request->len) {
        ngx_memcpy(p, request->data, request->len);
    }

    ngx_memcpy(p + request->len, cmd, len);
    redisFreeCommand(cmd);

    request->data = p;
    request->len += len;

    return NGX_OK;
}
