
/*
 * Copyright (C) ngx-railgun authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <nginx.h>
#include "ngx_http_railgun_module.h"

/* written by the config script: NGX_HTTP_RAILGUN_STATUS_DIR */
#include "ngx_http_railgun_status_files.h"


/*
 * The status page: one HTML page, its script, its style sheet and an icon,
 * all kept as files in src/status/ and assembled into the module with
 * .incbin (no build step, no generated C), plus Debian's Chart.js, read at
 * configuration time.  Everything is in memory once nginx runs; the page
 * itself draws only what the JSON of the metrics location gives it, so
 * that location's access rules are the page's too.
 *
 * The assets are answered from the status location itself, selected by the
 * "asset" argument ("/status?asset=page.js"), so that they work whatever
 * the location is ("= /status", "/status/", a regex) and need no location
 * of their own.
 */


#define NGX_HTTP_RAILGUN_CHARTJS                                              \
    "/usr/share/javascript/chart.js/chart.min.js"

/* Chart.js 3.9 is 200 KB; anything much larger is not the library */
#define NGX_HTTP_RAILGUN_CHARTJS_MAX   (16 * 1024 * 1024)

#define NGX_HTTP_RAILGUN_INTERVAL_MIN  100
#define NGX_HTTP_RAILGUN_INTERVAL_MAX  3600000


#define NGX_HTTP_RAILGUN_INCBIN(name, file)                                   \
    __asm__ (                                                                 \
        ".pushsection .rodata\n"                                              \
        ".balign 16\n"                                                        \
        ".globl ngx_http_railgun_status_" #name "\n"                          \
        ".hidden ngx_http_railgun_status_" #name "\n"                         \
        "ngx_http_railgun_status_" #name ":\n"                                \
        ".incbin \"" NGX_HTTP_RAILGUN_STATUS_DIR "/" file "\"\n"              \
        ".globl ngx_http_railgun_status_" #name "_end\n"                      \
        ".hidden ngx_http_railgun_status_" #name "_end\n"                     \
        "ngx_http_railgun_status_" #name "_end:\n"                            \
        ".popsection\n");                                                     \
                                                                              \
    extern const u_char  ngx_http_railgun_status_##name[];                    \
    extern const u_char  ngx_http_railgun_status_##name##_end[]


NGX_HTTP_RAILGUN_INCBIN(html, "page.html");
NGX_HTTP_RAILGUN_INCBIN(js, "page.js");
NGX_HTTP_RAILGUN_INCBIN(css, "page.css");
NGX_HTTP_RAILGUN_INCBIN(icon, "icon.svg");


typedef struct {
    ngx_str_t                   name;        /* the "asset" argument */
    ngx_str_t                   type;
    ngx_str_t                   data;
    ngx_str_t                   etag;
} ngx_http_railgun_asset_t;


enum {
    NGX_HTTP_RAILGUN_ASSET_PAGE = 0,
    NGX_HTTP_RAILGUN_ASSET_JS,
    NGX_HTTP_RAILGUN_ASSET_CSS,
    NGX_HTTP_RAILGUN_ASSET_ICON,
    NGX_HTTP_RAILGUN_ASSET_CHART,
    NGX_HTTP_RAILGUN_NASSETS
};


typedef struct {
    ngx_uint_t                  asset;
    char                       *name;
    char                       *type;
    const u_char               *start;
    const u_char               *end;
} ngx_http_railgun_builtin_t;


/* the page's own files, answered as they are in src/status/ */

static ngx_http_railgun_builtin_t  ngx_http_railgun_builtins[] = {
    { NGX_HTTP_RAILGUN_ASSET_JS, "page.js",
      "text/javascript; charset=utf-8",
      ngx_http_railgun_status_js, ngx_http_railgun_status_js_end },
    { NGX_HTTP_RAILGUN_ASSET_CSS, "page.css",
      "text/css; charset=utf-8",
      ngx_http_railgun_status_css, ngx_http_railgun_status_css_end },
    { NGX_HTTP_RAILGUN_ASSET_ICON, "icon.svg",
      "image/svg+xml",
      ngx_http_railgun_status_icon, ngx_http_railgun_status_icon_end }
};


struct ngx_http_railgun_status_s {
    ngx_http_railgun_asset_t    assets[NGX_HTTP_RAILGUN_NASSETS];
};


static ngx_int_t ngx_http_railgun_status_page(ngx_conf_t *cf,
    ngx_http_railgun_asset_t *a, ngx_str_t *metrics, ngx_msec_t interval);
static ngx_int_t ngx_http_railgun_status_read(ngx_conf_t *cf,
    ngx_http_railgun_asset_t *a, ngx_str_t *file);
static ngx_int_t ngx_http_railgun_status_etag(ngx_conf_t *cf,
    ngx_http_railgun_asset_t *a);
static ngx_int_t ngx_http_railgun_status_header(ngx_http_request_t *r,
    char *key, ngx_str_t *value, ngx_table_elt_t **out);


/*
 * Scripts, styles, the JSON and the icon from this origin only; no inline
 * script or style (the page has none), no frames, no forms.
 */

