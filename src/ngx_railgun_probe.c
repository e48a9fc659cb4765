
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
static ngx_uint_t ngx_railgun_probe_gone(uint64_t owner);
static void ngx_railgun_probe_end_round(ngx_railgun_probe_t *probe,
    ngx_uint_t recorded);
static void ngx_railgun_probe_start(ngx_railgun_probe_t *probe);
static void ngx_railgun_probe_connect_handler(ngx_event_t *ev);
static void ngx_railgun_probe_send_request(ngx_railgun_probe_exchange_t *x,
    ngx_connection_t *c);
#if (NGX_SSL)
static void ngx_railgun_probe_ssl_init(ngx_railgun_probe_exchange_t *x,
    ngx_connection_t *c);
static void ngx_railgun_probe_ssl_handshake_handler(ngx_connection_t *c);
static ngx_int_t ngx_railgun_probe_ssl_check_name(ngx_connection_t *c,
    ngx_railgun_probe_t *probe);
static void ngx_railgun_probe_ssl_save_session(ngx_connection_t *c);
#endif
static void ngx_railgun_probe_write_handler(ngx_event_t *wev);
static void ngx_railgun_probe_read_handler(ngx_event_t *rev);
static void ngx_railgun_probe_dummy_handler(ngx_event_t *ev);
static void ngx_railgun_probe_timeout_handler(ngx_event_t *ev);
static ngx_uint_t ngx_railgun_probe_connect_error(ngx_err_t err,
    const char **reason);
static void ngx_railgun_probe_done(ngx_railgun_probe_exchange_t *x,
    ngx_uint_t result, const char *reason);
static void ngx_railgun_probe_close(ngx_railgun_probe_exchange_t *x,
    ngx_uint_t recorded);
static void ngx_railgun_probe_record(ngx_railgun_probe_t *probe,
    ngx_railgun_probe_exchange_t *x, uint64_t us);
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
    ngx_string("auth"),
    ngx_string("tls")
};


static ngx_str_t  ngx_railgun_probe_to[] = {
    ngx_string("down"),
    ngx_string("up")
};


ngx_railgun_probe_changed_pt          ngx_railgun_probe_changed;

static ngx_railgun_store_t           *ngx_railgun_probe_store;
static ngx_railgun_probe_families_t   ngx_railgun_probe_fam;
static ngx_railgun_buckets_t         *ngx_railgun_probe_buckets;

/* this worker in a round record: its pid and start time (ticks), low bits */
static uint64_t              ngx_railgun_probe_self;

#define ngx_railgun_probe_owner(pid, started)                                \
    ((uint64_t) (uint32_t) (pid) | ((uint64_t) (uint32_t) (started) << 32))


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


/*
 * One round at a time for all workers: a worker starts a round only when
 * it is due and it took the probe's round record (the prober's pid and
 * start time in one word, 0 when none) with a compare-and-swap; the prober
 * ends the round by storing the next due time, the end plus the interval,
 * and then clearing the record.  A stalled prober thus keeps the round to
 * itself however long it stalls; one that died with it open is found by
 * kill(pid, 0), or, when its pid has been taken by another process since
 * (or belongs to another user: EPERM), by that process' start time.
 */

