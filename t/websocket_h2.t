#!/usr/bin/perl

# An HTTP/2 client that asks for a WebSocket upgrade, which HTTP/2 has no
# place for (RFC 9113, 8.2.2; RFC 8441's extended CONNECT is not nginx's):
# nginx proxies the request with its Upgrade header, the backend answers
# 101, and nginx 1.22 starts a tunnel on the stream's fake connection,
# which fails at once (an epoll alert of nginx's own: the socket is the
# HTTP/2 connection's; nginx 1.25 refuses the header instead).  The 101 is
# a request, but no WebSocket session is counted.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(3);

ws_front($t, paths => [ '/ws' ],
	listen => [ '127.0.0.1:%%PORT_8082%% http2' ]);

###############################################################################

sub frame {
	my ($type, $flags, $id, $payload) = @_;
	return substr(pack('N', length $payload), 1) . pack('CCN', $type,
		$flags, $id) . $payload;
}

# HPACK: each header a literal without indexing, new name, no Huffman

sub hpack {
	my (@h) = @_;
	my $b = '';

	while (my ($k, $v) = splice @h, 0, 2) {
		$b .= "\x00" . chr(length $k) . $k . chr(length $v) . $v;
	}

	return $b;
}

my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8082))
	or die "connect: $!";

my $frames = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . frame(4, 0, 0, '')
	. frame(1, 0x5, 1, hpack(':method' => 'GET', ':scheme' => 'http',
		':path' => '/ws', ':authority' => 'localhost',
		'upgrade' => 'websocket',
		'sec-websocket-key' => 'dGhlIHNhbXBsZSBub25jZQ==',
		'sec-websocket-version' => '13'));

syswrite($s, $frames);

my ($got, $deadline) = ('', time() + 3);

while (time() < $deadline) {
	last unless IO::Select->new($s)->can_read($deadline - time());
	my $n = sysread($s, $got, 65536, length $got);
	last unless $n;
}

note('h2 answer: ' . unpack('H*', substr($got, 0, 200)));

my $m = $t->metrics();
my $st = ws_stats($m, { server => 'localhost', path => '/ws' });

# nginx 1.22 answers the 101 (later versions refuse the Upgrade header)
note('101s: ' . (sample_sum($m, 'railgun_http_requests_total',
	{ server => 'localhost', path => '/ws', status => '101' }) || 0));
is($st->{active}, 0, 'h2: no session open');
is($st->{total}, 0, 'h2: no session counted');

close $s;

my $m2 = wait_metrics($t, sub {
	ws_stats($_[0], { server => 'localhost', path => '/ws' })
		->{active} == 0
});
is(ws_stats($m2, { server => 'localhost', path => '/ws' })->{duration_count},
	0, 'h2: no session ended');

# the tunnel's alert, where nginx starts one, is nginx's, not the module's:
# dropped so that the harness's check of alerts stays meaningful

$t->stop();

my $log = $t->read_file('error.log');
my $epoll = join '', '^.*\[alert\].*epoll_ctl\(1, \d+\) failed ',
	'\(17: File exists\) while proxying upgraded connection.*\n';
$epoll = qr/$epoll/m;

$log =~ s/$epoll//g;
$t->write_file('error.log', $log);

###############################################################################
