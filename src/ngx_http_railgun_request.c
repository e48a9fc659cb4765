
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"


/*
 * Each worker keeps a cache from what identifies a series on the request path
 * (a location or upstream configuration, method and status, and for variable
 * labels their text) to the series in the zone, so that a request hashes and
 * renders nothing it has seen before.  The cache is process memory and dies
 * with the worker; the zone is what outlives reloads.
 */

#define NGX_HTTP_RAILGUN_CACHE_SLOTS   4096
#define NGX_HTTP_RAILGUN_CACHE_PROBES  8
#define NGX_HTTP_RAILGUN_CACHE_TEXT    256

#define NGX_HTTP_RAILGUN_METHOD_OTHER  9

/* label text of a series key: two escaped values and the fixed parts */
#define NGX_HTTP_RAILGUN_KEY_LEN  (2 * NGX_RAILGUN_LABEL_ESCAPED_MAX + 128)


typedef struct ngx_http_railgun_slot_s  ngx_http_railgun_slot_t;

struct ngx_http_railgun_slot_s {
    ngx_http_railgun_slot_t  *next;        /* a location's list */
    void                     *conf;
    ngx_uint_t                code;        /* method bit * 1000 + status */
    uint32_t                  hash;
    uint32_t                  len;
    u_char                   *text;
    ngx_railgun_series_t     *series[4];
};


/*
 * What an entry of r->upstream_states names: nginx records the address of
 * the peer's name (ngx_http_upstream_rr_peer_t.name), or of its upstream's
 * name when no server was live.  Both live as long as the configuration, so
 * each worker maps them to their upstream once; a name not in the map was
 * made at run time, from a proxy_pass with variables.
 */

#define NGX_HTTP_RAILGUN_NO_LIVE  1000    /* past every status code */


typedef struct {
    ngx_str_t                *name;        /* the key: nginx's pointer */
    ngx_str_t                *upstream;    /* the label */
    ngx_uint_t                no_live;     /* the upstream's own name */
} ngx_http_railgun_peer_t;