static void
ngx_railgun_probe_timer_handler(ngx_event_t *ev)
{
    uint64_t             *next_due, owner;
    ngx_msec_t            now, due, delay;
    ngx_railgun_probe_t  *probe;

    probe = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a verdict another worker's check changed, if not applied yet */

    if (ngx_railgun_probe_changed) {
        ngx_railgun_probe_changed();
    }

    next_due = &probe->state->values[NGX_RAILGUN_PROBE_NEXT_DUE];

    now = ngx_current_msec;
    owner = __atomic_load_n(&probe->round->values[0], __ATOMIC_ACQUIRE);

    if (owner) {

        if (owner == ngx_railgun_probe_self
            ? probe->exchange == NULL
            : ngx_railgun_probe_gone(owner))
        {
            /* the prober is gone: its round is over, the next is due */
            (void) ngx_railgun_store_cas(probe->round, 0, owner, 0);
        }

        delay = ngx_min(probe->timeout, NGX_RAILGUN_PROBE_RECHECK);
        goto next;
    }

    due = __atomic_load_n(next_due, __ATOMIC_ACQUIRE);

    /*
     * a due time further than this worker's interval was set by a worker
     * of an older configuration (a check that ended after a reload): the
     * shorter interval takes effect at once, not at that due time.  The
     * margin is for this worker's cached time, which may lag behind the
     * prober's that set the due time by as long as an event loop turn.
     */

    if ((ngx_msec_int_t) (due - now)
        > (ngx_msec_int_t) (probe->interval + probe->jitter
                            + NGX_RAILGUN_PROBE_RECHECK)
        && ngx_railgun_store_cas(probe->state, NGX_RAILGUN_PROBE_NEXT_DUE,
                                 due, now))
    {
        due = now;
    }

    if (probe->exchange == NULL && (ngx_msec_int_t) (now - due) >= 0
        && ngx_railgun_store_cas(probe->round, 0, 0, ngx_railgun_probe_self))
    {
        /* a round may have ended since the due time was read */

        due = __atomic_load_n(next_due, __ATOMIC_ACQUIRE);

        if ((ngx_msec_int_t) (now - due) >= 0) {
            ngx_railgun_probe_start(probe);

        } else {
            __atomic_store_n(&probe->round->values[0], 0, __ATOMIC_RELEASE);
        }
    }

    if (probe->exchange) {
        /* its end rearms the timer */
        return;
    }

    due = __atomic_load_n(next_due, __ATOMIC_ACQUIRE);
    delay = (ngx_msec_int_t) (due - now) > 0 ? due - now : 1;
    delay = ngx_min(delay, NGX_RAILGUN_PROBE_RECHECK);

next:

    /* wake a little after the due time: the winner is whoever is first */
    ngx_add_timer(ev, delay + ngx_random() % 10);
}


static ngx_uint_t
ngx_railgun_probe_gone(uint64_t owner)
{
    ngx_pid_t  pid;

    pid = (ngx_pid_t) (uint32_t) owner;

    if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
        return 1;
    }

    /* a zombie or a process gone meanwhile gives 1, not the owner's time */

    return ngx_railgun_probe_owner(pid, ngx_railgun_store_started(pid))
           != owner;
}


/* the prober's end of a round: the next due time, then the record cleared */

static void
ngx_railgun_probe_end_round(ngx_railgun_probe_t *probe, ngx_uint_t recorded)
{
    ngx_msec_t  next;

    if (recorded) {
        next = ngx_current_msec;

        /*
         * an exiting worker's interval may be one a reload replaced: it
         * leaves the next check due at once, to the current workers
         */

        if (!ngx_exiting) {
            next += probe->interval;

            if (probe->jitter) {
                next += ngx_random() % probe->jitter;
            }
        }

        __atomic_store_n(&probe->state->values[NGX_RAILGUN_PROBE_NEXT_DUE],
                         next, __ATOMIC_RELEASE);
    }

    __atomic_store_n(&probe->round->values[0], 0, __ATOMIC_RELEASE);

    if (recorded && !ngx_exiting) {
        ngx_add_timer(&probe->timer, probe->interval + ngx_random() % 10);
    }
}


