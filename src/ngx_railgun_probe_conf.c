
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include "ngx_railgun_probe.h"


/*
 * The configuration of probes and checks: the defaults, the URL of a
 * railgun_probe, the parameters both directives share, and the request
 * bytes made once an address is known.  Names are resolved here, never in
 * a worker.
 */


static char *ngx_railgun_probe_parse_redis(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *url, size_t skip);
static char *ngx_railgun_probe_parse_http(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *url, size_t skip,
    in_port_t port);
static char *ngx_railgun_probe_ssl_param(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *param);
static char *ngx_railgun_probe_ssl_conf(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
static ngx_int_t ngx_railgun_probe_ssl_name(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe);
#if (NGX_SSL)
static char *ngx_railgun_probe_ssl_file(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, const char *param, ngx_str_t *file);
#endif
static char *ngx_railgun_probe_parse_status(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *value);
static char *ngx_railgun_probe_address(ngx_conf_t *cf,
    ngx_railgun_probe_t *probe, ngx_str_t *hostport, in_port_t port);
static ngx_uint_t ngx_railgun_probe_bad_bytes(ngx_str_t *s);
static ngx_int_t ngx_railgun_probe_unescape(ngx_conf_t *cf, ngx_str_t *s);


/* the defaults of SPEC.md, before parameters */

void
ngx_railgun_probe_init(ngx_railgun_probe_t *probe, ngx_str_t *name,
    ngx_uint_t check)
{
    ngx_memzero(probe, sizeof(ngx_railgun_probe_t));

    probe->name = *name;
    probe->check = check;
    probe->interval = 2000;
    probe->timeout = NGX_CONF_UNSET_MSEC;   /* the smaller of 1s and interval */
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

        /* as ngx_parse_url() knows it: "UNIX:" is a socket too */

        if (probe->target.len > 5
            && ngx_strncasecmp(probe->target.data, (u_char *) "unix:", 5)
               == 0)
        {
            /*
             * a real Host for a unix socket: the upstream's name, unless
             * it would split the request (a quoted name may hold a space
             * or CR LF)
             */
            if (probe->check && !ngx_railgun_probe_bad_bytes(&probe->name))
            {
                probe->host = probe->name;

            } else {
                ngx_str_set(&probe->host, "localhost");
            }

        } else {
            probe->host = probe->target;
        }
    }

    /*
     * a check's Host is its server as written, and nginx takes a quoted
     * name with a space or CR LF for a "resolve" server: it would go into
     * the request (host= itself is refused so)
     */

    if (probe->type == NGX_RAILGUN_PROBE_HTTP
        && ngx_railgun_probe_bad_bytes(&probe->host))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": the Host of its check "
                           "would hold a space or a control character of "
                           "the server's name, which would go into the "
                           "request; give host=", &probe->name);
        return NGX_ERROR;
    }

    if (probe->ssl && ngx_railgun_probe_ssl_name(cf, probe) != NGX_OK) {
        return NGX_ERROR;
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
    char       *rv;
    ngx_str_t   hostport;

    if (url->len > 8 && ngx_strncasecmp(url->data, (u_char *) "redis://", 8)
                        == 0)
    {
        probe->type = NGX_RAILGUN_PROBE_REDIS;

        rv = ngx_railgun_probe_parse_redis(cf, probe, url, 8);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (url->len > 9
               && ngx_strncasecmp(url->data, (u_char *) "rediss://", 9) == 0)
    {
        probe->type = NGX_RAILGUN_PROBE_REDIS;
        probe->ssl = 1;

        rv = ngx_railgun_probe_parse_redis(cf, probe, url, 9);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (url->len > 7
               && ngx_strncasecmp(url->data, (u_char *) "http://", 7) == 0)
    {
        rv = ngx_railgun_probe_parse_http(cf, probe, url, 7, 80);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else if (url->len > 8
               && ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0)
    {
        probe->ssl = 1;

        rv = ngx_railgun_probe_parse_http(cf, probe, url, 8, 443);
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
                           "railgun: invalid probe URL \"%V\", redis://, "
                           "rediss://, http://, https:// or tcp:// "
                           "expected", url);
        return NGX_CONF_ERROR;
    }

    return ngx_railgun_probe_parse_params(cf, probe, params, nparams);
}


/* http://host:port/path and https://, the path "/" when none */

static char *
ngx_railgun_probe_parse_http(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *url, size_t skip, in_port_t port)
{
    ngx_str_t   hostport;
    ngx_uint_t  i;

    probe->type = NGX_RAILGUN_PROBE_HTTP;

    hostport.data = url->data + skip;
    hostport.len = url->len - skip;

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

    if (ngx_railgun_probe_bad_bytes(&probe->uri)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: invalid probe URL \"%V\": a space "
                           "or a control character in the path", url);
        return NGX_CONF_ERROR;
    }

    return ngx_railgun_probe_address(cf, probe, &hostport, port);
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

    probe->file = cf->conf_file->file.name;
    probe->line = cf->conf_file->line;

    /* the type first: which parameters apply must not depend on order */

    if (probe->check) {
        for (i = 0; i < nparams; i++) {
            if (ngx_strcmp(params[i].data, "type=tcp") == 0) {
                probe->type = NGX_RAILGUN_PROBE_TCP;
            }

            if (ngx_strcmp(params[i].data, "ssl") == 0) {
                probe->ssl = 1;
            }
        }
    }

    probe->ssl_verify = NGX_CONF_UNSET;

    for (i = 0; i < nparams; i++) {

        if (ngx_strncmp(params[i].data, "ssl_", 4) == 0) {
            if (ngx_railgun_probe_ssl_param(cf, probe, &params[i])
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (probe->check) {

            if (ngx_strcmp(params[i].data, "ssl") == 0) {
                continue;
            }

            if (ngx_strcmp(params[i].data, "type=http") == 0) {
                if (probe->type != NGX_RAILGUN_PROBE_HTTP) {
                    goto invalid;
                }

                continue;
            }

            if (ngx_strcmp(params[i].data, "type=tcp") == 0) {
                continue;
            }

            if (probe->type == NGX_RAILGUN_PROBE_HTTP
                && ngx_strncmp(params[i].data, "uri=", 4) == 0
                && params[i].len > 4 && params[i].data[4] == '/')
            {
                probe->uri.data = params[i].data + 4;
                probe->uri.len = params[i].len - 4;

                if (ngx_railgun_probe_bad_bytes(&probe->uri)) {
                    goto injection;
                }

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
                && params[i].len > 5
                && params[i].len - 5 <= NGX_RAILGUN_PROBE_MAX_BODY)
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

                if (ngx_railgun_probe_bad_bytes(&probe->host)) {
                    goto injection;
                }

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

    /*
     * any timeout is accepted, a longer one than the interval too (NGINX
     * Plus's usual shape): a round never starts before the last one ended
     */

    if (probe->timeout == NGX_CONF_UNSET_MSEC) {
        probe->timeout = ngx_min(1000, probe->interval);
    }

    if (probe->jitter > probe->interval) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": jitter must not be more "
                           "than interval", &probe->name);
        return NGX_CONF_ERROR;
    }

    if (probe->ssl && ngx_railgun_probe_ssl_conf(cf, probe) != NGX_CONF_OK) {
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
                       "railgun: invalid parameter \"%V\"", &params[i]);

    return NGX_CONF_ERROR;

injection:

    /* the value itself is not logged: it may hold a line break */

    s.data = params[i].data;
    s.len = ngx_strlchr(s.data, s.data + params[i].len, '=') - s.data + 1;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "railgun: invalid parameter \"%V...\": a space or a "
                       "control character would go into the request", &s);

    return NGX_CONF_ERROR;
}


/* bytes that would end or split a request line or header line */

static ngx_uint_t
ngx_railgun_probe_bad_bytes(ngx_str_t *s)
{
    ngx_uint_t  i;

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= ' ' || s->data[i] == 0x7f) {
            return 1;
        }
    }

    return 0;
}


