#!/usr/bin/perl

# Tests for WebSocket frame accounting: exact message and payload byte counts
# in both directions for payload sizes around the 7-, 16- and 64-bit length
# encodings and a multi-megabyte message, fragmented messages with control
# frames between the fragments, frame headers split across writes down to
# one byte, frames buffered before the tunnel starts on either side, and
# protocol violations: counted once per direction and session, later frames
# of that direction not counted, the bytes still proxied intact.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(58);

# the raw backend echoes bytes as they come, unparsed
ws_front($t, paths => [qw{ /sizes /fragments /split /early /violation /raw }]);

###############################################################################

sub hex_of { unpack 'H*', $_[0] }

# sizes around the length encodings and 3 MB, masked in, unmasked out,
# then 100 small messages in one write

my @sizes = (0, 1, 125, 126, 127, 65535, 65536, 3 * 1024 * 1024);
my $total = 0;

my $ws = ws_connect(path => '/sizes');
is($ws->status, 101, 'sizes: upgraded');

for my $size (@sizes) {
	my $payload = join '', map { chr(($_ * 7) & 0xff) } 0 .. 255;
	$payload = substr($payload x ($size / 256 + 1), 0, $size);
	$total += $size;

	$ws->binary($payload);
	my $echo = $ws->read_message(30);

	ok($echo && $echo->{payload} eq $payload && $echo->{opcode} == 2,
		"sizes: $size bytes echoed intact");
}

$ws->write(join '', map { ws_frame(1, "m$_", mask => 1) } 1 .. 100);
my @echo = grep { defined } map { $ws->read_message() } 1 .. 100;
is(join(',', map { $_->{payload} } @echo), join(',', map { "m$_" } 1 .. 100),
	'sizes: 100 messages in one write echoed');

my $small = 0;
$small += length "m$_" for 1 .. 100;

$ws->close_ws();

is_deeply(ws_settle($t, '/sizes',
	ws_counts(108, $total + $small, 108, $total + $small)),
	{ ws_counts(108, $total + $small, 108, $total + $small), active => 0 },
	'sizes: exact counts');

# fragmented messages, control frames between fragments, both directions;
# fragments with 16- and 64-bit lengths

$ws = ws_connect(path => '/fragments');

$ws->write(ws_frame(1, 'abc', fin => 0, mask => 1)
	. ws_frame(9, 'p1', mask => 1)
	. ws_frame(0, 'defg', fin => 0, mask => 1)
	. ws_frame(10, 'unsolicited', mask => 1)
	. ws_frame(0, '', fin => 0, mask => 1)
	. ws_frame(0, 'hi', mask => 1));

my $msg = $ws->read_message();
is($msg && $msg->{payload}, 'abcdefghi', 'fragments: message echoed');
is($msg && $msg->{frames}, 4, 'fragments: as 4 frames');
is($msg && join(',', map { "$_->{opcode}:$_->{payload}" } @{$msg->{control}}),
	'10:p1', 'fragments: pong between the fragments');

my $big = ws_frame(2, 'a' x 200, fin => 0, mask => 1)
	. ws_frame(9, 'q' x 125, mask => 1)
	. ws_frame(0, 'b' x 70000, fin => 0, mask => 1)
	. ws_frame(0, 'c' x 5, mask => 1);
$ws->write($big);

$msg = $ws->read_message();
is($msg && length $msg->{payload}, 70205, 'fragments: long fragments');

# out: the backend writes a fragmented message with a ping and a pong
# between its fragments, and an empty one in 3 empty fragments

my $out = ws_frame(1, 'out1', fin => 0)
	. ws_frame(9, 'x')
	. ws_frame(0, 'out22', fin => 0)
	. ws_frame(10, '')
	. ws_frame(0, 'out333')
	. ws_frame(2, '', fin => 0)
	. ws_frame(0, '', fin => 0)
	. ws_frame(0, '');
my $cmd = '!raw ' . hex_of($out);
$ws->text($cmd);

$msg = $ws->read_message();
is($msg && $msg->{payload}, 'out1out22out333', 'fragments: backend message');
is($msg && scalar @{$msg->{control}}, 2, 'fragments: backend control frames');
$msg = $ws->read_message();
ok($msg && $msg->{payload} eq '' && $msg->{frames} == 3,
	'fragments: backend empty message');

$ws->close_ws();

is_deeply(ws_settle($t, '/fragments',
	ws_counts(3, 9 + 70205 + length $cmd, 4, 9 + 70205 + 15)),
	{ ws_counts(3, 9 + 70205 + length $cmd, 4, 9 + 70205 + 15),
	active => 0 }, 'fragments: exact counts');