static void
ngx_railgun_probe_start(ngx_railgun_probe_t *probe)
{
    ngx_err_t                      err;
    ngx_int_t                      rc;
    ngx_uint_t                     result;
    ngx_pool_t                    *pool;
    const char                    *reason;
    ngx_connection_t              *c;
    ngx_railgun_probe_proto_t     *proto;
    ngx_railgun_probe_exchange_t  *x;

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        ngx_railgun_probe_end_round(probe, 1);
        return;
    }

    x = ngx_pcalloc(pool, sizeof(ngx_railgun_probe_exchange_t));
    if (x == NULL) {
        ngx_destroy_pool(pool);
        ngx_railgun_probe_end_round(probe, 1);
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
                   "railgun: probe \"%V\" connect: %i", &probe->name, rc);

    if (rc == NGX_ERROR || rc == NGX_BUSY) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR, "connect failed");
        return;
    }

    if (rc == NGX_DECLINED) {
        /*
         * connect() failed at once and ngx_event_connect_peer closed the
         * socket; its errno survives the close, which succeeded
         */
        err = ngx_socket_errno;
        x->peer.connection = NULL;

        result = ngx_railgun_probe_connect_error(err, &reason);
        ngx_railgun_probe_done(x, result, reason);
        return;
    }

    /*
     * A handler per state, as nginx's OCSP client has them: until the
     * connection is known to be up, either event only tests it; the read
     * handler, which uses x->in, is installed only for a protocol, which
     * has allocated it.  A target that speaks or closes first thus meets
     * the handler of the state the exchange is in.
     */

    c = x->peer.connection;
    c->data = x;
    c->pool = pool;
    c->read->handler = ngx_railgun_probe_connect_handler;
    c->write->handler = ngx_railgun_probe_connect_handler;

    if (rc == NGX_OK) {
        ngx_railgun_probe_connect_handler(c->write);
    }
}


static void
ngx_railgun_probe_connect_handler(ngx_event_t *ev)
{
    int                            err;
    socklen_t                      len;
    ngx_uint_t                     result;
    const char                    *reason;
    ngx_connection_t              *c;
    ngx_railgun_probe_exchange_t  *x;

    c = ev->data;
    x = c->data;

    /* a late refusal or an unreachable host shows in SO_ERROR */

    err = 0;
    len = sizeof(int);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        result = ngx_railgun_probe_connect_error(err, &reason);
        ngx_railgun_probe_done(x, result, reason);
        return;
    }

#if (NGX_SSL)
    if (x->probe->ssl_ctx) {
        ngx_railgun_probe_ssl_init(x, c);
        return;
    }
#endif

    ngx_railgun_probe_send_request(x, c);
}


/* connected, and over TLS with the handshake done: the exchange proper */

static void
ngx_railgun_probe_send_request(ngx_railgun_probe_exchange_t *x,
    ngx_connection_t *c)
{
    if (ngx_railgun_probe_proto(x->probe) == NULL) {
        /*
         * a connect check: connected (and a handshake) is all it asks,
         * whatever the target sends or does next (a banner, a close at
         * maxclients)
         */
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_OK, NULL);
        return;
    }

    c->read->handler = ngx_railgun_probe_read_handler;
    c->write->handler = ngx_railgun_probe_write_handler;

    ngx_railgun_probe_write_handler(c->write);
}


#if (NGX_SSL)

/*
 * The handshake as nginx's upstream makes it: ngx_ssl's own handlers until
 * it is over, within the probe's one timer; then c->send and c->recv are
 * ngx_ssl's and the protocol never knows.  The certificate is verified
 * after the handshake, so that the verdict can tell why.
 */

static void
ngx_railgun_probe_ssl_init(ngx_railgun_probe_exchange_t *x,
    ngx_connection_t *c)
{
    ngx_int_t             rc;
    ngx_railgun_probe_t  *probe;

    probe = x->probe;

    if (ngx_ssl_create_connection(probe->ssl_ctx, c,
                                  NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "TLS connection failed");
        return;
    }

#ifdef SSL_CTRL_SET_TLSEXT_HOSTNAME

    if (!probe->ssl_name_ip && probe->ssl_name.len
        && SSL_set_tlsext_host_name(c->ssl->connection,
                                    (char *) probe->ssl_name.data)
           == 0)
    {
        ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                      "SSL_set_tlsext_host_name(\"%s\") failed",
                      probe->ssl_name.data);
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "TLS connection failed");
        return;
    }

