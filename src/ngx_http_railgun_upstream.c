
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nginx.h>
#include "ngx_http_railgun_module.h"


/*
 * "server NAME resolve" (nginx 1.27.3, Angie): the addresses are resolved at
 * run time, into peers with peer->host set in the upstream's zone.
 */
#if (NGX_HTTP_UPSTREAM_ZONE && nginx_version >= 1027003)
#define NGX_HTTP_RAILGUN_RESOLVE  1
#else
#define NGX_HTTP_RAILGUN_RESOLVE  0
#endif

/*
 * A peer the checks put back is no longer held by nginx's passive state:
 * nginx keeps when it last failed (accessed), Angie when it is tried again
 * (recover_at).
 */
#if defined ANGIE_VERSION
#define ngx_http_railgun_upstream_forget_fails(peer, now)                     \
    (peer)->fails = 0; (peer)->recover_at = 0; (peer)->checked = now
#else
#define ngx_http_railgun_upstream_forget_fails(peer, now)                     \
    (peer)->fails = 0; (peer)->accessed = 0; (peer)->checked = now
#endif

/* how often each worker looks at the addresses of "resolve" servers */
#define NGX_HTTP_RAILGUN_UPSTREAM_TICK  100


/*
 * Checked upstreams, the health gate's other half.  Every server of an
 * upstream with railgun_check is probed; the balancer skips failing peers
 * because their health is mirrored into nginx's own peer->down, which every
 * stock balancer (round robin, hash, ip_hash, least_conn, random, and
 * keepalive on top of them) honours.  The
 * peer.init of the upstream is wrapped after the whole configuration is read,
 * so the order of balancer directives does not matter; get and free are not
 * touched, so tries, fails and backup servers keep their meaning.  The flags
 * are rewritten only when a probe state changed somewhere (a generation
 * counter in the zone): one atomic load per request otherwise.  The worker
 * whose check changed a verdict does the same at once, and every worker at
 * its probe timers, so that an upstream whose every server fails is logged
 * when it happens, not at the next request.  A timer every 100 ms in every
 * worker follows the addresses of "resolve" servers, for their upstreams
 * only.
 */


typedef struct {
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_railgun_probe_t           *probe;
    ngx_uint_t                     configured_down;
    ngx_uint_t                     up;          /* as read by the last sync */
    ngx_uint_t                     rose;        /* unsigned  rose:1; */
    uint64_t                       rises;       /* the probe's, last seen */
} ngx_http_railgun_upstream_peer_t;


#if (NGX_HTTP_RAILGUN_RESOLVE)

/* a "resolve" server: the check of its addresses, made at configuration */

typedef struct {
    ngx_str_t                          host;    /* as in peer->host->name */
    ngx_str_t                          service;
    in_port_t                          port;
    ngx_railgun_probe_t                probe;
} ngx_http_railgun_upstream_name_t;


/* an address nginx resolved a name to, and this worker's probe of it */

typedef struct {
    ngx_railgun_probe_t                probe;
    ngx_http_railgun_upstream_name_t  *name;
    ngx_sockaddr_t                     sockaddr;
    ngx_uint_t                         up;      /* as read by the last sync */
    ngx_uint_t                         rose;    /* unsigned  rose:1; */
    ngx_uint_t                         seen;    /* unsigned  seen:1; */
    u_char                             text[NGX_SOCKADDR_STRLEN];
} ngx_http_railgun_upstream_addr_t;

#endif


struct ngx_http_railgun_upstream_s {
    ngx_railgun_probe_t                check;       /* the parameters */
    ngx_uint_t                         fail_closed;
    ngx_http_upstream_srv_conf_t      *uscf;
    ngx_http_upstream_init_peer_pt     original_init_peer;
    ngx_uint_t                         first;       /* its probes in rmcf */
    ngx_uint_t                         nprobes;
    ngx_uint_t                         nservers;    /* not marked down */

    /* each worker's own */
    ngx_http_railgun_upstream_peer_t  *peers;
    ngx_uint_t                         npeers;
    ngx_uint_t                         nprimary;    /* backups follow */
    ngx_atomic_uint_t                  applied;
    ngx_railgun_series_t              *state;       /* values[0]: all down */

#if (NGX_HTTP_RAILGUN_RESOLVE)
    ngx_event_t                        timer;
    ngx_array_t                       *names;       /* upstream_name_t */
    ngx_array_t                        addrs;       /* upstream_addr_t * */
#endif
};


static ngx_int_t ngx_http_railgun_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static void ngx_http_railgun_upstream_sync(ngx_http_railgun_upstream_t *ups,
    ngx_atomic_uint_t generation);
