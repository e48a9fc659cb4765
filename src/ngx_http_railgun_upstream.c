
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include "ngx_http_railgun_module.h"


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
 * counter in the zone): one atomic load per request otherwise.
 */


typedef struct {
    ngx_http_upstream_rr_peer_t   *peer;
    ngx_railgun_probe_t           *probe;
    ngx_uint_t                     configured_down;
    ngx_uint_t                     up;          /* as read by the last sync */
    ngx_uint_t                     rose;        /* unsigned  rose:1; */
    uint64_t                       rises;       /* the probe's, last seen */
} ngx_http_railgun_upstream_peer_t;


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
    time_t                             now;
    uint64_t                           rises;
    ngx_uint_t                         i, n, up, live, all_down, was;
    ngx_http_railgun_upstream_peer_t  *gp;
    ngx_http_upstream_rr_peers_t      *peers;

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
                gp[i].peer->fails = 0;
                gp[i].peer->accessed = 0;
                gp[i].peer->checked = now;
            }
        }

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

    return healthy;
}


/*
 * the addresses of its servers not marked down, backups included: the ones
 * ngx_http_railgun_upstream_healthy() counts
 */

ngx_uint_t
ngx_http_railgun_upstream_nservers(ngx_http_railgun_upstream_t *ups)
{
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
    ngx_http_railgun_srv_conf_t    *rscf;
    ngx_http_upstream_rr_peers_t   *peers;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    umcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_upstream_module);
    rmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_railgun_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        rscf = uscfp[i]->srv_conf[ngx_http_railgun_module.ctx_index];

        if (rscf->upstream == NULL) {
            continue;
        }

        peers = uscfp[i]->peer.data;

        if (ngx_http_railgun_upstream_map(rscf->upstream, &rmcf->probes, peers,
                                      cycle->pool)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_railgun_upstream_state(rscf->upstream, rmcf->store)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* apply the states the zone already has */
        ngx_http_railgun_upstream_sync(rscf->upstream,
                                 ngx_railgun_store_generation(rmcf->store));
    }

    return NGX_OK;
}


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
    ngx_http_railgun_srv_conf_t    *rscf;
    ngx_http_upstream_srv_conf_t  **uscfp;
    ngx_http_upstream_main_conf_t  *umcf;
    ngx_http_railgun_main_conf_t   *rmcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_railgun_module);

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {

        if (uscfp[i]->srv_conf == NULL) {
            continue;
        }

        rscf = uscfp[i]->srv_conf[ngx_http_railgun_module.ctx_index];
        ups = rscf->upstream;

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

            for (a = 0; a < server[s].naddrs; a++) {

                probe = ngx_array_push(&rmcf->probes);
                if (probe == NULL) {
                    return NGX_ERROR;
                }

                *probe = ups->check;

                probe->addr = server[s].addrs[a];
                probe->target = server[s].addrs[a].name;
                probe->configured_down = server[s].down;

                if (!server[s].down) {
                    ups->nservers++;
                }

                if (ngx_railgun_probe_init_request(cf, probe) != NGX_OK) {
                    return NGX_ERROR;
                }
            }
        }

        ups->nprobes = rmcf->probes.nelts - ups->first;

        ups->original_init_peer = uscfp[i]->peer.init;
        uscfp[i]->peer.init = ngx_http_railgun_upstream_init_peer;
    }

    return ngx_http_railgun_upstream_keys(cf, &rmcf->probes);
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
