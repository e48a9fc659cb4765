
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"


/*
 * The gate's content handler: 200 {"status":"ready",...} or 503
 * {"status":"unavailable",...} from the states of the probes and of the
 * checked upstreams it names (ngx_http_railgun_upstream.c).
 */


typedef struct {
    ngx_str_t                      name;
    ngx_railgun_probe_t           *probe;
    ngx_http_railgun_upstream_t   *upstream;
    ngx_uint_t                     min;
    ngx_uint_t                     percent;     /* unsigned  percent:1; */
    ngx_uint_t                     has_min;     /* unsigned  has_min:1; */
    ngx_str_t                      file;
    ngx_uint_t                     line;
    ngx_http_core_loc_conf_t      *clcf;

    /* item[0] only: this worker's last look at drain_file= */
    time_t                         drain_checked;
    ngx_uint_t                     draining;    /* unsigned  draining:1; */
} ngx_http_railgun_gate_item_t;


ngx_int_t
ngx_http_railgun_gate_handler(ngx_http_request_t *r)
{
    u_char                        *p, *up;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, ready, healthy, total, need;
    time_t                         now;
    ngx_uint_t                     draining;
    ngx_chain_t                    out;
    ngx_file_info_t                fi;
    ngx_http_railgun_loc_conf_t   *rlcf;
    ngx_http_railgun_gate_item_t  *item;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_railgun_module);

    item = rlcf->gate->elts;

    up = ngx_palloc(r->pool, rlcf->gate->nelts);
    if (up == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ready = 1;
    len = sizeof("{\"status\":\"unavailable\"}" CRLF) - 1;

    /*
     * draining: the node leaves the outer load balancer while the file
     * exists; the probes and the names' states go on as ever.  A stat()
     * blocks the worker: it is made at most once a second, which an outer
     * balancer polling every few seconds does not notice.  item[0] is
     * there even when the gate names nothing (ngx_http_railgun_gate).
     */

    draining = 0;

    if (rlcf->gate_drain.len) {
        now = ngx_time();

        if (item[0].drain_checked != now) {
            item[0].drain_checked = now;
            item[0].draining = (ngx_file_info(rlcf->gate_drain.data, &fi)
                                != NGX_FILE_ERROR);
        }

        draining = item[0].draining;
    }

    for (i = 0; i < rlcf->gate->nelts; i++) {

        if (item[i].probe) {
            up[i] = ngx_railgun_probe_is_up(item[i].probe);

        } else {
            healthy = ngx_http_railgun_upstream_healthy(item[i].upstream,
                                                        &total);

            need = item[i].percent ? (total * item[i].min + 99) / 100
                                   : item[i].min;

            up[i] = (healthy >= need && healthy > 0);
        }

        ready &= up[i];

        len += sizeof(",\"\":false") - 1
               + item[i].name.len
               + ngx_escape_json(NULL, item[i].name.data, item[i].name.len);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(b->last, "{\"status\":\"%s\"",
                    draining ? "draining" : ready ? "ready" : "unavailable");

    for (i = 0; i < rlcf->gate->nelts; i++) {
        *p++ = ',';
        *p++ = '"';
        p = (u_char *) ngx_escape_json(p, item[i].name.data,
                                       item[i].name.len);
        p = ngx_sprintf(p, "\":%s", up[i] ? "true" : "false");
    }

    *p++ = '}';
    *p++ = CR; *p++ = LF;

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = (ready && !draining)
                            ? NGX_HTTP_OK : NGX_HTTP_SERVICE_UNAVAILABLE;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    /* a readiness answer is about now: never from a cache */

    if (ngx_http_railgun_no_cache(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_int_t
ngx_http_railgun_no_cache(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");
    h->lowcase_key = (u_char *) "cache-control";
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* configuration */


/* railgun_gate NAME[:min=N|N%] ...: names are resolved once all is read */

char *
ngx_http_railgun_gate(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_loc_conf_t *rlcf = conf;

    ngx_int_t                      rc;
    ngx_str_t                     *value;
    ngx_uint_t                     i, j;
    ngx_array_t                  **gatep;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_railgun_gate_item_t  *item, *first;
    ngx_http_railgun_main_conf_t  *rmcf;

    if (rlcf->gate) {
        return "is duplicate";
    }

    rlcf->gate = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                  sizeof(ngx_http_railgun_gate_item_t));
    if (rlcf->gate == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /*
     * the first slot, allocated even for a gate of drain_file= alone,
     * tells the resolve which location and line the gate is in
     */

    first = rlcf->gate->elts;

    ngx_memzero(first, sizeof(ngx_http_railgun_gate_item_t));

    first->file = cf->conf_file->file.name;
    first->line = cf->conf_file->line;
    first->clcf = clcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    gatep = ngx_array_push(&rmcf->gates);
    if (gatep == NULL) {
        return NGX_CONF_ERROR;
    }

    *gatep = rlcf->gate;

    value = cf->args->elts;

    /* a content handler set before: one set after is found at resolve */

    if (clcf->handler && clcf->handler != ngx_http_railgun_gate_handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: railgun_gate and another content "
                           "handler (proxy_pass, railgun_metrics, ...) in "
                           "one location");
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "drain_file=", 11) == 0) {

            if (rlcf->gate_drain.len || value[i].len == 11) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "railgun: an empty or second "
                                   "\"drain_file=\" in one railgun_gate");
                return NGX_CONF_ERROR;
            }

            rlcf->gate_drain.data = value[i].data + 11;
            rlcf->gate_drain.len = value[i].len - 11;

            /* relative to the prefix, as nginx's own paths; NUL-ended */

            if (ngx_conf_full_name(cf->cycle, &rlcf->gate_drain, 0)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        item = ngx_array_push(rlcf->gate);
        if (item == NULL) {
            return NGX_CONF_ERROR;
        }

        first = rlcf->gate->elts;

        ngx_memzero(item, sizeof(ngx_http_railgun_gate_item_t));

        item->name = value[i];
        item->file = cf->conf_file->file.name;
        item->line = cf->conf_file->line;

        rc = ngx_railgun_conf_gate(value[i].data, value[i].len,
                                   &item->name.len, &item->min,
                                   &item->percent);
        if (rc == NGX_ERROR) {
            goto invalid;
        }

        item->has_min = (rc == NGX_OK);
        item->clcf = clcf;

        for (j = 0; j < rlcf->gate->nelts - 1; j++) {
            if (first[j].name.len == item->name.len
                && ngx_strncmp(first[j].name.data, item->name.data,
                               item->name.len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "railgun: \"%V\" twice in one "
                                   "railgun_gate", &item->name);
                return NGX_CONF_ERROR;
            }
        }
    }

    clcf->handler = ngx_http_railgun_gate_handler;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "railgun: invalid gate \"%V\", NAME or NAME:min=N or "
                       "NAME:min=N%% expected", &value[i]);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_railgun_gate_resolve(ngx_conf_t *cf, ngx_array_t *gate)
{
    ngx_uint_t                      i, j, n;
    ngx_railgun_probe_t            *probe;
    ngx_http_railgun_srv_conf_t    *rscf;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_railgun_gate_item_t   *item;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    item = gate->elts;

    /*
     * another content handler of the location (proxy_pass,
     * railgun_metrics, ...) took it over, or was taken over: either way
     * one of the two would never answer; item[0] is set even when the
     * gate names nothing (ngx_http_railgun_gate)
     */

    if (item[0].clcf->handler != ngx_http_railgun_gate_handler) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "railgun: railgun_gate and another content handler "
                      "(proxy_pass, railgun_metrics, ...) in one location "
                      "in %V:%ui", &item[0].file, item[0].line);
        return NGX_ERROR;
    }

    for (i = 0; i < gate->nelts; i++) {

        probe = rmcf->probes.elts;

        for (j = 0; j < rmcf->probes.nelts; j++) {
            if (!probe[j].check
                && probe[j].name.len == item[i].name.len
                && ngx_strncmp(probe[j].name.data, item[i].name.data,
                               item[i].name.len)
                   == 0)
            {
                item[i].probe = &probe[j];
                break;
            }
        }

        if (item[i].probe) {
            if (item[i].has_min) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "railgun: \"min\" is for upstreams, \"%V\" is a "
                              "probe in %V:%ui", &item[i].name, &item[i].file,
                              item[i].line);
                return NGX_ERROR;
            }

            continue;
        }

        uscfp = umcf->upstreams.elts;

        for (j = 0; j < umcf->upstreams.nelts; j++) {

            if (uscfp[j]->srv_conf == NULL
                || uscfp[j]->host.len != item[i].name.len
                || ngx_strncmp(uscfp[j]->host.data, item[i].name.data,
                               item[i].name.len)
                   != 0)
            {
                continue;
            }

            rscf = uscfp[j]->srv_conf[ngx_http_railgun_module.ctx_index];
            item[i].upstream = rscf->upstream;
            break;
        }

        n = item[i].upstream
            ? ngx_http_railgun_upstream_nservers(item[i].upstream) : 0;

        if (item[i].upstream && item[i].has_min && !item[i].percent
            && item[i].min > n)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "railgun: \"%V:min=%ui\" asks more than the %ui "
                          "servers not marked down upstream \"%V\" has "
                          "in %V:%ui",
                          &item[i].name, item[i].min, n, &item[i].name,
                          &item[i].file, item[i].line);
            return NGX_ERROR;
        }

        if (item[i].upstream == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "railgun: railgun_gate names \"%V\", which is "
                          "neither a railgun_probe nor an upstream with "
                          "railgun_check in %V:%ui", &item[i].name,
                          &item[i].file, item[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
