
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nginx.h>
#include "ngx_http_railgun_module.h"


#define NGX_HTTP_RAILGUN_ZONE_NAME     "railgun"
#define NGX_HTTP_RAILGUN_ZONE_SIZE     (16 * 1024 * 1024)
#define NGX_HTTP_RAILGUN_ZONE_MIN      (64 * 1024)
#define NGX_HTTP_RAILGUN_MAX_SERIES    10000

/* railgun_native_histograms: 8 buckets an octave, 20 octaves from 1 ms */
#define NGX_HTTP_RAILGUN_NATIVE_SCHEMA   3
#define NGX_HTTP_RAILGUN_NATIVE_BUCKETS  160


static ngx_int_t ngx_http_railgun_init_process(ngx_cycle_t *cycle);
static void ngx_http_railgun_exit_process(ngx_cycle_t *cycle);

static ngx_int_t ngx_http_railgun_add_zone(ngx_conf_t *cf,
    ngx_http_railgun_main_conf_t *rmcf, size_t size);
static ngx_railgun_buckets_t *ngx_http_railgun_make_buckets(ngx_conf_t *cf,
    uint64_t *bounds, size_t size);
static ngx_int_t ngx_http_railgun_server_names(ngx_conf_t *cf);
static void *ngx_http_railgun_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_railgun_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_railgun_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_railgun_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_railgun_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_railgun_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_railgun_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_railgun_buckets(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_railgun_native(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_railgun_buckets_t *ngx_http_railgun_variant(ngx_conf_t *cf,
    ngx_railgun_buckets_t *b, ngx_http_railgun_loc_conf_t *conf);
static char *ngx_http_railgun_probe(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_railgun_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_railgun_init(ngx_conf_t *cf);


static ngx_conf_num_bounds_t  ngx_http_railgun_max_series_bounds = {
    ngx_conf_check_num_bounds, 1, 10000000
};


static ngx_command_t  ngx_http_railgun_commands[] = {

    { ngx_string("railgun_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_railgun_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_max_series"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_railgun_main_conf_t, max_series),
      &ngx_http_railgun_max_series_bounds },

    { ngx_string("railgun"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_railgun_loc_conf_t, enable),
      NULL },

    { ngx_string("railgun_path"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_railgun_loc_conf_t, path_cv),
      NULL },

    { ngx_string("railgun_buckets"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_railgun_buckets,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_railgun_loc_conf_t, buckets),
      NULL },

    { ngx_string("railgun_websocket_buckets"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_railgun_buckets,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_railgun_loc_conf_t, ws_buckets),
      NULL },

    { ngx_string("railgun_native_histograms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_railgun_native,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_exemplar"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_railgun_exemplar,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_probe"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_railgun_probe,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_check"),
      NGX_HTTP_UPS_CONF|NGX_CONF_ANY,
      ngx_http_railgun_check,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_gate"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_railgun_gate,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_railgun_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("railgun_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_railgun_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_railgun_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_railgun_init,                 /* postconfiguration */

    ngx_http_railgun_create_main_conf,     /* create main configuration */
    ngx_http_railgun_init_main_conf,       /* init main configuration */

    ngx_http_railgun_create_srv_conf,      /* create server configuration */
    ngx_http_railgun_merge_srv_conf,       /* merge server configuration */

    ngx_http_railgun_create_loc_conf,      /* create location configuration */
    ngx_http_railgun_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_railgun_module = {
    NGX_MODULE_V1,
    &ngx_http_railgun_module_ctx,          /* module context */
    ngx_http_railgun_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_railgun_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_railgun_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Indexed by the family numbers of ngx_http_railgun_module.h, so that an
 * entry cannot drift from its number; ngx_http_railgun_families_check()
 * refuses a number with no entry.  The last field says the configuration
 * bounds the family's series (probes and checks), which railgun_max_series
 * then leaves alone.
 */

ngx_railgun_family_conf_t
    ngx_http_railgun_families[NGX_HTTP_RAILGUN_NFAMILIES + 1] =
{

    [NGX_HTTP_RAILGUN_REQUESTS] =
    { ngx_string("railgun_http_requests_total"),
      ngx_string("HTTP requests by server block, path label, method "
                 "and status."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\","
                 "method=\"__overflow__\",status=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_REQUEST_DURATION] =
    { ngx_string("railgun_http_request_duration_seconds"),
      ngx_string("Time from reading the request header to logging "
                 "the request."),
      NGX_RAILGUN_HISTOGRAM,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\","
                 "method=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_REQUEST_BYTES] =
    { ngx_string("railgun_http_request_bytes_total"),
      ngx_string("Bytes received from clients, request line and "
                 "headers included."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_RESPONSE_BYTES] =
    { ngx_string("railgun_http_response_bytes_total"),
      ngx_string("Bytes sent to clients, headers included."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_UPSTREAM_REQUESTS] =
    { ngx_string("railgun_upstream_requests_total"),
      ngx_string("Upstream attempts by upstream, peer tried and status."),
      NGX_RAILGUN_COUNTER,
      ngx_string("upstream=\"__overflow__\",peer=\"__overflow__\","
                 "status=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_UPSTREAM_RESPONSE] =
    { ngx_string("railgun_upstream_response_duration_seconds"),
      ngx_string("Time of an upstream attempt up to the end of its "
                 "response."),
      NGX_RAILGUN_HISTOGRAM,
      ngx_string("upstream=\"__overflow__\",peer=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_UPSTREAM_HEADER] =
    { ngx_string("railgun_upstream_header_duration_seconds"),
      ngx_string("Time of an upstream attempt up to its response "
                 "header."),
      NGX_RAILGUN_HISTOGRAM,
      ngx_string("upstream=\"__overflow__\",peer=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_CONNECTIONS] =
    { ngx_string("railgun_websocket_connections"),
      ngx_string("WebSocket sessions open now."),
      NGX_RAILGUN_WORKER_GAUGE,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_CONNECTIONS_TOTAL] =
    { ngx_string("railgun_websocket_connections_opened_total"),
      ngx_string("WebSocket sessions opened (101 sent to the client)."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_DURATION] =
    { ngx_string("railgun_websocket_connection_duration_seconds"),
      ngx_string("Life of WebSocket sessions, from the 101 to the close."),
      NGX_RAILGUN_HISTOGRAM,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_MESSAGES] =
    { ngx_string("railgun_websocket_messages_total"),
      ngx_string("WebSocket data messages; in is from the client, "
                 "out is to it."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\","
                 "direction=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_BYTES] =
    { ngx_string("railgun_websocket_bytes_total"),
      ngx_string("Payload bytes of WebSocket data frames."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\","
                 "direction=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_WS_PROTOCOL_ERRORS] =
    { ngx_string("railgun_websocket_protocol_errors_total"),
      ngx_string("WebSocket streams that broke the framing protocol; "
                 "counting stops for that direction of that session."),
      NGX_RAILGUN_COUNTER,
      ngx_string("server=\"__overflow__\",path=\"__overflow__\","
                 "direction=\"__overflow__\""),
      0 },

    [NGX_HTTP_RAILGUN_PROBE_STATE] =
    { ngx_string("railgun_probe_state"),
      ngx_null_string,
      NGX_RAILGUN_STATE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_PROBE_UP] =
    { ngx_string("railgun_probe_up"),
      ngx_string("Whether the probe's target passes its checks "
                 "(after rise and fall)."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_PROBE_CHECKS] =
    { ngx_string("railgun_probe_checks_total"),
      ngx_string("Probe checks by result."),
      NGX_RAILGUN_COUNTER,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\","
                 "result=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_PROBE_DURATION] =
    { ngx_string("railgun_probe_duration_seconds"),
      ngx_string("Time a probe check took, connect to verdict."),
      NGX_RAILGUN_HISTOGRAM,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_PROBE_TRANSITIONS] =
    { ngx_string("railgun_probe_transitions_total"),
      ngx_string("Changes of a probe's state."),
      NGX_RAILGUN_COUNTER,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\","
                 "to=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_MEMORY_USED] =
    { ngx_string("railgun_redis_memory_used_bytes"),
      ngx_string("used_memory from the last INFO of a Redis probe."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_MEMORY_MAX] =
    { ngx_string("railgun_redis_memory_max_bytes"),
      ngx_string("maxmemory from the last INFO of a Redis probe "
                 "(0: no limit)."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_CLIENTS] =
    { ngx_string("railgun_redis_connected_clients"),
      ngx_string("connected_clients from the last INFO of a Redis probe."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_UPSTREAM_PEER_UP] =
    { ngx_string("railgun_upstream_peer_up"),
      ngx_string("Whether an upstream server passes its railgun_check "
                 "(after rise and fall)."),
      NGX_RAILGUN_GAUGE,
      ngx_string("upstream=\"__overflow__\",peer=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_UPSTREAM_NO_LIVE] =
    { ngx_string("railgun_upstream_no_live_peers_total"),
      ngx_string("Requests that found no live server in an upstream "
                 "(nginx's \"no live upstreams\"); not peer attempts."),
      NGX_RAILGUN_COUNTER,
      ngx_string("upstream=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_KEYSPACE_HITS] =
    { ngx_string("railgun_redis_keyspace_hits_total"),
      ngx_string("keyspace_hits from the last INFO of a Redis probe, "
                 "as Redis counts them (a restart of Redis resets it)."),
      NGX_RAILGUN_COUNTER,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_KEYSPACE_MISSES] =
    { ngx_string("railgun_redis_keyspace_misses_total"),
      ngx_string("keyspace_misses from the last INFO of a Redis probe, "
                 "as Redis counts them (a restart of Redis resets it)."),
      NGX_RAILGUN_COUNTER,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_EVICTED_KEYS] =
    { ngx_string("railgun_redis_evicted_keys_total"),
      ngx_string("evicted_keys from the last INFO of a Redis probe, "
                 "as Redis counts them (a restart of Redis resets it)."),
      NGX_RAILGUN_COUNTER,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_PUBSUB_CHANNELS] =
    { ngx_string("railgun_redis_pubsub_channels"),
      ngx_string("pubsub_channels from the last INFO of a Redis probe."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_REDIS_REPLICATION_LAG] =
    { ngx_string("railgun_redis_replication_lag_bytes"),
      ngx_string("For a replica, master_repl_offset minus "
                 "slave_repl_offset from the last INFO of a Redis probe."),
      NGX_RAILGUN_GAUGE,
      ngx_string("probe=\"__overflow__\",target=\"__overflow__\""),
      1 },

    [NGX_HTTP_RAILGUN_SCRAPES_REJECTED] =
    { ngx_string("railgun_scrapes_rejected_total"),
      ngx_string("Scrapes answered 503 because the worker was sending "
                 "railgun_metrics max_scrapes others."),
      NGX_RAILGUN_COUNTER,
      ngx_string(""),
      1 },

    [NGX_HTTP_RAILGUN_NFAMILIES] =
    { ngx_null_string, ngx_null_string, 0, ngx_null_string, 0 }
};


static ngx_railgun_probe_families_t  ngx_http_railgun_probe_families = {
    NGX_HTTP_RAILGUN_PROBE_STATE,
    NGX_HTTP_RAILGUN_PROBE_UP,
    NGX_HTTP_RAILGUN_PROBE_CHECKS,
    NGX_HTTP_RAILGUN_PROBE_DURATION,
    NGX_HTTP_RAILGUN_PROBE_TRANSITIONS,
    NGX_HTTP_RAILGUN_REDIS_MEMORY_USED,
    NGX_HTTP_RAILGUN_REDIS_MEMORY_MAX,
    NGX_HTTP_RAILGUN_REDIS_CLIENTS,
    NGX_HTTP_RAILGUN_UPSTREAM_PEER_UP,
    NGX_HTTP_RAILGUN_REDIS_KEYSPACE_HITS,
    NGX_HTTP_RAILGUN_REDIS_KEYSPACE_MISSES,
    NGX_HTTP_RAILGUN_REDIS_EVICTED_KEYS,
    NGX_HTTP_RAILGUN_REDIS_PUBSUB_CHANNELS,
    NGX_HTTP_RAILGUN_REDIS_REPLICATION_LAG
};


/* seconds, as in SPEC.md: 0.005 0.01 0.025 ... 10 */

static uint64_t  ngx_http_railgun_default_bounds[] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};


/* 1 5 15 30 60 300 900 1800 3600 7200 seconds */

static uint64_t  ngx_http_railgun_default_ws_bounds[] = {
    1000000, 5000000, 15000000, 30000000, 60000000, 300000000, 900000000,
    1800000000, 3600000000ULL, 7200000000ULL
};


static ngx_int_t
ngx_http_railgun_init_process(ngx_cycle_t *cycle)
{
    ngx_http_railgun_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_railgun_module);
    if (rmcf == NULL) {
        return NGX_OK;
    }

    rmcf->store->log = cycle->log;

    ngx_railgun_store_claim_slot(rmcf->store);

    if (ngx_http_railgun_request_init_worker(cycle, rmcf->nlocations)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_railgun_probe_init_worker(cycle, &rmcf->probes, rmcf->store,
                                      &ngx_http_railgun_probe_families,
                                      rmcf->store->default_buckets)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_railgun_upstream_init_worker(cycle);
}


static void
ngx_http_railgun_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_railgun_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_railgun_module);
    if (rmcf == NULL) {
        return;
    }

    ngx_railgun_probe_exit_worker(&rmcf->probes);
    ngx_http_railgun_upstream_exit_worker(cycle);
    ngx_railgun_store_release_slot(rmcf->store);
}


static void *
ngx_http_railgun_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_railgun_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rmcf->shm_zone = NULL;
     *     rmcf->store = NULL;
     */

    rmcf->max_series = NGX_CONF_UNSET_UINT;

    /* location index 0 means "not indexed" */
    rmcf->nlocations = 1;

    if (ngx_array_init(&rmcf->probes, cf->pool, 4,
                       sizeof(ngx_railgun_probe_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&rmcf->gates, cf->pool, 2, sizeof(ngx_array_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&rmcf->variants, cf->pool, 4,
                       sizeof(ngx_railgun_buckets_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


static char *
ngx_http_railgun_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_railgun_main_conf_t *rmcf = conf;

    ngx_uint_t  i;

    /* a family number added without its entry in the table */

    for (i = 0; i < NGX_HTTP_RAILGUN_NFAMILIES; i++) {
        if (ngx_http_railgun_families[i].name.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: family %ui has no entry", i);
            return NGX_CONF_ERROR;
        }
    }

    ngx_conf_init_uint_value(rmcf->max_series, NGX_HTTP_RAILGUN_MAX_SERIES);

    if (rmcf->shm_zone == NULL
        && ngx_http_railgun_add_zone(cf, rmcf, NGX_HTTP_RAILGUN_ZONE_SIZE)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rmcf->store->max_series = rmcf->max_series;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_railgun_add_zone(ngx_conf_t *cf, ngx_http_railgun_main_conf_t *rmcf,
    size_t size)
{
    ngx_str_t               name;
    ngx_railgun_store_t    *store;
    ngx_railgun_buckets_t  *b;

    ngx_str_set(&name, NGX_HTTP_RAILGUN_ZONE_NAME);

    store = ngx_pcalloc(cf->pool, sizeof(ngx_railgun_store_t));
    if (store == NULL) {
        return NGX_ERROR;
    }

    b = ngx_http_railgun_make_buckets(cf, ngx_http_railgun_default_bounds,
                                      sizeof(ngx_http_railgun_default_bounds));
    if (b == NULL) {
        return NGX_ERROR;
    }

    rmcf->ws_buckets = ngx_http_railgun_make_buckets(cf,
                                    ngx_http_railgun_default_ws_bounds,
                                    sizeof(ngx_http_railgun_default_ws_bounds));
    if (rmcf->ws_buckets == NULL) {
        return NGX_ERROR;
    }

    store->families = ngx_http_railgun_families;
    store->nfamilies = NGX_HTTP_RAILGUN_NFAMILIES;
    store->default_buckets = b;
    store->log = &cf->cycle->new_log;

    rmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_railgun_module);
    if (rmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    rmcf->shm_zone->init = ngx_railgun_store_init_zone;
    rmcf->shm_zone->data = store;
    rmcf->store = store;

    return NGX_OK;
}


static ngx_railgun_buckets_t *
ngx_http_railgun_make_buckets(ngx_conf_t *cf, uint64_t *bounds, size_t size)
{
    ngx_railgun_buckets_t  *b;

    b = ngx_pcalloc(cf->pool, offsetof(ngx_railgun_buckets_t, bound) + size);
    if (b == NULL) {
        return NULL;
    }

    b->n = size / sizeof(uint64_t);
    ngx_memcpy(b->bound, bounds, size);

    return b;
}


static void *
ngx_http_railgun_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_railgun_srv_conf_t  *rscf;

    rscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_srv_conf_t));
    if (rscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rscf->name = { 0, NULL };
     *     rscf->upstream = NULL;
     */

    return rscf;
}


static char *
ngx_http_railgun_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_railgun_srv_conf_t *conf = child;

    ngx_http_core_srv_conf_t  *cscf;

    /* the core module's merge has set the first server_name by now */

    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    conf->name = cscf->server_name;

    return NGX_CONF_OK;
}


static void *
ngx_http_railgun_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_railgun_loc_conf_t  *rlcf;

    rlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_loc_conf_t));
    if (rlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     rlcf->path = { 0, NULL };
     *     rlcf->path_vars = NULL;
     *     rlcf->gate = NULL;
     *     rlcf->index = 0;
     */

    rlcf->enable = NGX_CONF_UNSET;
    rlcf->path_cv = NGX_CONF_UNSET_PTR;
    rlcf->buckets = NGX_CONF_UNSET_PTR;
    rlcf->ws_buckets = NGX_CONF_UNSET_PTR;
    rlcf->native = NGX_CONF_UNSET;
    rlcf->native_schema = NGX_CONF_UNSET;
    rlcf->native_max = NGX_CONF_UNSET_UINT;
    rlcf->exemplar = NGX_CONF_UNSET_PTR;

    return rlcf;
}


static char *
ngx_http_railgun_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_railgun_loc_conf_t *prev = parent;
    ngx_http_railgun_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    conf->index = rmcf->nlocations++;

    ngx_conf_merge_value(conf->enable, prev->enable, 1);
    ngx_conf_merge_ptr_value(conf->buckets, prev->buckets,
                             rmcf->store->default_buckets);
    ngx_conf_merge_ptr_value(conf->ws_buckets, prev->ws_buckets,
                             rmcf->ws_buckets);
    ngx_conf_merge_ptr_value(conf->path_cv, prev->path_cv, NULL);
    ngx_conf_merge_ptr_value(conf->exemplar, prev->exemplar, NULL);

    if (conf->native == NGX_CONF_UNSET) {
        conf->native = prev->native;
        conf->native_schema = prev->native_schema;
        conf->native_max = prev->native_max;
        conf->native_line = prev->native_line;
        conf->native_file = prev->native_file;
    }

    ngx_conf_init_value(conf->native, 0);
    ngx_conf_init_value(conf->native_schema,
                        NGX_HTTP_RAILGUN_NATIVE_SCHEMA);
    ngx_conf_init_uint_value(conf->native_max,
                             NGX_HTTP_RAILGUN_NATIVE_BUCKETS);

    /* the buckets a parent made native are made again from their bounds */

    conf->buckets = ngx_http_railgun_variant(cf, conf->buckets, conf);
    conf->ws_buckets = ngx_http_railgun_variant(cf, conf->ws_buckets, conf);

    if (conf->buckets == NULL || conf->ws_buckets == NULL) {
        return NGX_CONF_ERROR;
    }

    if (conf->path_cv == NULL) {
        /* the default path label is the location's own name */
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        conf->path = clcf->name;

    } else if (conf->path_cv->lengths == NULL) {
        conf->path = conf->path_cv->value;

    } else {
        conf->path_vars = conf->path_cv;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_railgun_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_main_conf_t *rmcf = conf;

    ssize_t     size;
    ngx_shm_t   shm;
    ngx_str_t  *value;

    if (rmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < NGX_HTTP_RAILGUN_ZONE_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: zone size \"%V\" is too small, "
                           "the minimum is %uzk", &value[1],
                           (size_t) NGX_HTTP_RAILGUN_ZONE_MIN / 1024);
        return NGX_CONF_ERROR;
    }

    /*
     * nginx maps its zones after the whole configuration is read, and a size
     * the system refuses is then reported with no file and line: map it once
     * here, the way nginx will, and unmap it at once.
     */

    ngx_memzero(&shm, sizeof(ngx_shm_t));

    shm.size = size;
    ngx_str_set(&shm.name, "railgun");
    shm.log = cf->log;

    if (ngx_shm_alloc(&shm) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: zone size \"%V\" cannot be mapped",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_shm_free(&shm);

    if (ngx_http_railgun_add_zone(cf, rmcf, size) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* railgun_native_histograms on|off [schema=N] [max_buckets=N] */

static char *
ngx_http_railgun_native(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_loc_conf_t *rlcf = conf;

    ngx_int_t    n, neg;
    ngx_str_t   *value, v;
    ngx_uint_t   i;

    if (rlcf->native != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        rlcf->native = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->native = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: invalid value \"%V\", \"on\" or "
                           "\"off\" is expected", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "schema=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

            neg = (v.len > 1 && v.data[0] == '-');

            n = ngx_atoi(v.data + neg, v.len - neg);

            if (n != NGX_ERROR) {
                n = neg ? -n : n;
            }

            if (n == NGX_ERROR
                || n < NGX_RAILGUN_NATIVE_MIN_SCHEMA
                || n > NGX_RAILGUN_NATIVE_MAX_SCHEMA)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "railgun: invalid schema \"%V\", "
                                   "%d to %d is expected", &v,
                                   NGX_RAILGUN_NATIVE_MIN_SCHEMA,
                                   NGX_RAILGUN_NATIVE_MAX_SCHEMA);
                return NGX_CONF_ERROR;
            }

            rlcf->native_schema = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_buckets=", 12) == 0) {
            v.data = value[i].data + 12;
            v.len = value[i].len - 12;

            n = ngx_atoi(v.data, v.len);

            if (n == NGX_ERROR
                || n < NGX_RAILGUN_NATIVE_MIN_BUCKETS
                || n > NGX_RAILGUN_NATIVE_MAX_BUCKETS)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "railgun: invalid max_buckets \"%V\", "
                                   "%d to %d is expected", &v,
                                   NGX_RAILGUN_NATIVE_MIN_BUCKETS,
                                   NGX_RAILGUN_NATIVE_MAX_BUCKETS);
                return NGX_CONF_ERROR;
            }

            rlcf->native_max = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (!rlcf->native && cf->args->nelts > 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: \"off\" takes no parameters");
        return NGX_CONF_ERROR;
    }

    /* the zone's size is known only later: checked at the merge */
    rlcf->native_file = &cf->conf_file->file.name;
    rlcf->native_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * The buckets of b with the native settings of conf, or without any; one
 * copy per distinct list and settings, so that the zone interns few.
 */

static ngx_railgun_buckets_t *
ngx_http_railgun_variant(ngx_conf_t *cf, ngx_railgun_buckets_t *b,
    ngx_http_railgun_loc_conf_t *conf)
{
    size_t                         size, chunk;
    ngx_uint_t                     i, native;
    ngx_railgun_buckets_t         *v, **vp;
    ngx_http_railgun_main_conf_t  *rmcf;

    native = conf->native ? conf->native_max : 0;

    if (b->native == native
        && (native == 0 || b->schema == conf->native_schema))
    {
        return b;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    vp = rmcf->variants.elts;

    for (i = 0; i < rmcf->variants.nelts; i++) {
        v = vp[i];

        if (v->n == b->n
            && v->native == native
            && (native == 0 || v->schema == conf->native_schema)
            && ngx_memcmp(v->bound, b->bound, b->n * sizeof(uint64_t)) == 0)
        {
            return v;
        }
    }

    size = offsetof(ngx_railgun_buckets_t, bound)
           + (b->n + ((size_t) 1 << ngx_max(conf->native_schema, 0)))
             * sizeof(uint64_t);

    v = ngx_pcalloc(cf->pool, size);
    if (v == NULL) {
        return NULL;
    }

    v->n = b->n;
    ngx_memcpy(v->bound, b->bound, b->n * sizeof(uint64_t));

    if (native) {
        ngx_railgun_store_native_init(v, conf->native_schema, native);

        /* a series must fit the chunks the zone carves series from */

        chunk = ngx_railgun_store_chunk_size(rmcf->shm_zone->shm.size);

        if (ngx_railgun_store_series_size(v, NGX_RAILGUN_STORE_MAX_KEY / 4)
            > chunk)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "railgun: max_buckets=%ui does not fit the "
                          "zone's %uz byte chunks, make railgun_zone "
                          "larger or max_buckets smaller in %V:%ui",
                          native, chunk, conf->native_file,
                          conf->native_line);
            return NULL;
        }
    }

    vp = ngx_array_push(&rmcf->variants);
    if (vp == NULL) {
        return NULL;
    }

    *vp = v;

    return v;
}


static char *
ngx_http_railgun_buckets(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    int64_t                  us;
    ngx_str_t               *value;
    ngx_uint_t               i, n;
    ngx_railgun_buckets_t  **field, *b;

    field = (ngx_railgun_buckets_t **) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    n = cf->args->nelts - 1;

    if (n > NGX_RAILGUN_STORE_MAX_BUCKETS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: too many buckets, the maximum is %d",
                           NGX_RAILGUN_STORE_MAX_BUCKETS);
        return NGX_CONF_ERROR;
    }

    b = ngx_pcalloc(cf->pool, offsetof(ngx_railgun_buckets_t, bound)
                              + n * sizeof(uint64_t));
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    b->n = n;

    for (i = 0; i < n; i++) {

        /* seconds with up to 6 decimals, kept as microseconds */
        us = ngx_railgun_conf_seconds(value[i + 1].data, value[i + 1].len);

        if (us == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid bucket \"%V\", a number of "
                               "seconds from 0.000001 is expected",
                               &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        if (i > 0 && (uint64_t) us <= b->bound[i - 1]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: bucket \"%V\" is not greater than "
                               "the one before it", &value[i + 1]);
            return NGX_CONF_ERROR;
        }

        b->bound[i] = us;
    }

    *field = b;

    return NGX_CONF_OK;
}


static char *
ngx_http_railgun_probe(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_main_conf_t *rmcf = conf;

    ngx_str_t            *value;
    ngx_uint_t            i;
    ngx_railgun_probe_t  *probe;

    value = cf->args->elts;

    probe = rmcf->probes.elts;

    for (i = 0; i < rmcf->probes.nelts; i++) {
        if (probe[i].name.len == value[1].len
            && ngx_strncmp(probe[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: duplicate probe \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    probe = ngx_array_push(&rmcf->probes);
    if (probe == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_railgun_probe_init(probe, &value[1], 0);

    return ngx_railgun_probe_parse(cf, probe, &value[2], &value[3],
                                   cf->args->nelts - 3);
}


static char *
ngx_http_railgun_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_loc_conf_t *rlcf = conf;

    ngx_int_t                  n;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler == ngx_http_railgun_expose_handler) {
        return "is duplicate";
    }

    if (cf->args->nelts == 2) {
        value = cf->args->elts;

        if (value[1].len <= sizeof("max_scrapes=") - 1
            || ngx_strncmp(value[1].data, "max_scrapes=",
                           sizeof("max_scrapes=") - 1)
               != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[1].data + sizeof("max_scrapes=") - 1,
                     value[1].len - (sizeof("max_scrapes=") - 1));

        if (n == NGX_ERROR || n == 0 || n > 65535) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid max_scrapes \"%V\": a number "
                               "from 1 to 65535", &value[1]);
            return NGX_CONF_ERROR;
        }

        rlcf->max_scrapes = n;
    }

    clcf->handler = ngx_http_railgun_expose_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_railgun_init(ngx_conf_t *cf)
{
    ngx_uint_t                     i;
    ngx_array_t                  **gatep;
    ngx_http_handler_pt           *h;
    ngx_http_core_main_conf_t     *cmcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_railgun_post_read_handler;

    /*
     * The first handler of the location rewrite phase (handlers pushed later
     * run first, and the module loads after ngx_http_rewrite_module): it
     * sees the location before a "return" or "rewrite" of the location runs.
     */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_railgun_location_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_railgun_log_handler;

    if (ngx_http_railgun_websocket_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* checks become probes, then gates find the probes and upstreams */

    if (ngx_http_railgun_upstream_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    gatep = rmcf->gates.elts;

    for (i = 0; i < rmcf->gates.nelts; i++) {
        if (ngx_http_railgun_gate_resolve(cf, gatep[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_railgun_exemplar_resolve(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_railgun_server_names(cf);
}


/*
 * A server block without server_name is labelled by its listen address.
 * Listen addresses are known only once the whole http block is read.
 */

static ngx_int_t
ngx_http_railgun_server_names(ngx_conf_t *cf)
{
    ngx_uint_t                    p, a, s;
    ngx_http_conf_ctx_t          *ctx;
    ngx_http_conf_port_t         *port;
    ngx_http_conf_addr_t         *addr;
    ngx_http_core_srv_conf_t    **cscfp;
    ngx_http_core_main_conf_t    *cmcf;
    ngx_http_railgun_srv_conf_t  *rscf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    if (cmcf->ports == NULL) {
        return NGX_OK;
    }

    port = cmcf->ports->elts;

    for (p = 0; p < cmcf->ports->nelts; p++) {

        addr = port[p].addrs.elts;

        for (a = 0; a < port[p].addrs.nelts; a++) {

            cscfp = addr[a].servers.elts;

            for (s = 0; s < addr[a].servers.nelts; s++) {

                ctx = cscfp[s]->ctx;
                rscf = ctx->srv_conf[ngx_http_railgun_module.ctx_index];

                if (rscf->name.len == 0) {
                    rscf->name = addr[a].opt.addr_text;
                }
            }
        }
    }

    return NGX_OK;
}


/*
 * The labels of railgun_build_info: the module's version, the nginx
 * version the server is based on, and what the server is.  Angie is told
 * by angie.h; freenginx keeps nginx.h and says its name only in NGINX_VER.
 */

#define NGX_HTTP_RAILGUN_BUILD_LABELS(software, version)                     \
    "version=\"" NGX_HTTP_RAILGUN_VERSION "\","                              \
    "nginx_version=\"" NGINX_VERSION "\","                                   \
    "software=\"" software "\",software_version=\"" version "\""

ngx_str_t *
ngx_http_railgun_build_labels(void)
{
#ifdef ANGIE_VERSION

    static ngx_str_t  angie =
        ngx_string(NGX_HTTP_RAILGUN_BUILD_LABELS("angie", ANGIE_VERSION));

    return &angie;

#else

    static ngx_str_t  nginx =
        ngx_string(NGX_HTTP_RAILGUN_BUILD_LABELS("nginx", NGINX_VERSION));

    static ngx_str_t  freenginx =
        ngx_string(NGX_HTTP_RAILGUN_BUILD_LABELS("freenginx", NGINX_VERSION));

    if (ngx_strncmp(NGINX_VER, "freenginx/", sizeof("freenginx/") - 1)
        == 0)
    {
        return &freenginx;
    }

    return &nginx;

#endif
}
