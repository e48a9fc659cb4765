#!/usr/bin/perl

# Native histograms with a real Prometheus (Debian's 2.42):
#
# - one started with --enable-feature=native-histograms asks for protobuf
#   (nginx's log of its Accept and of the Content-Type it got says so),
#   ingests the native histograms, and histogram_quantile(0.5, ...) over
#   them matches the latency of backends answering after 50 and 400 ms
#   within the resolution of schema 3 (a bucket is 2^(1/8), 9 %, wide);
#   histogram_count() is the client's count of requests;
# - it ingests every one of 10,000 series of a family that the protobuf
#   body carries in many messages;
# - one without the feature gets OpenMetrics and the classic buckets, and
#   its histogram_quantile over _bucket also holds the latency.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Prometheus qw/ wait_for /;

use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('prometheus')
	->has_daemon('promtool');

my $D = $t->testdir();

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_zone 64m;
    railgun_max_series 20000;
    railgun_native_histograms on;

    log_format scrape '\$http_accept|\$sent_http_content_type';

    upstream backend {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        keepalive_requests 100000;

        location /fast/ {
            railgun_path /fast;
            railgun_exemplar \$request_id;
            proxy_pass http://backend/delay/50;
        }

        location /slow/ {
            railgun_path /slow;
            proxy_pass http://backend/delay/400;
        }

        location /many/ {
            railgun_path \$uri;
            railgun_native_histograms off;
            return 204;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8082%%;
        server_name  metrics;

        railgun off;

        location /metrics {
            access_log $D/scrape.log scrape;
            railgun_metrics;
        }
    }
}

EOF

$t->http_backend(8081);
$t->run();

$t->plan(22);

###############################################################################

# two Prometheus: with and without native histograms

# 10,000 series with their histograms take Prometheus a while to ingest,
# longer under the sanitizers
my $every = $ENV{RAILGUN_TEST_ASAN} || $ENV{RAILGUN_TEST_VALGRIND} ? 5 : 2;

my %prom;

for my $p (qw/ classic native /) {
	$prom{$p} = Test::Railgun::Prometheus->start($t,
		name => "prometheus-$p", port => $p eq 'native' ? 8086 : 8087,
		target => 8082, job => $p,
		interval => $every, wait => 30 * $every,
		features => $p eq 'native'
			? [ 'native-histograms', 'exemplar-storage' ] : []);
}

for my $p (sort keys %prom) {
	ok($prom{$p}->ready, "$p prometheus is ready");
}

# the known latencies, made while both scrape, and the client's brackets

my (@fast, @slow);

for (1 .. 20) {
	my ($r, undef, $b) = timed_get('/fast/');
	push @fast, [ 0.05, $b->[1] ] if http_status($r) == 200;
}

for (1 .. 10) {
	my ($r, undef, $b) = timed_get('/slow/');
	push @slow, [ 0.4, $b->[1] ] if http_status($r) == 200;
}

is(scalar(@fast) . ' ' . scalar(@slow), '20 10', 'requests answered');

my $sel = 'railgun_http_request_duration_seconds';

is($prom{native}->wait_query("histogram_count($sel\{path=\"/fast\"})", 20),
	20, 'native: histogram_count is the client\'s count');

# the quantiles, within a bucket of schema 3 around the brackets

my $step = 2**(1 / 8);

sub brackets {
	my ($d, $c) = (9**9**9, 0);
	for (@_) {
		$d = $_->[0] if $_->[0] < $d;
		$c = $_->[1] if $_->[1] > $c;
	}
	return ($d - $Test::Railgun::TIMING_SLACK,
		$c + $Test::Railgun::TIMING_SLACK);
}