static ngx_int_t ngx_http_railgun_upstream_state(
    ngx_http_railgun_upstream_t *ups, ngx_railgun_store_t *store);
static ngx_int_t ngx_http_railgun_upstream_map(
    ngx_http_railgun_upstream_t *ups, ngx_array_t *probes,
    ngx_http_upstream_rr_peers_t *peers, ngx_pool_t *pool);
static ngx_int_t ngx_http_railgun_upstream_keys(ngx_conf_t *cf,
    ngx_array_t *probes);
static int ngx_libc_cdecl ngx_http_railgun_upstream_cmp_keys(const void *one,
    const void *two);
static void ngx_http_railgun_upstream_changed(void);
#if (NGX_HTTP_RAILGUN_RESOLVE)
static void ngx_http_railgun_upstream_timer(ngx_event_t *ev);
#endif
static ngx_http_railgun_upstream_t *ngx_http_railgun_upstream_checked(
    ngx_http_upstream_srv_conf_t *uscf);
static ngx_int_t ngx_http_railgun_upstream_probe(ngx_conf_t *cf,
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_server_t *server,
    ngx_addr_t *addr, ngx_railgun_probe_t *probe);
#if (NGX_HTTP_RAILGUN_RESOLVE)
static ngx_int_t ngx_http_railgun_upstream_name(ngx_conf_t *cf,
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_server_t *server);
static ngx_uint_t ngx_http_railgun_upstream_follow(
    ngx_http_railgun_upstream_t *ups);
static ngx_http_railgun_upstream_addr_t *ngx_http_railgun_upstream_find(
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_rr_peer_t *peer);
static ngx_int_t ngx_http_railgun_upstream_add(
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_rr_peer_t *peer);
#endif


/* the generation the last ngx_http_railgun_upstream_changed() applied */
static ngx_atomic_uint_t  ngx_http_railgun_upstream_seen;


static ngx_int_t
ngx_http_railgun_upstream_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_atomic_uint_t              generation;
    ngx_http_railgun_srv_conf_t   *rscf;
    ngx_http_railgun_upstream_t   *ups;
    ngx_http_railgun_main_conf_t  *rmcf;

    rscf = us->srv_conf[ngx_http_railgun_module.ctx_index];
    ups = rscf->upstream;

    rmcf = ngx_http_get_module_main_conf(r, ngx_http_railgun_module);

    /* acquire: the states read by the sync are those of this generation */
    generation = ngx_railgun_store_generation(rmcf->store);

    if (generation != ups->applied) {
        ngx_http_railgun_upstream_sync(ups, generation);
    }

    return ups->original_init_peer(r, us);
}


/*
 * down = configured down, or its probe down.  When that would leave no peer
 * at all, the gate fails open (unless all_down=closed): nginx would answer
 * 502 "no live upstreams" to every request, and a probe that cannot reach any
 * peer is more likely wrong than every peer at once.
 */