#endif

    c->ssl->save_session = ngx_railgun_probe_ssl_save_session;

    if (probe->ssl_session
        && ngx_ssl_set_session(c, probe->ssl_session) != NGX_OK)
    {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "TLS connection failed");
        return;
    }

    /* an abbreviated handshake may interact badly with Nagle */

    if (probe->ssl_session && ngx_tcp_nodelay(c) != NGX_OK) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "TLS connection failed");
        return;
    }

    /*
     * a failed handshake is the verdict tls, logged at the transition:
     * OpenSSL's reason for what a peer causes (not TLS, no common
     * protocol) goes to the info level, as nginx logs its clients' ones,
     * not to the error log at every check
     */

    c->log_error = NGX_ERROR_INFO;

    rc = ngx_ssl_handshake(c);

    if (rc == NGX_AGAIN) {
        c->ssl->handler = ngx_railgun_probe_ssl_handshake_handler;
        return;
    }

    ngx_railgun_probe_ssl_handshake_handler(c);
}


static void
ngx_railgun_probe_ssl_handshake_handler(ngx_connection_t *c)
{
    long                           rc;
    ngx_railgun_probe_t           *probe;
    ngx_railgun_probe_exchange_t  *x;

    x = c->data;
    probe = x->probe;

    if (!c->ssl->handshaked) {
        /* ngx_ssl_handshake logged OpenSSL's reason */
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_TLS, "handshake failed");
        return;
    }

    c->log_error = x->peer.log_error;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                   "railgun: probe \"%V\" handshake done, reused: %d",
                   &probe->name, SSL_session_reused(c->ssl->connection));

    if (probe->ssl_verify) {
        rc = SSL_get_verify_result(c->ssl->connection);

        if (rc != X509_V_OK) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_TLS,
                                   X509_verify_cert_error_string(rc));
            return;
        }

        if (ngx_railgun_probe_ssl_check_name(c, probe) != NGX_OK) {
            ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_TLS,
                                   "certificate does not match ssl_name");
            return;
        }
    }

    ngx_railgun_probe_send_request(x, c);
}


/* nginx's check of a name; an address is matched with the IP SANs */

static ngx_int_t
ngx_railgun_probe_ssl_check_name(ngx_connection_t *c,
    ngx_railgun_probe_t *probe)
{
    int    rc;
    X509  *cert;

    if (!probe->ssl_name_ip) {
        return ngx_ssl_check_host(c, &probe->ssl_name);
    }

    cert = SSL_get_peer_certificate(c->ssl->connection);
    if (cert == NULL) {
        return NGX_ERROR;
    }

    rc = X509_check_ip_asc(cert, (char *) probe->ssl_name.data, 0);

    X509_free(cert);

    return rc == 1 ? NGX_OK : NGX_ERROR;
}


/*
 * Called by ngx_ssl's client session cache when the target gives a
 * session: in the handshake (TLS 1.2) or with the first records after it
 * (TLS 1.3 tickets); the probe keeps the newest for its next check.
 */

static void
ngx_railgun_probe_ssl_save_session(ngx_connection_t *c)
{
    ngx_ssl_session_t             *session;
    ngx_railgun_probe_t           *probe;
    ngx_railgun_probe_exchange_t  *x;

    x = c->data;
    probe = x->probe;

    session = ngx_ssl_get_session(c);
    if (session == NULL) {
        return;
    }

    if (probe->ssl_session) {
        ngx_ssl_free_session(probe->ssl_session);
    }

    probe->ssl_session = session;
}

#endif


static void
ngx_railgun_probe_write_handler(ngx_event_t *wev)
{
    ssize_t                        n;
    ngx_connection_t              *c;
    ngx_railgun_probe_exchange_t  *x;

    c = wev->data;
    x = c->data;

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

    /* sent: only the read handler acts from now on */

    wev->handler = ngx_railgun_probe_dummy_handler;

    if (wev->active && ngx_del_event(wev, NGX_WRITE_EVENT, 0) != NGX_OK) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "write event failed");
        return;
    }

    /* a reply, a greeting or a close may have come meanwhile */

    if (c->read->ready) {
        ngx_railgun_probe_read_handler(c->read);
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_ERROR,
                               "read event failed");
    }
}


/* reads the reply into x->in: installed only where the protocol made it */

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
ngx_railgun_probe_dummy_handler(ngx_event_t *ev)
{
    ngx_log_debug0(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                   "railgun: probe dummy handler");
}


