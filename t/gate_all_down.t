#!/usr/bin/perl

# Every peer of an upstream failing its checks.  By default the gate fails
# open: all peers are kept in use (one [warn] line per episode), so requests
# still reach them, and whatever nginx makes of them is what the client
# gets: a 200 from a backend that serves but fails its health checks, a 502
# from connection refused when the backends are stopped.  With
# all_down=closed they stay down and nginx answers 502 "no live upstreams".
# A backup server takes over when every primary fails its checks.
#
# Two ways to be down: "sick" backends serve traffic but fail /health, so
# the fail-open traffic is seen at them; then stopped backends, which
# refuse.  max_fails=0: nginx's own failure accounting stays out of it.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(36)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream open_u {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
    }

    upstream closed_u {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2
                      all_down=closed;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
    }

    upstream backup_u {
        zone backup_u 64k;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
        server 127.0.0.1:%%PORT_8083%% max_fails=0 backup;
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        add_header X-Addr $upstream_addr always;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /open/ {
            proxy_pass http://open_u;
        }

        location /closed/ {
            proxy_pass http://closed_u;
        }

        location /backup/ {
            proxy_pass http://backup_u;
        }

        location = /ready/open {
            railgun_gate open_u;
        }

        location = /ready/closed {
            railgun_gate closed_u;
        }
    }
}

EOF

my ($b1, $b2, $b3) = (backend($t, 8081, 'b1'), backend($t, 8082, 'b2'),
	backend($t, 8083, 'b3'));

$t->run();

###############################################################################

my @U = qw/ open_u closed_u backup_u /;

# $n requests to $path: { "status backend" => count }, and the peers tried

sub get {
	my ($path, $n) = @_;

	my (%count, %tried);

	for my $i (1 .. $n) {
		my ($status, $h) = http_split(http_get("$path$i"));
		my $b = $h->{'x-backend'} // '-';
		$count{($status // 'none') . " $b"}++;
		$tried{$_}++ for split /, /, $h->{'x-addr'} // '';
	}

	return (\%count, \%tried);
}

sub show {
	my ($count) = @_;
	return join ', ', map { "$_ x$count->{$_}" } sort keys %$count;
}

# peer_up of b1 and b2 in every upstream equal to $want

sub primaries {
	my ($want) = @_;

	return wait_for(10, sub {
		my $s = scrape_quick($t);
		for my $u (@U) {
			for my $b ($b1, $b2) {
				my $v = peer_up($s, $u, $b);
				return 0 unless defined $v && $v == $want;
			}
		}
		return 1;
	});
}

sub log_since {
	my ($offset) = @_;
	return substr $t->read_file('error.log'), $offset;
}

###############################################################################

# all healthy

ok(primaries(1), 'all peers up');

my ($c) = get('/open/a', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'open: both primaries');
($c) = get('/closed/a', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'closed: both primaries');
($c) = get('/backup/a', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'backup: primaries only');

# both primaries sick: they serve, but fail their checks

my $offset = length $t->read_file('error.log');
my $since = time();

$b1->sick(1);
$b2->sick(1);

ok(primaries(0), 'sick primaries down in every upstream');

my $s = scrape_quick($t);
is(peer_up($s, 'backup_u', $b3), 1, 'backup up');

($c) = get('/open/b', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'open: all kept in use');

($c) = get('/closed/b', 6);
is(show($c), '502 - x6', 'closed: 502');

($c) = get('/backup/b', 10);
is(show($c), '200 b3 x10', 'backup: the backup took over');

my $log = log_since($offset);
my @nolive = $log =~ /^.*no live upstreams.*$/mg;

is(scalar(grep { m!request: "GET /closed/b\d+ ! } @nolive), 6,
	'closed: "no live upstreams" for each request');
is(scalar(grep { !m!request: "GET /closed/! } @nolive), 0,
	'"no live upstreams" for closed only');

is(scalar(warn_lines($t, 'open_u', $offset)), 1, 'open: one warn line');
is(scalar(warn_lines($t, 'closed_u', $offset)), 0, 'closed: no warn line');
is(scalar(warn_lines($t, 'backup_u', $offset)), 0, 'backup: no warn line');

is(scalar(grep { $_->{uri} =~ m!^/closed/! }
	$b1->traffic(since => $since), $b2->traffic(since => $since)), 0,
	'closed: nothing reached the primaries');
is(scalar(grep { $_->{uri} =~ m!^/backup/! }
	$b1->traffic(since => $since), $b2->traffic(since => $since)), 0,
	'backup: nothing reached the primaries');

my ($st) = gate('/ready/open');
is($st, 503, 'gate: open upstream unavailable');
($st) = gate('/ready/closed');
is($st, 503, 'gate: closed upstream unavailable');

# healthy again: back to normal, the backup idle

$b1->sick(0);
$b2->sick(0);

ok(primaries(1), 'primaries up again');

($c) = get('/open/c', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'open: back to both');
($c) = get('/closed/c', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'closed: back to both');
($c) = get('/backup/c', 10);
is(show($c), '200 b1 x5, 200 b2 x5', 'backup: idle again');

# both primaries stopped: connections refused

$offset = length $t->read_file('error.log');

$b1->stop();
$b2->stop();

ok(primaries(0), 'stopped primaries down in every upstream');

my $tried;
($c, $tried) = get('/open/d', 6);
is(show($c), '502 - x6', 'open: 502 from the refusing peers');
is(join(' ', map { "$_=$tried->{$_}" } sort keys %$tried),
	join(' ', sort map { "$_->{addr}=6" } $b1, $b2),
	'open: every peer tried by every request');

($c, $tried) = get('/closed/d', 6);
is(show($c), '502 - x6', 'closed: 502');
is(join(' ', keys %$tried), 'closed_u', 'closed: no peer tried');

($c) = get('/backup/d', 10);
is(show($c), '200 b3 x10', 'backup: the backup took over');

$log = log_since($offset);
@nolive = $log =~ /^.*no live upstreams.*$/mg;
my @refused = $log =~ /^.*connect\(\) failed \(111: Connection refused\).*$/mg;

is(scalar(grep { m!request: "GET /closed/d\d+ ! } @nolive), 6,
	'closed: "no live upstreams" for each request');
is(scalar(grep { !m!request: "GET /closed/! } @nolive), 0,
	'"no live upstreams" for closed only');
is(scalar(grep { m!request: "GET /open/d\d+ ! } @refused), 12,
	'open: connection refused, twice a request');
is(scalar(warn_lines($t, 'open_u', $offset)), 1,
	'open: one warn line for the second episode');
is(scalar(warn_lines($t, 'closed_u', $offset)), 0, 'closed: no warn line');

$s = $t->metrics();

is(join(' ', map {
	my $u = $_;
	map { peer_up($s, $u, $_) // 'none' } $b1, $b2
} @U), '0 0 0 0 0 0', 'peer_up 0 for every primary');
is(peer_up($s, 'backup_u', $b3), 1, 'peer_up 1 for the backup');

ok(!quick_errors(), 'quick scrapes parse') or diag(join "\n", quick_errors());

###############################################################################
