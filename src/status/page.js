/*
 * ngx-railgun status page.  Plain JavaScript, no build step: it polls the
 * JSON of the metrics location (docs/metrics.md), keeps the last minutes of
 * snapshots in memory and draws rates, latency quantiles from histogram
 * deltas and the states of upstreams, WebSocket sessions, probes and the
 * module.  Everything shown comes from that JSON: the page knows nothing the
 * metrics do not say.  Data goes into the DOM as text only.
 */

(function () {
    'use strict';

    var META = function (name) {
        var m = document.querySelector('meta[name="' + name + '"]');
        return m ? m.getAttribute('content') : '';
    };

    var METRICS = META('railgun-metrics') || '/metrics';
    var INTERVAL = Math.max(100, parseInt(META('railgun-interval'), 10)
                                 || 2000);

    var WINDOW = 30;        /* seconds: table rates and quantiles */
    var HISTORY = 600;      /* seconds of chart points kept */
    var TOP_ROWS = 20;      /* table rows before "the rest" */
    var TOP_LINES = 5;      /* chart lines before "the rest" */
    var SMOOTH = 5;         /* seconds: each chart point's rate window */

    var snaps = [];         /* {time, start, fams} oldest first */
    var points = [];        /* chart points, oldest first */
    var lastResult = {};    /* probe key -> last check result seen */
    var charts = {};
    var polling = false;

    var COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#bf8700', '#8250df',
                  '#6e7781'];


    /* ------------------------------------------------------ snapshots */

    function key(labels, names) {
        var k = [], i;
        for (i = 0; i < names.length; i++) {
            k.push(labels[names[i]] === undefined ? '' : labels[names[i]]);
        }
        return JSON.stringify(k);
    }

    function snapshot(json) {
        var fams = {}, i, f;
        for (i = 0; i < json.families.length; i++) {
            f = json.families[i];
            fams[f.name] = f;
        }
        return { time: +json.time, start: +json.start_time, fams: fams };
    }

    function samples(snap, name) {
        var f = snap && snap.fams[name];
        return f ? f.samples : [];
    }

    /* the sum of a counter or gauge per group of labels */
    function sums(snap, name, names, filter) {
        var out = {}, s = samples(snap, name), i, k;
        for (i = 0; i < s.length; i++) {
            if (filter && !filter(s[i].labels)) {
                continue;
            }
            k = key(s[i].labels, names);
            if (!out[k]) {
                out[k] = { labels: s[i].labels, value: 0 };
            }
            out[k].value += num(s[i].value);
        }
        return out;
    }

    function num(v) {
        v = +v;
        return isFinite(v) ? v : 0;
    }

    /* increase of a grouped counter from snapshot a to b (a may be null) */
    function increase(a, b, name, names, filter) {
        var now = sums(b, name, names, filter), then, out = {}, k, d;
        then = (a && a.start === b.start) ? sums(a, name, names, filter) : {};
        for (k in now) {
            d = now[k].value - (then[k] ? then[k].value : 0);
            out[k] = { labels: now[k].labels, value: d < 0 ? now[k].value : d };
        }
        return out;
    }

    /*
     * Histograms: cumulative buckets of a group, summed over its series,
     * minus the same at the older snapshot.  Series whose bounds differ
     * merge on the union of bounds, each counting at a bound what it had
     * at its largest bound below: never more than it observed there.
     */

    function hist(snap, name, names, filter) {
        var out = {}, s = samples(snap, name), i, k;
        for (i = 0; i < s.length; i++) {
            if (!s[i].buckets || (filter && !filter(s[i].labels))) {
                continue;
            }
            k = key(s[i].labels, names);
            if (!out[k]) {
                out[k] = { labels: s[i].labels, series: [] };
            }
            out[k].series.push(s[i]);
        }
        return out;
    }

    function bound(le) {
        return le === '+Inf' ? Infinity : +le;
    }

    function merged(list) {
        var bounds = {}, les = [], i, j, b, out, c, s;
        for (i = 0; i < list.length; i++) {
            for (j = 0; j < list[i].buckets.length; j++) {
                bounds[bound(list[i].buckets[j].le)] = 1;
            }
        }
        for (b in bounds) {
            les.push(+b);
        }
        les.sort(function (x, y) { return x - y; });
        out = [];
        for (i = 0; i < les.length; i++) {
            c = 0;
            for (j = 0; j < list.length; j++) {
                s = list[j].buckets;
                c += at(s, les[i]);
            }
            out.push({ le: les[i], count: c });
        }
        return out;
    }

    function at(buckets, x) {
        var c = 0, i;
        for (i = 0; i < buckets.length; i++) {
            if (bound(buckets[i].le) <= x) {
                c = num(buckets[i].count);
            }
        }
        return c;
    }

    /* bucket deltas of a group between two snapshots */
    function histDelta(a, b, name, names, filter) {
        var now = hist(b, name, names, filter), then, out = {}, k, n, t, i, d;
        then = (a && a.start === b.start) ? hist(a, name, names, filter) : {};
        for (k in now) {
            n = merged(now[k].series);
            t = then[k] ? merged(then[k].series) : [];
            d = [];
            for (i = 0; i < n.length; i++) {
                d.push({ le: n[i].le,
                         count: Math.max(0, n[i].count - at(t, n[i].le)) });
            }
            out[k] = { labels: now[k].labels, buckets: d };
        }
        return out;
    }

    function addBuckets(acc, buckets) {
        return acc ? merged([{ buckets: acc }, { buckets: buckets }])
                   : buckets;
    }

    /* as Prometheus' histogram_quantile: linear within the bucket */
    function quantile(q, buckets) {
        var total, rank, i, lo, prev;
        if (!buckets || !buckets.length) {
            return null;
        }
        total = buckets[buckets.length - 1].count;
        if (!(total > 0)) {
            return null;
        }
        rank = q * total;
        prev = 0;
        lo = 0;
        for (i = 0; i < buckets.length; i++) {
            if (buckets[i].count >= rank) {
                if (buckets[i].le === Infinity) {
                    return lo;
                }
                if (buckets[i].count === prev) {
                    return buckets[i].le;
                }
                return lo + (buckets[i].le - lo)
                            * (rank - prev) / (buckets[i].count - prev);
            }
            prev = buckets[i].count;
            lo = buckets[i].le;
        }
        return lo;
    }


    /* ------------------------------------------------------ formatting */

    function fmtRate(v) {
        if (v === null || v === undefined || !isFinite(v)) {
            return '\u2013';
        }
        if (v === 0) {
            return '0';
        }
        return v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1)
                                                : v.toFixed(2);
    }

    function fmtSec(v) {
        if (v === null || v === undefined || !isFinite(v)) {
            return '\u2013';
        }
        if (v < 0.001) {
            return (v * 1000).toFixed(2) + ' ms';
        }
        if (v < 1) {
            return (v * 1000).toFixed(v < 0.01 ? 1 : 0) + ' ms';
        }
        return v.toFixed(2) + ' s';
    }

    function fmtPct(part, total) {
        if (!(total > 0)) {
            return '\u2013';
        }
        return (100 * part / total).toFixed(part && part < total / 100
                                            ? 2 : 1) + '%';
    }

    function fmtInt(v) {
        return isFinite(v) ? Math.round(v).toLocaleString('en-US') : '\u2013';
    }

    function fmtBytes(v) {
        var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;
        if (!isFinite(v)) {
            return '\u2013';
        }
        while (v >= 1024 && i < u.length - 1) {
            v /= 1024;
            i++;
        }
        return (i ? v.toFixed(1) : v.toFixed(0)) + ' ' + u[i];
    }

    function fmtAge(s) {
        var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
            m = Math.floor(s % 3600 / 60);
        if (!isFinite(s)) {
            return '\u2013';
        }
        return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm '
               + Math.floor(s % 60) + 's';
    }


    /* ------------------------------------------------------ DOM */

    function el(tag, text, cls) {
        var e = document.createElement(tag);
        if (text !== undefined && text !== null) {
            e.textContent = String(text);
        }
        if (cls) {
            e.className = cls;
        }
        return e;
    }

    function row(cells, cls) {
        var tr = el('tr', null, cls), i, c;
        for (i = 0; i < cells.length; i++) {
            c = cells[i];
            if (c instanceof Node) {
                var td = el('td');
                td.appendChild(c);
                tr.appendChild(td);
            } else {
                tr.appendChild(el('td', c));
            }
        }
        return tr;
    }

    function fill(id, rows, empty) {
        var tbody = document.querySelector('#' + id + ' tbody');
        var ncol = document.querySelectorAll('#' + id + ' th').length || 2;
        var td;
        while (tbody.firstChild) {
            tbody.removeChild(tbody.firstChild);
        }
        if (!rows.length) {
            td = el('td', empty, 'empty');
            td.colSpan = ncol;
            tbody.appendChild(el('tr')).appendChild(td);
            return;
        }
        for (var i = 0; i < rows.length; i++) {
            tbody.appendChild(rows[i]);
        }
    }

    function badge(text, cls) {
        return el('span', text, 'badge ' + cls);
    }

    /* the first TOP_ROWS groups by rate, then one summed row */
    function topN(groups, n) {
        groups.sort(function (a, b) {
            return (b.rate - a.rate) || (b.total - a.total)
                   || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
        });
        return { top: groups.slice(0, n), rest: groups.slice(n) };
    }


    /* ------------------------------------------------------ sections */

    /* the oldest snapshot at most s seconds before b, never b itself */
    function since(b, s) {
        var i;
        for (i = 0; i < snaps.length - 1; i++) {
            if (snaps[i].time >= b.time - s - INTERVAL / 2000) {
                return snaps[i];
            }
        }
        return snaps.length > 1 ? snaps[snaps.length - 2] : null;
    }

    function windowStart(b) {
        return since(b, WINDOW);
    }

    var HTTP_KEY = ['server', 'path'];
    var PEER_KEY = ['upstream', 'peer'];
    var PROBE_KEY = ['probe', 'target'];

    function httpGroups(a, b) {
        var dt = a ? b.time - a.time : 0;
        var inc = increase(a, b, 'railgun_http_requests_total', HTTP_KEY);
        var e4 = increase(a, b, 'railgun_http_requests_total', HTTP_KEY,
                          function (l) { return /^4/.test(l.status); });
        var e5 = increase(a, b, 'railgun_http_requests_total', HTTP_KEY,
                          function (l) { return /^5/.test(l.status); });
        var tot = sums(b, 'railgun_http_requests_total', HTTP_KEY);
        var hd = histDelta(a, b, 'railgun_http_request_duration_seconds',
                           HTTP_KEY);
        var out = [], k;
        for (k in tot) {
            out.push({
                name: k, labels: tot[k].labels,
                n: a && inc[k] ? inc[k].value : 0,
                rate: a && dt > 0 && inc[k] ? inc[k].value / dt : null,
                e4: a && e4[k] ? e4[k].value : 0,
                e5: a && e5[k] ? e5[k].value : 0,
                total: tot[k].value,
                buckets: a && hd[k] ? hd[k].buckets : null
            });
        }
        return out;
    }

    function sumGroups(list) {
        var s = { rate: 0, n: 0, e4: 0, e5: 0, total: 0, buckets: null }, i;
        for (i = 0; i < list.length; i++) {
            s.rate += list[i].rate || 0;
            s.n += list[i].n;
            s.e4 += list[i].e4;
            s.e5 += list[i].e5;
            s.total += list[i].total;
            if (list[i].buckets) {
                s.buckets = addBuckets(s.buckets, list[i].buckets);
            }
        }
        return s;
    }

    function httpRow(g, server, path, cls) {
        return row([server, path, fmtRate(g.rate), fmtPct(g.e4, g.n),
                    fmtPct(g.e5, g.n), fmtSec(quantile(0.5, g.buckets)),
                    fmtSec(quantile(0.95, g.buckets)),
                    fmtSec(quantile(0.99, g.buckets)), fmtInt(g.total)],
                   cls);
    }

    function renderHttp(a, b) {
        var t = topN(httpGroups(a, b), TOP_ROWS), rows = [], i, r;
        for (i = 0; i < t.top.length; i++) {
            rows.push(httpRow(t.top[i], t.top[i].labels.server,
                              t.top[i].labels.path));
        }
        if (t.rest.length) {
            rows.push(httpRow(sumGroups(t.rest),
                              'the other ' + t.rest.length, '(summed)',
                              'rest'));
        }
        if (rows.length > 1) {
            r = sumGroups(t.top.concat(t.rest));
            rows.push(httpRow(r, 'all', '', 'total'));
        }
        fill('http', rows, 'no HTTP requests counted yet');
    }

    function renderUpstreams(a, b) {
        var dt = a ? b.time - a.time : 0, groups = [], k, g, rows = [], i;
        var inc = increase(a, b, 'railgun_upstream_requests_total', PEER_KEY);
        var bad = increase(a, b, 'railgun_upstream_requests_total', PEER_KEY,
                           function (l) { return /^5/.test(l.status); });
        var tot = sums(b, 'railgun_upstream_requests_total', PEER_KEY);
        var up = sums(b, 'railgun_upstream_peer_up', PEER_KEY);
        var hd = histDelta(a, b, 'railgun_upstream_response_duration_seconds',
                           PEER_KEY);
        var all = {};
        for (k in tot) { all[k] = tot[k].labels; }
        for (k in up) { all[k] = up[k].labels; }
        for (k in all) {
            groups.push({
                name: k, labels: all[k],
                up: up[k] ? up[k].value : null,
                n: a && inc[k] ? inc[k].value : 0,
                bad: a && bad[k] ? bad[k].value : 0,
                rate: a && dt > 0 ? (inc[k] ? inc[k].value : 0) / dt : null,
                total: tot[k] ? tot[k].value : 0,
                buckets: a && hd[k] ? hd[k].buckets : null
            });
        }
        /* peers of one upstream together, the busiest upstream first */
        groups.sort(function (x, y) {
            var ux = x.labels.upstream, uy = y.labels.upstream;
            return ux < uy ? -1 : ux > uy ? 1
                   : x.labels.peer < y.labels.peer ? -1 : 1;
        });
        for (i = 0; i < groups.length && i < 4 * TOP_ROWS; i++) {
            g = groups[i];
            rows.push(row([
                g.labels.upstream, g.labels.peer,
                g.up === null ? badge('not checked', 'none')
                    : g.up > 0 ? badge('up', 'up') : badge('down', 'down'),
                fmtRate(g.rate), fmtPct(g.bad, g.n),
                fmtSec(quantile(0.5, g.buckets)),
                fmtSec(quantile(0.95, g.buckets)), fmtInt(g.total)
            ], g.up === 0 ? 'alarm' : ''));
        }
        if (groups.length > 4 * TOP_ROWS) {
            rows.push(row(['the other ' + (groups.length - 4 * TOP_ROWS),
                           '(not shown)', '', '', '', '', '', ''], 'rest'));
        }
        fill('upstreams', rows, 'no upstream attempts or checks yet');
    }

    function renderWebsocket(a, b) {
        var dt = a ? b.time - a.time : 0, groups = [], k, rows = [], i, t, g;
        var open = sums(b, 'railgun_websocket_connections', HTTP_KEY);
        var opened = 'railgun_websocket_connections_opened_total';
        var o = increase(a, b, opened, HTTP_KEY);
        var dir = function (d) {
            return function (l) { return l.direction === d; };
        };
        var mi = increase(a, b, 'railgun_websocket_messages_total',
                          HTTP_KEY, dir('in'));
        var mo = increase(a, b, 'railgun_websocket_messages_total',
                          HTTP_KEY, dir('out'));
        var bi = increase(a, b, 'railgun_websocket_bytes_total',
                          HTTP_KEY, dir('in'));
        var bo = increase(a, b, 'railgun_websocket_bytes_total',
                          HTTP_KEY, dir('out'));
        var pe = sums(b, 'railgun_websocket_protocol_errors_total', HTTP_KEY);
        var tot = sums(b, opened, HTTP_KEY), all = {};
        var r = function (m, k) {
            return a && dt > 0 ? (m[k] ? m[k].value : 0) / dt : null;
        };
        for (k in tot) { all[k] = tot[k].labels; }
        for (k in open) { all[k] = open[k].labels; }
        for (k in all) {
            groups.push({
                name: k, labels: all[k],
                open: open[k] ? open[k].value : 0,
                rate: r(o, k), mi: r(mi, k), mo: r(mo, k),
                bi: r(bi, k), bo: r(bo, k),
                pe: pe[k] ? pe[k].value : 0,
                total: tot[k] ? tot[k].value : 0
            });
        }
        groups.sort(function (x, y) {
            return (y.open - x.open) || (x.name < y.name ? -1 : 1);
        });
        t = { top: groups.slice(0, TOP_ROWS), rest: groups.slice(TOP_ROWS) };
        for (i = 0; i < t.top.length; i++) {
            g = t.top[i];
            rows.push(row([g.labels.server, g.labels.path, fmtInt(g.open),
                           fmtRate(g.rate), fmtRate(g.mi), fmtRate(g.mo),
                           fmtRate(g.bi), fmtRate(g.bo), fmtInt(g.pe)]));
        }
        if (t.rest.length) {
            g = t.rest.reduce(function (s, x) {
                s.open += x.open; s.pe += x.pe;
                ['rate', 'mi', 'mo', 'bi', 'bo'].forEach(function (f) {
                    s[f] = x[f] === null ? s[f] : (s[f] || 0) + x[f];
                });
                return s;
            }, { open: 0, pe: 0, rate: null, mi: null, mo: null,
                 bi: null, bo: null });
            rows.push(row(['the other ' + t.rest.length, '(summed)',
                           fmtInt(g.open), fmtRate(g.rate), fmtRate(g.mi),
                           fmtRate(g.mo), fmtRate(g.bi), fmtRate(g.bo),
                           fmtInt(g.pe)], 'rest'));
        }
        fill('websocket', rows, 'no WebSocket sessions yet');
    }

    /*
     * The result of the last check, from the counters that grew since the
     * previous poll; when several grew, or on the first poll (all counts),
     * the one that agrees with the state: ok for a probe up, the commonest
     * failure for one down.
     */

    function latest(results, state, first) {
        var grew = results.filter(function (x) {
            return first ? x.n > 0 : x.d > 0;
        });
        var fail = grew.filter(function (x) { return x.result !== 'ok'; })
            .sort(function (x, y) {
                return first ? y.n - x.n : y.d - x.d;
            });
        var ok = grew.length > fail.length;

        if (!grew.length) {
            return undefined;
        }
        if (grew.length === 1) {
            return grew[0].result;
        }
        if (state === 0 && fail.length) {
            return fail[0].result;
        }
        return ok && state ? 'ok' : fail.length ? fail[0].result : 'ok';
    }

    function renderProbes(a, b) {
        var up = sums(b, 'railgun_probe_up', PROBE_KEY);
        var checks = sums(b, 'railgun_probe_checks_total',
                          PROBE_KEY.concat(['result']));
        var prev = a ? sums(a, 'railgun_probe_checks_total',
                            PROBE_KEY.concat(['result'])) : {};
        var peerUp = sums(b, 'railgun_upstream_peer_up', PEER_KEY);
        var used = sums(b, 'railgun_redis_memory_used_bytes', PROBE_KEY);
        var max = sums(b, 'railgun_redis_memory_max_bytes', PROBE_KEY);
        var trans = sums(b, 'railgun_probe_transitions_total', PROBE_KEY);
        var hd = histDelta(windowStart(b), b, 'railgun_probe_duration_seconds',
                           PROBE_KEY);
        var all = {}, byResult = {}, k, c, p, list = [], rows = [], i, state;
        var last, cell, bar, pct;

        for (k in up) { all[k] = up[k].labels; }
        for (k in checks) {
            c = checks[k];
            p = key(c.labels, PROBE_KEY);
            all[p] = all[p] || c.labels;
            byResult[p] = byResult[p] || [];
            byResult[p].push({ result: c.labels.result, n: c.value,
                               d: c.value - (prev[k] ? prev[k].value : 0) });
        }
        for (k in all) {
            list.push({ k: k, labels: all[k] });
        }
        list.sort(function (x, y) { return x.k < y.k ? -1 : 1; });

        for (i = 0; i < list.length; i++) {
            k = list[i].k;
            state = up[k] ? up[k].value
                : peerUp[key({ upstream: list[i].labels.probe,
                               peer: list[i].labels.target }, PEER_KEY)];
            state = state === undefined ? null
                : typeof state === 'object' ? state.value : state;
            last = latest(byResult[k] || [], state, !a);
            if (last !== undefined) {
                lastResult[k] = last;
            }
            last = lastResult[k];
            cell = (byResult[k] || []).filter(function (x) { return x.n > 0; })
                .sort(function (x, y) { return y.n - x.n; })
                .map(function (x) { return x.result + ' ' + fmtInt(x.n); })
                .join(' \u00b7 ') || 'none yet';
            if (used[k]) {
                bar = el('span', null, 'mem');
                pct = max[k] && max[k].value > 0
                    ? Math.min(100, 100 * used[k].value / max[k].value) : 0;
                var fillEl = el('span', null, 'memfill');
                fillEl.style.width = pct.toFixed(1) + '%';
                bar.appendChild(fillEl);
                bar.appendChild(el('span', fmtBytes(used[k].value) + ' / '
                    + (max[k] && max[k].value > 0
                       ? fmtBytes(max[k].value) + ' (' + pct.toFixed(1)
                         + '%)' : 'no limit'), 'memtext'));
            } else {
                bar = '';
            }
            rows.push(row([
                list[i].labels.probe, list[i].labels.target,
                state === null ? badge('unknown', 'none')
                    : state > 0 ? badge('up', 'up') : badge('down', 'down'),
                last === undefined ? '\u2013'
                    : badge(last, last === 'ok' ? 'up' : 'down'),
                cell,
                fmtSec(quantile(0.95, hd[k] ? hd[k].buckets : null)),
                bar,
                fmtInt(trans[k] ? trans[k].value : 0)
            ], state === 0 ? 'alarm' : ''));
        }
        fill('probes', rows, 'no probes configured');
    }

    function renderModule(a, b) {
        var z = sums(b, 'railgun_zone_bytes', ['state']);
        var used = z[key({ state: 'used' }, ['state'])];
        var size = z[key({ state: 'size' }, ['state'])];
        var dropped = sums(b, 'railgun_series_dropped_total', ['family']);
        var conns = sums(b, 'railgun_nginx_connections', ['state']);
        var rows = [], k, d = 0, parts = [], n = 0, f;

        for (k in dropped) {
            d += dropped[k].value;
            if (dropped[k].value > 0) {
                parts.push(dropped[k].labels.family + ' '
                           + fmtInt(dropped[k].value));
            }
        }
        for (f in b.fams) {
            n += b.fams[f].samples.length;
        }

        rows.push(row(['zone', used && size
            ? fmtBytes(used.value) + ' of ' + fmtBytes(size.value) + ' ('
              + fmtPct(used.value, size.value) + ')' : '\u2013'],
            used && size && used.value > 0.9 * size.value ? 'alarm' : ''));
        rows.push(row(['series dropped', fmtInt(d)
            + (parts.length ? ' (' + parts.join(', ') + ')' : '')],
            d > 0 ? 'alarm' : ''));
        rows.push(row(['samples in the scrape', fmtInt(n)]));
        if (Object.keys(conns).length) {
            rows.push(row(['nginx connections', Object.keys(conns).map(
                function (c) {
                    return conns[c].labels.state + ' '
                           + fmtInt(conns[c].value);
                }).join(' \u00b7 ')]));
        }
        rows.push(row(['up since', new Date(b.start * 1000).toISOString()
                       .replace('T', ' ').replace(/\..*/, ' UTC')
                       + ' (' + fmtAge(b.time - b.start) + ')']));
        fill('module', rows, '');
    }

    function renderSummary(b, json) {
        var s = document.getElementById('summary');
        s.textContent = 'module ' + (json.version || '?') + ' \u00b7 up '
            + fmtAge(b.time - b.start);
    }


    /* ------------------------------------------------------ charts */

    function lineChart(id, yTitle, extra) {
        var canvas = document.getElementById(id), opts;
        if (!window.Chart || !canvas) {
            return null;
        }
        opts = {
            type: 'line',
            data: { labels: [], datasets: [] },
            options: {
                animation: false,
                responsive: true,
                maintainAspectRatio: false,
                spanGaps: true,
                normalized: true,
                elements: { point: { radius: 0 },
                            line: { borderWidth: 1.5, tension: 0.2 } },
                interaction: { mode: 'index', intersect: false },
                plugins: { legend: { position: 'bottom',
                                     labels: { boxWidth: 12 } } },
                scales: {
                    x: { ticks: { maxTicksLimit: 6, autoSkip: true,
                                  maxRotation: 0 } },
                    y: { beginAtZero: true,
                         title: { display: true, text: yTitle } }
                }
            }
        };
        if (extra) {
            extra(opts);
        }
        return new window.Chart(canvas, opts);
    }

    function setLines(chart, labels, lines) {
        var ds = chart.data.datasets, i;
        chart.data.labels = labels;
        for (i = 0; i < lines.length; i++) {
            if (!ds[i]) {
                ds[i] = { label: '', data: [], borderColor: COLORS[i],
                          backgroundColor: COLORS[i], fill: false };
            }
            ds[i].label = lines[i].label;
            ds[i].data = lines[i].data;
            if (lines[i].yAxisID) {
                ds[i].yAxisID = lines[i].yAxisID;
            }
            ds[i].borderColor = ds[i].backgroundColor =
                lines[i].color || COLORS[i % COLORS.length];
        }
        ds.length = lines.length;
        chart.update('none');
    }

    /* one chart point: rates and quantiles over the last SMOOTH seconds */
    function point(a, b) {
        var dt = b.time - a.time, p = { t: b.time }, k, all = null;
        var hg = httpGroups(a, b), inc, g;
        p.http = {};
        for (k = 0; k < hg.length; k++) {
            p.http[hg[k].name] = { label: hg[k].labels.server + ' '
                                   + hg[k].labels.path,
                                   v: hg[k].n / dt };
            if (hg[k].buckets) {
                all = addBuckets(all, hg[k].buckets);
            }
        }
        p.q = [quantile(0.5, all), quantile(0.95, all), quantile(0.99, all)];
        p.ups = {};
        inc = increase(a, b, 'railgun_upstream_requests_total', PEER_KEY);
        for (k in inc) {
            g = inc[k];
            p.ups[k] = { label: g.labels.upstream + ' ' + g.labels.peer,
                         v: g.value / dt };
        }
        inc = increase(a, b, 'railgun_websocket_messages_total',
                       ['direction']);
        p.ws = {};
        for (k in inc) {
            p.ws[inc[k].labels.direction] = inc[k].value / dt;
        }
        g = sums(b, 'railgun_websocket_connections', []);
        p.wsOpen = g[key({}, [])] ? g[key({}, [])].value : 0;
        return p;
    }

    /* the TOP_LINES busiest keys over the kept points, then the rest */
    function topLines(field) {
        var total = {}, label = {}, keys, lines = [], i, j, rest, v, k;
        for (i = 0; i < points.length; i++) {
            for (k in points[i][field]) {
                total[k] = (total[k] || 0) + points[i][field][k].v;
                label[k] = points[i][field][k].label;
            }
        }
        keys = Object.keys(total).sort(function (x, y) {
            return (total[y] - total[x]) || (x < y ? -1 : 1);
        });
        for (j = 0; j < keys.length && j < TOP_LINES; j++) {
            lines.push({ label: label[keys[j]], data: points.map(
                function (p) {
                    return p[field][keys[j]] ? p[field][keys[j]].v : 0;
                }) });
        }
        if (keys.length > TOP_LINES) {
            rest = keys.slice(TOP_LINES);
            lines.push({ label: 'the other ' + rest.length,
                         color: COLORS[5],
                         data: points.map(function (p) {
                             for (v = 0, i = 0; i < rest.length; i++) {
                                 v += p[field][rest[i]]
                                      ? p[field][rest[i]].v : 0;
                             }
                             return v;
                         }) });
        }
        return lines;
    }

    function renderCharts() {
        var labels = points.map(function (p) {
            return new Date(p.t * 1000).toTimeString().slice(0, 8);
        });
        var q = function (i) {
            return points.map(function (p) { return p.q[i]; });
        };

        if (!window.Chart) {
            return;
        }
        if (!charts.rate) {
            charts.rate = lineChart('chart-rate', 'requests/s');
            charts.latency = lineChart('chart-latency', 'seconds');
            charts.upstream = lineChart('chart-upstream', 'attempts/s');
            charts.ws = lineChart('chart-ws', 'messages/s', function (o) {
                o.options.scales.y1 = {
                    position: 'right', beginAtZero: true,
                    grid: { drawOnChartArea: false },
                    title: { display: true, text: 'sessions open' }
                };
            });
        }
        setLines(charts.rate, labels, topLines('http'));
        setLines(charts.latency, labels, [
            { label: 'p50', data: q(0) },
            { label: 'p95', data: q(1) },
            { label: 'p99', data: q(2) }
        ]);
        setLines(charts.upstream, labels, topLines('ups'));
        setLines(charts.ws, labels, [
            { label: 'in (from clients)',
              data: points.map(function (p) { return p.ws['in'] || 0; }) },
            { label: 'out (to clients)',
              data: points.map(function (p) { return p.ws.out || 0; }) },
            { label: 'sessions open', yAxisID: 'y1',
              data: points.map(function (p) { return p.wsOpen; }) }
        ]);
    }


    /* ------------------------------------------------------ polling */

    function status(text, bad) {
        var p = document.getElementById('poll');
        p.textContent = text;
        p.className = 'poll' + (bad ? ' error' : '');
    }

    function update(json) {
        var b = snapshot(json), a, prev;

        if (!isFinite(b.time) || !isFinite(b.start)) {
            throw new Error('no time or start_time in the JSON');
        }

        prev = snaps.length ? snaps[snaps.length - 1] : null;
        if (prev && prev.start !== b.start) {
            /* the zone was reset: history says nothing about it now */
            snaps = [];
            points = [];
            prev = null;
        }
        if (prev && b.time <= prev.time) {
            return;
        }
        snaps.push(b);
        while (snaps.length > 2 && snaps[0].time < b.time - WINDOW - 10) {
            snaps.shift();
        }
        if (prev) {
            points.push(point(since(b, SMOOTH), b));
            while (points.length && points[0].t < b.time - HISTORY) {
                points.shift();
            }
        }

        a = windowStart(b);
        renderSummary(b, json);
        renderHttp(a, b);
        renderUpstreams(a, b);
        renderWebsocket(a, b);
        renderProbes(prev, b);
        renderModule(a, b);
        renderCharts();
        document.getElementById('window').textContent =
            a ? Math.round(b.time - a.time) : '\u2013';
        status('updated ' + new Date(b.time * 1000).toTimeString()
               .slice(0, 8) + ' \u00b7 every ' + INTERVAL / 1000 + ' s');
    }

    function poll() {
        var req;
        if (polling) {
            return;
        }
        polling = true;
        req = fetch(METRICS, {
            headers: { 'Accept': 'application/json' },
            credentials: 'same-origin',
            cache: 'no-store'
        }).then(function (res) {
            if (!res.ok) {
                throw new Error(METRICS + ': ' + res.status + ' '
                                + res.statusText);
            }
            return res.json();
        }).then(function (json) {
            if (!json || !Array.isArray(json.families)) {
                throw new Error(METRICS + ' did not answer the JSON '
                                + 'exposition');
            }
            update(json);
        }).catch(function (e) {
            status('no data: ' + e.message, true);
        });
        req.then(function () {
            polling = false;
            setTimeout(poll, INTERVAL);
        });
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', poll);
    } else {
        poll();
    }
}());