static void
ngx_railgun_probe_timeout_handler(ngx_event_t *ev)
{
    ngx_railgun_probe_exchange_t  *x;

    x = ev->data;

    ngx_railgun_probe_done(x, NGX_RAILGUN_PROBE_TIMEOUT, "timed out");
}


/*
 * Only a refusal is "refused": the target's host said nothing listens.  An
 * unreachable network or host, a reset or anything else is "error".
 */

static ngx_uint_t
ngx_railgun_probe_connect_error(ngx_err_t err, const char **reason)
{
    switch (err) {

    case NGX_ECONNREFUSED:
        *reason = "connection refused";
        return NGX_RAILGUN_PROBE_REFUSED;

    case NGX_ENETUNREACH:
    case NGX_ENETDOWN:
        *reason = "network unreachable";
        return NGX_RAILGUN_PROBE_ERROR;

    case NGX_EHOSTUNREACH:
    case NGX_EHOSTDOWN:
        *reason = "host unreachable";
        return NGX_RAILGUN_PROBE_ERROR;

    case NGX_ETIMEDOUT:
        *reason = "connect timed out";
        return NGX_RAILGUN_PROBE_ERROR;

    case NGX_ECONNRESET:
        *reason = "connection reset";
        return NGX_RAILGUN_PROBE_ERROR;

    default:
        *reason = "connect failed";
        return NGX_RAILGUN_PROBE_ERROR;
    }
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
                   "railgun: probe \"%V\" done: %V %s", &probe->name,
                   &ngx_railgun_probe_results[result],
                   reason ? reason : "");

    ngx_railgun_probe_record(probe, x, us);

    ngx_railgun_probe_close(x, 1);
}


static void
ngx_railgun_probe_close(ngx_railgun_probe_exchange_t *x, ngx_uint_t recorded)
{
    ngx_connection_t           *c;
    ngx_railgun_probe_t        *probe;
    ngx_railgun_probe_proto_t  *proto;

    probe = x->probe;

    if (x->timeout.timer_set) {
        ngx_del_timer(&x->timeout);
    }

    proto = ngx_railgun_probe_proto(x->probe);

    if (proto) {
        proto->finish(x);
    }

    c = x->peer.connection;

    if (c) {

#if (NGX_SSL)
        if (c->ssl) {
            /* close_notify after a clean exchange; never a wait for one */

            c->ssl->no_wait_shutdown = 1;

            if (x->result != NGX_RAILGUN_PROBE_OK || !recorded) {
                c->ssl->no_send_shutdown = 1;
            }

            if (ngx_ssl_shutdown(c) == NGX_AGAIN) {
                /* it would block: dropped, c->ssl is in the pool */
                c->ssl->no_send_shutdown = 1;
                (void) ngx_ssl_shutdown(c);
            }
        }
#endif

        c->pool = NULL;
        ngx_close_connection(c);
        x->peer.connection = NULL;
    }

    probe->exchange = NULL;

    ngx_destroy_pool(x->pool);

    ngx_railgun_probe_end_round(probe, recorded);
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

        /* Redis' own counters, as it reports them: a restart is a reset */
        ngx_railgun_store_set(probe->keyspace_hits, 0, x->keyspace_hits);
        ngx_railgun_store_set(probe->keyspace_misses, 0, x->keyspace_misses);
        ngx_railgun_store_set(probe->evicted_keys, 0, x->evicted_keys);
        ngx_railgun_store_set(probe->pubsub_channels, 0, x->pubsub_channels);

        /* a replica's, where INFO gave both offsets; 0 for a master */

        ngx_railgun_store_set(probe->replication_lag, 0,
                         (x->offsets && x->master_offset > x->replica_offset)
                         ? x->master_offset - x->replica_offset : 0);
    }

    if (up == was_up) {
        return;
    }

    ngx_railgun_store_add(probe->transitions[up], 1);

    /*
     * balancers resynchronise their peers when this moves: a release, so
     * that whoever sees the new generation sees the state written above
     * (ngx_railgun_store.h)
     */
    ngx_railgun_store_changed(ngx_railgun_probe_store);

    if (up) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "railgun: probe \"%V\" %V is up after %ui "
                      "successful checks", &probe->name, &probe->target,
                      probe->rise);

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "railgun: probe \"%V\" %V is down after %ui "
                      "failed checks, last: %V (%s)", &probe->name,
                      &probe->target, probe->fall,
                      &ngx_railgun_probe_results[x->result],
                      x->reason ? x->reason : "no reason");
    }

    if (ngx_railgun_probe_changed) {
        ngx_railgun_probe_changed();
    }
}


