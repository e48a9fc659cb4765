#!/usr/bin/perl

# railgun_check on "server NAME resolve" (nginx 1.27.3 and later, Angie):
# the checks follow the addresses nginx resolved, with a DNS server of the
# suite's own on loopback.  Until the name resolves nothing is probed and
# nothing is marked down (no placeholder peer=""); then every address is
# probed and shown in railgun_upstream_peer_up by address; a failing address
# is skipped by the balancer; when the name moves, the new address is
# probed and the old one is neither probed nor shown any more; a reload
# keeps following, and workers exiting with checks in flight leave no socket
# open.  Skipped where nginx has no "resolve".

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::DNS;

use IO::Socket::INET;
use Test::Railgun::Gate qw/ wait_for scrape_quick peer_up checks gate /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new();

my $conf = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    resolver 127.0.0.1:%%PORT_8053%% valid=1s ipv6=off;
    resolver_timeout 1s;

    upstream u {
        zone u 64k;
        railgun_check uri=/health interval=200ms timeout=150ms rise=1 fall=1;
        server api.test:%%PORT_8091%% resolve;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /ready {
            railgun_gate u;
        }

        location / {
            proxy_pass http://u;
        }
    }
}

EOF

my ($rc, $out) = $t->nginx_t($conf);
plan(skip_all => 'no "server ... resolve" in this nginx')
	if $rc != 0 && $out =~ /invalid parameter "resolve"/;

$t->plan(25)->write_file_expand('nginx.conf', $conf);

my $dns = dns_server($t, 8053);
dns_set($dns, 'api.test', 'SERVFAIL');

# three backends on one port of three loopback addresses; each logs its
# health checks, and answers /health 503 while its "sick" file exists

my $port = port(8091);
my %b;

for my $n (2 .. 4) {
	my $name = "b$n";
	my $addr = "127.0.0.$n";
	my $dir = $t->testdir();

	$b{$name} = "$addr:$port";

	$t->http_backend(8091, addr => $addr, workers => 2, handler => sub {
		my ($method, $uri) = @_;

		if ($uri eq '/health') {
			open my $fh, '>>', "$dir/$name.checks";
			print $fh "check\n";
			close $fh;
			return -e "$dir/$name.sick" ? (503, "sick\n") : (200, "ok\n");
		}

		return (200, "$name\n");
	});
}

$t->write_file('b3.sick', '');

$t->run();

###############################################################################

sub health_checks {
	my ($name) = @_;
	return () = $t->read_file("$name.checks") =~ /^check$/mg;
}

# the peers shown, "[127.0.0.2:PORT] ..."

sub peers {
	my ($s) = @_;
	return join ' ', sort map { "[$_->{labels}{peer}]" }
		series($s, 'railgun_upstream_peer_up', { upstream => 'u' });
}

# the backend each of n requests got, "b2 b2 ..."

sub answers {
	my ($n) = @_;
	return join ' ', map {
		my ($st, undef, $body) = http_split(http_get('/x'));
		($st // 'none') eq '200' ? ($body =~ /^(b\d)$/m)[0] // '?' : $st;
	} 1 .. $n;
}

sub g {
	my ($status, undef, $body) = gate('/ready');
	$body = $body // '';
	$body =~ s/\r?\n\z//;
	return ($status // 'none') . " $body";
}

# not resolved yet: nginx asked, and nothing is probed nor marked down

ok(wait_for(10, sub { dns_queries($dns, 'api.test') >= 2 }),
	'nginx asks the DNS server');

my $s = scrape_quick($t);
is(peers($s), '', 'unresolved: no peer shown');
is(Test::Railgun::sample_sum($s, 'railgun_probe_checks_total',
	{ probe => 'u' }) // 0, 0, 'unresolved: nothing probed');
unlike($t->read_file('error.log'), qr/connect\(\) to  failed/,
	'unresolved: no connect to an empty address');
is(g(), '503 {"status":"unavailable","u":false}',
	'unresolved: the gate has no server to count');

# resolved to b2: probed, shown by its address, used

dns_set($dns, 'api.test', '127.0.0.2');

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	(peer_up($s, 'u', $b{b2}) // 0) == 1 && checks($s, 'u', $b{b2}, 'ok')
		&& $s;
}) || scrape_quick($t);
is(peers($s), "[$b{b2}]", 'resolved: the address shown');
ok(health_checks('b2') > 0, 'resolved: the address probed');
is(answers(4), 'b2 b2 b2 b2', 'resolved: requests to b2');
is(g(), '200 {"status":"ready","u":true}', 'resolved: gate ready');

# two addresses, one failing its checks: shown down and skipped

dns_set($dns, 'api.test', '127.0.0.2', '127.0.0.3');

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	defined peer_up($s, 'u', $b{b3}) && peer_up($s, 'u', $b{b3}) == 0 && $s;
}) || scrape_quick($t);
is(peers($s), "[$b{b2}] [$b{b3}]", 'two addresses shown');
is(peer_up($s, 'u', $b{b3}), 0, 'failing address down');
ok(checks($s, 'u', $b{b3}, 'bad_status') > 0, 'failing address: bad_status');
is(peer_up($s, 'u', $b{b2}), 1, 'other address up');
is(answers(8), join(' ', ('b2') x 8), 'failing address skipped');

# it recovers: used again

unlink $t->testdir() . '/b3.sick';

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	(peer_up($s, 'u', $b{b3}) // 0) == 1 && $s;
}) || scrape_quick($t);
is(peer_up($s, 'u', $b{b3}), 1, 'recovered address up');
like(answers(8), qr/b3/, 'recovered address used');

# the name moves to b4: b4 probed and used, b2 and b3 dropped

dns_set($dns, 'api.test', '127.0.0.4');

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	peers($s) eq "[$b{b4}]" && (peer_up($s, 'u', $b{b4}) // 0) == 1 && $s;
}) || scrape_quick($t);
is(peers($s), "[$b{b4}]", 'moved: only the new address shown');
is(answers(4), 'b4 b4 b4 b4', 'moved: requests to b4');

my $b2 = health_checks('b2');
my $b4 = health_checks('b4');

ok(wait_for(10, sub { health_checks('b4') >= $b4 + 3 }), 'moved: b4 probed');
ok(health_checks('b2') <= $b2 + 1, 'moved: b2 no longer probed');

# an address that accepts and never answers: its checks are in flight most
# of the time, also when the old workers of a reload exit

my $hang = IO::Socket::INET->new(
	Proto => 'tcp',
	LocalAddr => "127.0.0.5:$port",
	Listen => 128,
) or die "can't listen on 127.0.0.5:$port: $!";

dns_set($dns, 'api.test', '127.0.0.4', '127.0.0.5');

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	checks($s, 'u', "127.0.0.5:$port", 'timeout') > 0 && $s;
}) || scrape_quick($t);
is(peer_up($s, 'u', "127.0.0.5:$port"), 0, 'silent address: down');

# a reload keeps following; the exiting workers leave no socket open

ok($t->reload(), 'reloaded');

$s = wait_for(10, sub {
	my $s = scrape_quick($t);
	peers($s) eq "[$b{b4}] [127.0.0.5:$port]"
		&& (peer_up($s, 'u', $b{b4}) // 0) == 1 && $s;
}) || scrape_quick($t);
is(peers($s), "[$b{b4}] [127.0.0.5:$port]",
	'reload: the resolved addresses shown');
is(answers(4), 'b4 b4 b4 b4', 'reload: the silent address skipped');

$t->stop();
unlike($t->read_file('error.log'), qr/open socket .* left in connection/,
	'no socket left open at exit');

###############################################################################
