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

use FindBin;
use IO::Select;
use IO::Socket::INET;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;

use lib $FindBin::Bin;
use BenchWire;

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

		my $accept = ws_accept($key);
		out($st, "HTTP/1.1 101 Switching Protocols\r\n"
			. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			. "Sec-WebSocket-Accept: $accept\r\n\r\n") or return 0;
		$st->{open} = 1;
	}

	while (my $f = ws_parse(\$st->{buf})) {
		my ($b0, $payload) = @$f;

		out($st, ws_frame($b0, $payload, 0)) or return 0;

		return 0 if ($b0 & 0x0f) == 8;    # close: answered, done
	}

	return 1;
}

# a blocking write of all the bytes; false on an error
sub out {
	my ($st, $data) = @_;
	return write_all($st->{sock}, $data);
}
