#!/usr/bin/perl

# Tests for HTTP probes against backends whose status and body change at
# run time, request by request: bad_status, bad_body and ok, with the
# rise/fall state read after every single result by the backend itself (up
# exactly at the rise-th consecutive ok, down exactly at the fall-th
# consecutive failure), the transition lines, status lists and ranges, the
# 16 KB body window, the request itself, and the first check soon after
# start.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(50);

my $P = 'interval=600ms timeout=500ms';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe api    http://127.0.0.1:%%PORT_7100%%/health/ready $P rise=3 fall=2 body=ready host=api.internal;
    railgun_probe codes  http://127.0.0.1:%%PORT_7101%%/ $P rise=1 fall=1 initial=up status=200-204,418;
    railgun_probe window http://127.0.0.1:%%PORT_7102%%/big $P rise=1 fall=1 initial=up body=NEEDLE;
    railgun_probe first  http://127.0.0.1:%%PORT_7103%% interval=60s timeout=1s;
    railgun_probe notweb http://127.0.0.1:%%PORT_7104%%/ $P rise=1 fall=1 initial=up;
    railgun_probe named  http://localhost:%%PORT_7105%%/named interval=60s timeout=1s;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

# what the backend answers for each result wanted of the next check

my %API = (
	ok => [ 200, "status: ready\n" ],
	bad_status => [ 503, "status: ready\n" ],
	bad_body => [ 200, "status: starting\n" ],
);

# a body that puts NEEDLE's last byte at byte $end of the whole response

sub window_body {
	my ($end) = @_;

	for my $len ($end .. $end + 1000) {
		my $head = "HTTP/1.1 200 Test\r\nContent-Type: text/plain\r\n"
			. "Content-Length: $len\r\nConnection: close\r\n\r\n";
		my $pad = $end - length($head) - length('NEEDLE');
		next if $pad < 0 || $pad + 6 + 1000 != $len;
		return ('x' x $pad) . 'NEEDLE' . ('y' x 1000);
	}

	die "no body for $end";
}

my %WINDOW = (
	early => [ 200, 'x' x 100 . 'NEEDLE' . 'y' x 40000 ],
	at_16k => [ 200, window_body(16384) ],
	past_16k => [ 200, window_body(16385) ],
	missing => [ 200, "no needle here\n" ],
);

# probe => [ port, initial up, [ backend answer, result, up after it ], ... ]

my %plan = (
	api => [ 7100, 0,
		[ $API{ok}, 'ok', 0 ],
		[ $API{ok}, 'ok', 0 ],
		[ $API{ok}, 'ok', 1 ],
		[ $API{bad_status}, 'bad_status', 1 ],
		[ $API{ok}, 'ok', 1 ],
		[ $API{bad_status}, 'bad_status', 1 ],
		[ $API{bad_body}, 'bad_body', 0 ],
		[ $API{ok}, 'ok', 0 ],
		[ $API{ok}, 'ok', 0 ],
		[ $API{bad_status}, 'bad_status', 0 ],
		[ $API{ok}, 'ok', 0 ],
		[ $API{ok}, 'ok', 0 ],
		[ $API{ok}, 'ok', 1 ],
		[ $API{bad_body}, 'bad_body', 1 ],
		[ $API{bad_status}, 'bad_status', 0 ],
	],
	codes => [ 7101, 1,
		[ [ 200, "a\n" ], 'ok', 1 ],
		[ [ 418, "teapot\n" ], 'ok', 1 ],
		[ [ 205, "\n" ], 'bad_status', 0 ],
		[ [ 204, '' ], 'ok', 1 ],
		# an interim code and then the end: no final response
		[ [ 199, "\n" ], 'error', 0 ],
		[ [ 500, "oops\n" ], 'bad_status', 0 ],
		[ [ 302, "moved\n" ], 'bad_status', 0 ],
		[ [ 201, "created\n" ], 'ok', 1 ],
	],
	window => [ 7102, 1,
		[ $WINDOW{early}, 'ok', 1 ],
		[ $WINDOW{past_16k}, 'bad_body', 0 ],
		[ $WINDOW{at_16k}, 'ok', 1 ],
		[ $WINDOW{missing}, 'bad_body', 0 ],
		[ $WINDOW{at_16k}, 'ok', 1 ],
	],
);

# Each target answers its plan request by request, and before answering
# request N it scrapes nginx: with one check at a time, that is the state
# after exactly N - 1 checks, however late the test itself looks.

for my $probe (sort keys %plan) {
	my ($n, $initial, @steps) = @{$plan{$probe}};
	http_target($t, $n, plan => [ map { $_->[0] } @steps ],
		observe => 8080);
}

http_target($t, 7103);
http_target($t, 7105);
fake_server($t, 7104, 'canned', reply => "SSH-2.0-OpenSSH_9.2\r\n");

