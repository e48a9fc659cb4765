package BenchWire;

# The socket and WebSocket chores of the bench's clients and echo backend
# (client.pl, ws_client.pl, ws_echo.pl).  They run outside valgrind: only
# nginx is measured.  Core Perl only.
#
#   connect_wait(NAME, PORT, WAIT)
#       a TCP_NODELAY connection to 127.0.0.1:PORT, retried for WAIT
#       seconds (a server still starting); dies "NAME: connect ..."
#   write_all(SOCK, DATA)
#       a blocking write of all of DATA; false on an error
#   read_more(NAME, SOCK, \$BUF)
#       a blocking read of what comes, appended to $BUF; dies "NAME: ..."
#       on an error or the end of the stream
#   ws_frame(B0, PAYLOAD, MASK)
#       one frame: B0 (FIN and opcode) then the length, masked with a
#       random key of its own when MASK is true
#   ws_parse(\$BUF)
#       one whole frame off the front of $BUF: [B0, payload unmasked,
#       masked], or undef while it is incomplete
#   ws_accept(KEY)
#       the Sec-WebSocket-Accept of a Sec-WebSocket-Key

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ connect_wait write_all read_more ws_frame ws_parse
	ws_accept /;

use Digest::SHA qw/ sha1 /;
use IO::Socket::INET;
use MIME::Base64 qw/ encode_base64 /;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;
use Time::HiRes qw/ time sleep /;

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

sub connect_wait {
	my ($name, $port, $wait) = @_;

	my $sock;
	my $deadline = time() + ($wait || 0);

	while (1) {
		$sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
			PeerPort => $port, Proto => 'tcp');
		last if $sock;
		die "$name: connect 127.0.0.1:$port: $!\n" if time() >= $deadline;
		sleep 0.2;
	}

	$sock->setsockopt(IPPROTO_TCP, TCP_NODELAY, 1);
	binmode $sock;

	return $sock;
}

sub write_all {
	my ($sock, $data) = @_;

	my $off = 0;
	while ($off < length $data) {
		my $w = syswrite($sock, $data, length($data) - $off, $off);
		return 0 unless $w;
		$off += $w;
	}

	return 1;
}

sub read_more {
	my ($name, $sock, $buf) = @_;

	my $r = sysread($sock, $$buf, 262144, length $$buf);
	die "$name: read: $!\n" unless defined $r;
	die "$name: connection closed by the server\n" if $r == 0;
}

sub ws_frame {
	my ($b0, $data, $masked) = @_;

	my $len = length $data;
	my $m = $masked ? 0x80 : 0;
	my $h = chr($b0);

	if ($len < 126) {
		$h .= chr($m | $len);
	} elsif ($len < 65536) {
		$h .= chr($m | 126) . pack('n', $len);
	} else {
		$h .= chr($m | 127) . pack('NN', int($len / 2**32), $len % 2**32);
	}

	return $h . $data unless $masked;

	my $key = pack 'N', int rand 2**32;
	$data ^= substr($key x (int($len / 4) + 1), 0, $len) if $len;

	return $h . $key . $data;
}

sub ws_parse {
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

	return [$b0, $payload, defined $key ? 1 : 0];
}

sub ws_accept {
	my ($key) = @_;
	return encode_base64(sha1($key . $GUID), '');
}

1;