static void
ngx_http_railgun_upstream_sync(ngx_http_railgun_upstream_t *ups,
    ngx_atomic_uint_t generation)
{
    time_t                              now;
    uint64_t                            rises;
    ngx_uint_t                          i, n, up, live, all_down, was;
    ngx_http_railgun_upstream_peer_t   *gp;
    ngx_http_upstream_rr_peers_t       *peers;
#if (NGX_HTTP_RAILGUN_RESOLVE)
    ngx_http_railgun_upstream_addr_t  **ga, *a;
    ngx_http_upstream_rr_peer_t        *peer;
#endif

    gp = ups->peers;
    live = 0;

    /* each state is read once: the verdict and the flags must agree */

    for (i = 0; i < ups->npeers; i++) {
        up = ngx_railgun_probe_is_up(gp[i].probe);

        /*
         * a rise is seen in the probe's count of them, not only in this
         * worker's last look: a worker that got no request between the
         * fall and the rise must clear its passive failures too
         */

        rises = gp[i].probe->disabled
                ? 0 : ngx_railgun_store_value(gp[i].probe->transitions[1], 0);

        gp[i].rose = up && (!gp[i].up || rises != gp[i].rises);
        gp[i].up = up;
        gp[i].rises = rises;

        if (!gp[i].configured_down && gp[i].up) {
            live++;
        }
    }

#if (NGX_HTTP_RAILGUN_RESOLVE)

    ga = ups->addrs.elts;

    for (i = 0; i < ups->addrs.nelts; i++) {
        up = ngx_railgun_probe_is_up(&ga[i]->probe);

        ga[i]->rose = (up && !ga[i]->up);
        ga[i]->up = up;

        if (!ga[i]->probe.configured_down && ga[i]->up) {
            live++;
        }
    }

    /* nothing resolved yet is not every server failing */

    if (ups->npeers == 0 && ups->addrs.nelts == 0) {
        ups->applied = generation;
        return;
    }

#endif

    all_down = (live == 0 && !ups->fail_closed);

    /* one line per change for all workers: the flag is in the zone */

    was = (ngx_uint_t) ngx_railgun_store_value(ups->state, 0);

    if (was != all_down
        && ngx_railgun_store_cas(ups->state, 0, was, all_down))
    {
        if (all_down) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                          "railgun: every server of upstream \"%V\" fails "
                          "its checks, all are kept in use",
                          &ups->uscf->host);

        } else {
            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "railgun: servers of upstream \"%V\" pass their "
                          "checks again", &ups->uscf->host);
        }
    }

    peers = ups->uscf->peer.data;
    now = ngx_time();

    /* primary servers, then backups: each list under its own lock */

    for (i = 0; peers; peers = peers->next) {

        ngx_http_upstream_rr_peers_wlock(peers);

        n = (peers == ups->uscf->peer.data) ? ups->nprimary : ups->npeers;

        for ( /* void */ ; i < n; i++) {
            gp[i].peer->down = gp[i].configured_down
                               || (!all_down && !gp[i].up);

            /*
             * up means used: the checks passed rise times since the peer
             * failed, so nginx's passive state (max_fails, fail_timeout)
             * must not keep it out any longer
             */

            if (gp[i].rose) {
                ngx_http_railgun_upstream_forget_fails(gp[i].peer, now);
            }
        }

#if (NGX_HTTP_RAILGUN_RESOLVE)

        /*
         * Resolved peers come and go with the resolver: they are found
         * again under the lock, never kept.  A peer this worker has no
         * probe for yet keeps the flag nginx gave it.
         */

        if (ups->names) {
            for (peer = peers->peer; peer; peer = peer->next) {

                if (peer->host == NULL) {
                    continue;
                }

                a = ngx_http_railgun_upstream_find(ups, peer);

                if (a == NULL) {
                    continue;
                }

                peer->down = a->probe.configured_down
                             || (!all_down && !a->up);

                if (a->rose) {
                    ngx_http_railgun_upstream_forget_fails(peer, now);
                }
            }
        }

#endif

        ngx_http_upstream_rr_peers_unlock(peers);
    }

    ups->applied = generation;
}


ngx_uint_t
ngx_http_railgun_upstream_healthy(ngx_http_railgun_upstream_t *ups,
    ngx_uint_t *total)
{
    ngx_uint_t            i, healthy;
    ngx_railgun_probe_t  *probe;

    healthy = 0;
    *total = 0;

    if (ups->peers == NULL) {
        return 0;
    }

    for (i = 0; i < ups->npeers; i++) {
        probe = ups->peers[i].probe;

        if (ups->peers[i].configured_down) {
            continue;
        }

        (*total)++;

        if (ngx_railgun_probe_is_up(probe)) {
            healthy++;
        }
    }

#if (NGX_HTTP_RAILGUN_RESOLVE)
    {
    ngx_http_railgun_upstream_addr_t  **ga;

    ga = ups->addrs.elts;

    for (i = 0; i < ups->addrs.nelts; i++) {
        probe = &ga[i]->probe;

        if (probe->configured_down) {
            continue;
        }

        (*total)++;

        if (ngx_railgun_probe_is_up(probe)) {
            healthy++;
        }
    }
    }
#endif

    return healthy;
}


/*
 * the addresses of its servers not marked down, backups included: the ones
 * ngx_http_railgun_upstream_healthy() counts
 */

ngx_uint_t
ngx_http_railgun_upstream_nservers(ngx_http_railgun_upstream_t *ups)
{
#if (NGX_HTTP_RAILGUN_RESOLVE)

    /* a "resolve" server has as many as its name will resolve to */

    if (ups->names) {
        return NGX_MAX_UINT32_VALUE;
    }

#endif

    return ups->nservers;
}


/*
 * In each worker: find the peers of every checked upstream (with "zone" they
 * are in shared memory only now) and pair each with the probe of its address.
 */