static void ngx_http_railgun_cleanup(void *data);
static ngx_int_t ngx_http_railgun_peers_init(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_railgun_peers_add(ngx_cycle_t *cycle,
    ngx_http_upstream_srv_conf_t *uscf, ngx_uint_t add);
static void ngx_http_railgun_peer_add(ngx_str_t *name, ngx_str_t *upstream,
    ngx_uint_t no_live);
static ngx_http_railgun_peer_t *ngx_http_railgun_peer_find(ngx_str_t *name);
static ngx_http_railgun_slot_t *ngx_http_railgun_cached(
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_str_t *upstream, ngx_str_t *peer, void *key, ngx_uint_t status,
    ngx_http_railgun_slot_t *value);
static void ngx_http_railgun_account_upstream(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_railgun_exemplar_t *ex);
static ngx_uint_t ngx_http_railgun_method(ngx_http_request_t *r);
static ngx_http_railgun_slot_t *ngx_http_railgun_cache_find(void *conf,
    ngx_uint_t code, ngx_str_t *text, ngx_http_railgun_slot_t **free);
static ngx_http_railgun_slot_t *ngx_http_railgun_loc_cache_add(
    ngx_uint_t index, ngx_uint_t code, ngx_http_railgun_slot_t *value);
static void ngx_http_railgun_cache_store(ngx_http_railgun_slot_t *slot,
    void *conf, ngx_uint_t code, ngx_str_t *text,
    ngx_http_railgun_slot_t *value);
static void ngx_http_railgun_request_series(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_str_t *path, ngx_uint_t method, ngx_uint_t status,
    ngx_http_railgun_slot_t *value);
static void ngx_http_railgun_upstream_series(
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_str_t *upstream, ngx_str_t *peer, ngx_uint_t status,
    ngx_http_railgun_slot_t *value);
static u_char *ngx_http_railgun_label(u_char *p, const char *name,
    size_t len, ngx_str_t *value);
static u_char *ngx_http_railgun_status_label(u_char *p, ngx_uint_t status);


static ngx_str_t  ngx_http_railgun_methods[] = {
    ngx_string("GET"),
    ngx_string("HEAD"),
    ngx_string("POST"),
    ngx_string("PUT"),
    ngx_string("DELETE"),
    ngx_string("OPTIONS"),
    ngx_string("PATCH"),
    ngx_string("TRACE"),
    ngx_string("CONNECT"),
    ngx_string("OTHER")
};


static ngx_http_railgun_slot_t  *ngx_http_railgun_cache;
static ngx_http_railgun_slot_t **ngx_http_railgun_loc_cache;
static ngx_uint_t                ngx_http_railgun_loc_slots;
static u_char                   *ngx_http_railgun_cache_text;
static u_char                   *ngx_http_railgun_cache_text_end;

static ngx_http_railgun_peer_t  *ngx_http_railgun_peers;
static ngx_uint_t                ngx_http_railgun_npeers;   /* a power of 2 */
static ngx_uint_t                ngx_http_railgun_nmapped;

/* the labels of an attempt to an address chosen at run time */
static ngx_str_t  ngx_http_railgun_dynamic_upstream = ngx_null_string;
static ngx_str_t  ngx_http_railgun_dynamic_peer = ngx_string("dynamic");


ngx_int_t
ngx_http_railgun_post_read_handler(ngx_http_request_t *r)
{
    ngx_http_railgun_ctx_t  *ctx;

    ctx = ngx_palloc(r->pool, sizeof(ngx_http_railgun_ctx_t));
    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    ctx->start = ngx_railgun_now_us();
    ctx->ws = NULL;
    ctx->rlcf = NULL;
    ctx->moved = 0;

    /*
     * Internal redirects and error_page wipe r->ctx: the context is also
     * hung on the pool's cleanups, where the log phase finds it again.  The
     * cleanup is embedded in the context, which makes one allocation of
     * what ngx_pool_cleanup_add() would make two on every request.
     */

    ctx->cleanup.handler = ngx_http_railgun_cleanup;
    ctx->cleanup.data = ctx;
    ctx->cleanup.next = r->pool->cleanup;
    r->pool->cleanup = &ctx->cleanup;

    ngx_http_set_ctx(r, ctx, ngx_http_railgun_module);

    return NGX_DECLINED;
}


/*
 * The location that matched decides whether and how a request is counted,
 * unless the operator routed the request on.  An internal redirect or a
 * named location wipes r->ctx: a request found here without its context
 * has been moved.  An error page shows a failure, not what failed, and a
 * named location is a fallback: the location the request had stays.  Other
 * redirects to a URI (try_files, X-Accel-Redirect) route the request, as a
 * "rewrite ... last", which keeps r->ctx, does: where it lands decides.
 */

ngx_int_t
ngx_http_railgun_location_handler(ngx_http_request_t *r)
{
    ngx_http_railgun_ctx_t    *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_railgun_module);

    if (ctx == NULL) {
        ctx = ngx_http_railgun_get_ctx(r);

        if (ctx == NULL) {
            return NGX_DECLINED;
        }

        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        /*
         * Nothing to keep if no location was seen (a "return" at the server
         * level); r->error_page stays unset with recursive_error_pages on.
         */

        if (ctx->rlcf && (r->error_page || r->err_status || clcf->named)) {
            ctx->moved = 1;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_railgun_module);
    }

    if (!ctx->moved) {
        ctx->rlcf = ngx_http_get_module_loc_conf(r, ngx_http_railgun_module);
    }

    return NGX_DECLINED;
}


ngx_http_railgun_loc_conf_t *
ngx_http_railgun_account_conf(ngx_http_request_t *r,
    ngx_http_railgun_ctx_t *ctx)
{
    if (ctx && ctx->rlcf) {
        return ctx->rlcf;
    }

    /* rejected before a location was found: the server's configuration */
    return ngx_http_get_module_loc_conf(r, ngx_http_railgun_module);
}


ngx_int_t
ngx_http_railgun_log_handler(ngx_http_request_t *r)
{
    ngx_uint_t                    status;
    ngx_http_railgun_ctx_t       *ctx;
    ngx_http_railgun_loc_conf_t  *rlcf;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_railgun_get_ctx(r);

    if (ctx && ctx->ws) {
        /* an upgraded request was accounted at its 101: the tunnel ends */
        ngx_http_railgun_websocket_end(r, ctx);
        return NGX_OK;
    }

    rlcf = ngx_http_railgun_account_conf(r, ctx);

    if (!rlcf->enable) {
        return NGX_OK;
    }

    if (r->err_status) {
        status = r->err_status;

    } else {
        status = r->headers_out.status;
    }

    ngx_http_railgun_account(r, ctx, status, r->connection->sent);

    return NGX_OK;
}


