
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"
#include "ngx_railgun_labels.h"


/* a worker re-checks a probe not yet due at most this often */
#define NGX_RAILGUN_PROBE_RECHECK  1000


static void ngx_railgun_probe_timer_handler(ngx_event_t *ev);
static void ngx_railgun_probe_start(ngx_railgun_probe_t *probe);
static void ngx_railgun_probe_write_handler(ngx_event_t *wev);
static void ngx_railgun_probe_read_handler(ngx_event_t *rev);
static void ngx_railgun_probe_timeout_handler(ngx_event_t *ev);
static ngx_int_t ngx_railgun_probe_test_connect(ngx_connection_t *c,
    ngx_railgun_probe_exchange_t *x);
static void ngx_railgun_probe_done(ngx_railgun_probe_exchange_t *x,
    ngx_uint_t result, const char *reason);
static void ngx_railgun_probe_close(ngx_railgun_probe_exchange_t *x);
static void ngx_railgun_probe_record(ngx_railgun_probe_t *probe,
    ngx_railgun_probe_exchange_t *x, uint64_t us);
static ngx_railgun_probe_proto_t *ngx_railgun_probe_proto(
    ngx_railgun_probe_t *probe);
static char *ngx_railgun_probe_parse_redis(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *url);
static char *ngx_railgun_probe_parse_status(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *value);
static char *ngx_railgun_probe_address(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *hostport, in_port_t port);
static ngx_railgun_series_t *ngx_railgun_probe_series(
    ngx_railgun_store_t *store, ngx_uint_t family, ngx_railgun_probe_t *probe,
    const char *label, ngx_str_t *value, ngx_railgun_buckets_t *buckets);
static ngx_railgun_series_t *ngx_railgun_probe_peer_series(
    ngx_railgun_store_t *store, ngx_uint_t family,
    ngx_railgun_probe_t *probe);


ngx_str_t  ngx_railgun_probe_results[] = {
    ngx_string("ok"),
    ngx_string("timeout"),
    ngx_string("refused"),
    ngx_string("error"),
    ngx_string("bad_status"),
    ngx_string("bad_body"),
    ngx_string("bad_role"),
    ngx_string("auth")
};


static ngx_str_t  ngx_railgun_probe_to[] = {
    ngx_string("down"),
    ngx_string("up")
};


static ngx_railgun_store_t  *ngx_railgun_probe_store;


ngx_uint_t
ngx_railgun_probe_is_up(ngx_railgun_probe_t *probe)
{
    uint64_t  state;

    if (probe->disabled) {
        return probe->initial_up;
    }

    state = ngx_railgun_store_value(probe->state, NGX_RAILGUN_PROBE_STATE);

    if (state == NGX_RAILGUN_PROBE_UNKNOWN) {
        return probe->initial_up;
    }

    return state == NGX_RAILGUN_PROBE_UP;
}


static void
ngx_railgun_probe_timer_handler(ngx_event_t *ev)
{
    ngx_msec_t            now, due, next, delay;
    ngx_railgun_probe_t  *probe;

    probe = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    now = ngx_current_msec;
    due = (ngx_msec_t) ngx_railgun_store_value(probe->state,
                                               NGX_RAILGUN_PROBE_NEXT_DUE);

    if (probe->exchange == NULL && (ngx_msec_int_t) (now - due) >= 0) {

        next = now + probe->interval;

        if (probe->jitter) {
            next += ngx_random() % probe->jitter;
        }

        /* one worker wins the round; the others see the new due time */

        if (ngx_railgun_store_cas(probe->state, NGX_RAILGUN_PROBE_NEXT_DUE,
                                  due, next))
        {
            ngx_railgun_probe_start(probe);
        }

        due = (ngx_msec_t) ngx_railgun_store_value(probe->state,
                                                   NGX_RAILGUN_PROBE_NEXT_DUE);
    }

    delay = (ngx_msec_int_t) (due - now) > 0 ? due - now : 1;

    /* wake a little after the due time: the winner is whoever is first */
    delay = ngx_min(delay, NGX_RAILGUN_PROBE_RECHECK) + ngx_random() % 10;

    ngx_add_timer(ev, delay);
}