ngx_int_t
ngx_http_railgun_upstream_init_worker(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_railgun_upstream_t    *ups;
    ngx_http_upstream_rr_peers_t   *peers;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    umcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_upstream_module);
    rmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_railgun_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        ups = ngx_http_railgun_upstream_checked(uscfp[i]);

        if (ups == NULL) {
            continue;
        }

        peers = uscfp[i]->peer.data;

        if (ngx_http_railgun_upstream_map(ups, &rmcf->probes, peers,
                                          cycle->pool)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_railgun_upstream_state(ups, rmcf->store) != NGX_OK) {
            return NGX_ERROR;
        }

#if (NGX_HTTP_RAILGUN_RESOLVE)

        if (ngx_array_init(&ups->addrs, cycle->pool, 4,
                           sizeof(ngx_http_railgun_upstream_addr_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* after a reload, nginx hands over what it had resolved */

        if (ups->names) {
            (void) ngx_http_railgun_upstream_follow(ups);
        }

#endif

        /* apply the states the zone already has */
        ngx_http_railgun_upstream_sync(ups,
                                 ngx_railgun_store_generation(rmcf->store));

#if (NGX_HTTP_RAILGUN_RESOLVE)

        /* only the addresses of names need looking at, requests or not */

        if (ups->names) {
            ups->timer.handler = ngx_http_railgun_upstream_timer;
            ups->timer.data = ups;
            ups->timer.log = cycle->log;
            ups->timer.cancelable = 1;

            ngx_add_timer(&ups->timer, NGX_HTTP_RAILGUN_UPSTREAM_TICK);
        }

#endif
    }

    ngx_railgun_probe_changed = ngx_http_railgun_upstream_changed;

    return NGX_OK;
}


/*
 * A verdict changed in a check this worker made: its upstreams sync now,
 * so that an all-down episode is logged when the check that starts or
 * ends it does, requests or not; the episode's flag in the zone keeps it
 * one line.  Also called at each probe timer, which every worker has
 * anyway: a verdict changed where no current worker syncs (in an old
 * worker after a reload, which logs nothing) or a sync overtaken by an
 * older one in another worker (flags in an upstream zone) is applied at
 * this worker's next probe timer, not only at its next request.  Nothing
 * but a load and a compare when no verdict changed since the last call.
 */

static void
ngx_http_railgun_upstream_changed(void)
{
    ngx_uint_t                      i;
    ngx_atomic_uint_t               generation;
    ngx_http_railgun_upstream_t    *ups;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_railgun_module);

    /* acquire, as in init_peer */
    generation = ngx_railgun_store_generation(rmcf->store);

    if (generation == ngx_http_railgun_upstream_seen) {
        return;
    }

    umcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_upstream_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        ups = ngx_http_railgun_upstream_checked(uscfp[i]);

        if (ups != NULL && ups->peers != NULL
            && generation != ups->applied)
        {
            ngx_http_railgun_upstream_sync(ups, generation);
        }
    }

    ngx_http_railgun_upstream_seen = generation;
}


/*
 * The probes of resolved addresses drop their exchanges, as the others do,
 * and are freed: they are this worker's own.
 */

void
ngx_http_railgun_upstream_exit_worker(ngx_cycle_t *cycle)
{
#if (NGX_HTTP_RAILGUN_RESOLVE)

    ngx_uint_t                          i, j;
    ngx_http_railgun_upstream_t        *ups;
    ngx_http_upstream_srv_conf_t      **uscfp;
    ngx_http_upstream_main_conf_t      *umcf;
    ngx_http_railgun_upstream_addr_t  **ga;

    umcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_upstream_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        ups = ngx_http_railgun_upstream_checked(uscfp[i]);

        if (ups == NULL || ups->names == NULL) {
            continue;
        }

        ga = ups->addrs.elts;

        for (j = 0; j < ups->addrs.nelts; j++) {
            ngx_railgun_probe_stop(&ga[j]->probe);
            ngx_free(ga[j]);
        }

        ups->addrs.nelts = 0;
    }

#endif
}


#if (NGX_HTTP_RAILGUN_RESOLVE)

/* the upstreams with "resolve" servers: every 100 ms, their addresses */

static void
ngx_http_railgun_upstream_timer(ngx_event_t *ev)
{
    ngx_uint_t                     changed;
    ngx_atomic_uint_t              generation;
    ngx_http_railgun_upstream_t   *ups;
    ngx_http_railgun_main_conf_t  *rmcf;

    ups = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_railgun_module);

    changed = ngx_http_railgun_upstream_follow(ups);

    /* acquire, as in init_peer */
    generation = ngx_railgun_store_generation(rmcf->store);

    if (changed || generation != ups->applied) {
        ngx_http_railgun_upstream_sync(ups, generation);
    }

    ngx_add_timer(ev, NGX_HTTP_RAILGUN_UPSTREAM_TICK);
}

