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

use FindBin;
use Getopt::Long;
use IO::Select;
use MIME::Base64 qw/ encode_base64 /;
use Time::HiRes qw/ time /;

use lib $FindBin::Bin;
use BenchWire;

my $TIMEOUT = 120;    # seconds for one echo, even under valgrind

my $wait = 0;

GetOptions('wait=f' => \$wait) and @ARGV == 4
	or die "usage: $0 [--wait S] PORT PATH N SIZE\n";

my ($port, $path, $n, $size) = @ARGV;

$SIG{PIPE} = 'IGNORE';

my $sock = connect_wait('ws_client', $port, $wait);

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

my $accept = ws_accept($key);
$head =~ /\r\nsec-websocket-accept:[ \t]*\Q$accept\E\r\n/i
	or die "ws_client: bad Sec-WebSocket-Accept\n";

# the payload: the same bytes every time, so that only the mask differs
my $payload = substr('0123456789abcdefghijklmnopqrstuvwxyz' x
	(int($size / 36) + 1), 0, $size);

my $start = time();

for my $i (1 .. $n) {
	out(ws_frame(0x82, $payload, 1));

	my ($b0, $echo) = read_frame();
	$b0 == 0x82 or die sprintf "ws_client: message %d: frame 0x%02x back\n",
		$i, $b0;
	$echo eq $payload
		or die "ws_client: message $i: echo of " . length($echo)
			. " bytes differs\n";
}

my $seconds = time() - $start;

# the closing handshake: the echoed close, or the end of the stream
out(ws_frame(0x88, pack('n', 1000), 1));
my ($b0) = eval { read_frame() };
$b0 //= 0x88;
$b0 == 0x88 or die sprintf "ws_client: frame 0x%02x instead of a close\n", $b0;
close $sock;

printf "messages=%d size=%d seconds=%.3f\n", $n, $size, $seconds;

# one whole (unmasked) frame: (first byte, payload)
sub read_frame {
	while (1) {
		if (my $f = ws_parse(\$buf)) {
			die "ws_client: a masked frame from the server\n" if $f->[2];
			return ($f->[0], $f->[1]);
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
	write_all($sock, $data) or die "ws_client: write: $!\n";
}