for my $case ([ '/fast', \@fast ], [ '/slow', \@slow ]) {
	my ($path, $b) = @$case;
	my ($d, $c) = brackets(@$b);

	my $q = $prom{native}->query1(
		"histogram_quantile(0.5, $sel\{path=\"$path\"})");
	ok(defined $q && $q >= $d / $step && $q <= $c * $step,
		sprintf('native: median of %s %.4f in [%.4f, %.4f]', $path,
			$q // -1, $d / $step, $c * $step));
}

# rate() needs two scrapes of a series after it changed

wait_for(30 * $every, sub {
	my $res = $prom{native}->query(
		"histogram_count(rate($sel\{path=\"/slow\"}[1m]))");
	@{$res->{data}{result} || []} == 1;
}, 0.2);

my $q99 = $prom{native}->query1("histogram_quantile(0.99, sum($sel))");
my ($sd, $sc) = brackets(@slow);
ok(defined $q99 && $q99 >= $sd / $step && $q99 <= $sc * $step,
	sprintf('native: p99 of sum() %.4f, a slow request', $q99 // -1));

# the protobuf body's exemplars (Bucket.exemplar) do not upset the scrape:
# every scrape so far succeeded

is($prom{native}->query1('min_over_time(up[1m])'), 1,
	'native: every scrape ingested, exemplars in the body');

note('exemplars Prometheus 2.42 kept from protobuf: '
	. scalar(my @ex = $prom{native}->exemplars("${sel}_bucket",
		start => time() - 600, end => time() + 60)));

# the PromQL of docs/metrics.md evaluates, to a sample

for my $q ('histogram_quantile(0.99, sum by (path) '
		. "(rate($sel\[5m])))",
	"histogram_count(rate($sel\[5m]))",
	"histogram_sum(rate($sel\[5m])) / histogram_count(rate($sel\[5m]))",
	"1 - histogram_fraction(0, 0.25, sum(rate($sel\[5m])))")
{
	my $res = $prom{native}->query($q);
	ok(($res->{status} // '') eq 'success' && @{$res->{data}{result} || []},
		"docs: $q") or diag(JSON::PP->new->encode($res));
}

# the dashboard's native histogram panel: the native series where they
# are, the classic buckets where not

my ($panel) = grep { $_->{title} eq 'Request latency (native histograms)' }
	@{JSON::PP->new->decode(do {
		open my $fh, '<',
			"$Test::Railgun::REPO/conf-examples/grafana-dashboard.json"
			or die "dashboard: $!";
		local $/;
		<$fh>;
	})->{panels}};
my ($p99) = grep { $_->{legendFormat} eq 'p99' } @{$panel->{targets}};
my $dexpr = $p99->{expr};
$dexpr =~ s/\$__rate_interval/1m/g;
$dexpr =~ s/\$(job|instance|server)\b/.*/g;
(my $left = $dexpr) =~ s/ or .*//;

# the classic side's rate needs its two scrapes too

wait_for(30 * $every, sub {
	my $res = $prom{classic}->query(
		"rate(${sel}_count\{path=\"/slow\"}[1m])");
	@{$res->{data}{result} || []} == 1;
}, 0.2);

for my $p (qw/ native classic /) {
	my $res = $prom{$p}->query($dexpr);
	ok(@{$res->{data}{result} || []}, "dashboard panel: data from $p")
		or diag(JSON::PP->new->encode($res));
}

my $lres = $prom{native}->query($left);
ok(@{$lres->{data}{result} || []},
	'dashboard panel: native, from the native series');

# the one without the feature: classic buckets, from OpenMetrics

is($prom{classic}->wait_query("sum(${sel}_count{path=\"/fast\"})", 20), 20,
	'classic: the count');

my $cq = $prom{classic}->query1("histogram_quantile(0.5, sum by (le) "
	. "(${sel}_bucket{path=\"/slow\"}))");
ok(defined $cq && $cq > 0.25 && $cq <= 0.5,
	'classic: the median of /slow in its bucket (0.25, 0.5]');

my $none = $prom{classic}->query(
	"histogram_count($sel\{path=\"/fast\"})");
is(scalar @{$none->{data}{result} || [1]}, 0,
	'classic: no native histogram');

# then 10,000 series of one family, which the protobuf body carries in
# many messages: last, for their scrapes take Prometheus a while


my $N = 10000;
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8080))
		or die "connect: $!";
	binmode $s;

	my ($sent, $got, $buf) = (0, 0, '');

	while ($got < $N) {
		while ($sent < $N && $sent - $got < 200) {
			print $s "GET /many/series$sent HTTP/1.1\r\n"
				. "Host: localhost\r\n\r\n";
			$sent++;
		}

		sysread($s, $buf, 65536, length $buf) or last;
		$got += () = $buf =~ /HTTP\/1\.1 204/g;
		$buf =~ s/.*HTTP\/1\.1 204//s;
	}

	close $s;
	is($got, $N, "$N requests of their own path");
}

is($prom{native}->wait_query("count(railgun_http_requests_total"
	. "{path=~\"/many/series.*\"})", $N), $N,
	"native: every one of $N series of a family in many messages")
	or diag(JSON::PP->new->encode([ map { $_->{lastError} }
		@{$prom{native}->api('/api/v1/targets')->{data}{activeTargets}}
	]));


# what each asked for, and got

my %formats;
for (split /\n/, $t->read_file('scrape.log')) {
	my ($accept, $type) = split /\|/;
	$formats{$accept} = $type;
}

my ($native) = grep { /^application\/vnd\.google\.protobuf/ } keys %formats;
like($formats{$native // ''} // '', qr!^application/vnd\.google\.protobuf; proto=io\.prometheus\.client\.MetricFamily; encoding=delimited$!,
	'native prometheus: asked for protobuf first, got it')
	or diag(join "\n", %formats);
note("Prometheus asks: $native") if $native;

my ($om) = grep { /^application\/openmetrics-text/ } keys %formats;
like($formats{$om // ''} // '', qr!^application/openmetrics-text!,
	'classic prometheus: OpenMetrics');

###############################################################################
