#!/usr/bin/perl

# The status page in a real browser: Debian's headless Chromium, driven
# through chromedriver, against nginx with HTTP traffic on two servers, an
# upstream with a dead peer, a Redis probe and WebSocket sessions.  Checks
# the rendered DOM: charts drawn, every server, upstream, peer and probe
# named with its state, no NaN or undefined, no console error, numbers equal
# to the client's own counts that move with more traffic; and that a page
# whose metrics location denies it shows nothing.
#
# RAILGUN_STATUS_SCREENSHOT=FILE saves a PNG of the page (docs/status.png).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Browser;
use Test::Railgun::Probe;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

if (my $why = Test::Railgun::Browser::unavailable()) {
	plan(skip_all => "$why: the status page is not tested in a browser");
}

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS);

my $dead = $t->refused_port(8082);

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    # checks seldom next to the page's polls: the page must catch the
    # one failed check when Redis stops
    railgun_probe cache redis://127.0.0.1:%%PORT_6380%%
                  interval=3s timeout=500ms rise=1 fall=1;

    upstream api {
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;

        railgun_check interval=300ms timeout=200ms rise=1 fall=1;
    }

    upstream ws_up {
        server 127.0.0.1:%%PORT_8083%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        proxy_http_version  1.1;

        location /api/ {
            proxy_pass http://api;
        }

        location /many/ {
            railgun_path $uri;
            return 204;
        }

        location /ws/ {
            proxy_pass http://ws_up;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /status {
            railgun_status interval=300ms;
            railgun off;
        }

        location = /metrics-denied {
            railgun_metrics;
            railgun off;
            deny all;
        }

        location = /status-denied {
            railgun_status metrics=/metrics-denied interval=300ms;
            railgun off;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  other.example;

        location / {
            return 404;
        }
    }
}

EOF

my $redis = redis_start($t, 6380, maxmemory => '64mb');
$t->http_backend(8081);
ws_backend($t, 8083);
$t->run();

# the JSON exposition is another part of the module: without it the page
# has nothing to draw
my $json = http_get('/metrics', headers => ['Accept: application/json']);
unless ((http_header($json, 'content-type') || '') =~ m!application/json!) {
	plan(skip_all => 'the metrics location answers no JSON');
}

my $b = Test::Railgun::Browser->new($t);
$t->plan(30);

###############################################################################

my $PEER1 = '127.0.0.1:' . port(8081);
my $PEER2 = "127.0.0.1:$dead";

# traffic: counted by this client, the independent count for the page
my %sent = (api => 0, other => 0);

sub traffic {
	my ($n) = @_;

	for (1 .. $n) {
		http_get('/api/v1/users') =~ /^HTTP\/1\.\d 200/
			or diag('api request failed');
		$sent{api}++;
		http("GET /nothing HTTP/1.0\r\nHost: other.example\r\n\r\n");
		$sent{other}++;
	}
}

traffic(10);

my @ws = map { ws_connect(path => '/ws/') } 1 .. 3;
is(scalar(grep { $_->status == 101 } @ws), 3, 'three WebSocket sessions');