/*
 * Accounts a request in the request families and its upstream attempts in
 * the upstream families: at the log phase, or at the 101 of an upgrade,
 * with the bytes of the 101 as "sent".
 */

void
ngx_http_railgun_account(ngx_http_request_t *r, ngx_http_railgun_ctx_t *ctx,
    ngx_uint_t status, off_t sent)
{
    uint64_t                       us;
    ngx_str_t                      path, *text;
    ngx_uint_t                     code;
    ngx_time_t                    *tp;
    ngx_railgun_exemplar_t        *ex, exemplar;
    ngx_http_railgun_slot_t       *slot, *free, value;
    ngx_http_railgun_loc_conf_t   *rlcf;
    ngx_http_railgun_main_conf_t  *rmcf;

    rlcf = ngx_http_railgun_account_conf(r, ctx);
    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);

    if (ctx) {
        us = ngx_railgun_now_us() - ctx->start;

    } else {
        /* rejected before the post-read phase: nginx's own ms clock */
        tp = ngx_timeofday();
        us = ((tp->sec - r->start_sec) * 1000 + (tp->msec - r->start_msec))
             * 1000;
    }

    if (status > 999) {
        status = 0;
    }

    /* the method's bit, not its label: the label is looked up on a miss */
    code = r->method * 1000 + status;

    if (rlcf->path_vars == NULL) {
        path = rlcf->path;
        text = NULL;

    } else {
        if (ngx_http_complex_value(r, rlcf->path_vars, &path) != NGX_OK) {
            return;
        }

        text = &path;
    }

    if (text == NULL && rlcf->index) {

        /* a static path: this location's short list, no hashing */

        for (slot = ngx_http_railgun_loc_cache[rlcf->index];
             slot;
             slot = slot->next)
        {
            if (slot->code == code) {
                goto found;
            }
        }

        ngx_http_railgun_request_series(r, rmcf, rlcf, &path,
                                        ngx_http_railgun_method(r), status,
                                        &value);

        slot = ngx_http_railgun_loc_cache_add(rlcf->index, code, &value);

    } else {
        slot = ngx_http_railgun_cache_find(rlcf, code, text, &free);

        if (slot == NULL) {
            slot = &value;
            ngx_http_railgun_request_series(r, rmcf, rlcf, &path,
                                            ngx_http_railgun_method(r),
                                            status, slot);
            ngx_http_railgun_cache_store(free, rlcf, code, text, slot);
        }
    }

found:

    ngx_railgun_store_add(slot->series[0], 1);
    ngx_railgun_store_observe(slot->series[1], us);
    ngx_railgun_store_add(slot->series[2], r->request_length);
    ngx_railgun_store_add(slot->series[3], sent);

    ex = NULL;

    if (rlcf->exemplar
        && ngx_http_railgun_exemplar_value(r, rlcf, &exemplar) == NGX_OK)
    {
        ex = &exemplar;
        ngx_railgun_store_exemplar_set(rmcf->store, slot->series[1], us, ex);
    }

    if (r->upstream_states && r->upstream_states->nelts) {
        ngx_http_railgun_account_upstream(r, rmcf, rlcf, ex);
    }
}


/*
 * The exemplar of a request: the variable of railgun_exemplar, read once
 * when the request is accounted, and only when it is set and not empty.
 * The value is cut at a character boundary so that the label's name and
 * value fit NGX_RAILGUN_EXEMPLAR_LABEL bytes, hence 128 characters.
 */

ngx_int_t
ngx_http_railgun_exemplar_value(ngx_http_request_t *r,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_railgun_exemplar_t *ex)
{
    ngx_time_t                 *tp;
    ngx_http_variable_value_t  *vv;

    vv = ngx_http_get_indexed_variable(r, rlcf->exemplar->index);

    if (vv == NULL || vv->not_found || vv->len == 0) {
        return NGX_DECLINED;
    }

    ex->name = rlcf->exemplar->name;
    ex->value.data = vv->data;
    ex->value.len = ngx_railgun_utf8_cut(vv->data, vv->len,
                                         NGX_RAILGUN_EXEMPLAR_LABEL
                                         - ex->name.len);

    tp = ngx_timeofday();
    ex->time_ms = (uint64_t) tp->sec * 1000 + tp->msec;

    return NGX_OK;
}


