#!/usr/bin/perl

# A short pass over everything the module does, run by make test-matrix
# against nginx and Angie built from each source tree (RAILGUN_NGINX,
# RAILGUN_MODULE), and by make test against Debian's nginx: the module
# loads and says what it runs in (railgun_build_info against nginx -V), a
# request, a proxied request with the upstream families, a WebSocket
# session, an HTTP/2 request, scrapes through promtool (text and
# OpenMetrics), a probe of a real Redis, a probe of a name (its target
# label as written), a checked upstream with a dead peer and the gate,
# stub_status' families exactly when nginx has it, and a reload that keeps
# the counters.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;
use Test::Railgun::WebSocket;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->has_daemon('curl')
	->has_daemon($Test::Railgun::Gate::REDIS);

# what runs: "nginx version: nginx/1.28.3", "Angie version: Angie/1.12.1"
my $V = `$Test::Railgun::NGINX -V 2>&1` // '';
my ($software, $version) = $V =~ m!version: (\w+)/(\d+\.\d+\.\d+)!
	or BAIL_OUT("can't run $Test::Railgun::NGINX -V: $V");
$software = lc $software;

# Angie -V also prints the nginx version it is based on
my ($nginx_version) = $V =~ m!^nginx version: \w+/(\d+\.\d+\.\d+)!m;
$nginx_version //= $version;

sub vnum { my @v = split /\./, $_[0]; $v[0] * 1000000 + $v[1] * 1000 + $v[2] }

# "http2 on" from 1.25.1 (Angie follows nginx); "listen ... http2" before
my ($h2_listen, $h2_on) = vnum($nginx_version) >= vnum('1.25.1')
	? ('', 'http2 on;') : (' http2', '');

my $stub = $V =~ /--with-http_stub_status_module/;

$t->plan(33)->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe cache redis://127.0.0.1:%%PORT_8090%%
                  interval=200ms timeout=150ms rise=1 fall=1;
    railgun_probe named http://localhost:%%PORT_8081%%/health
                  interval=200ms timeout=150ms rise=1 fall=1;

    upstream api {
        railgun_check uri=/health interval=200ms timeout=150ms rise=1 fall=1;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8089%%;
    }

    upstream ws_up {
        server 127.0.0.1:%%PORT_8082%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /ready {
            railgun_gate cache api;
        }

        location / {
            return 200 "hello\\n";
        }

        location /api/ {
            proxy_pass http://api;
        }

        location /ws {
            proxy_pass http://ws_up;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%$h2_listen;
        server_name  h2;
        $h2_on

        location / {
            return 200 "over h2\\n";
        }
    }
}

EOF

my $dead = $t->refused_port(8089);
my $b1 = backend($t, 8081, 'b1');
my $redis = redis($t, 8090);
ws_backend($t, 8082);

$t->run();

###############################################################################

my $DEAD = "127.0.0.1:$dead";
my $REQS = 'railgun_http_requests_total';

# loaded, and says what it runs in

my $m = $t->metrics();

is($m->{status}, 200, 'scrape through promtool');

my ($bi) = series($m, 'railgun_build_info', {});
is($bi && $bi->{labels}{nginx_version}, $nginx_version,
	"build info: nginx_version $nginx_version");
is($bi && $bi->{labels}{software}, $software, "build info: $software");
is($bi && $bi->{labels}{software_version}, $version,
	"build info: software_version $version");

# stub_status' families exactly when nginx counts them

is(scalar series($m, 'railgun_nginx_connections', {}), $stub ? 4 : 0,
	'connection states ' . ($stub ? 'with' : 'without') . ' stub_status');

# a request

like(http_get('/'), qr!^HTTP/1\.1 200 .*hello!s, 'request');

# the Redis probe and the checks: the dead peer goes down, b1 stays up

