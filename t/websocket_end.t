#!/usr/bin/perl

# Tests for the end of WebSocket sessions, whoever ends them: the client
# (close frame or plain close), the upstream (close frame or plain close),
# proxy_read_timeout, a reload whose old worker carries sessions until
# worker_shutdown_timeout, and nginx's own shutdown (QUIT).  Every time the
# gauge goes back to 0 and the session duration is observed once.

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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(38);

# the session's debug lines (nginx is built --with-debug on Debian) tell
# what a scrape cannot after QUIT; the usual log is kept for http too
my $d = $t->testdir();

ws_front($t, main => "worker_shutdown_timeout 1s;\n",
	http => "    error_log $d/error.log info;\n"
		. "    error_log $d/debug.log debug_http;\n",
	paths => [ '/ws' ], locations => <<'EOF');
        location /timeout {
            proxy_pass http://ws_up;
            proxy_read_timeout 1s;
            railgun_websocket_buckets 0.25 3;
        }
EOF

###############################################################################

my %WS = (server => 'localhost', path => '/ws');

sub stats {
	my ($l) = @_;
	return ws_stats($t->metrics(), $l || \%WS);
}

# polls until the gauge is $active and $ended sessions more were observed
# than in $before; returns the stats

sub ended {
	my ($before, $active, $ended, $l) = @_;

	$l ||= \%WS;

	my $m = wait_metrics($t, sub {
		my $s = ws_stats($_[0], $l);
		$s->{active} == $active && $s->{duration_count}
			== $before->{duration_count} + $ended;
	});

	return ws_stats($m, $l);
}

sub session {
	my ($path) = @_;

	my $ws = ws_connect(path => $path || '/ws');
	$ws->text('hi');
	my $msg = $ws->read_message();
	return ($msg && $msg->{payload} eq 'hi') ? $ws : undef;
}

my ($ws, $s);
my $before = stats();

# the client: a close frame, then its socket closed

$ws = session();
ok($ws, 'client close: session');
is(stats()->{active}, 1, 'client close: active');
$ws->close_ws();

$s = ended($before, 0, 1);
is($s->{active}, 0, 'client close: gauge back to 0');
is($s->{duration_count}, $before->{duration_count} + 1,
	'client close: duration observed');
$before = $s;

# the client: the socket closed without a close frame

$ws = session();
ok($ws, 'client abort: session');
$ws->close();

$s = ended($before, 0, 1);
is($s->{active}, 0, 'client abort: gauge back to 0');
is($s->{duration_count}, $before->{duration_count} + 1,
	'client abort: duration observed');
$before = $s;

# the upstream: the backend answers a close frame with one and closes

$ws = session();
ok($ws, 'close handshake: session');
$ws->send_frame(8, pack('n', 1000));
my $f = $ws->read_frame();
ok($f && $f->{opcode} == 8, 'close handshake: close frame back');
ok($ws->wait_eof(), 'close handshake: closed by nginx');
$ws->close();

$s = ended($before, 0, 1);
is($s->{active}, 0, 'close handshake: gauge back to 0');
is($s->{duration_count}, $before->{duration_count} + 1,
	'close handshake: duration observed');
$before = $s;

# the upstream: the backend closes without a close frame

$ws = session();
ok($ws, 'upstream close: session');
$ws->text('!close');
ok($ws->wait_eof(), 'upstream close: closed by nginx');
$ws->close();

$s = ended($before, 0, 1);
is($s->{active}, 0, 'upstream close: gauge back to 0');
is($s->{duration_count}, $before->{duration_count} + 1,
	'upstream close: duration observed');
$before = $s;

# proxy_read_timeout 1s: an idle session is ended by nginx; "about 1 s",
# nginx's timers run on its cached clock (a loaded machine saw 0.85 s)

my %TO = (server => 'localhost', path => '/timeout');

my $start = time();
$ws = session('/timeout');
ok($ws, 'timeout: session');
ok($ws->wait_eof(10), 'timeout: closed by nginx');
my $took = time() - $start;
ok($took >= 0.5 && $took < 5, 'timeout: after about 1 s')
	or diag("took $took s");
$ws->close();

my $m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], \%TO);
	$x->{active} == 0 && $x->{duration_count} == 1;
});
$s = ws_stats($m, \%TO);
is($s->{active}, 0, 'timeout: gauge back to 0');
is($s->{duration_count}, 1, 'timeout: duration observed');
ok($s->{duration_sum} >= 0.5, 'timeout: duration about 1 s')
	or diag("sum $s->{duration_sum}");
is(sample($m, 'railgun_websocket_connection_duration_seconds_bucket',
	{ %TO, le => '0.25' }), 0, 'timeout: not in le=0.25');
is(sample($m, 'railgun_websocket_connection_duration_seconds_bucket',
	{ %TO, le => '3' }), 1, 'timeout: in le=3 (railgun_websocket_buckets)');

# a reload: the old worker carries two sessions until worker_shutdown_timeout
# ends them; meanwhile they are counted once, not twice, not dropped

my @ws = map { session() } 1 .. 2;
is(scalar(grep { defined } @ws), 2, 'reload: sessions');

my $total = stats()->{total};
my %old = map { $_ => 1 } $t->worker_pids();

kill 'HUP', $t->master_pid();
$start = time();

my $deadline = time() + 10;
sleep 0.02 while time() < $deadline && !grep { !$old{$_} } $t->worker_pids();

$s = stats();
ok((grep { $old{$_} } $t->worker_pids()),
	'reload: scraped while the old worker lives');
is($s->{active}, 2, 'reload: sessions of the old worker counted once');
is($s->{total}, $total, 'reload: sessions total kept');

$ws[0]->text('still');
is(($ws[0]->read_message() || {})->{payload}, 'still',
	'reload: old worker still proxies');

ok((grep { $_->wait_eof(10) } @ws) == 2, 'reload: sessions ended');
ok(time() - $start >= 0.9, 'reload: at worker_shutdown_timeout')
	or diag('after ' . (time() - $start) . ' s');
$_->close() for @ws;

$s = ended($before, 0, 2);
is($s->{active}, 0, 'reload: gauge back to 0');
is($s->{duration_count}, $before->{duration_count} + 2,
	'reload: durations observed');
$before = $s;

# nginx's own shutdown: QUIT, the session ended by worker_shutdown_timeout;
# no scrape after the exit, the session's debug lines tell instead

$ws = session();
ok($ws, 'quit: session');

my $debug = $t->read_file('debug.log');
my $starts = () = $debug =~ /railgun websocket session start/g;
my $ends = () = $debug =~ /railgun websocket session end/g;

SKIP: {
	skip 'nginx built without --with-debug', 1
		unless `$Test::Railgun::NGINX -V 2>&1` =~ /--with-debug/;

	is("$starts $ends", '8 7', 'quit: sessions started, ended so far');
}

$start = time();
$t->stop();
my $stopped = time() - $start;

ok($ws->wait_eof(1), 'quit: session closed');
ok($stopped >= 0.9 && $stopped < 10, 'quit: nginx exited after the timeout')
	or diag("after $stopped s");

SKIP: {
	skip 'nginx built without --with-debug', 1
		unless `$Test::Railgun::NGINX -V 2>&1` =~ /--with-debug/;

	$debug = $t->read_file('debug.log');
	$ends = () = $debug =~ /railgun websocket session end/g;
	is($ends, 8, 'quit: session ended');
}

###############################################################################
