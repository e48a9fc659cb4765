#!/usr/bin/perl

# Tests for concurrent accounting: four workers, eight clients hammering in
# parallel, every request counted exactly once across workers.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use POSIX ();

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(11)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 4;

events {
    accept_mutex off;
}

http {
    %%TEST_GLOBALS_HTTP%%

    access_log off;

    server {
        listen       127.0.0.1:%%PORT_8080%% reuseport;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /hit/ {
            return 200 "hit\n";
        }

        location /miss/ {
            return 404;
        }
    }
}

EOF

$t->run();

###############################################################################

my $CLIENTS = 8;
my $REQUESTS = 250;

my $acc = 'railgun_nginx_connections_accepted_total';
my $hnd = 'railgun_nginx_connections_handled_total';

# with reuseport each worker has its own accept queue, and under load the
# harness's startup probe of the port may be accepted late: wait until it
# and every scrape so far are counted

my ($m0, $scrapes);

for (1 .. 100) {
	$m0 = $t->metrics();
	last if (sample($m0, $acc) // 0) >= ++$scrapes + 1;
	select undef, undef, undef, 0.02;
}

# each client writes its byte totals to a file: counts must match exactly

my @pids;

for my $c (1 .. $CLIENTS) {
	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		my ($in, $out, $bad) = (0, 0, 0);

		for my $i (1 .. $REQUESTS) {
			my $uri = $i % 10 == 0 ? "/miss/$c" : "/hit/$c/$i";
			my ($r, $req) = http_get($uri);
			$bad++ unless http_status($r);
			$in += length $req;
			$out += length $r;
		}

		$t->write_file("client-$c", "$in $out $bad\n");
		POSIX::_exit(0);
	}

	push @pids, $pid;
}

waitpid($_, 0) for @pids;

my ($in, $out, $bad) = (0, 0, 0);

for my $c (1 .. $CLIENTS) {
	my ($i, $o, $b) = split ' ', $t->read_file("client-$c");
	$in += $i // 0;
	$out += $o // 0;
	$bad += $b // 1;
}

is($bad, 0, 'every client request answered');

my $m = $t->metrics();

my $total = $CLIENTS * $REQUESTS;
my $miss = $CLIENTS * int($REQUESTS / 10);

my %hit = (server => 'localhost', path => '/hit/');

is(sample($m, 'railgun_http_requests_total',
	{ %hit, method => 'GET', status => '200' }), $total - $miss,
	'hits counted exactly');
is(sample($m, 'railgun_http_requests_total', { path => '/miss/',
	method => 'GET', status => '404' }), $miss, 'misses counted exactly');
is(sample($m, 'railgun_http_request_duration_seconds_count',
	{ %hit, method => 'GET' }), $total - $miss, 'histogram count');

is(sample_sum($m, 'railgun_http_request_bytes_total',
	{ server => 'localhost' }), $in, 'request bytes');
is(sample_sum($m, 'railgun_http_response_bytes_total',
	{ server => 'localhost' }), $out, 'response bytes');

# every connection since the first scrape: the clients' and the second
# scrape's own

is(sample($m, $acc) - sample($m0, $acc), $total + 1, 'accepted');
is(sample($m, $hnd) - sample($m0, $hnd), $total + 1, 'handled');

my $active = sample($m, 'railgun_nginx_connections', { state => 'active' });
is($active, 1, 'only the scrape connection active');
is(sample($m, 'railgun_nginx_connections', { state => 'writing' }), 1,
	'the scrape is writing');
is($active, sample_sum($m, 'railgun_nginx_connections',
	{ state => 'reading' }) + sample_sum($m, 'railgun_nginx_connections',
	{ state => 'writing' }) + sample_sum($m, 'railgun_nginx_connections',
	{ state => 'waiting' }), 'active is reading + writing + waiting');

###############################################################################