ngx_railgun_probe_proto_t *
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
    ngx_uint_t            i, disabled;
    ngx_railgun_probe_t  *probe, *first;

    ngx_railgun_probe_store = store;
    ngx_railgun_probe_self = ngx_railgun_probe_owner(ngx_pid,
                                         ngx_railgun_store_started(ngx_pid));
    ngx_railgun_probe_fam = *fam;
    ngx_railgun_probe_buckets = buckets;

    disabled = 0;
    first = NULL;

    probe = probes->elts;

    for (i = 0; i < probes->nelts; i++) {

        if (ngx_railgun_probe_add(&probe[i], cycle->log) == NGX_DECLINED) {
            if (disabled++ == 0) {
                first = &probe[i];
            }
        }
    }

    if (disabled) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "railgun: zone is full: %ui of %ui probes are not run "
                      "and keep their initial state, the first is \"%V\" %V",
                      disabled, probes->nelts, &first->name, &first->target);
    }

    return NGX_OK;
}


/*
 * A probe starts in this worker: its series, then its timer.  Also for a
 * probe made at run time (an address a "resolve" server resolved to), once
 * ngx_railgun_probe_init_worker() ran.  NGX_DECLINED: the zone has no room
 * for its state, it is not run.
 */

ngx_int_t
ngx_railgun_probe_add(ngx_railgun_probe_t *probe, ngx_log_t *log)
{
    ngx_msec_t                     due;
    ngx_str_t                      round;
    ngx_uint_t                     j;
    uint64_t                      *next_due;
    ngx_railgun_store_t           *store;
    ngx_railgun_probe_families_t  *fam;

    store = ngx_railgun_probe_store;
    fam = &ngx_railgun_probe_fam;

    ngx_str_null(&round);

    probe->state = ngx_railgun_probe_series(store, fam->state, probe, NULL,
                                            NULL, NULL);
    probe->round = ngx_railgun_probe_series(store, fam->state, probe,
                                            "round", &round, NULL);

    if ((probe->state->flags & NGX_RAILGUN_SERIES_OVERFLOW)
        || (probe->round->flags & NGX_RAILGUN_SERIES_OVERFLOW))
    {
        /* probes must never share a state: this one cannot run */
        probe->disabled = 1;
        return NGX_DECLINED;
    }

    if (probe->check) {
        probe->up = ngx_railgun_probe_peer_series(store, fam->peer_up, probe);

    } else {
        probe->up = ngx_railgun_probe_series(store, fam->up, probe, NULL,
                                             NULL, NULL);
    }

    probe->duration = ngx_railgun_probe_series(store, fam->duration, probe,
                                               NULL, NULL,
                                               ngx_railgun_probe_buckets);

    for (j = 0; j < NGX_RAILGUN_PROBE_NRESULTS; j++) {
        probe->checks[j] = ngx_railgun_probe_series(store, fam->checks, probe,
                                               "result",
                                               &ngx_railgun_probe_results[j],
                                               NULL);
    }

    for (j = 0; j < 2; j++) {
        probe->transitions[j] = ngx_railgun_probe_series(store,
                                                fam->transitions, probe,
                                                "to", &ngx_railgun_probe_to[j],
                                                NULL);
    }

    if (probe->type == NGX_RAILGUN_PROBE_REDIS) {
        probe->memory_used = ngx_railgun_probe_series(store, fam->memory_used,
                                                      probe, NULL, NULL, NULL);
        probe->memory_max = ngx_railgun_probe_series(store, fam->memory_max,
                                                     probe, NULL, NULL, NULL);
        probe->clients = ngx_railgun_probe_series(store, fam->clients, probe,
                                                  NULL, NULL, NULL);
        probe->keyspace_hits = ngx_railgun_probe_series(store,
                                                        fam->keyspace_hits,
                                                        probe, NULL, NULL,
                                                        NULL);
        probe->keyspace_misses = ngx_railgun_probe_series(store,
                                                        fam->keyspace_misses,
                                                        probe, NULL, NULL,
                                                        NULL);
        probe->evicted_keys = ngx_railgun_probe_series(store,
                                                       fam->evicted_keys,
                                                       probe, NULL, NULL,
                                                       NULL);
        probe->pubsub_channels = ngx_railgun_probe_series(store,
                                                        fam->pubsub_channels,
                                                        probe, NULL, NULL,
                                                        NULL);
        probe->replication_lag = ngx_railgun_probe_series(store,
                                                        fam->replication_lag,
                                                        probe, NULL, NULL,
                                                        NULL);
    }

    /* before any result the gauge tells the initial state */
    ngx_railgun_store_set(probe->up, 0, ngx_railgun_probe_is_up(probe));

    ngx_railgun_store_own(store, probe->up);

    if (probe->type == NGX_RAILGUN_PROBE_REDIS) {
        ngx_railgun_store_own(store, probe->memory_used);
        ngx_railgun_store_own(store, probe->memory_max);
        ngx_railgun_store_own(store, probe->clients);
        ngx_railgun_store_own(store, probe->pubsub_channels);
        ngx_railgun_store_own(store, probe->replication_lag);
    }

    /*
     * a reload that shortened the interval takes effect at once, not
     * at the due time the old one set.  The time is read afresh: before
     * a worker's first event loop turn its cached time is the master's,
     * from before the configuration was read, and a check that ended
     * since in another worker set a due time that looked more than an
     * interval away from it; a fresh time is never behind the end of any
     * check, so only a longer interval's due time is pulled in.
     */

    ngx_time_update();

    next_due = &probe->state->values[NGX_RAILGUN_PROBE_NEXT_DUE];
    due = __atomic_load_n(next_due, __ATOMIC_ACQUIRE);

    if ((ngx_msec_int_t) (due - ngx_current_msec)
        > (ngx_msec_int_t) (probe->interval + probe->jitter))
    {
        (void) ngx_railgun_store_cas(probe->state,
                                     NGX_RAILGUN_PROBE_NEXT_DUE, due,
                                     ngx_current_msec);
    }

    probe->timer.handler = ngx_railgun_probe_timer_handler;
    probe->timer.data = probe;
    probe->timer.log = log;
    probe->timer.cancelable = 1;

    ngx_add_timer(&probe->timer, 1 + ngx_random() % 100);

    return NGX_OK;
}