static void
ngx_railgun_probe_start(ngx_railgun_probe_t *probe)
{
    ngx_int_t                      rc;
    ngx_pool_t                    *pool;
    ngx_connection_t              *c;
    ngx_railgun_probe_proto_t     *proto;
    ngx_railgun_probe_exchange_t  *x;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    x = ngx_pcalloc(pool, sizeof(ngx_railgun_probe_exchange_t));
    if (x == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    x->pool = pool;
    x->probe = probe;
    x->start = ngx_railgun_now_us();
    x->out = probe->request.data;
    x->out_end = probe->request.data + probe->request.len;

    probe->exchange = x;

    x->timeout.handler = ngx_railgun_probe_timeout_handler;
    x->timeout.data = x;
    x->timeout.log = ngx_cycle->log;
    x->timeout.cancelable = 1;

    ngx_add_timer(&x->timeout, probe->timeout);

    proto = ngx_railgun_probe_proto(probe);

    if (proto) {
        x->in = ngx_create_temp_buf(pool, proto->max_reply);
        if (x->in == NULL) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   "no memory");
            return;
        }

        if (proto->start(x) != NGX_OK) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   "no memory");
            return;
        }
    }

    x->peer.sockaddr = probe->addr.sockaddr;
    x->peer.socklen = probe->addr.socklen;
    x->peer.name = &probe->target;
    x->peer.get = ngx_event_get_peer;
    x->peer.log = ngx_cycle->log;
    x->peer.log_error = NGX_ERROR_ERR;

    rc = ngx_event_connect_peer(&x->peer);

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "railgun probe \"%V\" connect: %i", &probe->name, rc);

    if (rc == NGX_ERROR || rc == NGX_BUSY) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR, "connect failed");
        return;
    }

    if (rc == NGX_DECLINED) {
        /* refused at once: ngx_event_connect_peer closed the socket */
        x->peer.connection = NULL;
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_REFUSED,
                               "connection refused");
        return;
    }

    c = x->peer.connection;
    c->data = x;
    c->pool = pool;
    c->read->handler = ngx_railgun_probe_read_handler;
    c->write->handler = ngx_railgun_probe_write_handler;

    if (rc == NGX_OK) {
        ngx_railgun_probe_write_handler(c->write);
    }
}


static void
ngx_railgun_probe_write_handler(ngx_event_t *wev)
{
    ssize_t                        n;
    ngx_connection_t              *c;
    ngx_railgun_probe_exchange_t  *x;

    c = wev->data;
    x = c->data;

    if (ngx_railgun_probe_test_connect(c, x) != NGX_OK) {
        return;
    }

    while (x->out < x->out_end) {

        n = c->send(c, x->out, x->out_end - x->out);

        if (n == NGX_AGAIN) {
            if (ngx_handle_write_event(wev, 0) != NGX_OK) {
                ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                       "write event failed");
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   "send failed");
            return;
        }

        x->out += n;
    }

    if (ngx_railgun_probe_proto(x->probe) == NULL) {
        /* a connect check: connected is all it asks */
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_OK, NULL);
        return;
    }

    if (wev->active && ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "write event failed");
        return;
    }

    if (c->read->ready) {
        ngx_railgun_probe_read_handler(c->read);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "read event failed");
    }
}


static void
ngx_railgun_probe_read_handler(ngx_event_t *rev)
{
    ssize_t                        n;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_connection_t              *c;
    ngx_railgun_probe_proto_t     *proto;
    ngx_railgun_probe_exchange_t  *x;

    c = rev->data;
    x = c->data;
    b = x->in;
    proto = ngx_railgun_probe_proto(x->probe);

    if (ngx_railgun_probe_test_connect(c, x) != NGX_OK) {
        return;
    }

    for ( ;; ) {

        if (b->last == b->end) {
            /* bounded: a reply larger than the buffer is a failure */
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   "reply too large");
            return;
        }

        n = c->recv(c, b->last, b->end - b->last);

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                       "read event failed");
            }

            return;
        }

        if (n == NGX_ERROR) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   "recv failed");
            return;
        }

        rc = proto->process(x, b->last, n);

        b->last += n;

        if (rc == NGX_DONE) {
            ngx_railgun_probe_done(x, x->result, x->reason);
            return;
        }

        if (rc != NGX_AGAIN || n == 0) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                                   n == 0 ? "connection closed early"
                                          : "bad reply");
            return;
        }
    }
}