/*
 * redis://[[user]:password@]host:port[/db], and rediss:// alike: the
 * userinfo is RFC 3986's, percent-encoded bytes decoded; it ends at the
 * last "@", so that a password may hold "@", ":" and "/" as written too
 */

static char *
ngx_railgun_probe_parse_redis(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *url, size_t skip)
{
    u_char     *p, *end, *at, *colon, *slash;
    ngx_str_t   hostport;

    p = url->data + skip;
    end = url->data + url->len;

    at = NULL;

    for (colon = end - 1; colon >= p; colon--) {
        if (*colon == '@') {
            at = colon;
            break;
        }
    }

    if (at) {
        colon = ngx_strlchr(p, at, ':');

        if (colon == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid redis URL: "
                               "\"user:password@\" or \":password@\" "
                               "expected");
            return NGX_CONF_ERROR;
        }

        probe->user.data = p;
        probe->user.len = colon - p;
        probe->password.data = colon + 1;
        probe->password.len = at - colon - 1;

        if (probe->password.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid redis URL: an empty "
                               "password in \"user:@\" or \":@\"");
            return NGX_CONF_ERROR;
        }

        if (ngx_railgun_probe_unescape(cf, &probe->user) != NGX_OK
            || ngx_railgun_probe_unescape(cf, &probe->password) != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid redis URL: a \"%%\" not "
                               "followed by two hexadecimal digits in the "
                               "user or password");
            return NGX_CONF_ERROR;
        }

        p = at + 1;
    }

    slash = ngx_strlchr(p, end, '/');

    hostport.data = p;
    hostport.len = (slash ? slash : end) - p;

    if (slash) {
        probe->db = ngx_atoi(slash + 1, end - slash - 1);

        if (probe->db == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: invalid redis database number "
                               "in \"%V\"", &probe->name);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_railgun_probe_address(cf, probe, &hostport, 6379);
}