# the dead peer must be down before the page looks
ok(wait_for(10, sub {
	my $s = $t->metrics();
	(sample($s, 'railgun_upstream_peer_up',
		{ upstream => 'api', peer => $PEER2 }) // '') eq '0'
	&& (sample($s, 'railgun_probe_up', { probe => 'cache' }) // '') eq '1';
}, 0.1), 'dead peer down, probe up in the metrics');

my $url = 'http://127.0.0.1:' . port(8080) . '/status';
$b->get($url);

# three polls: rates need two snapshots
ok($b->wait_for(<<'JS', 15), 'page polled and drew its tables');
    var p = document.getElementById('poll').textContent;
    if (!/^updated/.test(p)) return false;
    var q = document.querySelector('#http tbody td:nth-child(3)');
    return q && /\d/.test(q.textContent);
JS
diag('poll: ' . $b->js("return document.getElementById('poll').textContent")
	. "\n" . join("\n", $b->console_errors()))
	unless Test::More->builder->is_passing;

# a message each way per session while the page polls
$_->text('hello') for @ws;
$_->read_message() for @ws;

sleep 1;

my $text = $b->js('return document.body.innerText');

for my $name ('localhost', 'other.example', '/api/', '/ws/', 'api', 'ws_up',
	$PEER1, $PEER2, 'cache', '127.0.0.1:' . port(6380))
{
	ok(index($text, $name) >= 0, "page names $name")
		or diag($text);
}

unlike($text, qr/\bNaN\b|undefined|Infinity/, 'no NaN, undefined, Infinity');

# the state columns, row by row
my $rows = $b->js(<<'JS');
    var out = {};
    ['http', 'upstreams', 'websocket', 'probes'].forEach(function (id) {
        out[id] = Array.prototype.map.call(
            document.querySelectorAll('#' + id + ' tbody tr'),
            function (tr) {
                return Array.prototype.map.call(tr.cells,
                    function (td) { return td.textContent; });
            });
    });
    return out;
JS

my ($live) = grep { $_->[1] eq $PEER1 } @{$rows->{upstreams}};
my ($gone) = grep { $_->[1] eq $PEER2 } @{$rows->{upstreams}};
is($live && $live->[2], 'up', 'live peer up');
is($gone && $gone->[2], 'down', 'dead peer down');

my ($probe) = grep { $_->[0] eq 'cache' } @{$rows->{probes}};
ok($probe && $probe->[2] eq 'up' && $probe->[3] eq 'ok',
	'probe up, last result ok') or diag(explain($probe));
my ($check) = grep { $_->[0] eq 'api' && $_->[1] eq $PEER2 }
	@{$rows->{probes}};
ok($check && $check->[2] eq 'down' && $check->[3] eq 'refused'
	&& $check->[4] =~ /^refused \d+$/,
	'dead peer\'s check down, last result refused')
	or diag(explain($check));
like($probe && $probe->[6], qr!/ 64\.0 MiB \(\d+\.\d%\)!,
	'Redis memory used against max');

my ($ws_row) = grep { $_->[1] eq '/ws/' } @{$rows->{websocket}};
is($ws_row && $ws_row->[2], '3', 'three sessions open on the page');

# charts: every canvas has pixels drawn
my $drawn = $b->js(<<'JS');
    return Array.prototype.map.call(document.querySelectorAll('canvas'),
        function (c) {
            var d = c.getContext('2d').getImageData(0, 0, c.width, c.height)
                .data, n = 0;
            for (var i = 3; i < d.length; i += 4) { if (d[i]) n++; }
            return n;
        });
JS
ok(@$drawn == 4 && !grep({ $_ < 500 } @$drawn), 'four charts drawn')
	or diag("pixels: @$drawn");

# numbers that move, and equal what this client sent

sub requests_is {
	my ($server, $path, $n, $name) = @_;

	my $v = $b->wait_for(requests_js($server, $path)
		. " return c === '$n' && c;", 5);
	is($v, $n, $name) or diag($b->js(requests_js($server, $path)
		. ' return c;'));
}

requests_is('localhost', '/api/', $sent{api}, 'api requests as sent');
traffic(15);
requests_is('localhost', '/api/', $sent{api},
	'api requests moved with more traffic');
requests_is('other.example', '/', $sent{other},
	'other server requests as sent');

# the rate chart got points for both servers
my $lines = $b->js(<<'JS');
    var c = Chart.getChart(document.getElementById('chart-rate'));
    return c.data.datasets.map(function (d) {
        return d.label + '=' + Math.max.apply(null, d.data);
    });
JS
ok(grep({ /^localhost \/api\/=(\d*\.?\d+)/ && $1 > 0 } @$lines),
	'rate chart has /api/ traffic') or diag("@$lines");

# hundreds of series: 20 rows, the rest summed in one, the total exact

my $many = 150;
http_get("/many/$_") for 1 .. $many;

my $series = 2 + $many + 1;    # /api/, /ws/, the /many/ paths, other's /
my $total = $sent{api} + $sent{other} + 3 + $many;

my $shape = $b->wait_for(<<'JS', 10, $total);
    var rows = document.querySelectorAll('#http tbody tr'), n = 0, rest = '',
        all = null;
    for (var i = 0; i < rows.length; i++) {
        var c = rows[i].cells;
        if (/^\/many\//.test(c[1].textContent)) n++;
        if (rows[i].className === 'rest') rest = c[0].textContent;
        if (rows[i].className === 'total') all = c[8].textContent;
    }
    return all && all.replace(/,/g, '') == arguments[0]
        && [rows.length, n, rest, all];
JS
ok($shape && $shape->[0] == 22 && $shape->[2] eq 'the other ' . ($series - 20)
	&& $shape->[3] =~ s/,//gr == $total,
	"$series series: 20 rows, the other summed, total $total")
	or diag(explain($shape));

if ($ENV{RAILGUN_STATUS_SCREENSHOT}) {
	$b->screenshot($ENV{RAILGUN_STATUS_SCREENSHOT});
}

# a dependency dies while the page is open: state and last result follow

redis_stop($redis);

my $cache = $b->wait_for(<<'JS', 10);
    var rows = document.querySelectorAll('#probes tbody tr');
    for (var i = 0; i < rows.length; i++) {
        var c = rows[i].cells;
        if (c[0].textContent === 'cache' && c[2].textContent === 'down') {
            return [c[3].textContent, c[4].textContent];
        }
    }
    return false;
JS
ok($cache && $cache->[0] eq 'refused'
	&& $cache->[1] =~ /^ok \d+ \S refused \d+$/,
	'stopped Redis: probe down, last result refused')
	or diag(explain($cache));

my @errors = $b->console_errors();
ok(!@errors, 'no console errors') or diag(join "\n", @errors);

# a page whose metrics location denies it: the error, nothing else
$b->get("$url-denied");

like($b->wait_for(<<'JS', 10), qr/403/, 'denied metrics: error shown');
    var p = document.getElementById('poll');
    return /error/.test(p.className) && p.textContent;
JS

$text = $b->js('return document.body.innerText');
ok(index($text, $PEER1) < 0 && index($text, 'localhost') < 0
	&& index($text, 'cache') < 0, 'denied metrics: no series shown');

$_->close() for @ws;
undef $b;

###############################################################################

# the "requests" cell of a server and path of the HTTP table, in c

sub requests_js {
	my ($server, $path) = @_;
	return sprintf(<<'JS', $server, $path);
    var c = null, rows = document.querySelectorAll('#http tbody tr');
    for (var i = 0; i < rows.length; i++) {
        var td = rows[i].cells;
        if (td[0].textContent === '%s' && td[1].textContent === '%s') {
            c = td[8].textContent.replace(/,/g, '');
        }
    }
JS
}

###############################################################################
