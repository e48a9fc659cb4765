#!/usr/bin/perl

# Native histograms at the extremes of the settings, judged by a real
# Prometheus (Debian's 2.42, --enable-feature=native-histograms): schema -4
# and 8, max_buckets 8 and 1024, the zero bucket alone, and a series whose
# observations leave its first window between two scrapes (exposed at a
# coarser schema from then on).  Every scrape is ingested, and
# histogram_count() and histogram_sum() are the client's.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Prometheus;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('prometheus');

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_zone 64m;

    upstream backend {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location /a/ {
            railgun_path /a;
            railgun_native_histograms on schema=-4 max_buckets=8;
            proxy_pass http://backend/;
        }

        location /b/ {
            railgun_path /b;
            railgun_native_histograms on schema=8 max_buckets=8;
            proxy_pass http://backend/;
        }

        location /c/ {
            railgun_path /c;
            railgun_native_histograms on schema=8 max_buckets=1024;
            proxy_pass http://backend/;
        }

        location /d/ {
            railgun_path /d;
            railgun_native_histograms on schema=-4 max_buckets=1024;
            proxy_pass http://backend/;
        }

        location /e/ {
            railgun_path /e;
            railgun_native_histograms on schema=0 max_buckets=8;
            railgun_exemplar \$request_id;
            proxy_pass http://backend/;
        }

        location /z/ {
            railgun_path /z;
            railgun_native_histograms on schema=8 max_buckets=8;
            return 204;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8082%%;
        server_name  metrics;

        railgun off;

        location /metrics {
            railgun_metrics;
        }
    }
}

EOF

$t->http_backend(8081);
$t->run();

$t->plan(17);

###############################################################################

my $every = $ENV{RAILGUN_TEST_ASAN} || $ENV{RAILGUN_TEST_VALGRIND} ? 2 : 1;

my $prom = Test::Railgun::Prometheus->start($t, port => 8086,
	target => 8082, job => 'native', interval => $every,
	features => [ 'native-histograms' ], wait => 30 * $every);

ok($prom->ready, 'prometheus is ready');

my $sel = 'railgun_http_request_duration_seconds';

# the client's count and its brackets of the sum, per path

my (%n, %lo, %hi);

sub fetch {
	my ($path) = @_;
	my ($r, undef, $b) = timed_get($path);
	my ($p) = $path =~ m!^/(\w)/!;
	my ($ms) = $path =~ m!/delay/(\d+)!;

	unless ((http_status($r) // 0) =~ /^20/) {
		diag("$path: " . (http_status($r) // "no answer"));
		return;
	}

	$n{$p}++;
	$lo{$p} += ($ms // 0) / 1000;
	$hi{$p} += $b->[1] + $Test::Railgun::TIMING_SLACK;
}

# /e/: first within its window (0.25 s at schema 0), scraped, then above

fetch('/e/delay/1') for 1 .. 5;

is($prom->wait_query("histogram_count($sel\{path=\"/e\"})", 5), 5,
	'first window: the count');

fetch('/e/delay/400') for 1 .. 3;
fetch('/e/delay/1100');

is($prom->wait_query("histogram_count($sel\{path=\"/e\"})", 9), 9,
	'then above it: the count at the coarser schema');

my $q = $prom->query1("histogram_quantile(0.95, $sel\{path=\"/e\"})");
ok(defined $q && $q > 0.25, sprintf('p95 above the first window: %s',
	$q // 'none'));

for my $p (qw/ a b c d /) {
	fetch("/$p/delay/1") for 1 .. 2;
	fetch("/$p/delay/50") for 1 .. 3;
	fetch("/$p/delay/400");
}

fetch('/z/') for 1 .. 4;

for my $p (qw/ a b c d e z /) {
	is($prom->wait_query("histogram_count($sel\{path=\"/$p\"})", $n{$p}),
		$n{$p}, "/$p: histogram_count is the client's $n{$p}");
}

for my $p (qw/ a b c d e /) {
	my $s = $prom->query1("histogram_sum($sel\{path=\"/$p\"})");
	ok(defined $s && $s >= $lo{$p} - 0.001 && $s <= $hi{$p},
		sprintf('/%s: histogram_sum %s in [%.3f, %.3f]', $p,
			$s // 'none', $lo{$p}, $hi{$p}));
}

# schema 8 with 1024 buckets reaches 2^-6 s: 50 ms is at schema 4 then

$q = $prom->query1("histogram_quantile(0.5, $sel\{path=\"/c\"})");
my $step = 2**(1 / 16);
ok(defined $q && $q >= 0.05 / $step && $q <= 0.05 * 1.5 * $step,
	sprintf('/c: the median %s near 50 ms', $q // 'none'));

is($prom->query1('min_over_time(up[1m])'), 1, 'every scrape ingested');

###############################################################################