/* %XX decoded into a copy: the configuration's bytes stay as written */

static ngx_int_t
ngx_railgun_probe_unescape(ngx_conf_t *cf, ngx_str_t *s)
{
    u_char      *d, c, x;
    ngx_uint_t   i, k, h;

    if (ngx_strlchr(s->data, s->data + s->len, '%') == NULL) {
        return NGX_OK;
    }

    d = ngx_pnalloc(cf->pool, s->len);
    if (d == NULL) {
        return NGX_ERROR;
    }

    k = 0;

    for (i = 0; i < s->len; i++) {

        if (s->data[i] != '%') {
            d[k++] = s->data[i];
            continue;
        }

        if (s->len - i < 3) {
            return NGX_ERROR;
        }

        c = 0;

        for (h = 1; h <= 2; h++) {
            x = s->data[i + h] | 0x20;

            if (x >= '0' && x <= '9') {
                c = (u_char) (c * 16 + x - '0');

            } else if (x >= 'a' && x <= 'f') {
                c = (u_char) (c * 16 + x - 'a' + 10);

            } else {
                return NGX_ERROR;
            }
        }

        d[k++] = c;
        i += 2;
    }

    s->data = d;
    s->len = k;

    return NGX_OK;
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
                               "railgun: %s in probe \"%V\" address \"%V\"",
                               u.err, &probe->name, hostport);
        }

        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || u.no_port) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\" needs a host and a port",
                           &probe->name);
        return NGX_CONF_ERROR;
    }

    /*
     * one probe, one state, one address: a name of several addresses would
     * check one of them and say nothing of the others
     */

    if (u.naddrs > 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\" address \"%V\" resolves "
                           "to %ui addresses, one probe per address is "
                           "needed", &probe->name, hostport, u.naddrs);
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


/*
 * TLS: ssl_name=, ssl_verify=, ssl_trusted_certificate=, ssl_certificate=
 * and ssl_certificate_key=, only where the probe speaks TLS
 */

