#!/usr/bin/perl

# Tests for WebSocket sessions: the handshake accounted as the request (101,
# latency to the 101 only), the active gauge and the sessions counter, the
# session duration, live message and byte counts by direction, labels, and
# the OpenMetrics form of railgun_websocket_connections_opened_total.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(49);

ws_front($t, paths => [ '/ws' ], locations => <<'EOF');
        location /quiet {
            railgun off;
            proxy_pass http://ws_up;
        }
EOF

###############################################################################

my %WS = (server => 'localhost', path => '/ws');
my %REQ = (server => 'localhost', path => '/ws', method => 'GET');
my %UP = (upstream => 'ws_up', peer => '127.0.0.1:' . port(8081));

my $REQS = 'railgun_http_requests_total';
my $RDUR = 'railgun_http_request_duration_seconds';
my $WDUR = 'railgun_websocket_connection_duration_seconds';

# one session, open: the handshake is the request

my $begin = time();
my $ws = ws_connect(path => '/ws');

# the session starts in nginx before the client has its 101
my $start = time();

is($ws->status, 101, 'upgraded');
ok($ws->{accept_ok}, 'accept key passed through');

my $m = wait_metrics($t, sub { ws_stats($_[0], \%WS)->{active} == 1 });
my $s = ws_stats($m, \%WS);

is($s->{active}, 1, 'gauge up while the session lives');
is($s->{total}, 1, 'sessions counted');
is($s->{duration_count}, 0, 'no duration before the end');
is(sample($m, $REQS, { %REQ, status => '101' }), 1, 'handshake is a request');
is(sample($m, "${RDUR}_count", \%REQ), 1, 'handshake timed');
is(sample($m, 'railgun_upstream_requests_total', { %UP, status => '101' }), 1,
	'upstream 101');
is(sample($m, 'railgun_upstream_header_duration_seconds_count', \%UP), 1,
	'upstream header time observed');
is(sample_sum($m, 'railgun_upstream_response_duration_seconds_count', \%UP)
	// 0, 0, 'upstream response time not observed');

# exact counts, live: 3 text messages in, echoed, and 5 binary messages
# that the backend sends on a command (itself a text message in)

my @in = ('hello', '', 'x' x 100);
my $cmd = '!send 5 1000';

for my $msg (@in) {
	$ws->text($msg);
	my $echo = $ws->read_message();
	is($echo && $echo->{payload}, $msg,
		'echo of ' . length($msg) . ' bytes');
}

$ws->text($cmd);
my @out = grep { defined } map { $ws->read_message() } 1 .. 5;
is(scalar(grep { length $_->{payload} == 1000 && $_->{opcode} == 2 } @out),
	5, 'backend messages');

my %want = (
	in_messages => 4,
	in_bytes => 5 + 0 + 100 + length $cmd,
	out_messages => 3 + 5,
	out_bytes => 5 + 0 + 100 + 5 * 1000,
);

my $live = sub {
	my $x = ws_stats($_[0], \%WS);
	return !grep { $x->{$_} != $want{$_} } keys %want;
};

$m = wait_metrics($t, $live);
$s = ws_stats($m, \%WS);

is($s->{in_messages}, $want{in_messages}, 'messages in, live');
is($s->{in_bytes}, $want{in_bytes}, 'bytes in, live');
is($s->{out_messages}, $want{out_messages}, 'messages out, live');
is($s->{out_bytes}, $want{out_bytes}, 'bytes out, live');
is($s->{in_errors} + $s->{out_errors}, 0, 'no protocol errors');
is($s->{active}, 1, 'still active');

# a second session at the same time

my $begin2 = time();
my $ws2 = ws_connect(path => '/ws');
is($ws2->status, 101, 'second session upgraded');

$m = wait_metrics($t, sub { ws_stats($_[0], \%WS)->{active} == 2 });
$s = ws_stats($m, \%WS);
is($s->{active}, 2, 'two sessions');
is($s->{total}, 2, 'two sessions counted');

$ws2->binary('y' x 300);
is(length(($ws2->read_message() || {})->{payload} // ''), 300,
	'second session echo');
$ws2->close_ws();

$m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], \%WS);
	$x->{active} == 1 && $x->{duration_count} == 1
});
$s = ws_stats($m, \%WS);
my $short = time() - $begin2;
is($s->{active}, 1, 'one session left');
is($s->{duration_count}, 1, 'ended session observed');
is($s->{in_bytes}, $want{in_bytes} + 300,
	'second session bytes in, its close frame not');