static ngx_str_t  ngx_http_railgun_status_csp = ngx_string(
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'");


char *
ngx_http_railgun_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_railgun_loc_conf_t *rlcf = conf;

    u_char                       *p;
    ngx_str_t                    *value, metrics, chartjs, s;
    ngx_int_t                     ms;
    ngx_uint_t                    i;
    ngx_msec_t                    interval;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_railgun_asset_t     *a;
    ngx_http_railgun_status_t    *st;
    ngx_http_railgun_builtin_t   *b;

    if (rlcf->status) {
        return "is duplicate";
    }

    ngx_str_set(&metrics, "/metrics");
    ngx_str_set(&chartjs, NGX_HTTP_RAILGUN_CHARTJS);
    interval = 2000;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "metrics=", 8) == 0) {
            metrics.data = value[i].data + 8;
            metrics.len = value[i].len - 8;

            /*
             * a path of this origin: the page's Content-Security-Policy
             * lets it fetch nothing else, and the value goes into the HTML
             */

            if (metrics.len == 0 || metrics.data[0] != '/'
                || (metrics.len > 1 && metrics.data[1] == '/'))
            {
                goto invalid;
            }

            for (p = metrics.data; p < metrics.data + metrics.len; p++) {
                if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\''
                    || *p == '<' || *p == '>' || *p == '\\' || *p == '#')
                {
                    goto invalid;
                }
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            ms = ngx_parse_time(&s, 0);

            if (ms == NGX_ERROR
                || ms < NGX_HTTP_RAILGUN_INTERVAL_MIN
                || ms > NGX_HTTP_RAILGUN_INTERVAL_MAX)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid interval \"%V\" (100ms to 1h)",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            interval = (ngx_msec_t) ms;
            continue;
        }

        if (ngx_strncmp(value[i].data, "chartjs=", 8) == 0) {
            chartjs.data = value[i].data + 8;
            chartjs.len = value[i].len - 8;

            if (chartjs.len == 0) {
                goto invalid;
            }

            continue;
        }

        goto invalid;
    }

    st = ngx_pcalloc(cf->pool, sizeof(ngx_http_railgun_status_t));
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    a = st->assets;

    for (i = 0; i < sizeof(ngx_http_railgun_builtins)
                    / sizeof(ngx_http_railgun_builtin_t); i++)
    {
        b = &ngx_http_railgun_builtins[i];

        a[b->asset].name.data = (u_char *) b->name;
        a[b->asset].name.len = ngx_strlen(b->name);
        a[b->asset].type.data = (u_char *) b->type;
        a[b->asset].type.len = ngx_strlen(b->type);
        a[b->asset].data.data = (u_char *) b->start;
        a[b->asset].data.len = b->end - b->start;
    }

    ngx_str_set(&a[NGX_HTTP_RAILGUN_ASSET_CHART].name, "chart.js");
    ngx_str_set(&a[NGX_HTTP_RAILGUN_ASSET_CHART].type,
                "text/javascript; charset=utf-8");

    if (ngx_http_railgun_status_read(cf, &a[NGX_HTTP_RAILGUN_ASSET_CHART],
                                     &chartjs)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&a[NGX_HTTP_RAILGUN_ASSET_PAGE].type,
                "text/html; charset=utf-8");

    if (ngx_http_railgun_status_page(cf, &a[NGX_HTTP_RAILGUN_ASSET_PAGE],
                                     &metrics, interval)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < NGX_HTTP_RAILGUN_NASSETS; i++) {
        if (ngx_http_railgun_status_etag(cf, &a[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    rlcf->status = st;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_railgun_status_handler;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * page.html with its two placeholders replaced: @METRICS@ (the metrics
 * path, checked to need no HTML escaping) and @INTERVAL@ (milliseconds).
 */

static ngx_int_t
ngx_http_railgun_status_page(ngx_conf_t *cf, ngx_http_railgun_asset_t *a,
    ngx_str_t *metrics, ngx_msec_t interval)
{
    u_char     *p, *last, *start, *out;
    size_t      len;
    ngx_str_t   ms, *rep;
    ngx_uint_t  pass;
    u_char      buf[NGX_INT_T_LEN];

    ms.data = buf;
    ms.len = ngx_sprintf(buf, "%M", interval) - buf;

    start = (u_char *) ngx_http_railgun_status_html;
    last = (u_char *) ngx_http_railgun_status_html_end;

    out = NULL;
    len = 0;

    /* the first pass sizes the page, the second writes it */

    for (pass = 0; pass < 2; pass++) {

        if (pass == 1) {
            a->data.data = ngx_pnalloc(cf->pool, len);
            if (a->data.data == NULL) {
                return NGX_ERROR;
            }

            a->data.len = len;
            out = a->data.data;
        }

        len = 0;

        for (p = start; p < last; /* void */) {

            if (last - p >= 9 && ngx_strncmp(p, "@METRICS@", 9) == 0) {
                rep = metrics;
                p += 9;

            } else if (last - p >= 10
                       && ngx_strncmp(p, "@INTERVAL@", 10) == 0)
            {
                rep = &ms;
                p += 10;

            } else {
                if (out) {
                    *out++ = *p;
                }

                p++;
                len++;
                continue;
            }

            if (out) {
                out = ngx_cpymem(out, rep->data, rep->len);
            }

            len += rep->len;
        }
    }

    return NGX_OK;
}


/* Chart.js, read once at configuration time: workers never touch disk */

static ngx_int_t
ngx_http_railgun_status_read(ngx_conf_t *cf, ngx_http_railgun_asset_t *a,
    ngx_str_t *file)
{
    off_t            size;
    ssize_t          n;
    ngx_str_t        name;
    ngx_file_t       f;
    ngx_file_info_t  fi;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));

    f.name = name;
    f.log = cf->log;

    f.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (f.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed (Chart.js for "
                           "the status page: install libjs-chart.js or "
                           "set chartjs=)", name.data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(f.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto failed;
    }

    size = ngx_file_size(&fi);

    if (!ngx_is_file(&fi) || size == 0
        || size > NGX_HTTP_RAILGUN_CHARTJS_MAX)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is not Chart.js (not a file, empty or "
                           "over 16m)", name.data);
        goto failed;
    }

    a->data.data = ngx_pnalloc(cf->pool, (size_t) size);
    if (a->data.data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&f, a->data.data, (size_t) size, 0);

    if (n != (ssize_t) size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, n == NGX_ERROR ? ngx_errno : 0,
                           ngx_read_file_n " \"%s\" returned %z bytes "
                           "instead of %O", name.data, n, size);
        goto failed;
    }

    a->data.len = (size_t) size;

    if (ngx_close_file(f.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return NGX_OK;

failed:

    if (ngx_close_file(f.fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%s\" failed", name.data);
    }

    return NGX_ERROR;
}


/*
 * A strong ETag of the bytes served: the module's version, the length and
 * a CRC32 of the content, so that a new build or a new Chart.js shows.
 */

static ngx_int_t
ngx_http_railgun_status_etag(ngx_conf_t *cf, ngx_http_railgun_asset_t *a)
{
    u_char  *p;

    p = ngx_pnalloc(cf->pool, sizeof("\"" NGX_HTTP_RAILGUN_VERSION "-\"")
                              + 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    a->etag.data = p;
    a->etag.len = ngx_sprintf(p, "\"" NGX_HTTP_RAILGUN_VERSION "-%xz-%08xD\"",
                              a->data.len,
                              ngx_crc32_long(a->data.data, a->data.len))
                  - p;

    return NGX_OK;
}


ngx_int_t
ngx_http_railgun_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_buf_t                    *b;
    ngx_str_t                     arg, nosniff, cache;
    ngx_uint_t                    i;
    ngx_chain_t                   out;
    ngx_table_elt_t              *etag;
    ngx_http_railgun_asset_t     *a;
    ngx_http_railgun_status_t    *st;
    ngx_http_railgun_loc_conf_t  *rlcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    rlcf = ngx_http_get_module_loc_conf(r, ngx_http_railgun_module);
    st = rlcf->status;

    if (st == NULL) {
        return NGX_DECLINED;
    }

    a = &st->assets[NGX_HTTP_RAILGUN_ASSET_PAGE];

    if (ngx_http_arg(r, (u_char *) "asset", 5, &arg) == NGX_OK) {

        a = NULL;

        for (i = 1; i < NGX_HTTP_RAILGUN_NASSETS; i++) {
            if (arg.len == st->assets[i].name.len
                && ngx_strncmp(arg.data, st->assets[i].name.data, arg.len)
                   == 0)
            {
                a = &st->assets[i];
                break;
            }
        }

        if (a == NULL) {
            return NGX_HTTP_NOT_FOUND;
        }
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = a->data.len;
    r->headers_out.content_type = a->type;
    r->headers_out.content_type_len = a->type.len;
    r->headers_out.content_type_lowcase = NULL;

    /*
     * revalidated on every load, answered 304 by nginx's not_modified
     * filter when If-None-Match holds the ETag: a new Chart.js after a
     * reload, or a new module after a restart, shows at once
     */

    ngx_str_set(&cache, "no-cache");
    ngx_str_set(&nosniff, "nosniff");

    if (ngx_http_railgun_status_header(r, "ETag", &a->etag, &etag) != NGX_OK
        || ngx_http_railgun_status_header(r, "Cache-Control", &cache, NULL)
           != NGX_OK
        || ngx_http_railgun_status_header(r, "Content-Security-Policy",
                                          &ngx_http_railgun_status_csp, NULL)
           != NGX_OK
        || ngx_http_railgun_status_header(r, "X-Content-Type-Options",
                                          &nosniff, NULL)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.etag = etag;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = a->data.data;
    b->last = a->data.data + a->data.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_railgun_status_header(ngx_http_request_t *r, char *key,
    ngx_str_t *value, ngx_table_elt_t **out)
{
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(key);

    h->key.data = (u_char *) key;
    h->key.len = len;
    h->value = *value;

    h->lowcase_key = ngx_pnalloc(r->pool, len);
    if (h->lowcase_key == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(h->lowcase_key, h->key.data, len);
    h->hash = 1;

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (out) {
        *out = h;
    }

    return NGX_OK;
}