static char *
ngx_railgun_probe_ssl_param(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    ngx_str_t *param)
{
    u_char  *eq;

    if (!probe->ssl) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: parameter \"%V\" of probe \"%V\" needs "
                           "TLS: https://, rediss:// or \"railgun_check "
                           "ssl\"", param, &probe->name);
        return NGX_CONF_ERROR;
    }

    eq = ngx_strlchr(param->data, param->data + param->len, '=');

    if (eq == NULL || eq + 1 == param->data + param->len) {
        goto invalid;
    }

    if (ngx_strncmp(param->data, "ssl_name=", 9) == 0) {
        probe->ssl_name.data = eq + 1;
        probe->ssl_name.len = param->data + param->len - eq - 1;

        if (ngx_railgun_probe_bad_bytes(&probe->ssl_name)
            || probe->ssl_name.len > 255)
        {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (ngx_strcmp(param->data, "ssl_verify=on") == 0) {
        probe->ssl_verify = 1;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(param->data, "ssl_verify=off") == 0) {
        probe->ssl_verify = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(param->data, "ssl_trusted_certificate=", 24) == 0) {
        probe->ssl_trusted_certificate.data = eq + 1;
        probe->ssl_trusted_certificate.len = param->len - 24;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(param->data, "ssl_certificate=", 16) == 0) {
        probe->ssl_certificate.data = eq + 1;
        probe->ssl_certificate.len = param->len - 16;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(param->data, "ssl_certificate_key=", 20) == 0) {
        probe->ssl_certificate_key.data = eq + 1;
        probe->ssl_certificate_key.len = param->len - 20;
        return NGX_CONF_OK;
    }

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "railgun: invalid parameter \"%V\"", param);

    return NGX_CONF_ERROR;
}


/*
 * The name sent as SNI and verified: ssl_name=, else for a probe the host
 * of its URL, and for a check the upstream's name, as proxy_ssl_name is
 * for "proxy_pass https://NAME".  As nginx's proxy does (RFC 6066), an
 * address is never sent as SNI; it is verified against the certificate's
 * IP addresses.
 */