#endif


#if (NGX_HTTP_RAILGUN_RESOLVE)

/*
 * Each worker probes the addresses the upstream's "resolve" servers have
 * now, the same list for all in the zone: a new address gets a probe, one
 * gone loses it.  The probes of one address share its state in the zone, so
 * one worker checks it per interval, as for any server.  Returns whether
 * the set changed.
 */

static ngx_uint_t
ngx_http_railgun_upstream_follow(ngx_http_railgun_upstream_t *ups)
{
    ngx_uint_t                          i, changed;
    ngx_http_upstream_rr_peer_t        *peer;
    ngx_http_upstream_rr_peers_t       *peers, *list;
    ngx_http_railgun_upstream_addr_t  **ga, *a;

    changed = 0;
    ga = ups->addrs.elts;

    for (i = 0; i < ups->addrs.nelts; i++) {
        ga[i]->seen = 0;
    }

    peers = ups->uscf->peer.data;

    /*
     * primary servers, then backups: each list under its own lock, which is
     * the one the resolver takes to change it
     */

    for (list = peers; list; list = list->next) {

        ngx_http_upstream_rr_peers_rlock(list);

        for (peer = list->peer; peer; peer = peer->next) {

            if (peer->host == NULL) {
                continue;
            }

            a = ngx_http_railgun_upstream_find(ups, peer);

            if (a) {
                a->seen = 1;
                continue;
            }

            if (ngx_http_railgun_upstream_add(ups, peer) == NGX_OK) {
                changed = 1;
            }
        }

        ngx_http_upstream_rr_peers_unlock(list);
    }

    ga = ups->addrs.elts;

    for (i = 0; i < ups->addrs.nelts; /* void */ ) {

        if (ga[i]->seen) {
            i++;
            continue;
        }

        a = ga[i];

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                       "railgun: upstream \"%V\" no longer has %V",
                       &ups->uscf->host, &a->probe.target);

        ngx_railgun_probe_remove(&a->probe);
        ngx_free(a);

        ga[i] = ga[--ups->addrs.nelts];
        changed = 1;
    }

    return changed;
}


/* the probe of a resolved peer: its address, from the same server */

static ngx_http_railgun_upstream_addr_t *
ngx_http_railgun_upstream_find(ngx_http_railgun_upstream_t *ups,
    ngx_http_upstream_rr_peer_t *peer)
{
    ngx_uint_t                          i;
    ngx_http_railgun_upstream_addr_t  **ga;

    ga = ups->addrs.elts;

    for (i = 0; i < ups->addrs.nelts; i++) {

        if (ga[i]->name->host.len == peer->host->name.len
            && ngx_strncasecmp(ga[i]->name->host.data, peer->host->name.data,
                               peer->host->name.len)
               == 0
            && ngx_cmp_sockaddr(peer->sockaddr, peer->socklen,
                                &ga[i]->sockaddr.sockaddr,
                                ga[i]->probe.addr.socklen, 1)
               == NGX_OK)
        {
            return ga[i];
        }
    }

    return NULL;
}


/* called with the peers locked: nothing here takes that lock */

static ngx_int_t
ngx_http_railgun_upstream_add(ngx_http_railgun_upstream_t *ups,
    ngx_http_upstream_rr_peer_t *peer)
{
    ngx_uint_t                          i;
    ngx_http_railgun_upstream_addr_t  **ga, *a;
    ngx_http_railgun_upstream_name_t   *name;

    if ((size_t) peer->socklen > sizeof(ngx_sockaddr_t)) {
        return NGX_DECLINED;
    }

    /* the server it came from: the name, and the port or the service */

    name = ups->names->elts;

    for (i = 0; i < ups->names->nelts; i++) {

        if (name[i].host.len == peer->host->name.len
            && ngx_strncasecmp(name[i].host.data, peer->host->name.data,
                               peer->host->name.len)
               == 0
            && name[i].service.len == peer->host->service.len
            && (name[i].service.len
                || name[i].port == ngx_inet_get_port(peer->sockaddr)))
        {
            break;
        }
    }

    if (i == ups->names->nelts) {
        return NGX_DECLINED;
    }

    a = ngx_alloc(sizeof(ngx_http_railgun_upstream_addr_t), ngx_cycle->log);
    if (a == NULL) {
        return NGX_ERROR;
    }

    a->probe = name[i].probe;
    a->name = &name[i];
    a->seen = 1;
    a->up = 0;
    a->rose = 0;

    ngx_memcpy(&a->sockaddr, peer->sockaddr, peer->socklen);

    a->probe.addr.sockaddr = &a->sockaddr.sockaddr;
    a->probe.addr.socklen = peer->socklen;

    /* the label: the address, as railgun_upstream_peer_up shows servers */

    a->probe.target.data = a->text;
    a->probe.target.len = ngx_sock_ntop(&a->sockaddr.sockaddr, peer->socklen,
                                        a->text, NGX_SOCKADDR_STRLEN, 1);
    a->probe.addr.name = a->probe.target;

    ga = ngx_array_push(&ups->addrs);
    if (ga == NULL) {
        ngx_free(a);
        return NGX_ERROR;
    }

    *ga = a;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "railgun: upstream \"%V\" has %V",
                   &ups->uscf->host, &a->probe.target);

    /*
     * a zone too full for its state: it is not checked and keeps its
     * initial state.  Said once, when the address comes: it stays in the
     * list, found again at every tick, until the name no longer has it.
     */

    if (ngx_railgun_probe_add(&a->probe, ngx_cycle->log) == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "railgun: zone is full: probe \"%V\" %V, an address "
                      "of \"%V\", is not run and keeps its initial state",
                      &a->probe.name, &a->probe.target, &name[i].host);
    }

    return NGX_OK;
}