# headers split across writes down to one byte, 10 ms apart so that nginx
# reads every piece apart

$ws = ws_connect(path => '/split');

my @frames = (
	[ 1, 'hello' ],         # 7-bit length
	[ 2, 'x' x 300 ],       # 16-bit
	[ 2, 'y' x 70000 ],     # 64-bit
	[ 1, '' ],
);

for my $f (@frames) {
	my $bytes = ws_frame(@$f, mask => 1);
	my $hlen = length($bytes) - length($f->[1]);

	# every header byte on its own, then the payload in two pieces
	$ws->write($bytes, sizes => [ (1) x $hlen, int(length($f->[1]) / 2) ],
		pause => 0.01);

	$msg = $ws->read_message();
	ok($msg && $msg->{payload} eq $f->[1],
		'split: ' . length($f->[1]) . " bytes in, header of $hlen");
}

# the boundary inside a header of the second frame of a write
my $two = ws_frame(1, 'one', mask => 1) . ws_frame(1, 'two', mask => 1);
$ws->write($two, sizes => [ 10, 1, 1 ], pause => 0.01);
is(join(',', map { ($ws->read_message() || {})->{payload} // '' } 1 .. 2),
	'one,two', 'split: second header split');

# out, every header byte in a write of its own: 7-bit, 16-bit and 64-bit
# lengths (one of them not minimal), a fragmented message with a ping
# inside, and an empty message
my @slow = (ws_frame(1, 'slow'), ws_frame(2, 'z' x 130),
	ws_frame(2, 'w' x 70000), ws_frame(2, '0123', len => 64),
	ws_frame(1, 'ab', fin => 0), ws_frame(9, 'p'), ws_frame(0, 'c'),
	ws_frame(2, ''));
my $scmd = '!pieces ' . join ',', map { hex_of($_) }
	map { ws_header_pieces($_) } @slow;
$ws->text($scmd);

is(join(',', map { length(($ws->read_message() || {})->{payload} // '') }
	1 .. 6), '4,130,70000,4,3,0',
	'split: backend headers one byte per write');

$ws->close_ws();

my $in_bytes = 5 + 300 + 70000 + 0 + 6 + length $scmd;
my $out_bytes = 5 + 300 + 70000 + 0 + 6 + 4 + 130 + 70000 + 4 + 3 + 0;

is_deeply(ws_settle($t, '/split', ws_counts(7, $in_bytes, 12, $out_bytes)),
	{ ws_counts(7, $in_bytes, 12, $out_bytes), active => 0 },
	'split: exact counts');

# bytes buffered before the tunnel starts: the client's first frames in the
# same write as its upgrade request, the backend's in the same write as its
# 101; each side's buffered bytes end inside a frame header, whose rest
# comes in a later write

my $in_a = ws_frame(1, 'early-in', mask => 1);
my $in_b = ws_frame(1, 'then', mask => 1);
my $out_a = ws_frame(1, 'early-out', fin => 0) . ws_frame(9, '')
	. ws_frame(0, '!');
my $out_b = ws_frame(2, 'later');

$ws = ws_connect(path => '/early?early=' . hex_of($out_a . substr($out_b, 0, 1))
	. '&then=' . hex_of(substr($out_b, 1)),
	early => $in_a . substr($in_b, 0, 3));
is($ws->status, 101, 'early: upgraded');

$msg = $ws->read_message();
is($msg && $msg->{payload}, 'early-out!', 'early: frames after the 101');

$msg = $ws->read_message();
is($msg && $msg->{payload}, 'later', 'early: backend header finished');

$msg = $ws->read_message();
is($msg && $msg->{payload}, 'early-in', 'early: frame after the request');

$ws->write(substr($in_b, 3));
$msg = $ws->read_message();
is($msg && $msg->{payload}, 'then', 'early: header finished after upgrade');

$ws->close_ws();

is_deeply(ws_settle($t, '/early', ws_counts(2, 8 + 4, 4, 10 + 5 + 8 + 4)),
	{ ws_counts(2, 8 + 4, 4, 10 + 5 + 8 + 4), active => 0 },
	'early: exact counts');

# a violation from the client: a reserved opcode (the backend answers its
# payload in a valid binary frame); later client messages not counted, the
# other direction still counted

$ws = ws_connect(path => '/violation');

my @got;
for my $f ([ 1, 'ok1' ], [ 1, 'ok2' ], [ 3, 'bad' ], [ 1, 'ok3' ],
	[ 2, 'ok4' ])
{
	$ws->send_frame(@$f);
	push @got, ($ws->read_message() || {})->{payload} // '-';
}

is(join(',', @got), 'ok1,ok2,bad,ok3,ok4', 'violation in: all echoed');

my $v = ws_settle($t, '/violation', ws_counts(2, 6, 5, 15, 1, 0),
	active => 1);
is_deeply($v, { ws_counts(2, 6, 5, 15, 1, 0), active => 1 },
	'violation in: counted, later messages in not');

$ws->close_ws();

# a violation from the backend: RSV2 set on a text frame

$ws = ws_connect(path => '/violation');

$cmd = '!raw ' . hex_of(ws_frame(1, 'rsv2', rsv => 0x20) . ws_frame(1, 'o'));
$ws->text($cmd);

my $f = $ws->read_frame();
ok($f && $f->{rsv} == 0x20 && $f->{payload} eq 'rsv2',
	'violation out: frame passed intact');
is(($ws->read_message() || {})->{payload}, 'o', 'violation out: next frame');

$ws->text('ok5');
is(($ws->read_message() || {})->{payload}, 'ok5', 'violation out: echo');

$ws->close_ws();

$v = ws_settle($t, '/violation',
	ws_counts(2 + 2, 6 + length($cmd) + 3, 5, 15, 1, 1));
is_deeply($v, { ws_counts(2 + 2, 6 + length($cmd) + 3, 5, 15, 1, 1),
	active => 0 }, 'violation out: counted, later messages out not');

# each kind of violation, in a session of its own through a backend that
# echoes raw bytes (so both directions see it): a valid message before it
# is counted, one after it is not, the bytes come back intact

my @violations = (
	[ 'reserved data opcode', ws_frame(3, 'r', mask => 1) ],
	[ 'reserved control opcode', ws_frame(0xb, '', mask => 1) ],
	[ 'RSV2', ws_frame(1, 'a', rsv => 0x20, mask => 1) ],
	[ 'RSV3', ws_frame(1, 'a', rsv => 0x10, mask => 1) ],
	[ 'continuation without a message', ws_frame(0, 'c', mask => 1) ],
	# the first fragment's payload passes before the violation: 1 byte
	[ 'data frame inside a fragmented message',
		ws_frame(1, 'a', fin => 0, mask => 1)
		. ws_frame(2, 'b', mask => 1), 1 ],
	[ 'control frame of 126 bytes', ws_frame(9, 'p' x 126, mask => 1) ],
	[ 'fragmented control frame', ws_frame(9, 'p', fin => 0, mask => 1) ],
	[ '64-bit length with the top bit set',
		"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x05" . "\x00" x 4 ],
);

my $before = ws_path_stats($t, '/raw');

for my $case (@violations) {
	my ($name, $bad, $extra) = @$case;
	$extra //= 0;

	$ws = ws_connect(path => '/raw');

	my $bytes = ws_frame(1, 'ok', mask => 1) . $bad
		. ws_frame(1, 'after', mask => 1);
	$ws->write($bytes);

	my $back = $ws->read_bytes(length $bytes);
	ok($back eq $bytes, "$name: bytes intact");

	$ws->close();

	my $want = { ws_counts(1, 2 + $extra, 1, 2 + $extra, 1, 1),
		active => 0 };
	my $m = wait_metrics($t, sub {
		my $d = ws_delta($before, ws_stats($_[0],
			{ server => 'localhost', path => '/raw' }));
		!grep { $d->{$_} != $want->{$_} } keys %$want;
	});
	my $after = ws_stats($m, { server => 'localhost', path => '/raw' });
	my $d = ws_delta($before, $after);

	is_deeply({ map { $_ => $d->{$_} } keys %$want }, $want,
		"$name: counted once each way, later message not");

	$before = $after;
}

# RSV1 (permessage-deflate) is no violation

$ws = ws_connect(path => '/raw');
my $rsv1 = ws_frame(1, 'z', rsv => 0x40, mask => 1)
	. ws_frame(1, 'ok', mask => 1);
$ws->write($rsv1);
is($ws->read_bytes(length $rsv1), $rsv1, 'RSV1: bytes intact');
$ws->close();

my $want = { ws_counts(2, 3, 2, 3, 0, 0), active => 0 };
my $m = wait_metrics($t, sub {
	my $d = ws_delta($before, ws_stats($_[0],
		{ server => 'localhost', path => '/raw' }));
	!grep { $d->{$_} != $want->{$_} } keys %$want;
});
my $d = ws_delta($before,
	ws_stats($m, { server => 'localhost', path => '/raw' }));
is_deeply({ map { $_ => $d->{$_} } keys %$want }, $want, 'RSV1: counted');

###############################################################################
