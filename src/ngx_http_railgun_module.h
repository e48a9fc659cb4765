
/*
 * Copyright (C) ngx-railgun authors
 */


#ifndef _NGX_HTTP_RAILGUN_MODULE_H_INCLUDED_
#define _NGX_HTTP_RAILGUN_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/*
 * Angie's own version is in angie.h, which ngx_core.h does not include;
 * where the compiler finds it, ANGIE_VERSION tells Angie from nginx.
 */
#if defined __has_include
#if __has_include(<angie.h>)
#include <angie.h>
#endif
#endif

#include "ngx_railgun_store.h"
#include "ngx_railgun_labels.h"
#include "ngx_railgun_probe.h"


#define NGX_HTTP_RAILGUN_VERSION  "0.1.0"

/* concurrent scrapes a worker sends before it answers 503 */
#define NGX_HTTP_RAILGUN_MAX_SCRAPES  32


/* family numbers are the zone's layout: append, never reorder */

enum {
    NGX_HTTP_RAILGUN_REQUESTS = 0,
    NGX_HTTP_RAILGUN_REQUEST_DURATION,
    NGX_HTTP_RAILGUN_REQUEST_BYTES,
    NGX_HTTP_RAILGUN_RESPONSE_BYTES,
    NGX_HTTP_RAILGUN_UPSTREAM_REQUESTS,
    NGX_HTTP_RAILGUN_UPSTREAM_RESPONSE,
    NGX_HTTP_RAILGUN_UPSTREAM_HEADER,
    NGX_HTTP_RAILGUN_WS_CONNECTIONS,
    NGX_HTTP_RAILGUN_WS_CONNECTIONS_TOTAL,
    NGX_HTTP_RAILGUN_WS_DURATION,
    NGX_HTTP_RAILGUN_WS_MESSAGES,
    NGX_HTTP_RAILGUN_WS_BYTES,
    NGX_HTTP_RAILGUN_WS_PROTOCOL_ERRORS,
    NGX_HTTP_RAILGUN_PROBE_STATE,
    NGX_HTTP_RAILGUN_PROBE_UP,
    NGX_HTTP_RAILGUN_PROBE_CHECKS,
    NGX_HTTP_RAILGUN_PROBE_DURATION,
    NGX_HTTP_RAILGUN_PROBE_TRANSITIONS,
    NGX_HTTP_RAILGUN_REDIS_MEMORY_USED,
    NGX_HTTP_RAILGUN_REDIS_MEMORY_MAX,
    NGX_HTTP_RAILGUN_REDIS_CLIENTS,
    NGX_HTTP_RAILGUN_UPSTREAM_PEER_UP,
    NGX_HTTP_RAILGUN_UPSTREAM_NO_LIVE,
    NGX_HTTP_RAILGUN_REDIS_KEYSPACE_HITS,
    NGX_HTTP_RAILGUN_REDIS_KEYSPACE_MISSES,
    NGX_HTTP_RAILGUN_REDIS_EVICTED_KEYS,
    NGX_HTTP_RAILGUN_REDIS_PUBSUB_CHANNELS,
    NGX_HTTP_RAILGUN_REDIS_REPLICATION_LAG,
    NGX_HTTP_RAILGUN_SCRAPES_REJECTED,
    NGX_HTTP_RAILGUN_NFAMILIES
};


typedef struct ngx_http_railgun_exemplar_conf_s
    ngx_http_railgun_exemplar_conf_t;

struct ngx_http_railgun_exemplar_conf_s {
    ngx_str_t                          name;   /* of variable and label */
    ngx_int_t                          index;
    ngx_str_t                          file;   /* of the directive */
    ngx_uint_t                         line;
    ngx_http_railgun_exemplar_conf_t  *next;   /* all of them, to resolve */
};


typedef struct {
    ngx_shm_zone_t             *shm_zone;
    ngx_railgun_store_t        *store;
    ngx_railgun_buckets_t      *ws_buckets;   /* the default */
    ngx_uint_t                  max_series;
    ngx_array_t                 probes;       /* ngx_railgun_probe_t */
    ngx_array_t                 gates;        /* ngx_array_t *, per location */
    ngx_uint_t                  nlocations;   /* location confs merged */
    ngx_array_t                 variants;     /* ngx_railgun_buckets_t * */
    ngx_http_railgun_exemplar_conf_t  *exemplars;
} ngx_http_railgun_main_conf_t;