#endif


static ngx_int_t
ngx_http_railgun_upstream_map(ngx_http_railgun_upstream_t *ups,
    ngx_array_t *probes, ngx_http_upstream_rr_peers_t *peers,
    ngx_pool_t *pool)
{
    ngx_uint_t                     i, n;
    ngx_railgun_probe_t           *probe;
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_http_upstream_rr_peers_t  *list;

    n = 0;

    for (list = peers; list; list = list->next) {
        n += list->number;
    }

    ups->peers = ngx_pcalloc(pool,
                             n * sizeof(ngx_http_railgun_upstream_peer_t));
    if (ups->peers == NULL) {
        return NGX_ERROR;
    }

    probe = probes->elts;
    ups->npeers = 0;

    /* primary servers, then backups */

    for (list = peers; list; list = list->next) {

        for (peer = list->peer; peer; peer = peer->next) {

            for (i = ups->first; i < ups->first + ups->nprobes; i++) {
                if (ngx_cmp_sockaddr(peer->sockaddr, peer->socklen,
                                     probe[i].addr.sockaddr,
                                     probe[i].addr.socklen, 1)
                    == NGX_OK)
                {
                    break;
                }
            }

            if (i == ups->first + ups->nprobes) {
                continue;
            }

            ups->peers[ups->npeers].peer = peer;
            ups->peers[ups->npeers].probe = &probe[i];
            ups->peers[ups->npeers].configured_down = probe[i].configured_down;
            ups->npeers++;
        }

        if (list == peers) {
            ups->nprimary = ups->npeers;
        }
    }

    return NGX_OK;
}


/* the upstream's own record in the zone, beside its probes' */

static ngx_int_t
ngx_http_railgun_upstream_state(ngx_http_railgun_upstream_t *ups,
    ngx_railgun_store_t *store)
{
    u_char  *p, key[NGX_RAILGUN_LABEL_ESCAPED_MAX + 32];

    p = ngx_cpymem(key, "upstream=\"", sizeof("upstream=\"") - 1);
    p = ngx_railgun_label_escape(p, ups->uscf->host.data,
                                 ups->uscf->host.len);
    *p++ = '"';

    /* in a full zone this is the shared overflow: only logging suffers */

    ups->state = ngx_railgun_store_series(store,
                                          NGX_HTTP_RAILGUN_PROBE_STATE,
                                          key, p - key, NULL);

    return NGX_OK;
}


/* configuration */


/* railgun_check [type=http|tcp] [uri=] [all_down=open|closed] [params] */

char *
ngx_http_railgun_check(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_srv_conf_t *rscf = conf;

    char                          *rv;
    ngx_str_t                     *value, *params;
    ngx_uint_t                     i, n;
    ngx_http_railgun_upstream_t   *ups;
    ngx_http_upstream_srv_conf_t  *uscf;

    if (rscf->upstream) {
        return "is duplicate";
    }

    uscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_upstream_module);

    ups = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_upstream_t));
    if (ups == NULL) {
        return NGX_CONF_ERROR;
    }

    ups->uscf = uscf;

    ngx_railgun_probe_init(&ups->check, &uscf->host, 1);

    value = cf->args->elts;

    params = ngx_palloc(cf->pool, cf->args->nelts * sizeof(ngx_str_t));
    if (params == NULL) {
        return NGX_CONF_ERROR;
    }

    n = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "all_down=open") == 0) {
            ups->fail_closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "all_down=closed") == 0) {
            ups->fail_closed = 1;
            continue;
        }

        params[n++] = value[i];
    }

    rv = ngx_railgun_probe_parse_params(cf, &ups->check, params, n);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rscf->upstream = ups;

    return NGX_CONF_OK;
}