/*
 * A probe made at run time stops: its target is gone.  An exchange in
 * flight is dropped, no result; the gauge is left out of scrapes from now
 * on (the counters stay, as counters do).
 */

void
ngx_railgun_probe_remove(ngx_railgun_probe_t *probe)
{
    ngx_railgun_probe_stop(probe);

    if (probe->up) {
        probe->up->epoch = 0;
    }
}


/*
 * A probe made at run time at the worker's exit: the exchange in flight is
 * dropped, as ngx_railgun_probe_exit_worker() does for the others, so that
 * no socket is left open; the gauge stays, the next workers' own.
 */

void
ngx_railgun_probe_stop(ngx_railgun_probe_t *probe)
{
    if (probe->timer.timer_set) {
        ngx_del_timer(&probe->timer);
    }

    if (probe->exchange) {
        ngx_railgun_probe_close(probe->exchange, 0);
    }

#if (NGX_SSL)
    if (probe->ssl_session) {
        ngx_ssl_free_session(probe->ssl_session);
        probe->ssl_session = NULL;
    }
#endif
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
            ngx_railgun_probe_close(probe[i].exchange, 0);
        }

#if (NGX_SSL)
        if (probe[i].ssl_session) {
            ngx_ssl_free_session(probe[i].ssl_session);
            probe[i].ssl_session = NULL;
        }
#endif
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
