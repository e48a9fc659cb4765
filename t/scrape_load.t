#!/usr/bin/perl

# Scrapes do not starve the worker: 50 concurrent scrapers of 10,000 label
# sets for 10 s against 2 workers, while a healthy Redis is probed with
# timeout=300ms, a gate names it and a client times plain requests.  The
# probe never fails, the gate stays 200, and no plain request waits more
# than 100 ms, as the timing client measures it.
#
# The scrapers are one process multiplexing 50 connections, reading as fast
# as it can and reconnecting at once; the timing client is another.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $SERIES = 10000;
my $SCRAPERS = $ENV{SCRAPE_LOAD_SCRAPERS} // 50;
my $SECONDS = $ENV{SCRAPE_LOAD_SECONDS} || 10;
my $MAX_WAIT = 0.100;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(10)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
    worker_connections 1024;
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_zone 64m;
    railgun_max_series 20000;

    railgun_probe cache redis://127.0.0.1:%%PORT_8090%%
                  interval=400ms timeout=300ms rise=1 fall=1;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;
        keepalive_requests 100000;
        access_log off;

        location /items/ {
            railgun_path $uri;
            return 200 "item\n";
        }

        location = /plain {
            railgun off;
            return 200 "plain\n";
        }

        location = /ready {
            railgun off;
            railgun_gate cache;
        }

        location = /metrics {
            railgun_metrics max_scrapes=100;
            railgun off;
        }
    }
}

EOF

redis_start($t, 8090);
$t->run();

###############################################################################

# 10,000 label sets, pipelined over a few connections

my $made = 0;
for my $c (0 .. 9) {
	my $req = '';
	for my $i (1 .. $SERIES / 10) {
		$req .= "GET /items/$c/$i HTTP/1.1\r\nHost: localhost\r\n\r\n";
	}
	$req .= "GET /plain HTTP/1.1\r\nHost: localhost\r\n"
		. "Connection: close\r\n\r\n";
	$made += () = http($req, timeout => 60) =~ m!^HTTP/1.1 200 !mg;
}
is($made, $SERIES + 10, 'label sets made');

ok(wait_for(10, sub { http_get('/ready') =~ /^HTTP\/1.. 200 / }),
	'gate 200 before');

my $m0 = $t->metrics();
is(scalar(series($m0, 'railgun_http_requests_total')), $SERIES,
	'10,000 label sets in the scrape');
my $checks0 = sample_sum($m0, 'railgun_probe_checks_total',
	{ probe => 'cache' });
my $ok0 = sample($m0, 'railgun_probe_checks_total',
	{ probe => 'cache', result => 'ok' });

# the scrapers

my $scrapers = fork() // die "fork: $!";
if ($scrapers == 0) {
	scrapers();
	POSIX::_exit(0);
}

# the timing client: plain requests and the gate, one after the other

my (@waits, %gate, $scrapes);
my $end = time() + $SECONDS;

while (time() < $end) {
	my $t0 = time();
	my $r = http_get('/plain', timeout => 5);
	my $w = time() - $t0;
	push @waits, $r =~ /^HTTP\/1.. 200 / ? $w : 9**9**9;

	my ($st) = http_split(scalar http_get('/ready', timeout => 5));
	$gate{$st // 'none'}++;

	sleep(0.01);
}

kill 'TERM', $scrapers;
waitpid($scrapers, 0);
my $done = $? >> 8;

###############################################################################

@waits = sort { $a <=> $b } @waits;
my $max = $waits[-1];
my $p99 = $waits[int(@waits * 0.99)];

ok(@waits > 100, scalar(@waits) . ' plain requests timed');
ok($max <= $MAX_WAIT, 'no plain request waited over 100 ms')
	or diag(sprintf 'max %.1f ms, p99 %.1f ms', 1000 * $max, 1000 * $p99);
is(join(',', map { "$_:$gate{$_}" } sort keys %gate),
	'200:' . ($gate{200} // 0), 'gate 200 throughout');

# the probe's figures only: a parse of the whole body is slow in Perl

my $body = http_body(scalar http_get('/metrics'));
my $m1 = Test::Railgun::parse_metrics(join('', $body
	=~ /^(railgun_(?:probe|scrapes)_[^\n]*\n)/mg), 0, [], 'after');
my $checks = sample_sum($m1, 'railgun_probe_checks_total',
	{ probe => 'cache' }) - $checks0;
my $ok = sample($m1, 'railgun_probe_checks_total',
	{ probe => 'cache', result => 'ok' }) - $ok0;

ok($checks >= $SECONDS * 2.5 / 2, "$checks probe checks during the scrapes");
is($ok, $checks, 'every one ok');
is(sample($m1, 'railgun_probe_up', { probe => 'cache' }), 1, 'probe up');

is(sample($m1, 'railgun_scrapes_rejected_total'), 0, 'no scrape refused');

diag(sprintf 'plain requests: %d, p99 %.1f ms, max %.1f ms; probe checks %d',
	scalar @waits, 1000 * $p99, 1000 * $max, $checks)
	if $ENV{TEST_VERBOSE};

###############################################################################

# $SCRAPERS connections, each read to its end and opened again at once

sub scrapers {
	my $port = port(8080);
	my $sel = IO::Select->new();
	my $n = 0;
	my $stop = 0;

	$SIG{TERM} = sub { $stop = 1 };

	my $open = sub {
		my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
			or return;
		$s->blocking(0);
		syswrite($s, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
		$sel->add($s);
	};

	$open->() for 1 .. $SCRAPERS;

	while (!$stop) {
		for my $s ($sel->can_read(0.5)) {
			my $r = sysread($s, my $buf, 262144);
			next if !defined $r && $!{EAGAIN};
			next if $r;

			$sel->remove($s);
			close $s;
			$n++;
			$open->();
		}
	}
}

###############################################################################
