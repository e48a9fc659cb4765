#!/usr/bin/perl

# The examples with the real ecosystem: conf-examples/api-proxy.conf runs as
# it is, only its addresses, paths and intervals rewritten to the test's
# (two API instances, a real Redis, a WebSocket backend and client); a real
# Prometheus (Debian's) scrapes it with the job of conf-examples/prometheus.yml
# and loads conf-examples/railgun-alerts.yml; then, through Prometheus' HTTP
# API: the request counter, histogram_quantile over the request histogram,
# the probe and peer states, the Redis gauges and the WebSocket families, in
# both exposition formats; every rule evaluates without error; every
# expression of the Grafana dashboard evaluates without error; every name
# they use exists.
#
# Both formats: Prometheus 2.42 always asks for OpenMetrics first
# (scrape_protocols, to choose, came in 2.49), so the example job gets
# OpenMetrics; a second job scrapes the same metrics through an nginx
# location that sets "Accept: text/plain;version=0.0.4" and gets the text
# format.  The Accept header and Content-Type of every scrape are logged and
# checked, so each job is proven to have used the format it claims.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Prometheus qw/ wait_for /;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

plan(skip_all => 'Protocol::WebSocket missing (Debian: '
	. 'libprotocol-websocket-perl)')
	unless eval { require Protocol::WebSocket::Frame; 1 };

my $t = Test::Railgun->new()->has_daemon('prometheus')
	->has_daemon('promtool')->has_daemon('redis-server');

my $EX = "$Test::Railgun::REPO/conf-examples";
my $D = $t->testdir();

my $JOB = 'nginx-railgun';          # the example's job: OpenMetrics
my $TEXT = 'nginx-railgun-text';    # the same through Accept: text/plain

sub slurp {
	my ($file) = @_;
	open my $fh, '<', $file or die "can't open $file: $!";
	local $/;
	return scalar <$fh>;
}

# s/// that must match: the example changed, so must this test

sub rewrite {
	my ($text, $name, @rules) = @_;

	while (my ($re, $to) = splice @rules, 0, 2) {
		my $n = ref $to ? ($text =~ s/$re/$to->()/ge)
			: ($text =~ s/$re/$to/g);
		$n
			or BAIL_OUT("$name: no match for $re: was the example "
				. 'changed? update t/ecosystem.t');
	}

	return $text;
}

###############################################################################

# nginx: conf-examples/api-proxy.conf with test addresses and paths

