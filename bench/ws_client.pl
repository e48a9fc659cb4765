#!/usr/bin/perl

# bench/ws_client.pl: one WebSocket session of N echoed messages.
#
#   ws_client.pl [--wait SECONDS] PORT PATH N SIZE
#
# Opens one connection to 127.0.0.1:PORT, upgrades PATH (checking the 101
# and its Sec-WebSocket-Accept), then sends N binary messages of SIZE bytes,
# each one masked frame with a key of its own, and reads each echo (one
# unmasked binary frame, compared with what was sent) before sending the
# next, so that it never runs ahead of a slow server (nginx under
# valgrind).  Then the closing handshake: a close frame (1000), the echoed
# close frame or the end of the stream, and the socket closed.  An error
# status, a bad echo or a connection closed early is fatal.
#
# --wait SECONDS retries the connect that long (a server still starting).
#
# Prints "messages=N size=SIZE seconds=S" on stdout.  Only Perl core modules
# are used.

use warnings;
use strict;

use Digest::SHA qw/ sha1 /;
use Getopt::Long;
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw/ encode_base64 /;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;
use Time::HiRes qw/ time sleep /;

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
my $TIMEOUT = 120;    # seconds for one echo, even under valgrind

my $wait = 0;

GetOptions('wait=f' => \$wait) and @ARGV == 4
	or die "usage: $0 [--wait S] PORT PATH N SIZE\n";

my ($port, $path, $n, $size) = @ARGV;

$SIG{PIPE} = 'IGNORE';

my $sock;
my $deadline = time() + $wait;

while (1) {
	$sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $port, Proto => 'tcp');
	last if $sock;
	die "ws_client: connect 127.0.0.1:$port: $!\n" if time() >= $deadline;
	sleep 0.2;
}

$sock->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
binmode $sock;

my $buf = '';
my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');

out("GET $path HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
	. "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\n"
	. "Sec-WebSocket-Version: 13\r\n\r\n");

my $end;
fill() until ($end = index($buf, "\r\n\r\n")) >= 0;
my $head = substr($buf, 0, $end + 4, '');

$head =~ m!^HTTP/1\.1 101 !
	or die "ws_client: no 101: " . ($head =~ /^([^\r\n]*)/)[0] . "\n";

my $accept = encode_base64(sha1($key . $GUID), '');
$head =~ /\r\nsec-websocket-accept:[ \t]*\Q$accept\E\r\n/i
	or die "ws_client: bad Sec-WebSocket-Accept\n";

# the payload: the same bytes every time, so that only the mask differs
my $payload = substr('0123456789abcdefghijklmnopqrstuvwxyz' x
	(int($size / 36) + 1), 0, $size);

my $start = time();

for my $i (1 .. $n) {
	out(frame(0x82, $payload));

	my ($b0, $echo) = read_frame();
	$b0 == 0x82 or die sprintf "ws_client: message %d: frame 0x%02x back\n",
		$i, $b0;
	$echo eq $payload
		or die "ws_client: message $i: echo of " . length($echo)
			. " bytes differs\n";
}

my $seconds = time() - $start;

# the closing handshake: the echoed close, or the end of the stream
out(frame(0x88, pack('n', 1000)));
my ($b0) = eval { read_frame() };
$b0 //= 0x88;
$b0 == 0x88 or die sprintf "ws_client: frame 0x%02x instead of a close\n", $b0;
close $sock;

printf "messages=%d size=%d seconds=%.3f\n", $n, $size, $seconds;

# a masked frame with FIN and the opcode in B0, a random key
sub frame {
	my ($b0, $data) = @_;

	my $len = length $data;
	my $mask = pack 'N', int rand 2**32;
	my $h = chr($b0);

	if ($len < 126) {
		$h .= chr(0x80 | $len);
	} elsif ($len < 65536) {
		$h .= chr(0x80 | 126) . pack('n', $len);
	} else {
		$h .= chr(0x80 | 127) . pack('NN', int($len / 2**32), $len % 2**32);
	}

	$data ^= substr($mask x (int($len / 4) + 1), 0, $len) if $len;

	return $h . $mask . $data;
}

# one whole (unmasked) frame: (first byte, payload)
sub read_frame {
	while (1) {
		if (length $buf >= 2) {
			my ($b0, $b1) = unpack 'CC', $buf;
			die "ws_client: a masked frame from the server\n" if $b1 & 0x80;

			my $len = $b1 & 0x7f;
			my $off = 2;

			if ($len == 126 && length $buf >= 4) {
				$len = unpack 'n', substr($buf, 2, 2);
				$off = 4;
			} elsif ($len == 127 && length $buf >= 10) {
				my ($hi, $lo) = unpack 'NN', substr($buf, 2, 8);
				$len = $hi * 2**32 + $lo;
				$off = 10;
			}

			if ($len < 126 || $off > 2) {
				if (length $buf >= $off + $len) {
					my $p = substr($buf, $off, $len);
					substr($buf, 0, $off + $len, '');
					return ($b0, $p);
				}
			}
		}

		fill();
	}
}

sub fill {
	IO::Select->new($sock)->can_read($TIMEOUT)
		or die "ws_client: no answer in $TIMEOUT seconds\n";

	my $r = sysread($sock, $buf, 1048576, length $buf);
	die "ws_client: read: $!\n" unless defined $r;
	die "ws_client: connection closed by the server\n" if $r == 0;
}

sub out {
	my ($data) = @_;

	my $off = 0;
	while ($off < length $data) {
		my $w = syswrite($sock, $data, length($data) - $off, $off);
		die "ws_client: write: $!\n" unless $w;
		$off += $w;
	}
}