is($s->{out_messages}, $want{out_messages} + 1, 'second session messages out');

# the first session lives at least 2 s, then the client closes it

sleep(2 - (time() - $start)) if time() - $start < 2;
$ws->close_ws();

$m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], \%WS);
	$x->{active} == 0 && $x->{duration_count} == 2
});
$s = ws_stats($m, \%WS);
my $long = time() - $begin;

is($s->{active}, 0, 'gauge back to 0');
is($s->{total}, 2, 'sessions total');
is($s->{duration_count}, 2, 'both sessions observed');
ok($s->{duration_sum} >= 2, 'duration sum covers the long session')
	or diag("sum $s->{duration_sum}");
ok($s->{duration_sum} <= $long + $short,
	'duration sum within the sessions\' time seen by the client')
	or diag("sum $s->{duration_sum}, long $long, short $short");
ok(sample($m, "${WDUR}_bucket", { %WS, le => '1' }) <= 1,
	'long session not in le=1');
is(sample($m, "${WDUR}_bucket", { %WS, le => '+Inf' }), 2,
	'both sessions in le=+Inf');

SKIP: {
	skip "short session took $short s here", 1 if $short >= 1;

	is(sample($m, "${WDUR}_bucket", { %WS, le => '1' }), 1,
		'short session in le=1');
}

# the handshakes, not the sessions, are in request latency

is(sample($m, "${RDUR}_count", \%REQ), 2, 'two handshakes timed');
# the long session lasted 2 s: a bound of 1 s tells it apart, even on a
# loaded machine with sanitizers
is(sample($m, "${RDUR}_bucket", { %REQ, le => '1' }), 2,
	'handshakes in le=1');
ok(sample($m, "${RDUR}_sum", \%REQ) < 1, 'handshake latency sum under 1 s')
	or diag('sum ' . sample($m, "${RDUR}_sum", \%REQ));
is(sample_sum($m, $REQS, \%REQ), 2, 'no request counted at the end');
is(sample($m, $REQS, { %REQ, status => '101' }), 2, 'both as 101');
is(sample_sum($m, 'railgun_upstream_response_duration_seconds_count', \%UP)
	// 0, 0, 'upstream response time still not observed');

# default WebSocket buckets

is(join(' ', map { $_->{labels}{le} } series($m, "${WDUR}_bucket", \%WS)),
	'1 5 15 30 60 300 900 1800 3600 7200 +Inf', 'default buckets');

# railgun off: no session accounted there

my $q = ws_connect(path => '/quiet');
is($q->status, 101, 'railgun off: upgraded');
$q->text('quiet');
is(($q->read_message() || {})->{payload}, 'quiet', 'railgun off: echo');
$q->close_ws();

$m = $t->metrics();
is(scalar(grep { ($_->{labels}{path} // '') eq '/quiet' } @{$m->{series}}),
	0, 'railgun off: no series');

# OpenMetrics: the counter is a counter family of its own

$m = $t->metrics(accept => 'application/openmetrics-text; version=1.0.0');

is($m->{families}{railgun_websocket_connections_opened}{type}, 'counter',
	'OpenMetrics: sessions counter is a counter');
is($m->{families}{railgun_websocket_connections}{type}, 'gauge',
	'OpenMetrics: gauge');
is(sample($m, 'railgun_websocket_connections_opened_total', \%WS), 2,
	'OpenMetrics: sessions counter sample');

###############################################################################