/*
 * railgun_exemplar $variable | off: the label is named as the variable is,
 * so it must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not
 * reserved "__") and leave room for a value.
 */

#define NGX_HTTP_RAILGUN_EXEMPLAR_NAME  64

char *
ngx_http_railgun_exemplar(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_loc_conf_t *rlcf = conf;

    u_char                             c;
    ngx_str_t                         *value, name;
    ngx_uint_t                         i;
    ngx_http_railgun_exemplar_conf_t  *ex;
    ngx_http_railgun_main_conf_t      *rmcf;

    if (rlcf->exemplar != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strcmp(value[1].data, "off") == 0) {
        rlcf->exemplar = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: \"%V\" is not a variable, "
                           "railgun_exemplar takes one such as "
                           "$request_id, or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data + 1;
    name.len = value[1].len - 1;

    for (i = 0; i < name.len; i++) {
        c = name.data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
              || (i > 0 && c >= '0' && c <= '9')))
        {
            break;
        }
    }

    if (i < name.len
        || name.len > NGX_HTTP_RAILGUN_EXEMPLAR_NAME
        || (name.len >= 2 && name.data[0] == '_' && name.data[1] == '_'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: \"%V\" cannot name an exemplar's "
                           "label: a variable named [a-zA-Z_][a-zA-Z0-9_]* "
                           "of at most %d characters, not starting with "
                           "\"__\", is needed", &value[1],
                           NGX_HTTP_RAILGUN_EXEMPLAR_NAME);
        return NGX_CONF_ERROR;
    }

    ex = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_exemplar_conf_t));
    if (ex == NULL) {
        return NGX_CONF_ERROR;
    }

    ex->name = name;
    ex->file = cf->conf_file->file.name;
    ex->line = cf->conf_file->line;

    ex->index = ngx_http_get_variable_index(cf, &name);
    if (ex->index == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    ex->next = rmcf->exemplars;
    rmcf->exemplars = ex;

    rlcf->exemplar = ex;

    return NGX_CONF_OK;
}


/*
 * nginx itself reports an unknown variable once the configuration is read,
 * with no file and line; the variables are all known by the module's
 * postconfiguration (a "set" or a "map" may come after the directive), so
 * the check is made there, with the directive's file and line.
 */

ngx_int_t
ngx_http_railgun_exemplar_resolve(ngx_conf_t *cf)
{
    ngx_uint_t                         n;
    ngx_hash_key_t                    *key;
    ngx_http_variable_t               *pv;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_railgun_exemplar_conf_t  *ex;
    ngx_http_railgun_main_conf_t      *rmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    for (ex = rmcf->exemplars; ex; ex = ex->next) {

        key = cmcf->variables_keys->keys.elts;

        for (n = 0; n < cmcf->variables_keys->keys.nelts; n++) {
            if (key[n].key.len == ex->name.len
                && ngx_strncasecmp(key[n].key.data, ex->name.data,
                                   ex->name.len)
                   == 0)
            {
                goto next;
            }
        }

        pv = cmcf->prefix_variables.elts;

        for (n = 0; n < cmcf->prefix_variables.nelts; n++) {
            if (ex->name.len >= pv[n].name.len
                && ngx_strncasecmp(ex->name.data, pv[n].name.data,
                                   pv[n].name.len)
                   == 0)
            {
                goto next;
            }
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "railgun: unknown \"$%V\" variable in "
                      "railgun_exemplar in %V:%ui",
                      &ex->name, &ex->file, ex->line);
        return NGX_ERROR;

    next:

        continue;
    }

    return NGX_OK;
}


ngx_http_railgun_ctx_t *
ngx_http_railgun_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t      *cln;
    ngx_http_railgun_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_railgun_module);

    if (ctx) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_railgun_cleanup) {
            return cln->data;
        }
    }

    return NULL;
}


static void
ngx_http_railgun_cleanup(void *data)
{
    /* nothing to undo: the cleanup only marks where the context is */
}


