
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_RAILGUN_PROBE_H_INCLUDED_
#define _NGX_RAILGUN_PROBE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_store.h"
#include "ngx_railgun_conf.h"


/*
 * Active probes: every worker arms a cancelable timer per probe; when it
 * fires, the workers compete with a compare-and-swap on the probe's next due
 * time in the zone and the one winner probes.  The exchange is nginx's own
 * non-blocking connection with one timer for all of it; a protocol file only
 * makes the request bytes and reads the reply.
 */


#define NGX_RAILGUN_PROBE_HTTP     0
#define NGX_RAILGUN_PROBE_REDIS    1
#define NGX_RAILGUN_PROBE_TCP      2

/* body=: the longest text, matched across the chunks of a reply */
#define NGX_RAILGUN_PROBE_MAX_BODY  1024

#define NGX_RAILGUN_ROLE_ANY       0
#define NGX_RAILGUN_ROLE_MASTER    1
#define NGX_RAILGUN_ROLE_REPLICA   2

/* results, in the order of their label values */
#define NGX_RAILGUN_PROBE_OK          0
#define NGX_RAILGUN_PROBE_TIMEOUT     1
#define NGX_RAILGUN_PROBE_REFUSED     2
#define NGX_RAILGUN_PROBE_ERROR       3
#define NGX_RAILGUN_PROBE_BAD_STATUS  4
#define NGX_RAILGUN_PROBE_BAD_BODY    5
#define NGX_RAILGUN_PROBE_BAD_ROLE    6
#define NGX_RAILGUN_PROBE_AUTH        7
#define NGX_RAILGUN_PROBE_TLS         8   /* handshake or verification */
#define NGX_RAILGUN_PROBE_NRESULTS    9

/* the probe's state record in the zone: values[] of a state series */
#define NGX_RAILGUN_PROBE_NEXT_DUE    0   /* ngx_current_msec */
#define NGX_RAILGUN_PROBE_STATE       1   /* 0 no result yet, 1 down, 2 up */
#define NGX_RAILGUN_PROBE_OKS         2   /* consecutive successes */
#define NGX_RAILGUN_PROBE_FAILS       3   /* consecutive failures */
#define NGX_RAILGUN_PROBE_NSTATE      4

#define NGX_RAILGUN_PROBE_UNKNOWN     0
#define NGX_RAILGUN_PROBE_DOWN        1
#define NGX_RAILGUN_PROBE_UP          2


typedef struct ngx_railgun_probe_s           ngx_railgun_probe_t;
typedef struct ngx_railgun_probe_exchange_s  ngx_railgun_probe_exchange_t;


typedef ngx_railgun_conf_status_t  ngx_railgun_probe_status_t;


/* family numbers in the store, given by the module that owns them */

typedef struct {
    ngx_uint_t                     state;
    ngx_uint_t                     up;
    ngx_uint_t                     checks;
    ngx_uint_t                     duration;
    ngx_uint_t                     transitions;
    ngx_uint_t                     memory_used;
    ngx_uint_t                     memory_max;
    ngx_uint_t                     clients;
    ngx_uint_t                     peer_up;
    ngx_uint_t                     keyspace_hits;
    ngx_uint_t                     keyspace_misses;
    ngx_uint_t                     evicted_keys;
    ngx_uint_t                     pubsub_channels;
    ngx_uint_t                     replication_lag;
} ngx_railgun_probe_families_t;


struct ngx_railgun_probe_s {
    ngx_str_t                      name;
    ngx_str_t                      file;          /* where it is configured */
    ngx_uint_t                     line;
    ngx_str_t                      target;        /* host:port, the label */
    ngx_addr_t                     addr;
    ngx_uint_t                     type;

    ngx_msec_t                     interval;
    ngx_msec_t                     timeout;
    ngx_msec_t                     jitter;
    ngx_uint_t                     rise;
    ngx_uint_t                     fall;
    ngx_uint_t                     initial_up;    /* unsigned  initial_up:1; */
    ngx_uint_t                     check;         /* of an upstream server */
    ngx_uint_t                     configured_down;
    ngx_uint_t                     disabled;      /* no state in the zone */

    /* http */
    ngx_str_t                      uri;
    ngx_str_t                      host;
    ngx_str_t                      body;
    ngx_array_t                   *status;   /* ngx_railgun_probe_status_t */

    /* redis */
    ngx_str_t                      user;
    ngx_str_t                      password;
    ngx_int_t                      db;
    ngx_uint_t                     role;
    ngx_uint_t                     commands;      /* replies to expect */

    ngx_str_t                      request;

    /* tls: https://, rediss:// and railgun_check ssl */
    ngx_uint_t                     ssl;           /* unsigned  ssl:1; */
    ngx_int_t                      ssl_verify;    /* NGX_CONF_UNSET: default */
    ngx_str_t                      ssl_name;      /* SNI, the name verified */
    ngx_uint_t                     ssl_name_ip;   /* an address: no SNI */
    ngx_str_t                      ssl_trusted_certificate;
    ngx_str_t                      ssl_certificate;
    ngx_str_t                      ssl_certificate_key;
#if (NGX_SSL)
    ngx_ssl_t                     *ssl_ctx;       /* a check's probes share */
#endif