static ngx_int_t
ngx_railgun_probe_ssl_name(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    u_char     *p, *last;
    ngx_str_t   name;

    name = probe->ssl_name;

    if (name.len == 0) {
        name = probe->target;

        if (probe->check) {
            name = probe->name;

        } else if (name.len > 5
                   && ngx_strncasecmp(name.data, (u_char *) "unix:", 5) == 0)
        {
            ngx_str_set(&name, "localhost");

        } else {
            p = name.data;
            last = name.data + name.len;

            if (*p == '[') {
                p = ngx_strlchr(p, last, ']');

                if (p) {
                    name.data++;
                    name.len = p - name.data;
                }

            } else {
                p = ngx_strlchr(p, last, ':');

                if (p) {
                    name.len = p - name.data;
                }
            }
        }
    }

    /* null-terminated for OpenSSL */

    p = ngx_pnalloc(cf->pool, name.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_cpystrn(p, name.data, name.len + 1);

    probe->ssl_name.data = p;
    probe->ssl_name.len = name.len;

    probe->ssl_name_ip = (ngx_inet_addr(p, name.len) != INADDR_NONE);

    if (!probe->ssl_name_ip && ngx_strlchr(p, p + name.len, ':') != NULL) {

#if (NGX_HAVE_INET6)
        u_char  inaddr6[16];

        probe->ssl_name_ip = (ngx_inet6_addr(p, name.len, inaddr6) == NGX_OK);
#endif

        if (!probe->ssl_name_ip) {
            /* neither a host name nor an address: no certificate has it */
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "railgun: probe \"%V\": ssl name \"%V\" is "
                               "neither a host name nor an address",
                               &probe->name, &name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


#if (NGX_SSL)

/*
 * proxy_ssl_protocols' default in the nginx the module is built for: since
 * 1.23.4 without TLSv1 and TLSv1.1, which OpenSSL 3 refuses at its default
 * security level anyway.
 */

#if (nginx_version >= 1023004)
#define NGX_RAILGUN_PROBE_SSL_PROTOCOLS  (NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3)
#else
#define NGX_RAILGUN_PROBE_SSL_PROTOCOLS                                       \
    (NGX_SSL_TLSv1|NGX_SSL_TLSv1_1|NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3)
#endif


/*
 * One context per probe, or per railgun_check for all its servers, made as
 * nginx's proxy makes its own (ngx_http_proxy_set_ssl); sessions are kept by
 * the probe itself, so the context's client session cache only calls back.
 */

static char *
ngx_railgun_probe_ssl_conf(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    ngx_str_t            ciphers;
    ngx_pool_cleanup_t  *cln;

    if (probe->ssl_verify == NGX_CONF_UNSET) {
        /* as proxy_ssl_verify is off for proxy_pass https:// */
        probe->ssl_verify = !probe->check;
    }

    if (probe->ssl_certificate_key.len && probe->ssl_certificate.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": ssl_certificate_key= "
                           "without ssl_certificate=", &probe->name);
        return NGX_CONF_ERROR;
    }

    if (probe->ssl_certificate.len && probe->ssl_certificate_key.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": ssl_certificate= "
                           "without ssl_certificate_key=", &probe->name);
        return NGX_CONF_ERROR;
    }

    if (probe->ssl_verify && probe->ssl_trusted_certificate.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": ssl_verify=on needs "
                           "ssl_trusted_certificate= (as proxy_ssl_verify, "
                           "the system's store is not used), or "
                           "ssl_verify=off", &probe->name);
        return NGX_CONF_ERROR;
    }

    if (!probe->ssl_verify && probe->ssl_trusted_certificate.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "railgun: probe \"%V\": ssl_trusted_certificate= "
                           "with ssl_verify=off would not be used",
                           &probe->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_railgun_probe_ssl_file(cf, probe, "ssl_trusted_certificate",
                                   &probe->ssl_trusted_certificate)
        != NGX_CONF_OK
        || ngx_railgun_probe_ssl_file(cf, probe, "ssl_certificate",
                                      &probe->ssl_certificate)
           != NGX_CONF_OK
        || ngx_railgun_probe_ssl_file(cf, probe, "ssl_certificate_key",
                                      &probe->ssl_certificate_key)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    probe->ssl_ctx = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (probe->ssl_ctx == NULL) {
        return NGX_CONF_ERROR;
    }

    probe->ssl_ctx->log = cf->log;

    if (ngx_ssl_create(probe->ssl_ctx, NGX_RAILGUN_PROBE_SSL_PROTOCOLS, NULL)
        != NGX_OK)
    {
        goto failed;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(probe->ssl_ctx);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = probe->ssl_ctx;

    ngx_str_set(&ciphers, "DEFAULT");

    if (ngx_ssl_ciphers(cf, probe->ssl_ctx, &ciphers, 0) != NGX_OK) {
        goto failed;
    }

    if (probe->ssl_certificate.len
        && ngx_ssl_certificate(cf, probe->ssl_ctx, &probe->ssl_certificate,
                               &probe->ssl_certificate_key, NULL)
           != NGX_OK)
    {
        goto failed;
    }

    /* a chain of the target's certificate, intermediates and a root */

    if (probe->ssl_verify
        && ngx_ssl_trusted_certificate(cf, probe->ssl_ctx,
                                       &probe->ssl_trusted_certificate, 9)
           != NGX_OK)
    {
        goto failed;
    }

    if (ngx_ssl_client_session_cache(cf, probe->ssl_ctx, 1) != NGX_OK) {
        goto failed;
    }

    return NGX_CONF_OK;

failed:

    /* OpenSSL's reason is in the line before */

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "railgun: probe \"%V\": TLS setup failed",
                       &probe->name);

    return NGX_CONF_ERROR;
}


/* a missing or unreadable file named with the line of the directive */

static char *
ngx_railgun_probe_ssl_file(ngx_conf_t *cf, ngx_railgun_probe_t *probe,
    const char *param, ngx_str_t *file)
{
    ngx_fd_t  fd;

    if (file->len == 0) {
        return NGX_CONF_OK;
    }

    if (ngx_conf_full_name(cf->cycle, file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "railgun: probe \"%V\": %s=\"%V\" cannot be "
                           "opened", &probe->name, param, file);
        return NGX_CONF_ERROR;
    }

    (void) ngx_close_file(fd);

    return NGX_CONF_OK;
}

#else

static char *
ngx_railgun_probe_ssl_conf(ngx_conf_t *cf, ngx_railgun_probe_t *probe)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "railgun: probe \"%V\" needs TLS, and this nginx "
                       "is built without OpenSSL", &probe->name);

    return NGX_CONF_ERROR;
}

#endif