static void
ngx_http_railgun_account_upstream(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_railgun_exemplar_t *ex)
{
    ngx_uint_t                   i, status;
    ngx_http_railgun_peer_t     *peer;
    ngx_http_railgun_slot_t     *slot, value;
    ngx_http_upstream_state_t   *state;

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {

        /* nothing was asked of an upstream: a cache hit, for one */
        if (state[i].peer == NULL) {
            continue;
        }

        status = state[i].status;

        if (status > 999) {
            status = 0;
        }

        peer = ngx_http_railgun_peer_find(state[i].peer);

        if (peer == NULL) {
            /*
             * Resolved at run time from a proxy_pass with variables: its
             * host may come from the client, and labels never do.
             */
            slot = ngx_http_railgun_cached(rmcf, rlcf,
                                           &ngx_http_railgun_dynamic_upstream,
                                           &ngx_http_railgun_dynamic_peer,
                                           &ngx_http_railgun_dynamic_peer,
                                           status, &value);

        } else if (peer->no_live) {
            /* "no live upstreams": no server was tried, nothing to time */
            slot = ngx_http_railgun_cached(rmcf, rlcf, peer->upstream, NULL,
                                           peer, NGX_HTTP_RAILGUN_NO_LIVE,
                                           &value);

            ngx_railgun_store_add(slot->series[0], 1);

            continue;

        } else {
            slot = ngx_http_railgun_cached(rmcf, rlcf, peer->upstream,
                                           state[i].peer, state[i].peer,
                                           status, &value);
        }

        ngx_railgun_store_add(slot->series[0], 1);

        if (state[i].response_time != (ngx_msec_t) -1) {
            ngx_railgun_store_observe(slot->series[1],
                                      state[i].response_time * 1000);

            if (ex) {
                ngx_railgun_store_exemplar_set(rmcf->store, slot->series[1],
                                               state[i].response_time * 1000,
                                               ex);
            }
        }

        if (state[i].header_time != (ngx_msec_t) -1) {
            ngx_railgun_store_observe(slot->series[2],
                                      state[i].header_time * 1000);

            if (ex) {
                ngx_railgun_store_exemplar_set(rmcf->store, slot->series[2],
                                               state[i].header_time * 1000,
                                               ex);
            }
        }
    }
}


/*
 * The series of an upstream attempt, cached by a key that alone decides its
 * labels (a peer's name in the configuration, an upstream's entry in the
 * map, or the fixed labels of run-time addresses), so that no request can
 * leave a label in the cache for another.
 */

static ngx_http_railgun_slot_t *
ngx_http_railgun_cached(ngx_http_railgun_main_conf_t *rmcf,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_str_t *upstream, ngx_str_t *peer,
    void *key, ngx_uint_t status, ngx_http_railgun_slot_t *value)
{
    ngx_http_railgun_slot_t  *slot, *free;

    slot = ngx_http_railgun_cache_find(key, status, NULL, &free);

    if (slot) {
        return slot;
    }

    ngx_http_railgun_upstream_series(rmcf, rlcf, upstream, peer, status,
                                     value);

    ngx_http_railgun_cache_store(free, key, status, NULL, value);

    return value;
}


static ngx_uint_t
ngx_http_railgun_method(ngx_http_request_t *r)
{
    switch (r->method) {

    case NGX_HTTP_GET:
        return 0;

    case NGX_HTTP_HEAD:
        return 1;

    case NGX_HTTP_POST:
        return 2;

    case NGX_HTTP_PUT:
        return 3;

    case NGX_HTTP_DELETE:
        return 4;

    case NGX_HTTP_OPTIONS:
        return 5;

    case NGX_HTTP_PATCH:
        return 6;

    case NGX_HTTP_TRACE:
        return 7;

    case NGX_HTTP_CONNECT:
        return 8;

    default:
        return NGX_HTTP_RAILGUN_METHOD_OTHER;
    }
}


/*
 * Returns the slot for the key, or NULL with *free set to where the key may
 * be stored (NULL when the probe sequence is full: the key is not cached).
 */

