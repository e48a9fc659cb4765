#!/usr/bin/perl

# Limits: the smallest zone filled by series past its capacity degrades to the
# overflow series with a log line and never crashes; a huge railgun_max_series
# is accepted; a thousand probes and an upstream of a thousand checked servers
# start, probe and export one series each.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(14);

my $N = 1000;

# every probe and every checked server points at a port that refuses: the
# checks are quick, and their results known ("refused")

my $refused = $t->refused_port(7500);

my $probes = join "\n", map {
	"    railgun_probe p$_ tcp://127.0.0.1:$refused interval=60s "
	. "timeout=1s;"
} 1 .. $N;

# distinct addresses: 127.0.0.1-250 on four ports
my $servers = join "\n", map {
	my $port = $refused + int(($_ - 1) / 250);
	"        server 127.0.0." . (1 + ($_ - 1) % 250) . ":$port;"
} 1 .. $N;

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

# every probe and check in flight holds a connection: a thousand of each at
# once need that many worker_connections (docs/operations.md)

events {
    worker_connections  4096;
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_zone %%ZONE%%;
    railgun_max_series 10000000;

$probes

    upstream many {
        railgun_check type=tcp interval=60s timeout=1s;
$servers
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location / {
            railgun_path \$uri;
            return 200 "ok\\n";
        }
    }
}

EOF

my $conf = $t->read_file('nginx.conf');

(my $small = $conf) =~ s/%%ZONE%%/64k/;
$t->write_file('nginx.conf', $small);

$t->run();

# the zone cannot hold all of this: series past it go to the overflow

for my $i (1 .. 400) {
	http_get("/p/$i");
}

my $m = $t->metrics();

my $overflow = sample($m, 'railgun_http_requests_total',
	{ server => '__overflow__', path => '__overflow__' });
my $counted = 0;
$counted += $_->{value} for series($m, 'railgun_http_requests_total');

ok($overflow && $overflow > 0, "a full zone: samples in the overflow series")
	or diag("overflow " . ($overflow // 'none'));
is($counted, 400, 'a full zone: no request lost');
ok(sample($m, 'railgun_series_dropped_total',
	{ family => 'railgun_http_requests_total' }) > 0,
	'a full zone: the drops counted');
like($t->read_file('error.log'),
	qr/\[warn\].*railgun: (?:zone full|series table full)/,
	'a full zone: said in the log');

my ($used) = map { $_->{value} }
	series($m, 'railgun_zone_bytes', { state => 'used' });
my ($size) = map { $_->{value} }
	series($m, 'railgun_zone_bytes', { state => 'size' });
cmp_ok($used, '<=', $size, 'zone use within its size');

# a full zone: probes that found no state are not run, and say so once

my $up = scalar(series($m, 'railgun_probe_up'));
my $peers = scalar(series($m, 'railgun_upstream_peer_up'));
my @not_run = $t->read_file('error.log')
	=~ /railgun: zone is full: (\d+) of (\d+) probes are not run/g;

ok(@not_run == 2 && $not_run[1] == 2 * $N && $not_run[0] > 0,
	'probes without a state: one line, with their count')
	or diag("@not_run");
cmp_ok($up + $peers, '<=', 2 * $N - ($not_run[0] // 0),
	'no gauge for a probe that is not run');

like(http_get('/alive'), qr!^HTTP/1.1 200 !, 'requests served');

$t->stop();

# the default zone holds them all: one gauge per probe and per server, and
# every one of them checked ("refused") once at start

(my $big = $conf) =~ s/%%ZONE%%/16m/;
$t->write_file('nginx.conf', $big);

my $log = length $t->read_file('error.log');

$t->run();

my ($probes_seen, $checks) = (0, 0);

for (1 .. 100) {
	$m = $t->metrics();
	$checks = 0;
	$checks += $_->{value} for series($m, 'railgun_probe_checks_total',
		{ result => 'refused' });
	last if $checks >= 2 * $N;
	sleep 0.1;
}

$m = $t->metrics();

is(scalar(series($m, 'railgun_probe_up')), $N, "$N probe_up series");
is(scalar(series($m, 'railgun_upstream_peer_up')), $N,
	"$N upstream_peer_up series");
is($checks, 2 * $N, 'every probe and server checked once');
is(scalar(grep { $_->{value} != 0 } series($m, 'railgun_probe_up')), 0,
	'probes down (initial=down, never a success)');
is(scalar(grep { $_->{value} != 1 } series($m, 'railgun_upstream_peer_up')),
	0, 'servers up until fall=3 failures (initial=up for checks)');
unlike(substr($t->read_file('error.log'), $log), qr/zone is full/,
	'nothing left out');

###############################################################################
