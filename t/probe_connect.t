#!/usr/bin/perl

# Connect errors named right: only a refusal (ECONNREFUSED) is "refused";
# a network the host has no route to (ENETUNREACH, here the broadcast
# address, which TCP cannot reach) is "error", with its reason in the log,
# for every probe type and a railgun_check.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(10);

my $P = 'interval=300ms timeout=200ms rise=1 fall=1 initial=up';

$t->refused_port(7201);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe net_redis redis://255.255.255.255:6379 $P;
    railgun_probe net_http  http://255.255.255.255:80/ $P;
    railgun_probe net_tcp   tcp://255.255.255.255:25 $P;
    railgun_probe refused   tcp://127.0.0.1:%%PORT_7201%% $P;

    upstream unreachable {
        server 255.255.255.255:8000;
        railgun_check type=tcp $P;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

$t->run();

my @probes = qw/ net_redis net_http net_tcp refused unreachable /;

ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	!grep { probe_checks_total($s, $_) < 3 } @probes;
}), 'three results of every probe');

my $s = $t->metrics();

for my $p (@probes) {
	my $want = $p eq 'refused' ? 'refused' : 'error';
	my $c = probe_checks($s, $p);

	ok($c->{$want} >= 3 && !grep({ $_ ne $want && $c->{$_} } keys %$c),
		"$p: $want only") or diag(explain $c);
}

my $log = $t->read_file('error.log');

for my $p (qw/ net_redis net_http net_tcp /) {
	like($log, qr/probe "$p" 255\.255\.255\.255:\d+ is down after 1 failed checks, last: error \(network unreachable\)/,
		"$p: network unreachable in the log");
}

like($log, qr/probe "refused" .* last: refused \(connection refused\)/,
	'refused: connection refused in the log');

###############################################################################