static ngx_http_railgun_slot_t *
ngx_http_railgun_cache_find(void *conf, ngx_uint_t code, ngx_str_t *text,
    ngx_http_railgun_slot_t **free)
{
    uint32_t                  hash;
    ngx_uint_t                i, n;
    ngx_http_railgun_slot_t  *slot;

    *free = NULL;

    if (ngx_http_railgun_cache == NULL) {
        return NULL;
    }

    hash = (uint32_t) (((uintptr_t) conf >> 3) * 0x9e3779b1)
           ^ (uint32_t) (code * 0x85ebca6b);

    if (text) {
        hash ^= ngx_murmur_hash2(text->data, text->len);
    }

    for (i = hash, n = 0; n < NGX_HTTP_RAILGUN_CACHE_PROBES; i++, n++) {

        slot = &ngx_http_railgun_cache[i & (NGX_HTTP_RAILGUN_CACHE_SLOTS - 1)];

        if (slot->series[0] == NULL) {
            slot->hash = hash;
            *free = slot;
            return NULL;
        }

        if (slot->hash == hash
            && slot->conf == conf
            && slot->code == code
            && (text == NULL
                ? slot->text == NULL
                : slot->text != NULL
                  && slot->len == text->len
                  && ngx_memcmp(slot->text, text->data, text->len) == 0))
        {
            return slot;
        }
    }

    return NULL;
}


/*
 * Keeps a copy of the series found for a static path at the head of its
 * location's list; past the budget the copy on the stack is used once.
 */

static ngx_http_railgun_slot_t *
ngx_http_railgun_loc_cache_add(ngx_uint_t index, ngx_uint_t code,
    ngx_http_railgun_slot_t *value)
{
    ngx_http_railgun_slot_t  *slot;

    if (ngx_http_railgun_loc_slots == 0) {
        return value;
    }

    slot = ngx_palloc(ngx_cycle->pool, sizeof(ngx_http_railgun_slot_t));
    if (slot == NULL) {
        return value;
    }

    *slot = *value;
    slot->code = code;
    slot->next = ngx_http_railgun_loc_cache[index];
    ngx_http_railgun_loc_cache[index] = slot;

    ngx_http_railgun_loc_slots--;

    return slot;
}


static void
ngx_http_railgun_cache_store(ngx_http_railgun_slot_t *slot, void *conf,
    ngx_uint_t code, ngx_str_t *text, ngx_http_railgun_slot_t *value)
{
    if (slot == NULL) {
        return;
    }

    if (text) {
        /* variable labels are cached while their text fits the arena */

        if (text->len > NGX_HTTP_RAILGUN_CACHE_TEXT
            || (size_t) (ngx_http_railgun_cache_text_end
                         - ngx_http_railgun_cache_text)
               < text->len)
        {
            return;
        }

        slot->text = ngx_http_railgun_cache_text;
        slot->len = text->len;
        ngx_http_railgun_cache_text = ngx_cpymem(ngx_http_railgun_cache_text,
                                                 text->data, text->len);

    } else {
        slot->text = NULL;
        slot->len = 0;
    }

    slot->conf = conf;
    slot->code = code;
    ngx_memcpy(slot->series, value->series, sizeof(value->series));
}


static void
ngx_http_railgun_request_series(ngx_http_request_t *r,
    ngx_http_railgun_main_conf_t *rmcf, ngx_http_railgun_loc_conf_t *rlcf,
    ngx_str_t *path, ngx_uint_t method, ngx_uint_t status,
    ngx_http_railgun_slot_t *value)
{
    u_char                       *p, key[NGX_HTTP_RAILGUN_KEY_LEN];
    size_t                        server_path, with_method;
    ngx_railgun_store_t          *store;
    ngx_http_railgun_srv_conf_t  *rscf;

    rscf = ngx_http_get_module_srv_conf(r, ngx_http_railgun_module);
    store = rmcf->store;

    /* one rendering serves all four families: their keys are prefixes */

    p = ngx_http_railgun_label(key, "server", 0, &rscf->name);
    p = ngx_http_railgun_label(p, "path", 1, path);
    server_path = p - key;

    p = ngx_http_railgun_label(p, "method", 1,
                               &ngx_http_railgun_methods[method]);
    with_method = p - key;

    p = ngx_http_railgun_status_label(p, status);

    value->series[0] = ngx_railgun_store_series(store,
                                                NGX_HTTP_RAILGUN_REQUESTS,
                                                key, p - key, rlcf->buckets);
    value->series[1] = ngx_railgun_store_series(store,
                                           NGX_HTTP_RAILGUN_REQUEST_DURATION,
                                           key, with_method, rlcf->buckets);
    value->series[2] = ngx_railgun_store_series(store,
                                                NGX_HTTP_RAILGUN_REQUEST_BYTES,
                                                key, server_path,
                                                rlcf->buckets);
    value->series[3] = ngx_railgun_store_series(store,
                                               NGX_HTTP_RAILGUN_RESPONSE_BYTES,
                                               key, server_path,
                                               rlcf->buckets);
}