my $s = wait_for(10, sub {
	my $s = scrape_quick($t);
	(peer_up($s, 'api', $DEAD) // 1) == 0
		&& (Test::Railgun::sample($s, 'railgun_probe_up',
			{ probe => 'cache' }) // 0) == 1
		&& (Test::Railgun::sample($s, 'railgun_probe_up',
			{ probe => 'named' }) // 0) == 1
		&& $s;
});

is(peer_up($s, 'api', $b1), 1, 'checked peer up');
is(peer_up($s, 'api', $DEAD), 0, 'dead peer down');
ok(checks($s, 'api', $DEAD, 'refused') > 0, 'dead peer: refused checks');
is(sample($s, 'railgun_probe_up', { probe => 'cache',
	target => "127.0.0.1:" . port(8090) }), 1, 'redis probe up');
is(sample($s, 'railgun_probe_up', { probe => 'named' }) // 0, 1,
	'probe of a name up');
is(scalar series($s, 'railgun_probe_up', { probe => 'named',
	target => 'localhost:' . port(8081) }), 1,
	'target label: the name as written');
ok((sample($s, 'railgun_redis_memory_used_bytes', { probe => 'cache' })
	// 0) > 0, 'redis memory read');

# the gate: "STATUS BODY" with the body's end of line dropped

sub g {
	my ($status, undef, $body) = gate('/ready');
	$body = $body // '';
	$body =~ s/\r?\n\z//;
	return ($status // 'none') . " $body";
}

is(g(), '200 {"status":"ready","cache":true,"api":true}', 'gate ready');

# proxied requests: all to b1, counted per peer as the access log has them

my $before = sample($s, 'railgun_upstream_requests_total',
	{ upstream => 'api', peer => $b1->{addr}, status => '200' }) // 0;

my $ok = grep { http_get("/api/$_") =~ m!^HTTP/1\.1 200 .*^b1$!ms } 1 .. 5;
is($ok, 5, 'proxied requests answered by b1');

my $logged = () = $t->read_file('access.log')
	=~ m!"GET /api/\d HTTP/1\.0" 200 .* "\Q$b1->{addr}\E" "200"$!mg;
is($logged, 5, 'access log: 5 to b1');

$m = $t->metrics();
is(sample($m, 'railgun_upstream_requests_total',
	{ upstream => 'api', peer => $b1->{addr}, status => '200' }) - $before,
	$logged, 'upstream requests counted');
is(sample($m, 'railgun_upstream_response_duration_seconds_count',
	{ upstream => 'api', peer => $b1->{addr} }) >= $logged, 1,
	'upstream response time observed');
is(sample($m, $REQS, { server => 'localhost', path => '/api/',
	method => 'GET', status => '200' }), 5, 'requests counted');

# a WebSocket session: one message each way, then closed

my %WS = (server => 'localhost', path => '/ws');

my $ws = ws_connect(path => '/ws');
is($ws->status, 101, 'websocket upgraded');
$ws->text('ping me');
is(($ws->read_message() || {})->{payload}, 'ping me', 'websocket echo');
$ws->close_ws();

$m = wait_metrics($t, sub { ws_stats($_[0], \%WS)->{duration_count} == 1 });
my $w = ws_stats($m, \%WS);
is(join(' ', @$w{qw/ active duration_count in_messages out_messages /}),
	'0 1 1 1', 'websocket session: closed, timed, 1 message each way');

# HTTP/2 (prior knowledge over plain TCP)

my $port = port(8083);
my $h2 = `curl -sS --max-time 10 --http2-prior-knowledge -w ' %{http_version}' http://127.0.0.1:$port/h2 2>&1`;
is($h2, "over h2\n 2", 'http/2 request');

$m = $t->metrics(accept => 'application/openmetrics-text');
is($m->{format}, 'openmetrics', 'openmetrics scrape through promtool');
is(sample($m, $REQS, { server => 'h2', path => '/', method => 'GET',
	status => '200' }), 1, 'http/2 request counted');

# Redis goes away: the probe and the gate see it; the dead peer keeps the
# gate's upstream at one healthy peer

$redis->stop();

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	(Test::Railgun::sample($s, 'railgun_probe_up', { probe => 'cache' })
		// 1) == 0 && $s;
});
ok($s, 'redis probe down');

is(g(), '503 {"status":"unavailable","cache":false,"api":true}',
	'gate unavailable');

# a reload keeps counters and probe state

my $start = sample($m, 'railgun_start_time_seconds', {});
my $reqs = sample($m, $REQS, { server => 'localhost', path => '/api/',
	method => 'GET', status => '200' });

ok($t->reload(), 'reloaded');

$m = $t->metrics();
is(sample($m, 'railgun_start_time_seconds', {}), $start,
	'reload: same start time');
is(sample($m, $REQS, { server => 'localhost', path => '/api/',
	method => 'GET', status => '200' }), $reqs, 'reload: counters kept');
is(sample($m, 'railgun_probe_up', { probe => 'cache' }), 0,
	'reload: probe state kept');
is(sample($m, 'railgun_upstream_peer_up', { upstream => 'api',
	peer => $DEAD }), 0, 'reload: peer state kept');

like(http_get('/api/x'), qr!^HTTP/1\.1 200 .*^b1$!ms,
	'proxied after reload');

###############################################################################