$t->run();

###############################################################################

# every plan to its end, and one more request to see the last state

ok(wait_for(30, sub {
	!grep {
		my ($n, $initial, @steps) = @{$plan{$_}};
		observations($t, $n) < @steps + 1;
	} keys %plan;
}, 0.1), 'every plan ran to its end');

for my $probe (sort keys %plan) {
	my ($n, $initial, @steps) = @{$plan{$probe}};
	my @obs = observations($t, $n);

	my %want = map { $_ => 0 } @Test::Railgun::Probe::RESULTS;
	my %moves = (up => 0, down => 0);
	my $last = $initial;

	for my $k (0 .. @steps) {
		my ($result, $up) = ('none', $initial);

		if ($k > 0) {
			(undef, $result, $up) = @{$steps[$k - 1]};
			$want{$result}++;
			$moves{$up ? 'up' : 'down'}++ if $up != $last;
			$last = $up;
		}

		my $what = sprintf '%s after %d checks (%s)', $probe, $k, $result;
		my $s = $obs[$k];

		unless ($s) {
			fail("$what: observed");
			next;
		}

		my $got = probe_checks($s, $probe);
		my %got_moves = map { $_ => probe_transitions($s, $probe, $_) }
			qw/ up down /;

		my $ok = !grep { ($got->{$_} // -1) != $want{$_} } keys %want;
		$ok &&= (probe_up($s, $probe) // -1) == $up;
		$ok &&= !grep { ($got_moves{$_} // -1) != $moves{$_} }
			qw/ up down /;

		ok($ok, "$what: up=$up")
			or diag(explain { got => $got, want => \%want,
				up => probe_up($s, $probe),
				transitions => \%got_moves,
				want_transitions => \%moves });
	}
}

# the transition lines, one per change, saying how many checks and why

my @api = transition_lines($t, 'api');
my $T = '127\.0\.0\.1:' . port(7100);

is(scalar @api, 4, 'api: four transition lines') or diag(join "\n", @api);
like($api[0] // '', qr/\[notice\] .*railgun: probe "api" $T is up after 3 successful checks$/,
	'api: up line');
like($api[1] // '', qr/\[warn\] .*railgun: probe "api" $T is down after 2 failed checks, last: bad_body \(.+\)$/,
	'api: down line, bad_body');
like($api[2] // '', qr/is up after 3 successful checks$/, 'api: up again');
like($api[3] // '', qr/is down after 2 failed checks, last: bad_status \(.+\)$/,
	'api: down line, bad_status');

my @codes = transition_lines($t, 'codes');
is(scalar @codes, 4, 'codes: four transition lines')
	or diag(join "\n", @codes);

###############################################################################

# the request: GET of the URL's path, Host from host= or the target,
# Connection: close

my ($req) = http_requests($t, 7100);
like($req // '', qr!^GET /health/ready HTTP/1\.1\r\n!, 'request line');
like($req // '', qr/\r\nHost: api\.internal\r\n/i, 'Host from host=');
like($req // '', qr/\r\nConnection: close\r\n/i, 'Connection: close');

($req) = http_requests($t, 7103);
my $p = port(7103);
like($req // '', qr!^GET / HTTP/1\.1\r\n!, 'no path: /');
like($req // '', qr/\r\nHost: 127\.0\.0\.1:$p\r\n/i, 'Host is the target');

# a URL with a name: the Host is the URL's, as nginx's proxy_pass makes it,
# not the address it resolved to (the target label)

ok(wait_for(5, sub { scalar http_requests($t, 7105) }), 'named: checked');
($req) = http_requests($t, 7105);
$p = port(7105);
like($req // '', qr/\r\nHost: localhost:$p\r\n/i, 'Host from the URL');

# not HTTP at all

my $s = $t->metrics();
my $nw = probe_checks($s, 'notweb');
ok($nw->{error} >= 3 && $nw->{error} == probe_checks_total($s, 'notweb'),
	'not HTTP: error') or diag(explain $nw);

# the first check runs right after start, and once per interval

my @first = accepts($t, 7103);
my ($worker) = $t->worker_pids();
my $wstart = proc_start_time($worker);
my $after = @first ? $first[0]{time} - $wstart : -1;

# the worker's start time has a resolution of 10 ms; under valgrind a
# worker takes several times longer to initialize (the first check is
# scheduled from its init, which runs 20-50x slower), so only the order is
# checked there
my $first_max = $ENV{RAILGUN_TEST_VALGRIND} ? 5 : 0.3;
ok($after > -0.02 && $after < $first_max,
	sprintf('first check %.3f s after the worker started', $after));
is(scalar @first, 1, 'one check in the first interval');
is(probe_checks($s, 'first')->{ok}, 1, 'and it passed');

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