static void
ngx_railgun_probe_timeout_handler(ngx_event_t *ev)
{
    ngx_railgun_probe_exchange_t  *x;

    x = ev->data;

    ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_TIMEOUT, "timed out");
}


static ngx_int_t
ngx_railgun_probe_test_connect(ngx_connection_t *c,
    ngx_railgun_probe_exchange_t *x)
{
    int        err;
    socklen_t  len;

    /* a late refusal shows on the first event only */

    if (x->connected) {
        return NGX_OK;
    }

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err == 0) {
        x->connected = 1;
        return NGX_OK;
    }

    ngx_railgun_probe_done(x, err == NGX_ECONNREFUSED
                              ? NGX_RAILGUN_PROBE_REFUSED
                              : NGX_RAILGUN_PROBE_ERROR,
                           err == NGX_ECONNREFUSED ? "connection refused"
                                                   : "connect failed");

    return NGX_ERROR;
}


static void
ngx_railgun_probe_done(ngx_railgun_probe_exchange_t *x, ngx_uint_t result,
    const char *reason)
{
    uint64_t              us;
    ngx_railgun_probe_t  *probe;

    probe = x->probe;

    us = ngx_railgun_now_us() - x->start;

    x->result = result;
    x->reason = reason;

    ngx_log_debug3(NGX_LOG_DEBUG_EVENT, ngx_cycle->log, 0,
                   "railgun probe \"%V\" done: %V %s", &probe->name,
                   &ngx_railgun_probe_results[result],
                   reason ? reason : "");

    ngx_railgun_probe_record(probe, x, us);

    ngx_railgun_probe_close(x);
}


static void
ngx_railgun_probe_close(ngx_railgun_probe_exchange_t *x)
{
    ngx_railgun_probe_proto_t  *proto;

    if (x->timeout.timer_set) {
        ngx_del_timer(&x->timeout);
    }

    proto = ngx_railgun_probe_proto(x->probe);

    if (proto) {
        proto->finish(x);
    }

    if (x->peer.connection) {
        x->peer.connection->pool = NULL;
        ngx_close_connection(x->peer.connection);
        x->peer.connection = NULL;
    }

    x->probe->exchange = NULL;

    ngx_destroy_pool(x->pool);
}


/*
 * The winner of the round alone writes the probe's state, so the rise and
 * fall counts need no lock; other workers only read the state.
 */

static void
ngx_railgun_probe_record(ngx_railgun_probe_t *probe,
    ngx_railgun_probe_exchange_t *x, uint64_t us)
{
    uint64_t    *v;
    ngx_uint_t   up, was_up;

    /* only the winner of the round writes these, and the gate reads STATE */
    v = probe->state->values;

    was_up = ngx_railgun_probe_is_up(probe);
    up = was_up;

    if (x->result == NGX_RAILGUN_PROBE_OK) {
        v[NGX_RAILGUN_PROBE_OKS]++;
        v[NGX_RAILGUN_PROBE_FAILS] = 0;

        if (!was_up && v[NGX_RAILGUN_PROBE_OKS] >= probe->rise) {
            up = 1;
        }

    } else {
        v[NGX_RAILGUN_PROBE_FAILS]++;
        v[NGX_RAILGUN_PROBE_OKS] = 0;

        if (was_up && v[NGX_RAILGUN_PROBE_FAILS] >= probe->fall) {
            up = 0;
        }
    }

    ngx_railgun_store_set(probe->state, NGX_RAILGUN_PROBE_STATE,
                          up ? NGX_RAILGUN_PROBE_UP : NGX_RAILGUN_PROBE_DOWN);

    ngx_railgun_store_set(probe->up, 0, up);

    ngx_railgun_store_add(probe->checks[x->result], 1);
    ngx_railgun_store_observe(probe->duration, us);

    if (x->have_info) {
        ngx_railgun_store_set(probe->memory_used, 0, x->memory_used);
        ngx_railgun_store_set(probe->memory_max, 0, x->memory_max);
        ngx_railgun_store_set(probe->clients, 0, x->clients);
    }

    if (up == was_up) {
        return;
    }

    ngx_railgun_store_add(probe->transitions[up], 1);

    /* balancers resynchronise their peers when this moves */
    ngx_railgun_store_changed(ngx_railgun_probe_store);

    if (up) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "railgun probe \"%V\" %V is up after %ui "
                      "successful checks", &probe->name, &probe->target,
                      probe->rise);

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "railgun probe \"%V\" %V is down after %ui "
                      "failed checks, last: %V (%s)", &probe->name,
                      &probe->target, probe->fall,
                      &ngx_railgun_probe_results[x->result],
                      x->reason ? x->reason : "no reason");
    }
}