static void
ngx_http_railgun_upstream_series(ngx_http_railgun_main_conf_t *rmcf,
    ngx_http_railgun_loc_conf_t *rlcf, ngx_str_t *upstream, ngx_str_t *peer,
    ngx_uint_t status, ngx_http_railgun_slot_t *value)
{
    u_char               *p, key[NGX_HTTP_RAILGUN_KEY_LEN];
    size_t                upstream_peer;
    ngx_railgun_store_t  *store;

    store = rmcf->store;

    p = ngx_http_railgun_label(key, "upstream", 0, upstream);

    if (peer == NULL) {
        value->series[0] = ngx_railgun_store_series(store,
                                            NGX_HTTP_RAILGUN_UPSTREAM_NO_LIVE,
                                            key, p - key, rlcf->buckets);
        value->series[1] = NULL;
        value->series[2] = NULL;
        value->series[3] = NULL;
        return;
    }

    p = ngx_http_railgun_label(p, "peer", 1, peer);
    upstream_peer = p - key;

    p = ngx_http_railgun_status_label(p, status);

    value->series[0] = ngx_railgun_store_series(store,
                                            NGX_HTTP_RAILGUN_UPSTREAM_REQUESTS,
                                            key, p - key, rlcf->buckets);
    value->series[1] = ngx_railgun_store_series(store,
                                            NGX_HTTP_RAILGUN_UPSTREAM_RESPONSE,
                                            key, upstream_peer, rlcf->buckets);
    value->series[2] = ngx_railgun_store_series(store,
                                            NGX_HTTP_RAILGUN_UPSTREAM_HEADER,
                                            key, upstream_peer, rlcf->buckets);
    value->series[3] = NULL;
}


static u_char *
ngx_http_railgun_label(u_char *p, const char *name, size_t comma,
    ngx_str_t *value)
{
    if (comma) {
        *p++ = ',';
    }

    p = ngx_cpymem(p, name, ngx_strlen(name));
    *p++ = '=';
    *p++ = '"';
    p = ngx_railgun_label_escape(p, value->data, value->len);
    *p++ = '"';

    return p;
}


static u_char *
ngx_http_railgun_status_label(u_char *p, ngx_uint_t status)
{
    return ngx_sprintf(p, ",status=\"%03ui\"", status);
}


ngx_int_t
ngx_http_railgun_request_init_worker(ngx_cycle_t *cycle,
    ngx_uint_t nlocations)
{
    size_t  size;

    ngx_http_railgun_loc_cache = ngx_pcalloc(cycle->pool,
                                nlocations * sizeof(ngx_http_railgun_slot_t *));
    if (ngx_http_railgun_loc_cache == NULL) {
        return NGX_ERROR;
    }

    ngx_http_railgun_loc_slots = NGX_HTTP_RAILGUN_CACHE_SLOTS;

    ngx_http_railgun_cache = ngx_pcalloc(cycle->pool,
                                         NGX_HTTP_RAILGUN_CACHE_SLOTS
                                         * sizeof(ngx_http_railgun_slot_t));
    if (ngx_http_railgun_cache == NULL) {
        return NGX_ERROR;
    }

    size = NGX_HTTP_RAILGUN_CACHE_SLOTS * 64;

    ngx_http_railgun_cache_text = ngx_palloc(cycle->pool, size);
    if (ngx_http_railgun_cache_text == NULL) {
        return NGX_ERROR;
    }

    ngx_http_railgun_cache_text_end = ngx_http_railgun_cache_text + size;

    return ngx_http_railgun_peers_init(cycle);
}


/*
 * With "zone" the peers are in shared memory only once the zone is set up:
 * the map is made in each worker, as the gate makes its own.
 */

