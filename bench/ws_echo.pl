#!/usr/bin/perl

# bench/ws_echo.pl: the WebSocket echo backend of the WebSocket benchmark.
#
#   ws_echo.pl PORT
#
# Listens on 127.0.0.1:PORT.  Answers every upgrade request with 101 (and
# its Sec-WebSocket-Accept), then sends every frame it receives back as it
# came (same FIN bit and opcode), unmasked; a close frame is answered by a
# close frame with the same payload, and the connection is closed.  Frames
# are parsed and re-sent whole, never split into more writes than the
# kernel asks for.  One process, any number of connections (a select loop);
# it runs outside valgrind, so that only the front nginx is measured.
#
# Exits on SIGTERM, SIGINT or SIGQUIT.  Only Perl core modules are used.

use warnings;
use strict;

use Digest::SHA qw/ sha1 /;
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw/ encode_base64 /;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

@ARGV == 1 or die "usage: $0 PORT\n";
my ($port) = @ARGV;

$SIG{$_} = sub { exit 0 } for qw/ TERM INT QUIT /;
$SIG{PIPE} = 'IGNORE';

my $listen = IO::Socket::INET->new(Listen => 64, LocalAddr => '127.0.0.1',
	LocalPort => $port, ReuseAddr => 1, Proto => 'tcp')
	or die "ws_echo: listen 127.0.0.1:$port: $!\n";

my $sel = IO::Select->new($listen);
my %conn;    # fileno => { sock, buf, open }

while (1) {
	for my $s ($sel->can_read()) {
		if ($s == $listen) {
			my $c = $listen->accept() or next;
			binmode $c;
			setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
			$conn{fileno $c} = { sock => $c, buf => '', open => 0 };
			$sel->add($c);
			next;
		}

		my $st = $conn{fileno $s};
		my $n = sysread($s, $st->{buf}, 1048576, length $st->{buf});

		if (!$n || !serve($st)) {
			$sel->remove($s);
			delete $conn{fileno $s};
			close $s;
		}
	}
}

# false when the connection is to be closed
sub serve {
	my ($st) = @_;

	unless ($st->{open}) {
		my $end = index($st->{buf}, "\r\n\r\n");
		return 1 if $end < 0;

		my $head = substr($st->{buf}, 0, $end + 4, '');
		my ($key) = $head =~ /\r\nsec-websocket-key:[ \t]*(\S+)/i;
		unless (defined $key) {
			out($st, "HTTP/1.1 400 Bad Request\r\n"
				. "Content-Length: 0\r\nConnection: close\r\n\r\n");
			return 0;
		}

		my $accept = encode_base64(sha1($key . $GUID), '');
		out($st, "HTTP/1.1 101 Switching Protocols\r\n"
			. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			. "Sec-WebSocket-Accept: $accept\r\n\r\n") or return 0;
		$st->{open} = 1;
	}

	while (my $f = frame(\$st->{buf})) {
		my ($b0, $payload) = @$f;
		my $len = length $payload;

		my $h = chr($b0);
		if ($len < 126) {
			$h .= chr($len);
		} elsif ($len < 65536) {
			$h .= chr(126) . pack('n', $len);
		} else {
			$h .= chr(127) . pack('NN', int($len / 2**32), $len % 2**32);
		}

		out($st, $h . $payload) or return 0;

		return 0 if ($b0 & 0x0f) == 8;    # close: answered, done
	}

	return 1;
}

# one whole frame off the front of $$buf: [first byte, unmasked payload],
# or undef while it is incomplete
sub frame {
	my ($buf) = @_;

	my $have = length $$buf;
	return undef if $have < 2;

	my ($b0, $b1) = unpack 'CC', $$buf;
	my $len = $b1 & 0x7f;
	my $off = 2;

	if ($len == 126) {
		return undef if $have < 4;
		$len = unpack 'n', substr($$buf, 2, 2);
		$off = 4;
	} elsif ($len == 127) {
		return undef if $have < 10;
		my ($hi, $lo) = unpack 'NN', substr($$buf, 2, 8);
		$len = $hi * 2**32 + $lo;
		$off = 10;
	}

	my $key;
	if ($b1 & 0x80) {
		return undef if $have < $off + 4;
		$key = substr($$buf, $off, 4);
		$off += 4;
	}

	return undef if $have < $off + $len;

	my $payload = substr($$buf, $off, $len);
	substr($$buf, 0, $off + $len, '');

	if (defined $key && $len) {
		$payload ^= substr($key x (int($len / 4) + 1), 0, $len);
	}

	return [$b0, $payload];
}

# a blocking write of all the bytes; false on an error
sub out {
	my ($st, $data) = @_;

	my $off = 0;
	while ($off < length $data) {
		my $w = syswrite($st->{sock}, $data, length($data) - $off, $off);
		return 0 unless $w;
		$off += $w;
	}

	return 1;
}
