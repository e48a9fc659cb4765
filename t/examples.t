#!/usr/bin/perl

# Tests for conf-examples/ with the real tools: every nginx configuration
# passes "nginx -t" with the module built here (paths of logs, pid and the
# module rewritten to the test's, addresses kept), prometheus.yml passes
# "promtool check config", the alert rules pass "promtool check rules" and
# their unit tests ("promtool test rules"), every alert has a unit test,
# the examples agree with each other (job name, metrics port), and the
# Grafana dashboard imports (a data source input used everywhere, current
# panel types), is well-formed and covers what operators watch.
# t/ecosystem.t runs all of it against a real Prometheus.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use JSON::PP ();

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(47);

my $EX = "$Test::Railgun::REPO/conf-examples";

sub slurp {
	my ($file) = @_;
	open my $fh, '<', $file or die "can't open $file: $!";
	local $/;
	return scalar <$fh>;
}

# the example's own load_module, pid, error_log and access_log become the
# test's (module built here, files in the test directory)

sub for_test {
	my ($conf, $name) = @_;

	$conf =~ s!^load_module\s+\S+;!%%TEST_GLOBALS%%!m
		or die "$name: no load_module line\n";
	$conf =~ s!^(pid|error_log)\s+.*$!# ($1 of the example)!mg;
	$conf =~ s!^(\s*)access_log\s+/var/log/nginx/access\.log;!$1%%TEST_GLOBALS_HTTP%%!m;

	return $conf;
}

sub nginx_t_ok {
	my ($conf, $name) = @_;

	my ($rc, $out) = $t->nginx_t($conf);
	is($rc, 0, "$name: nginx -t") or diag($out);
	unlike($out, qr/\[(?:emerg|alert|crit|error|warn)\]/,
		"$name: nginx -t without warnings") or diag($out);
}

sub run {
	my (@cmd) = @_;
	my $out = `@cmd 2>&1`;
	return ($? >> 8, $out);
}

###############################################################################

# nginx configurations

my $api = slurp("$EX/api-proxy.conf");

nginx_t_ok(for_test($api, 'api-proxy.conf'), 'api-proxy.conf');
nginx_t_ok(for_test(slurp("$EX/minimal.conf"), 'minimal.conf'),
	'minimal.conf');

like($api, qr/^\s*railgun_check\s/m, 'api-proxy.conf: railgun_check');
like($api, qr/^\s*railgun_probe\s+\S+\s+redis:/m,
	'api-proxy.conf: a Redis probe');
like($api, qr!location = /api/v1/health/ready \{[^}]*railgun_gate!s,
	'api-proxy.conf: readiness through the gate');
like($api, qr!location = /api/v1/health/live \{[^}]*return 200!s,
	'api-proxy.conf: liveness is a plain 200');
like($api, qr!location = /metrics \{[^}]*allow[^}]*deny\s+all;!s,
	'api-proxy.conf: metrics restricted with allow/deny');
like($api, qr!proxy_set_header\s+Upgrade\s+\$http_upgrade!,
	'api-proxy.conf: a WebSocket location');

# the demo's template, every @PLACEHOLDER@ filled in as demo start does

my $demo = slurp("$EX/demo/nginx.conf");
my $run = $t->testdir() . '/demo';
mkdir $run;
mkdir "$run/tmp";

my $n = 9000;
my %seen;
$demo =~ s{\@([A-Z][A-Z0-9_]*)\@}{
	$1 eq 'MODULE' ? $Test::Railgun::MODULE
	: $1 eq 'RUN' ? $run
	: ($seen{$1} ||= port(++$n))
}ge;

nginx_t_ok($demo, 'demo/nginx.conf');

###############################################################################

# Prometheus: configuration, rules, their unit tests

my ($rc, $out) = run('promtool', 'check', 'config', "$EX/prometheus.yml");
is($rc, 0, 'promtool check config prometheus.yml') or diag($out);
like($out, qr/1 rule files found/, 'prometheus.yml loads the rules');

($rc, $out) = run('promtool', 'check', 'rules', "$EX/railgun-alerts.yml");
is($rc, 0, 'promtool check rules railgun-alerts.yml') or diag($out);

($rc, $out) = run('promtool', 'test', 'rules',
	"$EX/railgun-alerts.test.yml");
is($rc, 0, 'promtool test rules railgun-alerts.test.yml') or diag($out);
like($out, qr/SUCCESS/, 'alert unit tests pass');

my $rules = slurp("$EX/railgun-alerts.yml");
my $tests = slurp("$EX/railgun-alerts.test.yml");
my @alerts = $rules =~ /^\s*- alert:\s*(\S+)/mg;

# every alert has a case where it fires (a non-empty exp_alerts)
my %fires;
while ($tests =~ /alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels/g)
{
	$fires{$1} = 1;
}
my @untested = grep { !$fires{$_} } @alerts;
ok(@alerts >= 7 && !@untested, scalar(@alerts) . ' alerts, each with a '
	. 'unit test where it fires') or diag("untested: @untested");

for my $a (qw/ RailgunHigh5xxRate RailgunSlowP95 RailgunRedisDown
	RailgunRedisMemoryHigh RailgunUpstreamPeerDown
	RailgunWebSocketSessionsDropping RailgunSeriesDropped /)
{
	ok((grep { $_ eq $a } @alerts), "alert $a");
}

# the examples agree: the job the rules name, the metrics port

my $prom = slurp("$EX/prometheus.yml");
my ($job) = $prom =~ /^\s*- job_name:\s*(\S+)/m;
my ($mport) = $api =~ /listen\s+(\d+);\s*\n\s*server_name\s+metrics;/;