static ngx_railgun_probe_proto_t *
ngx_railgun_probe_proto(ngx_railgun_probe_t *probe)
{
    switch (probe->type) {

    case NGX_RAILGUN_PROBE_REDIS:
        return &ngx_railgun_probe_redis;

    case NGX_RAILGUN_PROBE_HTTP:
        return &ngx_railgun_probe_http;

    default:
        return NULL;
    }
}


ngx_int_t
ngx_railgun_probe_init_worker(ngx_cycle_t *cycle, ngx_array_t *probes,
    ngx_railgun_store_t *store, ngx_railgun_probe_families_t *fam,
    ngx_railgun_buckets_t *buckets)
{
    ngx_uint_t            i, j, disabled;
    ngx_railgun_probe_t  *probe, *first;

    ngx_railgun_probe_store = store;
    disabled = 0;
    first = NULL;

    probe = probes->elts;

    for (i = 0; i < probes->nelts; i++) {

        probe[i].state = ngx_railgun_probe_series(store, fam->state,
                                                  &probe[i], NULL, NULL,
                                                  NULL);

        if (probe[i].state->flags & NGX_RAILGUN_SERIES_OVERFLOW) {
            /* probes must never share a state: this one cannot run */
            probe[i].disabled = 1;

            if (disabled++ == 0) {
                first = &probe[i];
            }

            continue;
        }

        if (probe[i].check) {
            probe[i].up = ngx_railgun_probe_peer_series(store, fam->peer_up,
                                                        &probe[i]);

        } else {
            probe[i].up = ngx_railgun_probe_series(store, fam->up, &probe[i],
                                                   NULL, NULL, NULL);
        }
        probe[i].duration = ngx_railgun_probe_series(store, fam->duration,
                                                     &probe[i], NULL, NULL,
                                                     buckets);

        for (j = 0; j < NGX_RAILGUN_PROBE_NRESULTS; j++) {
            probe[i].checks[j] = ngx_railgun_probe_series(store, fam->checks,
                                               &probe[i], "result",
                                               &ngx_railgun_probe_results[j],
                                               NULL);
        }

        for (j = 0; j < 2; j++) {
            probe[i].transitions[j] = ngx_railgun_probe_series(store,
                                                fam->transitions, &probe[i],
                                                "to", &ngx_railgun_probe_to[j],
                                                NULL);
        }

        if (probe[i].type == NGX_RAILGUN_PROBE_REDIS) {
            probe[i].memory_used = ngx_railgun_probe_series(store,
                                                   fam->memory_used,
                                                   &probe[i], NULL, NULL,
                                                   NULL);
            probe[i].memory_max = ngx_railgun_probe_series(store,
                                                   fam->memory_max,
                                                   &probe[i], NULL, NULL,
                                                   NULL);
            probe[i].clients = ngx_railgun_probe_series(store, fam->clients,
                                                        &probe[i], NULL, NULL,
                                                        NULL);
        }

        /* before any result the gauge tells the initial state */
        ngx_railgun_store_set(probe[i].up, 0,
                              ngx_railgun_probe_is_up(&probe[i]));

        ngx_railgun_store_own(store, probe[i].up);

        if (probe[i].type == NGX_RAILGUN_PROBE_REDIS) {
            ngx_railgun_store_own(store, probe[i].memory_used);
            ngx_railgun_store_own(store, probe[i].memory_max);
            ngx_railgun_store_own(store, probe[i].clients);
        }

        probe[i].timer.handler = ngx_railgun_probe_timer_handler;
        probe[i].timer.data = &probe[i];
        probe[i].timer.log = cycle->log;
        probe[i].timer.cancelable = 1;

        ngx_add_timer(&probe[i].timer, 1 + ngx_random() % 100);
    }

    if (disabled) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "railgun zone is full: %ui of %ui probes are not run "
                      "and keep their initial state, the first is \"%V\" %V",
                      disabled, probes->nelts, &first->name, &first->target);
    }

    return NGX_OK;
}