/*
 * After the whole configuration: one probe per address of every server of a
 * checked upstream, and the upstream's peer.init wrapped.  By now every
 * balancer (least_conn, hash, keepalive, ...) has installed its own.
 */

ngx_int_t
ngx_http_railgun_upstream_init(ngx_conf_t *cf)
{
    ngx_uint_t                      i, s, a;
    ngx_railgun_probe_t            *probe;
    ngx_http_railgun_upstream_t    *ups;
    ngx_http_upstream_server_t     *server;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        ups = ngx_http_railgun_upstream_checked(uscfp[i]);

        if (ups == NULL) {
            continue;
        }

        if (uscfp[i]->servers == NULL || uscfp[i]->servers->nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: no servers to check in upstream "
                               "\"%V\" in %s:%ui", &uscfp[i]->host,
                               uscfp[i]->file_name, uscfp[i]->line);
            return NGX_ERROR;
        }

        /*
         * one name, one thing: a probe named as a checked upstream would
         * share its state records (the same name and target) and the gate
         * would mix their verdicts
         */

        probe = rmcf->probes.elts;

        for (s = 0; s < rmcf->probes.nelts; s++) {
            if (!probe[s].check
                && probe[s].name.len == uscfp[i]->host.len
                && ngx_strncmp(probe[s].name.data, uscfp[i]->host.data,
                               probe[s].name.len)
                   == 0)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "railgun: probe \"%V\" has the name of an "
                              "upstream with railgun_check (in %V:%ui), "
                              "a name is one thing in %V:%ui",
                              &probe[s].name, &ups->check.file,
                              ups->check.line, &probe[s].file,
                              probe[s].line);
                return NGX_ERROR;
            }
        }

        ups->first = rmcf->probes.nelts;

        server = uscfp[i]->servers->elts;

        for (s = 0; s < uscfp[i]->servers->nelts; s++) {

#if (NGX_HTTP_RAILGUN_RESOLVE)

            /* its addresses come at run time: the address is a port only */

            if (server[s].host.len) {
                if (ngx_http_railgun_upstream_name(cf, ups, &server[s])
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                continue;
            }

#endif

            for (a = 0; a < server[s].naddrs; a++) {

                probe = ngx_array_push(&rmcf->probes);
                if (probe == NULL) {
                    return NGX_ERROR;
                }

                if (ngx_http_railgun_upstream_probe(cf, ups, &server[s],
                                                    &server[s].addrs[a], probe)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                if (!server[s].down) {
                    ups->nservers++;
                }
            }
        }

        ups->nprobes = rmcf->probes.nelts - ups->first;

        ups->original_init_peer = uscfp[i]->peer.init;
        uscfp[i]->peer.init = ngx_http_railgun_upstream_init_peer;
    }

    return ngx_http_railgun_upstream_keys(cf, &rmcf->probes);
}


/* the railgun part of an upstream block, NULL unless it has railgun_check */

static ngx_http_railgun_upstream_t *
ngx_http_railgun_upstream_checked(ngx_http_upstream_srv_conf_t *uscf)
{
    ngx_http_railgun_srv_conf_t  *rscf;

    /* an implicit upstream (proxy_pass to an address) has no block */

    if (uscf->srv_conf == NULL) {
        return NULL;
    }

    rscf = uscf->srv_conf[ngx_http_railgun_module.ctx_index];

    return rscf->upstream;
}


/*
 * A server's probe, made of the upstream's railgun_check: of one of its
 * addresses, or with addr NULL of a "resolve" server, whose probe is the
 * template of all the addresses its name will resolve to and is named as
 * the server is written until then.
 */

static ngx_int_t
ngx_http_railgun_upstream_probe(ngx_conf_t *cf,
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_server_t *server,
    ngx_addr_t *addr, ngx_railgun_probe_t *probe)
{
    *probe = ups->check;

    if (addr) {
        probe->addr = *addr;
        probe->target = addr->name;

        /*
         * an HTTP check's Host: the server as written, as a probe's is its
         * URL's, so that a server named by its host name is asked as a
         * name-based virtual host would be (api.internal:8000, not the
         * address it resolved to); a unix: server's is decided with the
         * request.  Known by its address: nginx takes "UNIX:" for a socket
         * too.
         */

        if (probe->host.len == 0 && server->name.len
            && addr->sockaddr->sa_family != AF_UNIX)
        {
            probe->host = server->name;
        }

    } else {
        probe->target = server->name;
    }

    probe->configured_down = server->down;

    return ngx_railgun_probe_init_request(cf, probe);
}