like($rules, qr/up\{job="\Q$job\E"\}/, "the rules name the job $job");
like($prom, qr/^\s*- \S+:\Q$mport\E$/m,
	"prometheus.yml scrapes the metrics port $mport");

###############################################################################

# Grafana dashboard

my $dash = eval { JSON::PP->new->decode(
	slurp("$EX/grafana-dashboard.json")) };
ok($dash, 'grafana-dashboard.json is JSON') or diag($@);
$dash ||= {};

# Import asks for the data source: one input, ${DS_PROMETHEUS} in every
# panel, target and variable query, and no other ${...} than the inputs
# and the variables declared

my @inputs = @{$dash->{__inputs} || []};
is(join(' ', map { "$_->{name}:$_->{type}:$_->{pluginId}" } @inputs),
	'DS_PROMETHEUS:datasource:prometheus',
	'dashboard: a Prometheus data source input for the import');

my @vars = @{$dash->{templating}{list} || []};
my %declared = map { $_->{name} => 1 } @vars, @inputs;
my @undeclared = grep { !$declared{$_} }
	slurp("$EX/grafana-dashboard.json") =~ /\$\{([A-Za-z_]\w*)[}:]/g;
ok(!@undeclared, 'dashboard: every ${...} is an input or a variable')
	or diag("undeclared: @undeclared");

my @ds = map { "variable $_->{name}" } grep {
	$_->{type} eq 'query'
		&& ($_->{datasource}{uid} || '') ne '${DS_PROMETHEUS}'
} @vars;
ok(!@ds, 'dashboard: variable queries on ${DS_PROMETHEUS}')
	or diag("@ds");

# current panel types only (Grafana dropped graph, singlestat, table-old);
# every one of them required, with the data source plugin

my @all = map { ($_, @{$_->{panels} || []}) } @{$dash->{panels} || []};
my %current = map { $_ => 1 } qw/ row timeseries stat table gauge
	state-timeline bargauge text /;
my @old = map { "$_->{title}: $_->{type}" }
	grep { !$current{$_->{type}} } @all;
ok(!@old, 'dashboard: current panel types only') or diag(join "\n", @old);

my %required = map { ($_->{type} eq 'panel' ? $_->{id} : "$_->{type}:$_->{id}")
	=> 1 } @{$dash->{__requires} || []};
my @missing = grep { !$required{$_} } 'datasource:prometheus',
	sort keys %{{ map { $_->{type} => 1 } @all }};
ok(!@missing, 'dashboard: __requires lists the data source and every '
	. 'panel type') or diag("missing: @missing");

# a table shows one row per series now, not a range of frames
my @tables = map { $_->{title} } grep { $_->{type} eq 'table'
	&& grep { !$_->{instant} || ($_->{format} // '') ne 'table' }
		@{$_->{targets} || []} } @all;
ok(!@tables, 'dashboard: tables query instant tables') or diag("@tables");

my @panels = grep { $_->{type} ne 'row' } @all;
my @exprs = map { $_->{expr} } map { @{$_->{targets} || []} } @panels;

my (%ids, @bad);
for my $p (@all) {
	push @bad, "panel id $p->{id} twice" if $ids{$p->{id}}++;
	my $g = $p->{gridPos} || {};
	push @bad, "$p->{title}: gridPos" unless defined $g->{w}
		&& $g->{x} + $g->{w} <= 24 && $g->{h} > 0;
	next if $p->{type} eq 'row';
	push @bad, "$p->{title}: no targets" unless @{$p->{targets} || []};
	for my $x ($p, @{$p->{targets} || []}) {
		push @bad, "$p->{title}: data source not \${DS_PROMETHEUS}"
			unless ($x->{datasource}{uid} || '') eq '${DS_PROMETHEUS}'
				&& $x->{datasource}{type} eq 'prometheus';
	}
	for my $e (map { $_->{expr} } @{$p->{targets} || []}) {
		push @bad, "$p->{title}: expression without \$job: $e"
			unless $e =~ /job=~"\$job"/;
	}
}
ok(@panels >= 10 && !@bad, scalar(@panels) . ' panels, '
	. scalar(@exprs) . ' expressions, all well-formed')
	or diag(join "\n", @bad);

my %want = (
	'request rate' => qr/rate\(railgun_http_requests_total\{/,
	'error ratio' => qr/status=~"5\.\."\}.*\/\s*sum/s,
	'p50' => qr/histogram_quantile\(0\.5, .*railgun_http_request_duration_seconds_bucket/,
	'p95' => qr/histogram_quantile\(0\.95, .*railgun_http_request_duration_seconds_bucket/,
	'p99' => qr/histogram_quantile\(0\.99, .*railgun_http_request_duration_seconds_bucket/,
	'active WebSocket sessions' => qr/sum by \(server, path\) \(railgun_websocket_connections\{/,
	'messages per second' => qr/rate\(railgun_websocket_messages_total\{/,
	'probe states' => qr/railgun_probe_up\{/,
	'Redis memory' => qr/railgun_redis_memory_used_bytes\{/,
	'upstream peers' => qr/railgun_upstream_peer_up\{/,
	'native histograms, classic where none' => qr/histogram_quantile\(0\.99, sum\(rate\(\{__name__="railgun_http_request_duration_seconds",.*\bor histogram_quantile\(0\.99, sum by \(le\) \(rate\(railgun_http_request_duration_seconds_bucket\{/,
);

for my $what (sort keys %want) {
	ok((grep { $_ =~ $want{$what} } @exprs), "dashboard: $what");
}

# railgun_exemplar's points on the p99 latency, where Prometheus has them
ok((grep { $_->{exemplar} && $_->{expr} =~ $want{p99} }
	map { @{$_->{targets} || []} } @panels),
	'dashboard: p99 latency with exemplars');

###############################################################################