    /* the rest is each worker's own */

    ngx_event_t                    timer;
    ngx_railgun_probe_exchange_t  *exchange;
#if (NGX_SSL)
    ngx_ssl_session_t             *ssl_session;   /* reused by the next */
#endif
    ngx_railgun_series_t          *state;
    ngx_railgun_series_t          *round;         /* values[0]: prober pid */
    ngx_railgun_series_t          *up;
    ngx_railgun_series_t          *duration;
    ngx_railgun_series_t          *checks[NGX_RAILGUN_PROBE_NRESULTS];
    ngx_railgun_series_t          *transitions[2];
    ngx_railgun_series_t          *memory_used;
    ngx_railgun_series_t          *memory_max;
    ngx_railgun_series_t          *clients;
    ngx_railgun_series_t          *keyspace_hits;
    ngx_railgun_series_t          *keyspace_misses;
    ngx_railgun_series_t          *evicted_keys;
    ngx_railgun_series_t          *pubsub_channels;
    ngx_railgun_series_t          *replication_lag;
};


struct ngx_railgun_probe_exchange_s {
    ngx_railgun_probe_t           *probe;
    ngx_peer_connection_t          peer;
    ngx_pool_t                    *pool;
    ngx_event_t                    timeout;
    uint64_t                       start;         /* microseconds */

    u_char                        *out;           /* request bytes to send */
    u_char                        *out_end;
    ngx_buf_t                     *in;            /* bounded reply buffer */

    void                          *data;          /* the protocol's state */
    ngx_uint_t                     result;
    const char                    *reason;

    ngx_uint_t                     have_info;     /* unsigned  have_info:1; */
    uint64_t                       memory_used;
    uint64_t                       memory_max;
    uint64_t                       clients;
    uint64_t                       keyspace_hits;
    uint64_t                       keyspace_misses;
    uint64_t                       evicted_keys;
    uint64_t                       pubsub_channels;
    uint64_t                       master_offset;
    uint64_t                       replica_offset;
    ngx_uint_t                     offsets;       /* set: a replica's lag */
};


/* what a protocol file provides */

typedef struct {
    ngx_int_t  (*init_conf)(ngx_conf_t *cf, ngx_railgun_probe_t *probe);
    ngx_int_t  (*start)(ngx_railgun_probe_exchange_t *x);
    /* NGX_AGAIN for more bytes, NGX_DONE with x->result set; n == 0: EOF */
    ngx_int_t  (*process)(ngx_railgun_probe_exchange_t *x, u_char *p,
                          size_t n);
    void       (*finish)(ngx_railgun_probe_exchange_t *x);
    size_t       max_reply;
} ngx_railgun_probe_proto_t;


/*
 * Called in the worker that made the check, when a probe's verdict has
 * changed (after ngx_railgun_store_changed()), and at each probe timer in
 * every worker: the balancers set it to resynchronise their peers at once
 * in the first case, and in the second a change no current worker synced
 * (an old worker's check after a reload) without a request, rather than
 * on a timer of their own.  It must be cheap when nothing changed.
 */
typedef void (*ngx_railgun_probe_changed_pt)(void);


extern ngx_railgun_probe_proto_t     ngx_railgun_probe_redis;
extern ngx_railgun_probe_proto_t     ngx_railgun_probe_http;
extern ngx_str_t                     ngx_railgun_probe_results[];
extern ngx_railgun_probe_changed_pt  ngx_railgun_probe_changed;


void ngx_railgun_probe_init(ngx_railgun_probe_t *probe, ngx_str_t *name,
    ngx_uint_t check);
char *ngx_railgun_probe_parse(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *url, ngx_str_t *params, ngx_uint_t nparams);
char *ngx_railgun_probe_parse_params(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *params, ngx_uint_t nparams);
ngx_int_t ngx_railgun_probe_init_request(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
ngx_int_t ngx_railgun_probe_init_worker(ngx_cycle_t *cycle,
    ngx_array_t *probes, ngx_railgun_store_t *store,
    ngx_railgun_probe_families_t *families,
    ngx_railgun_buckets_t *buckets);
ngx_int_t ngx_railgun_probe_add(ngx_railgun_probe_t *probe, ngx_log_t *log);
void ngx_railgun_probe_remove(ngx_railgun_probe_t *probe);
void ngx_railgun_probe_stop(ngx_railgun_probe_t *probe);
void ngx_railgun_probe_exit_worker(ngx_array_t *probes);
ngx_uint_t ngx_railgun_probe_is_up(ngx_railgun_probe_t *probe);
ngx_railgun_probe_proto_t *ngx_railgun_probe_proto(
    ngx_railgun_probe_t *probe);


#endif /* _NGX_RAILGUN_PROBE_H_INCLUDED_ */