typedef struct {
    ngx_str_t                      key;
    ngx_railgun_probe_t           *probe;
} ngx_http_railgun_upstream_key_t;


/*
 * A probe's state is the series keyed by its name and target as escaped
 * label values (cut at 256 bytes, invalid UTF-8 as U+FFFD): two probes
 * whose raw names differ may still meet there, as may one address given
 * twice in an upstream.  Every probe and check is known by now; the keys
 * are sorted and neighbours compared.
 */

static ngx_int_t
ngx_http_railgun_upstream_keys(ngx_conf_t *cf, ngx_array_t *probes)
{
    u_char                           *p;
    ngx_uint_t                        i;
    ngx_railgun_probe_t              *probe;
    ngx_http_railgun_upstream_key_t  *keys, *a, *b;

    if (probes->nelts < 2) {
        return NGX_OK;
    }

    keys = ngx_palloc(cf->temp_pool,
                      probes->nelts * sizeof(ngx_http_railgun_upstream_key_t));
    if (keys == NULL) {
        return NGX_ERROR;
    }

    probe = probes->elts;

    for (i = 0; i < probes->nelts; i++) {
        p = ngx_pnalloc(cf->temp_pool, 2 * NGX_RAILGUN_LABEL_ESCAPED_MAX + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        keys[i].key.data = p;
        keys[i].probe = &probe[i];

        p = ngx_railgun_label_escape(p, probe[i].name.data, probe[i].name.len);
        *p++ = '\0';
        p = ngx_railgun_label_escape(p, probe[i].target.data,
                                     probe[i].target.len);

        keys[i].key.len = p - keys[i].key.data;
    }

    ngx_qsort(keys, probes->nelts, sizeof(ngx_http_railgun_upstream_key_t),
              ngx_http_railgun_upstream_cmp_keys);

    for (i = 1; i < probes->nelts; i++) {
        a = &keys[i - 1];
        b = &keys[i];

        if (a->key.len != b->key.len
            || ngx_memcmp(a->key.data, b->key.data, a->key.len) != 0)
        {
            continue;
        }

        /* the one configured later is named with its file and line */

        if (a->probe > b->probe) {
            b = a;
            a = &keys[i];
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "railgun: probe \"%V\" %V would share the state of "
                      "probe \"%V\" %V (in %V:%ui): the names and targets "
                      "are one once escaped as label values, or the address "
                      "is given twice in %V:%ui",
                      &b->probe->name, &b->probe->target,
                      &a->probe->name, &a->probe->target,
                      &a->probe->file, a->probe->line,
                      &b->probe->file, b->probe->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_railgun_upstream_cmp_keys(const void *one, const void *two)
{
    int                                     rc;
    const ngx_http_railgun_upstream_key_t  *a, *b;

    a = one;
    b = two;

    rc = ngx_memcmp(a->key.data, b->key.data,
                    ngx_min(a->key.len, b->key.len));

    if (rc != 0) {
        return rc;
    }

    return (a->key.len > b->key.len) - (a->key.len < b->key.len);
}


#if (NGX_HTTP_RAILGUN_RESOLVE)

static ngx_int_t
ngx_http_railgun_upstream_name(ngx_conf_t *cf,
    ngx_http_railgun_upstream_t *ups, ngx_http_upstream_server_t *server)
{
    ngx_http_railgun_upstream_name_t  *name;

    if (ups->names == NULL) {
        ups->names = ngx_array_create(cf->pool, 2,
                                    sizeof(ngx_http_railgun_upstream_name_t));
        if (ups->names == NULL) {
            return NGX_ERROR;
        }
    }

    name = ngx_array_push(ups->names);
    if (name == NULL) {
        return NGX_ERROR;
    }

    name->host = server->host;
    name->service = server->service;
    name->port = server->naddrs ? ngx_inet_get_port(server->addrs[0].sockaddr)
                                : 0;

    /*
     * The request is made here once for all the addresses: an HTTP check
     * sends the server as written as its Host, "api.internal:8000".
     */

    return ngx_http_railgun_upstream_probe(cf, ups, server, NULL,
                                           &name->probe);
}

#endif