void
ngx_railgun_probe_exit_worker(ngx_array_t *probes)
{
    ngx_uint_t            i;
    ngx_railgun_probe_t  *probe;

    probe = probes->elts;

    for (i = 0; i < probes->nelts; i++) {

        /* a probe cut short by the exit is no result: drop it */

        if (probe[i].exchange) {
            ngx_railgun_probe_close(probe[i].exchange);
        }
    }
}


static ngx_railgun_series_t *
ngx_railgun_probe_series(ngx_railgun_store_t *store, ngx_uint_t family,
    ngx_railgun_probe_t *probe, const char *label, ngx_str_t *value,
    ngx_railgun_buckets_t *buckets)
{
    u_char  *p, key[2 * NGX_RAILGUN_LABEL_ESCAPED_MAX + 128];

    p = ngx_cpymem(key, "probe=\"", sizeof("probe=\"") - 1);
    p = ngx_railgun_label_escape(p, probe->name.data, probe->name.len);
    p = ngx_cpymem(p, "\",target=\"", sizeof("\",target=\"") - 1);
    p = ngx_railgun_label_escape(p, probe->target.data, probe->target.len);
    *p++ = '"';

    if (label) {
        p = ngx_sprintf(p, ",%s=\"%V\"", label, value);
    }

    return ngx_railgun_store_series(store, family, key, p - key, buckets);
}


/* railgun_upstream_peer_up: a check is labelled as the upstream and peer */

static ngx_railgun_series_t *
ngx_railgun_probe_peer_series(ngx_railgun_store_t *store, ngx_uint_t family,
    ngx_railgun_probe_t *probe)
{
    u_char  *p, key[2 * NGX_RAILGUN_LABEL_ESCAPED_MAX + 128];

    p = ngx_cpymem(key, "upstream=\"", sizeof("upstream=\"") - 1);
    p = ngx_railgun_label_escape(p, probe->name.data, probe->name.len);
    p = ngx_cpymem(p, "\",peer=\"", sizeof("\",peer=\"") - 1);
    p = ngx_railgun_label_escape(p, probe->target.data, probe->target.len);
    *p++ = '"';

    return ngx_railgun_store_series(store, family, key, p - key, NULL);
}


/* configuration */


/* the defaults of SPEC.md, before parameters */

void
ngx_railgun_probe_init(ngx_railgun_probe_t *probe, ngx_str_t *name,
    ngx_uint_t check)
{
    ngx_memzero(probe, sizeof(ngx_railgun_probe_t));

    probe->name = *name;
    probe->check = check;
    probe->interval = 2000;
    probe->timeout = 1000;
    probe->rise = 2;
    probe->fall = 3;
    probe->db = -1;

    /* a reload must never open a window where every peer is down */
    probe->initial_up = check;

    if (check) {
        probe->type = NGX_RAILGUN_PROBE_HTTP;
        ngx_str_set(&probe->uri, "/");
    }
}


