#!/usr/bin/perl

# Tests for the writes of a big frame that the tunnel passes unread: inside
# a payload a write is not looked at, and the bytes that passed are counted
# at the next write read or when the connection closes.  Frames cut short
# by either side's close count exactly the payload bytes that crossed, in
# both directions (the upstream's side counted when its connection goes,
# before the log phase); a long payload shows in the zone while it crosses,
# at most 64 KB behind; a control frame's payload passing unread counts
# nothing; a message that nginx sends in partial writes to a client that
# does not read counts once, and the frames after it count too.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ sleep /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(13);

# the backend echoes the bytes of /cut/raw as they come, unparsed
ws_front($t, paths => [qw{ /cut/raw /back /control /stall }]);

###############################################################################

# the client cuts a frame short: a binary frame of 1 MB, masked (a 14-byte
# header), of which 300,000 payload bytes are sent in writes of 16 KB; the
# raw backend echoes them, so the frame is cut short both ways

my $sent = 300000;
my $cut = substr(ws_frame(2, 'x' x 1048576, mask => 1), 0, 14 + $sent);

my $ws = ws_connect(path => '/cut/raw');
is($ws->status, 101, 'cut: upgraded');

$ws->write($cut, split => 16384);
is(length($ws->read_bytes(length $cut, 30)), length $cut, 'cut: echoed');

# while the frame crosses, its bytes show at most 64 KB behind

my $live = settle_live('/cut/raw', $sent);
ok($live->{in_bytes} >= $sent - 65536 && $live->{in_bytes} <= $sent,
	'cut: bytes in shown while the frame crosses')
	or diag("in $live->{in_bytes} of $sent");
ok($live->{out_bytes} >= $sent - 65536 && $live->{out_bytes} <= $sent,
	'cut: bytes out shown while the frame crosses')
	or diag("out $live->{out_bytes} of $sent");

$ws->close();

is_deeply(ws_settle($t, '/cut/raw', ws_counts(0, $sent, 0, $sent)),
	{ ws_counts(0, $sent, 0, $sent), active => 0 },
	'cut: exact bytes both ways');

# the backend cuts a frame short: the header of a 2 MB frame and 100,000
# payload bytes, then it closes

my $back = 100000;
my $raw = '!raw ' . unpack('H*',
	substr(ws_frame(2, 'y' x (2 * 1048576)), 0, 10 + $back));

$ws = ws_connect(path => '/back');
$ws->text($raw);
is(length($ws->read_bytes(10 + $back, 30)), 10 + $back, 'back: received');
$ws->text('!close');

ok($ws->wait_eof(10), 'back: closed by the backend');
$ws->close();

is_deeply(ws_settle($t, '/back', ws_counts(2, length($raw) + 6, 0, $back)),
	{ ws_counts(2, length($raw) + 6, 0, $back), active => 0 },
	'back: exact bytes, no message');

# a ping's payload in writes of one byte passes unread and counts nothing;
# the text frame after it counts

my $ping = ws_frame(9, 'p' x 100);
my $cmd = '!slow ' . unpack('H*', $ping . ws_frame(1, 'x'));

$ws = ws_connect(path => '/control');
$ws->text($cmd);

my $msg = $ws->read_message(30);
ok($msg && $msg->{payload} eq 'x' && @{$msg->{control}} == 1,
	'control: ping, then the message');
$ws->close_ws();

is_deeply(ws_settle($t, '/control', ws_counts(1, length $cmd, 1, 1)),
	{ ws_counts(1, length $cmd, 1, 1), active => 0 },
	'control: its payload not counted');

# a client that does not read: nginx's writes of a 3 MB message are partial
# and wait; then it reads, and the small messages after it count too

my $big = 3 * 1024 * 1024;

$ws = ws_connect(path => '/stall');
$ws->text("!send 1 $big");
$ws->text('!send 3 10');
sleep 0.5;

$msg = $ws->read_message(30);
is(length(($msg || {})->{payload} // ''), $big, 'stall: the big message');

my $n = grep { ($_ || {})->{payload} && length $_->{payload} == 10 }
	map { $ws->read_message(10) } 1 .. 3;
is($n, 3, 'stall: the small ones after it');

$ws->close_ws();

my $in = length("!send 1 $big") + length('!send 3 10');
is_deeply(ws_settle($t, '/stall', ws_counts(2, $in, 4, $big + 30)),
	{ ws_counts(2, $in, 4, $big + 30), active => 0 },
	'stall: exact counts');

###############################################################################

# polls, while the session lives, until both directions show some bytes of
# the frame; returns the counts

sub settle_live {
	my ($path, $sent) = @_;

	my $l = { server => 'localhost', path => $path };

	my $m = wait_metrics($t, sub {
		my $s = ws_stats($_[0], $l);
		$s->{active} == 1 && $s->{in_bytes} >= $sent - 65536
			&& $s->{out_bytes} >= $sent - 65536;
	});

	return ws_stats($m, $l);
}

###############################################################################