my $conf = rewrite(slurp("$EX/api-proxy.conf"), 'api-proxy.conf',
	qr/^load_module\s+\S+;/m => '%%TEST_GLOBALS%%',
	qr/^(?:user|pid|error_log)\s.*\n/m => '',
	qr/^worker_processes\s+auto;/m => 'worker_processes 2;',
	qr!^(\s*)access_log\s+/var/log/nginx/access\.log;!m => sub {
		"$1%%TEST_GLOBALS_HTTP%%\n"
		. "$1log_format scrape '\$http_accept|\$sent_http_content_type';" },
	qr/\blisten\s+80;/ => 'listen 127.0.0.1:%%PORT_8080%%;',
	qr/\blisten\s+9145;/ => 'listen 127.0.0.1:%%PORT_8081%%;',
	qr/10\.0\.0\.11:8000/ => '127.0.0.1:%%PORT_8082%%',
	qr/10\.0\.0\.12:8000/ => '127.0.0.1:%%PORT_8083%%',
	qr/10\.0\.0\.21:6379/ => '127.0.0.1:%%PORT_8084%%',
	qr/\binterval=2s\b/ => 'interval=1s',
	qr/\btimeout=1s\b/ => 'timeout=500ms',
	# the WebSocket location: to the test's WebSocket backend
	qr!(location /api/v1/stream \{\s*proxy_pass\s+)http://api_backend;! =>
		sub { "${1}http://127.0.0.1:%%PORT_8085%%;" },
	# log the negotiation of every scrape
	qr!(location = /metrics \{.*?)access_log\s+off;!s =>
		sub { "${1}access_log $D/scrape.log scrape;" },
	# an upstream with no live server, for railgun_upstream_no_live_peers_total
	qr/^(\s*)upstream api_backend \{/m => sub {
		"${1}upstream gone { server 127.0.0.1:%%PORT_8087%% down; }\n$&" },
	qr!(\n(\s*)location = /api/v1/health \{)! =>
		sub { "\n$2location = /api/v1/gone { proxy_pass http://gone; }\n$1" },
	# the text-format job's way in
	qr!(\n(\s*)location / \{\s*railgun\s+off;\s*return\s+404;)! =>
		sub { "\n$2location = /metrics-text {\n"
		. "$2    railgun off;\n"
		. "$2    proxy_pass http://127.0.0.1:%%PORT_8081%%/metrics;\n"
		. "$2    proxy_set_header Accept \"text/plain;version=0.0.4\";\n"
		. "$2}\n$1" });

$t->write_file_expand('nginx.conf', $conf);

# the two API instances: /api/v1/slow takes 35 ms, /api/v1/fail is a 500

my $api = sub {
	my ($method, $uri) = @_;
	if ($uri =~ m!^/api/v1/slow!) {
		sleep 0.035;
		return (200, "slow\n");
	}
	return (500, "failed\n") if $uri =~ m!^/api/v1/fail!;
	return;
};

$t->http_backend(8082, handler => $api);
$t->http_backend(8083, handler => $api);

$t->run_daemon(['redis-server', '--port', port(8084), '--bind', '127.0.0.1',
	'--save', '', '--appendonly', 'no', '--maxmemory', '64mb']);
$t->run_daemon(['perl', "$EX/demo/ws-echo.pl", '--port', port(8085),
	'--tick', '0.5', '--foreground']);
waitforsocket('127.0.0.1:' . port(8084)) or die "no redis\n";
waitforsocket('127.0.0.1:' . port(8085)) or die "no websocket backend\n";

$t->plan(41);
$t->run();

###############################################################################

# the example works as it says, before Prometheus looks

my $s = wait_scrape(sub {
	(sample($_[0], 'railgun_probe_up', { probe => 'cache' }) // 0) == 1
}, 'railgun_probe_up{probe="cache"} 1: the Redis probe is up');

is(sample_sum($s, 'railgun_upstream_peer_up', { upstream => 'api_backend' }),
	2, 'both API instances pass railgun_check');

my $r = http_get('/api/v1/health/ready');
is(http_status($r), 200, 'ready: 200');
like(http_body($r), qr/^\{"status":"ready","api_backend":true,"cache":true\}/,
	'ready: the gate names the upstream and the probe');
is(http_status(http_get('/api/v1/health/live')), 200, 'live: 200');

# a WebSocket session kept open through nginx while Prometheus scrapes

# (not a run_daemon: it must end before nginx, whose graceful stop waits for
# open sessions)

my $client = fork() // die "fork: $!";
if ($client == 0) {
	open STDERR, '>>', "$D/ws-client.log";
	exec('perl', "$EX/demo/ws-client.pl", '--url',
		'ws://127.0.0.1:' . port(8080) . '/api/v1/stream',
		'--sessions', '1', '--every', '0.2', '--foreground')
		or POSIX::_exit(127);
}

END { if ($client) { kill 'TERM', $client; waitpid($client, 0) } }

wait_scrape(sub {
	(sample_sum($_[0], 'railgun_websocket_messages_total',
		{ direction => 'in' }) // 0) > 0
}, 'a WebSocket session open, messages counted');

# requests: 20 fast, 10 slow (35 ms), 4 failing, all through /api/

my %got;
$got{http_status(http_get('/api/v1/users'))}++ for 1 .. 20;
$got{http_status(http_get('/api/v1/slow'))}++ for 1 .. 10;
$got{http_status(http_get('/api/v1/fail'))}++ for 1 .. 4;
is(join(' ', map { "$_ x$got{$_}" } sort keys %got), '200 x30 500 x4',
	'requests through the example');
is(http_status(http_get('/api/v1/gone')), 502, 'no live upstreams: 502');

###############################################################################

# Prometheus with the example's job and rules

my $yml = rewrite(slurp("$EX/prometheus.yml"), 'prometheus.yml',
	qr/\b(scrape_interval|evaluation_interval):\s*15s/ => sub { "$1: 1s" },
	qr/\bscrape_timeout:\s*5s/ => 'scrape_timeout: 1s',
	qr/^(\s*)- railgun-alerts\.yml$/m => sub { "$1- $EX/railgun-alerts.yml" },
	qr/^(\s*)- api-gw-1\.example\.com:9145$/m =>
		sub { "$1- 127.0.0.1:" . port(8081) },
	qr/^\s*- api-gw-2\.example\.com:9145\n/m => '');

like($yml, qr/^\s*- job_name:\s*\Q$JOB\E$/m, "the example job is $JOB");

$yml .= <<"EOF";

  - job_name: $TEXT
    metrics_path: /metrics-text
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:${\ port(8081)}']
EOF

my $prom = Test::Railgun::Prometheus->start($t, port => 8086,
	config => $yml);

ok($prom->ready, 'prometheus is ready');

for my $job ($JOB, $TEXT) {
	is($prom->wait_query("sum(railgun_http_requests_total{job=\"$job\","
		. 'path="/api/"})', 34), 34, "$job: the request counter");
}

# rate() needs two samples in its window, the dashboard's rates three

for my $job ($JOB, $TEXT) {
	ok(wait_for(20, sub {
		($prom->query1_quiet('min(count_over_time('
			. "railgun_http_requests_total{job=\"$job\","
			. 'path="/api/"}[1m]))') // 0) >= 3
	}, 0.2), "$job: scraped 3 times");
}

# which format each job got, from nginx's log of the scrapes

my (%accept, %ctype);
for (split /\n/, $t->read_file('scrape.log')) {
	my ($a, $c) = split /\|/;
	# no Accept: the test's own scrapes
	my $kind = $a =~ /openmetrics/ ? $JOB
		: $a =~ m!^text/plain;version! ? $TEXT : next;
	$accept{$kind} ||= $a;
	$ctype{$kind}{$c}++;
}

like($accept{$JOB} // '', qr!^application/openmetrics-text!,
	"$JOB: Prometheus asks for OpenMetrics first");
is(join(',', keys %{$ctype{$JOB} || {}}),
	'application/openmetrics-text; version=1.0.0; charset=utf-8',
	"$JOB: every scrape answered in OpenMetrics");
is(join(',', keys %{$ctype{$TEXT} || {}}),
	'text/plain; version=0.0.4; charset=utf-8',
	"$TEXT: every scrape answered in the text format 0.0.4");

my $targets = $prom->api('/api/v1/targets');
for my $job ($JOB, $TEXT) {
	my ($tg) = grep { $_->{labels}{job} eq $job }
		@{$targets->{data}{activeTargets} || []};
	is(($tg->{health} // 'none') . ' ' . ($tg->{lastError} // ''),
		'up ', "$job: target up, no scrape error");
}

for my $job ($JOB, $TEXT) {
	my $sel = "job=\"$job\",path=\"/api/\"";

	is($prom->query1(
		"sum(railgun_http_requests_total{$sel,status=\"500\"})"),
		4, "$job: 5xx by status");

	my $q90 = $prom->query1('histogram_quantile(0.9, sum by (le) '
		. "(railgun_http_request_duration_seconds_bucket{$sel}))");
	ok(defined $q90 && $q90 > 0.025 && $q90 <= 0.1,
		"$job: histogram_quantile p90 among the 35 ms requests")
		or diag("p90 $q90");

	my $q50 = $prom->query1('histogram_quantile(0.5, sum by (le) '
		. "(railgun_http_request_duration_seconds_bucket{$sel}))");
	ok(defined $q50 && $q50 < 0.025,
		"$job: histogram_quantile p50 below 25 ms")
		or diag("p50 $q50");

	is($prom->query1("railgun_probe_up{job=\"$job\",probe=\"cache\"}"), 1,
		"$job: probe state");
	is($prom->query1("sum(railgun_upstream_peer_up{job=\"$job\"})"), 2,
		"$job: peer states");
	is($prom->query1("railgun_redis_memory_max_bytes{job=\"$job\"}"),
		67108864, "$job: Redis maxmemory");
	is($prom->query1("sum(railgun_websocket_connections{job=\"$job\"})"), 1,
		"$job: WebSocket sessions open");
	is($prom->query1('sum(railgun_websocket_connections_opened_total'
		. "{job=\"$job\"})"), 1, "$job: WebSocket sessions opened");
}

###############################################################################

# stop the WebSocket client now: nginx's graceful stop waits for sessions

kill 'TERM', $client;
waitpid($client, 0);
$client = 0;

###############################################################################

# the alert rules, as Prometheus evaluates them

ok(wait_for(10, sub {
	my $g = $prom->api('/api/v1/rules')->{data}{groups} || [];
	my @r = map { @{$_->{rules}} } @$g;
	@r && !grep { !$_->{lastEvaluation}
		|| $_->{lastEvaluation} =~ /^0001/ } @r;
}, 0.2), 'every rule evaluated');

my @rules = map { @{$_->{rules}} }
	@{$prom->api('/api/v1/rules')->{data}{groups} || []};
my @bad = map { "$_->{name}: $_->{health} $_->{lastError}" }
	grep { $_->{health} ne 'ok' } @rules;
ok(@rules >= 7 && !@bad, scalar(@rules) . ' rules loaded, all healthy')
	or diag(join "\n", @bad);

# the Grafana dashboard: every expression (and variable query) evaluates

my $dash = JSON::PP->new->decode(slurp("$EX/grafana-dashboard.json"));

my (@exprs, @failed, @empty);
for my $p (@{$dash->{panels}}) {
	push @exprs, map { [ $p->{title}, $_->{expr} ] }
		@{$p->{targets} || []};
}
for my $v (@{$dash->{templating}{list}}) {
	next unless $v->{type} eq 'query';
	# label_values(METRIC, LABEL) is Grafana's, not PromQL
	my ($m, $l) = $v->{definition} =~ /^label_values\((.*),\s*(\w+)\)$/;
	push @exprs, [ "variable $v->{name}", "group by ($l) ($m)" ];
}

for my $e (@exprs) {
	my ($title, $expr) = @$e;

	$expr =~ s/\$__rate_interval/1m/g;
	$expr =~ s/\$(job|instance|server)\b/.*/g;

	my $res = $prom->query($expr);

	if (($res->{status} // '') ne 'success') {
		push @failed, "$title: $expr: " . ($res->{error} // 'no answer');
		next;
	}

	# "> 0" panels show only what is wrong: empty when all is well
	push @empty, "$title: $expr"
		if !@{$res->{data}{result}} && $expr !~ /> 0\s*$/;
}

ok(@exprs >= 30 && !@failed, scalar(@exprs) . ' dashboard expressions '
	. 'evaluate without error') or diag(join "\n", @failed);
ok(!@empty, 'every dashboard expression has data')
	or diag(join "\n", @empty);

# every metric name the dashboard and the rules use exists in Prometheus

my %names = map { $_ => 1 }
	@{$prom->api('/api/v1/label/__name__/values')->{data}};
my %used;
$used{$_} = 1 for map { $_->[1] =~ /\b(railgun_[a-z_]+)\b(?!")/g } @exprs;
$used{$_} = 1 for map { $_->{query} =~ /\b(railgun_[a-z_]+)\b(?!")/g }
	@rules;
my @unknown = grep { !$names{$_} } sort keys %used;
ok(keys %used > 20 && !@unknown, scalar(keys %used) . ' metric names used '
	. 'by the dashboard and the rules, all known to Prometheus')
	or diag("unknown: @unknown");

# every family of a scrape is in docs/metrics.md, and back

$s = $t->metrics(port => 8081);
my %fam = map { $_ => 1 } keys %{$s->{families}};
my $doc = slurp("$Test::Railgun::REPO/docs/metrics.md");
my %doc = map { $_ => 1 } $doc =~ /^\| \[?`(railgun_[a-z_]+)`/mg;
my @undoc = grep { !$doc{$_} } sort keys %fam;
my @gone = grep { !$fam{$_} } sort keys %doc;
ok(keys %fam > 20 && !@undoc && !@gone, scalar(keys %fam) . ' families, '
	. 'each in the table of docs/metrics.md and none more')
	or diag("undocumented: @undoc; documented, not exported: @gone");

###############################################################################

sub wait_scrape {
	my ($code, $name) = @_;
	my $deadline = time() + 15;
	my $s;
	while (time() < $deadline) {
		$s = $t->metrics(port => 8081);
		last if $code->($s);
		sleep 0.3;
	}
	ok($code->($s), $name);
	return $s;
}

###############################################################################