ngx_int_t
ngx_railgun_probe_init_request(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    ngx_railgun_probe_proto_t  *proto;

    if (probe->type == NGX_RAILGUN_PROBE_HTTP && probe->host.len == 0) {
        probe->host = probe->target;
    }

    proto = ngx_railgun_probe_proto(probe);

    if (proto && proto->init_conf(cf, probe) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


char *
ngx_railgun_probe_parse(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *url, ngx_str_t *params, ngx_uint_t nparams)
{
    char        *rv;
    ngx_str_t    hostport;
    ngx_uint_t   i;

    if (url->len > 8 && ngx_strncasecmp(url->data, (u_char *) "redis://", 8)
                        == 0)
    {
        probe->type = NGX_RAILGUN_PROBE_REDIS;

        rv = ngx_railgun_probe_parse_redis(cf, probe, url);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (url->len > 7
               && ngx_strncasecmp(url->data, (u_char *) "http://", 7) == 0)
    {
        probe->type = NGX_RAILGUN_PROBE_HTTP;

        hostport.data = url->data + 7;
        hostport.len = url->len - 7;

        for (i = 0; i < hostport.len; i++) {
            if (hostport.data[i] == '/') {
                break;
            }
        }

        probe->uri.data = hostport.data + i;
        probe->uri.len = hostport.len - i;
        hostport.len = i;

        if (probe->uri.len == 0) {
            ngx_str_set(&probe->uri, "/");
        }

        rv = ngx_railgun_probe_address(cf, probe, &hostport, 80);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (url->len > 6
               && ngx_strncasecmp(url->data, (u_char *) "tcp://", 6) == 0)
    {
        probe->type = NGX_RAILGUN_PROBE_TCP;

        hostport.data = url->data + 6;
        hostport.len = url->len - 6;

        rv = ngx_railgun_probe_address(cf, probe, &hostport, 0);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid probe URL \"%V\", redis://, http:// "
                           "or tcp:// expected", url);
        return NGX_CONF_ERROR;
    }

    return ngx_railgun_probe_parse_params(cf, probe, params, nparams);
}


/*
 * The parameters common to railgun_probe and railgun_check; a check (a probe
 * made for each server of an upstream) also takes type= and uri=.
 */

char *
ngx_railgun_probe_parse_params(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *params, ngx_uint_t nparams)
{
    ngx_int_t   n;
    ngx_str_t   s;
    ngx_uint_t  i;

    for (i = 0; i < nparams; i++) {

        if (probe->check) {

            if (ngx_strcmp(params[i].data, "type=http") == 0) {
                probe->type = NGX_RAILGUN_PROBE_HTTP;
                continue;
            }

            if (ngx_strcmp(params[i].data, "type=tcp") == 0) {
                probe->type = NGX_RAILGUN_PROBE_TCP;
                continue;
            }

            if (ngx_strncmp(params[i].data, "uri=", 4) == 0
                && params[i].len > 4 && params[i].data[4] == '/')
            {
                probe->uri.data = params[i].data + 4;
                probe->uri.len = params[i].len - 4;
                continue;
            }
        }

        if (ngx_strncmp(params[i].data, "interval=", 9) == 0) {
            s.data = params[i].data + 9;
            s.len = params[i].len - 9;

            probe->interval = ngx_parse_time(&s, 0);

            if (probe->interval == (ngx_msec_t) NGX_ERROR
                || probe->interval == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "timeout=", 8) == 0) {
            s.data = params[i].data + 8;
            s.len = params[i].len - 8;

            probe->timeout = ngx_parse_time(&s, 0);

            if (probe->timeout == (ngx_msec_t) NGX_ERROR
                || probe->timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "jitter=", 7) == 0) {
            s.data = params[i].data + 7;
            s.len = params[i].len - 7;

            probe->jitter = ngx_parse_time(&s, 0);

            if (probe->jitter == (ngx_msec_t) NGX_ERROR) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "rise=", 5) == 0) {
            n = ngx_atoi(params[i].data + 5, params[i].len - 5);

            if (n <= 0) {
                goto invalid;
            }

            probe->rise = n;
            continue;
        }

        if (ngx_strncmp(params[i].data, "fall=", 5) == 0) {
            n = ngx_atoi(params[i].data + 5, params[i].len - 5);

            if (n <= 0) {
                goto invalid;
            }

            probe->fall = n;
            continue;
        }

        if (ngx_strcmp(params[i].data, "initial=up") == 0) {
            probe->initial_up = 1;
            continue;
        }

        if (ngx_strcmp(params[i].data, "initial=down") == 0) {
            probe->initial_up = 0;
            continue;
        }

        if (probe->type == NGX_RAILGUN_PROBE_HTTP) {

            if (ngx_strncmp(params[i].data, "status=", 7) == 0) {
                s.data = params[i].data + 7;
                s.len = params[i].len - 7;

                if (ngx_railgun_probe_parse_status(cf, probe, &s)
                    != NGX_CONF_OK)
                {
                    goto invalid;
                }

                continue;
            }

            if (ngx_strncmp(params[i].data, "body=", 5) == 0
                && params[i].len > 5)
            {
                probe->body.data = params[i].data + 5;
                probe->body.len = params[i].len - 5;
                continue;
            }

            if (ngx_strncmp(params[i].data, "host=", 5) == 0
                && params[i].len > 5)
            {
                probe->host.data = params[i].data + 5;
                probe->host.len = params[i].len - 5;
                continue;
            }
        }

        if (probe->type == NGX_RAILGUN_PROBE_REDIS) {

            if (ngx_strcmp(params[i].data, "role=master") == 0) {
                probe->role = NGX_RAILGUN_ROLE_MASTER;
                continue;
            }

            if (ngx_strcmp(params[i].data, "role=replica") == 0) {
                probe->role = NGX_RAILGUN_ROLE_REPLICA;
                continue;
            }

            if (ngx_strcmp(params[i].data, "role=any") == 0) {
                probe->role = NGX_RAILGUN_ROLE_ANY;
                continue;
            }
        }

        goto invalid;
    }

    if (probe->timeout >= probe->interval) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "probe \"%V\": timeout must be less than "
                           "interval", &probe->name);
        return NGX_CONF_ERROR;
    }

    if (probe->type == NGX_RAILGUN_PROBE_HTTP && probe->status == NULL) {
        ngx_str_set(&s, "200-299");

        if (ngx_railgun_probe_parse_status(cf, probe, &s) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (probe->check) {
        /* the request is made for each server, once its address is known */
        return NGX_CONF_OK;
    }

    if (ngx_railgun_probe_init_request(cf, probe) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &params[i]);

    return NGX_CONF_ERROR;
}


/* redis://[[user]:password@]host:port[/db] */

static char *
ngx_railgun_probe_parse_redis(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *url)
{
    u_char     *p, *end, *at, *colon, *slash;
    ngx_str_t   hostport;

    p = url->data + 8;
    end = url->data + url->len;

    slash = ngx_strlchr(p, end, '/');
    at = NULL;

    for (colon = (slash ? slash : end) - 1; colon >= p; colon--) {
        if (*colon == '@') {
            at = colon;
            break;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis URL: \"user:password@\" or "
                               "\":password@\" expected");
            return NGX_CONF_ERROR;
        }

        probe->user.data = p;
        probe->user.len = colon - p;
        probe->password.data = colon + 1;
        probe->password.len = at - colon - 1;

        p = at + 1;
    }

    hostport.data = p;
    hostport.len = (slash ? slash : end) - p;

    if (slash) {
        probe->db = ngx_atoi(slash + 1, end - slash - 1);

        if (probe->db == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis database number in \"%V\"",
                               &probe->name);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_railgun_probe_address(cf, probe, &hostport, 6379);
}


/* names are resolved here, at configuration: never in a worker */

static char *
ngx_railgun_probe_address(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *hostport, in_port_t port)
{
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *hostport;
    u.default_port = port;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in probe \"%V\" address \"%V\"", u.err,
                               &probe->name, hostport);
        }

        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || u.no_port) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "probe \"%V\" needs a host and a port",
                           &probe->name);
        return NGX_CONF_ERROR;
    }

    /* the target label and the Host header are the address as written */

    probe->addr = u.addrs[0];
    probe->target = *hostport;

    return NGX_CONF_OK;
}


/* status=200-299,301,302 */

static char *
ngx_railgun_probe_parse_status(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *value)
{
    ngx_int_t                    n;
    ngx_railgun_probe_status_t   ranges[NGX_RAILGUN_CONF_MAX_STATUS], *st;

    n = ngx_railgun_conf_status(value->data, value->len, ranges,
                                NGX_RAILGUN_CONF_MAX_STATUS);
    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    probe->status = ngx_array_create(cf->pool, n,
                                     sizeof(ngx_railgun_probe_status_t));
    if (probe->status == NULL) {
        return NGX_CONF_ERROR;
    }

    st = ngx_array_push_n(probe->status, n);
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(st, ranges, n * sizeof(ngx_railgun_probe_status_t));

    return NGX_CONF_OK;
}
