#!/usr/bin/perl

# Exemplars through a real Prometheus: Debian's Prometheus, with its
# exemplar storage on, scrapes a test nginx (OpenMetrics, as Prometheus asks
# for it first); the exemplars API then returns the request ids of known
# slow requests in the bucket they landed in, the ids the clients were given,
# with their durations, and none of the fast requests there.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Prometheus qw/ wait_for /;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('prometheus')
	->has_daemon('promtool')->plan(9)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_buckets 0.05 0.25 1;

    upstream backend {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /api/ {
            railgun_exemplar $request_id;
            proxy_pass http://backend/;
            add_header X-Request-Id $request_id always;
        }
    }
}

EOF

$t->http_backend(8081);
$t->run();

my $prom = Test::Railgun::Prometheus->start($t, port => 8086,
	target => 8080, job => 'railgun', features => [ 'exemplar-storage' ]);

ok($prom->ready, 'prometheus is ready');

ok($prom->scraped('railgun'),
	'target up: the OpenMetrics with exemplars parsed');

###############################################################################

my $BUCKET = 'railgun_http_request_duration_seconds_bucket'
	. '{path="/api/",le="%s"}';
my $start = time() - 1;

# Each request waits for a scrape that shows it: Prometheus keeps the
# exemplars it scraped, a bucket's latest is all one scrape shows.

my (%ids, %took);

sub request {
	my ($ms, $le) = @_;

	my ($r, undef, $b) = timed_get("/api/delay/$ms");
	my $id = http_header($r, 'X-Request-Id') // '';

	push @{$ids{$le}}, $id;
	$took{$id} = $b;

	wait_for(10, sub {
		grep { $_->{labels}{request_id} eq $id }
			exemplars(sprintf($BUCKET, $le))
	}, 0.2);
}

request(400, '1.0') for 1 .. 3;
request(0, '0.05') for 1 .. 2;
request(120, '0.25');

my @slow = exemplars(sprintf($BUCKET, '1.0'));
my %slow = map { $_->{labels}{request_id} => $_ } @slow;

is(join(' ', sort grep { $slow{$_} } @{$ids{'1.0'}}),
	join(' ', sort @{$ids{'1.0'}}),
	'the exemplars API returns the ids of the three slow requests');
is(scalar(grep { !$took{$_->{labels}{request_id}} } @slow), 0,
	'no other id in the slow bucket');
is(scalar(grep { $took{$_}[0] < 0.4 } keys %slow), 0,
	'none of the fast requests in the slow bucket');

my $bad = join ' ', map {
	my $b = $took{$_->{labels}{request_id}} || [ 0, 0 ];
	($_->{value} < $b->[0] - 0.002 || $_->{value} > $b->[1] + 0.002)
		? "$_->{labels}{request_id}=$_->{value}" : ()
} @slow;
is($bad, '', 'each with its duration');

my %fast = map { $_->{labels}{request_id} => 1 }
	exemplars(sprintf($BUCKET, '0.05'));
is(scalar(grep { $fast{$_} } @{$ids{'0.05'}}), 2,
	'the fast requests in the first bucket');

my %mid = map { $_->{labels}{request_id} => 1 }
	exemplars(sprintf($BUCKET, '0.25'));
ok($mid{$ids{'0.25'}[0]}, 'the 120 ms request in le="0.25"');

# the upstream's own exemplars too

my %up = map { $_->{labels}{request_id} => 1 } exemplars(
	'railgun_upstream_response_duration_seconds_bucket'
	. '{upstream="backend",le="1.0"}');
is(scalar(grep { $up{$_} } @{$ids{'1.0'}}), 3,
	'the slow upstream attempts');

# the test's own scrape checks the text formats with promtool
$t->metrics(accept => 'application/openmetrics-text; version=1.0.0');
$t->metrics();

###############################################################################

# the exemplars of the series a selector picks, since the test began

sub exemplars {
	my ($q) = @_;
	return $prom->exemplars($q, start => $start, end => time() + 5);
}

###############################################################################