static ngx_int_t
ngx_http_railgun_peers_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i, n;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;

    umcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_upstream_module);

    if (umcf == NULL) {
        return NGX_OK;
    }

    uscfp = umcf->upstreams.elts;
    n = 0;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        n += ngx_http_railgun_peers_add(cycle, uscfp[i], 0);
    }

    if (n == 0) {
        return NGX_OK;
    }

    /* at most half full: probes stay short */

    for (ngx_http_railgun_npeers = 4;
         ngx_http_railgun_npeers < 2 * n;
         ngx_http_railgun_npeers *= 2)
    {
        /* void */
    }

    ngx_http_railgun_peers = ngx_pcalloc(cycle->pool,
                                         ngx_http_railgun_npeers
                                         * sizeof(ngx_http_railgun_peer_t));
    if (ngx_http_railgun_peers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if (ngx_http_railgun_peers_add(cycle, uscfp[i], 1) == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Counts (add == 0) or maps the names an upstream's peers have in
 * r->upstream_states: every primary and backup server's, and the list's
 * own, which nginx reports when no server of the list is live.
 */

static ngx_int_t
ngx_http_railgun_peers_add(ngx_cycle_t *cycle,
    ngx_http_upstream_srv_conf_t *uscf, ngx_uint_t add)
{
    u_char                        *p;
    size_t                         len;
    ngx_int_t                      n;
    ngx_str_t                     *upstream;
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_http_upstream_rr_peers_t  *peers, *list;

    peers = uscf->peer.data;

    if (peers == NULL) {
        return 0;
    }

    upstream = NULL;

    if (add) {
        upstream = ngx_palloc(cycle->pool, sizeof(ngx_str_t));
        if (upstream == NULL) {
            return NGX_ERROR;
        }

        if (uscf->flags & NGX_HTTP_UPSTREAM_CREATE) {
            /* an upstream{} block: its name */
            *upstream = uscf->host;

        } else {
            /* proxy_pass to an address: its implicit upstream, host:port */
            len = uscf->host.len + sizeof(":65535") - 1;

            p = ngx_pnalloc(cycle->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            upstream->data = p;
            upstream->len = (uscf->port ? ngx_sprintf(p, "%V:%d", &uscf->host,
                                                      (int) uscf->port)
                                        : ngx_cpymem(p, uscf->host.data,
                                                     uscf->host.len))
                            - p;
        }
    }

    n = 0;

    ngx_http_upstream_rr_peers_rlock(peers);

    for (list = peers; list; list = list->next) {

        if (add && list->name) {
            ngx_http_railgun_peer_add(list->name, upstream, 1);
        }

        n++;

        for (peer = list->peer; peer; peer = peer->next) {

            if (add) {
                ngx_http_railgun_peer_add(&peer->name, upstream, 0);
            }

            n++;
        }
    }

    ngx_http_upstream_rr_peers_unlock(peers);

    return n;
}


/*
 * The map has room for twice the peers counted and never takes more than
 * half of it (should the lists grow between the count and the adds), so
 * that a lookup always ends at a free entry.
 */

static void
ngx_http_railgun_peer_add(ngx_str_t *name, ngx_str_t *upstream,
    ngx_uint_t no_live)
{
    ngx_uint_t                i, mask;
    ngx_http_railgun_peer_t  *p;

    if (ngx_http_railgun_nmapped >= ngx_http_railgun_npeers / 2) {
        return;
    }

    mask = ngx_http_railgun_npeers - 1;

    for (i = ((uintptr_t) name >> 3) * 0x9e3779b1; /* void */; i++) {

        p = &ngx_http_railgun_peers[i & mask];

        if (p->name == name) {
            /* an upstream met twice: the first one keeps its label */
            return;
        }

        if (p->name == NULL) {
            p->name = name;
            p->upstream = upstream;
            p->no_live = no_live;
            ngx_http_railgun_nmapped++;
            return;
        }
    }
}


static ngx_http_railgun_peer_t *
ngx_http_railgun_peer_find(ngx_str_t *name)
{
    ngx_uint_t                i, mask;
    ngx_http_railgun_peer_t  *p;

    if (ngx_http_railgun_peers == NULL) {
        return NULL;
    }

    mask = ngx_http_railgun_npeers - 1;

    for (i = ((uintptr_t) name >> 3) * 0x9e3779b1; /* void */; i++) {

        p = &ngx_http_railgun_peers[i & mask];

        if (p->name == name) {
            return p;
        }

        if (p->name == NULL) {
            return NULL;
        }
    }
}