typedef struct ngx_http_railgun_upstream_s  ngx_http_railgun_upstream_t;
typedef struct ngx_http_railgun_status_s    ngx_http_railgun_status_t;


typedef struct {
    ngx_str_t                   name;        /* the "server" label */
    ngx_http_railgun_upstream_t  *upstream;  /* railgun_check in upstream{} */
} ngx_http_railgun_srv_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_str_t                   path;        /* a path label, no variables */
    ngx_http_complex_value_t   *path_vars;   /* a path label with variables */
    ngx_http_complex_value_t   *path_cv;     /* railgun_path as configured */
    ngx_railgun_buckets_t      *buckets;     /* native ones included */
    ngx_railgun_buckets_t      *ws_buckets;
    ngx_flag_t                  native;      /* railgun_native_histograms */
    ngx_int_t                   native_schema;
    ngx_uint_t                  native_max;
    ngx_uint_t                  native_line; /* where it was set */
    ngx_str_t                  *native_file;
    ngx_array_t                *gate;        /* railgun_gate's items */
    ngx_str_t                   gate_drain;  /* its drain_file=, or empty */
    ngx_http_railgun_status_t  *status;      /* railgun_status */
    ngx_uint_t                  index;       /* in each worker's cache */
    ngx_uint_t                  max_scrapes; /* railgun_metrics; 0: default */
    ngx_http_railgun_exemplar_conf_t  *exemplar;   /* or NULL */
} ngx_http_railgun_loc_conf_t;


typedef struct ngx_http_railgun_ws_s  ngx_http_railgun_ws_t;


typedef struct {
    uint64_t                      start;     /* microseconds, monotonic */
    ngx_http_railgun_ws_t        *ws;        /* set at an upgrade's 101  */
    ngx_http_railgun_loc_conf_t  *rlcf;      /* the location that decides */
    unsigned                      moved:1;   /* by an error page, or to a
                                                named location: rlcf stays */
    ngx_pool_cleanup_t            cleanup;   /* finds it after a redirect */
} ngx_http_railgun_ctx_t;


extern ngx_module_t               ngx_http_railgun_module;
extern ngx_railgun_family_conf_t  ngx_http_railgun_families[];


ngx_int_t ngx_http_railgun_post_read_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_railgun_location_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_railgun_log_handler(ngx_http_request_t *r);
ngx_http_railgun_loc_conf_t *ngx_http_railgun_account_conf(
    ngx_http_request_t *r, ngx_http_railgun_ctx_t *ctx);
ngx_int_t ngx_http_railgun_request_init_worker(ngx_cycle_t *cycle,
    ngx_uint_t nlocations);
ngx_http_railgun_ctx_t *ngx_http_railgun_get_ctx(ngx_http_request_t *r);
void ngx_http_railgun_account(ngx_http_request_t *r,
    ngx_http_railgun_ctx_t *ctx, ngx_uint_t status, off_t sent);
ngx_int_t ngx_http_railgun_exemplar_value(ngx_http_request_t *r,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_railgun_exemplar_t *ex);
char *ngx_http_railgun_exemplar(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_railgun_exemplar_resolve(ngx_conf_t *cf);

ngx_int_t ngx_http_railgun_websocket_init(ngx_conf_t *cf);
ngx_int_t ngx_http_railgun_websocket_start(ngx_http_request_t *r);
void ngx_http_railgun_websocket_end(ngx_http_request_t *r,
    ngx_http_railgun_ctx_t *ctx);

ngx_int_t ngx_http_railgun_expose_handler(ngx_http_request_t *r);
ngx_str_t *ngx_http_railgun_build_labels(void);

ngx_int_t ngx_http_railgun_gate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_railgun_no_cache(ngx_http_request_t *r);
ngx_int_t ngx_http_railgun_gate_resolve(ngx_conf_t *cf, ngx_array_t *gate);
char *ngx_http_railgun_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

ngx_int_t ngx_http_railgun_upstream_init(ngx_conf_t *cf);
ngx_int_t ngx_http_railgun_upstream_init_worker(ngx_cycle_t *cycle);
void ngx_http_railgun_upstream_exit_worker(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_railgun_upstream_healthy(
    ngx_http_railgun_upstream_t *ups, ngx_uint_t *total);
ngx_uint_t ngx_http_railgun_upstream_nservers(
    ngx_http_railgun_upstream_t *ups);
char *ngx_http_railgun_check(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

char *ngx_http_railgun_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_railgun_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_RAILGUN_MODULE_H_INCLUDED_ */
