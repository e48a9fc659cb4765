package Test::Railgun::WebSocket;

# WebSocket helpers for the railgun tests, frames written by hand so that a
# test chooses everything the module's frame reader must cope with:
#
#   ws_frame(OPCODE, PAYLOAD, fin => 1, mask => 1, rsv => 0, len => 7|16|64)
#       the bytes of one frame (RFC 6455, 5.2); mask => 1 picks a random key,
#       a 4-byte string is used as the key; len forces the length encoding
#   ws_header_pieces(BYTES)
#       a frame's bytes cut into pieces: each header byte, then the payload
#   ws_parse(\$buf)
#       takes one whole frame off the front of $buf:
#       {fin, rsv, opcode, masked, payload}, or undef if incomplete
#   ws_connect(port => 8080, path => '/ws', ssl => 0, early => BYTES)
#       a client: the upgrade request (with BYTES in the same write), the
#       response read up to its empty line; see the methods below
#   ws_backend($t, N)
#       a WebSocket backend on logical port N (see below)
#   ws_stats($scrape, \%labels)
#       the WebSocket families of one server and path, as a hash
#   wait_metrics($t, CODE, timeout => 10)
#       scrapes until CODE->($scrape) is true; returns the last scrape
#   ws_front($t, paths => [...], locations => TEXT, ...)
#       nginx proxying WebSocket locations to a ws_backend, started with it
#       (see below for the options)
#   ws_path_stats($t, PATH), ws_settle($t, PATH, %want), ws_counts(...)
#       the counts of one path of ws_front's server, now or once they are
#       those wanted
#   ws_workers($t, N, worker_connections => C)
#       nginx with N workers proxying /ws to a ws_backend, started; with
#       ws_session, ws_active, ws_wait_active and ws_kill_alerts, for the
#       tests that kill workers holding sessions (see below)
#
# Only Perl core modules and the Debian-packaged IO::Socket::SSL are used.

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ ws_frame ws_header_pieces ws_parse ws_connect ws_backend
	ws_stats wait_metrics ws_delta ws_front ws_path_stats ws_settle
	ws_counts ws_workers ws_session ws_active ws_wait_active
	ws_kill_alerts /;

use Digest::SHA qw/ sha1 /;
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw/ encode_base64 /;
use POSIX ();
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;
use Test::More ();
use Time::HiRes qw/ sleep time /;

use Test::Railgun qw/ port sample_sum /;

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

###############################################################################

# Frames.

sub ws_mask {
	my ($data, $key) = @_;

	my $len = length $data;
	return $data unless $len;

	my $k = substr($key x (int($len / 4) + 1), 0, $len);
	return $data ^ $k;
}

sub ws_frame {
	my ($opcode, $payload, %o) = @_;

	$payload = '' unless defined $payload;

	my $fin = exists $o{fin} ? $o{fin} : 1;
	my $len = length $payload;

	my $key = $o{mask};
	if ($key && length $key != 4) {
		$key = pack 'N', int rand 2**32;
	}

	my $m = $key ? 0x80 : 0;
	my $enc = $o{len} || ($len < 126 ? 7 : $len < 65536 ? 16 : 64);

	my $h = chr(($fin ? 0x80 : 0) | ($o{rsv} || 0) | ($opcode & 0x0f));

	if ($enc == 7) {
		$h .= chr($m | $len);

	} elsif ($enc == 16) {
		$h .= chr($m | 126) . pack('n', $len);

	} else {
		$h .= chr($m | 127)
			. pack('NN', int($len / 2**32), $len % 2**32);
	}

	return $h unless $len || $key;

	return $h . $key . ws_mask($payload, $key) if $key;
	return $h . $payload;
}

# The pieces of a frame's bytes with every header byte apart and the payload
# whole: for write(..., sizes => ...) or the backend's !pieces.

sub ws_header_pieces {
	my ($bytes) = @_;

	my $b1 = ord substr($bytes, 1, 1);
	my $len = $b1 & 0x7f;
	my $hlen = 2 + ($len == 126 ? 2 : $len == 127 ? 8 : 0)
		+ ($b1 & 0x80 ? 4 : 0);

	my @pieces = map { substr($bytes, $_, 1) } 0 .. $hlen - 1;
	push @pieces, substr($bytes, $hlen) if length $bytes > $hlen;

	return @pieces;
}

# A whole frame off the front of $$buf, or undef; the buffer is left alone
# until a frame is complete.

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

	return {
		fin => $b0 >> 7,
		rsv => $b0 & 0x70,
		opcode => $b0 & 0x0f,
		masked => defined $key ? 1 : 0,
		payload => defined $key ? ws_mask($payload, $key) : $payload,
	};
}

###############################################################################

# Both ends share the socket code: a blocking socket with TCP_NODELAY, an
# input buffer, reads bounded by a deadline.

package Test::Railgun::WebSocket::Peer;

use Time::HiRes qw/ sleep time /;
use Socket qw/ IPPROTO_TCP TCP_NODELAY /;

sub new {
	my ($class, $sock, %o) = @_;

	binmode $sock;
	setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1);

	return bless {
		sock => $sock,
		buf => '',
		eof => 0,
		mask => $o{mask},
		timeout => $o{timeout} || 10,
	}, $class;
}

# Writes bytes; split => N writes N bytes at a time, sizes => [...] pieces
# of those sizes (the rest whole), pause => S sleeps S seconds between
# pieces so that nginx reads every piece apart.  Returns false on an error.

sub write {
	my ($self, $data, %o) = @_;

	my @pieces;

	if ($o{split}) {
		for (my $i = 0; $i < length $data; $i += $o{split}) {
			push @pieces, substr($data, $i, $o{split});
		}

	} elsif ($o{sizes}) {
		my $off = 0;
		for my $n (@{$o{sizes}}) {
			last if $off >= length $data;
			push @pieces, substr($data, $off, $n);
			$off += $n;
		}
		push @pieces, substr($data, $off) if $off < length $data;

	} else {
		@pieces = ($data);
	}

	my $first = 1;

	for my $piece (@pieces) {
		sleep $o{pause} if $o{pause} && !$first;
		$first = 0;

		my $off = 0;
		while ($off < length $piece) {
			my $n = syswrite($self->{sock}, $piece,
				length($piece) - $off, $off);
			return 0 unless $n;
			$off += $n;
		}
	}

	return 1;
}

# One frame: masked when this end masks (the client) unless mask => 0 is
# given; write options as for write().

sub send_frame {
	my ($self, $opcode, $payload, %o) = @_;

	my %w;
	for (grep { exists $o{$_} } qw/ split sizes pause /) {
		$w{$_} = delete $o{$_};
	}
	$o{mask} = $self->{mask} unless exists $o{mask};

	return $self->write(Test::Railgun::WebSocket::ws_frame($opcode,
		$payload, %o), %w);
}

sub text { my $self = shift; $self->send_frame(1, @_) }
sub binary { my $self = shift; $self->send_frame(2, @_) }
sub ping { my $self = shift; $self->send_frame(9, @_) }
sub pong { my $self = shift; $self->send_frame(10, @_) }

# Reads what the socket has into the buffer, waiting until the deadline;
# false on timeout or end of stream.

sub fill {
	my ($self, $deadline) = @_;

	return 0 if $self->{eof};

	my $s = $self->{sock};

	unless ($s->can('pending') && $s->pending) {
		my $left = $deadline - time();
		return 0 if $left <= 0;
		return 0 unless IO::Select->new($s)->can_read($left);
	}

	my $n = sysread($s, $self->{buf}, 1048576, length $self->{buf});

	unless ($n) {
		# a TLS read may want more of a record: not the end yet
		return 1 if !defined $n && $s->can('errstr')
			&& ($! == POSIX::EAGAIN() || $! == POSIX::EINTR());
		$self->{eof} = 1;
		return 0;
	}

	return 1;
}

sub deadline {
	my ($self, $timeout) = @_;
	return time() + (defined $timeout ? $timeout : $self->{timeout});
}

# The next frame, or undef on timeout or end of stream.

sub read_frame {
	my ($self, $timeout) = @_;

	my $deadline = $self->deadline($timeout);

	while (1) {
		my $f = Test::Railgun::WebSocket::ws_parse(\$self->{buf});
		return $f if $f;
		$self->fill($deadline) or return undef;
	}
}

# The next data message, its fragments joined: {opcode, payload, frames,
# control => [control frames met inside or before it]}; undef on timeout or
# end of stream, or at a close frame (kept in $self->{close}).

sub read_message {
	my ($self, $timeout) = @_;

	my $deadline = $self->deadline($timeout);
	my ($msg, @control);

	while (1) {
		my $f = $self->read_frame($deadline - time()) or return undef;

		if ($f->{opcode} >= 8) {
			if ($f->{opcode} == 8) {
				$self->{close} = $f;
				return undef;
			}
			push @control, $f;
			next;
		}

		$msg ||= { opcode => $f->{opcode}, payload => '', frames => 0 };
		$msg->{payload} .= $f->{payload};
		$msg->{frames}++;

		if ($f->{fin}) {
			$msg->{control} = \@control;
			return $msg;
		}
	}
}

# Exactly n raw bytes, or what came before the timeout or the end.

sub read_bytes {
	my ($self, $n, $timeout) = @_;

	my $deadline = $self->deadline($timeout);

	while (length $self->{buf} < $n) {
		$self->fill($deadline) or last;
	}

	return substr($self->{buf}, 0, $n, '');
}

# True once the peer closed the connection (what is read meanwhile is
# dropped); false on timeout.

sub wait_eof {
	my ($self, $timeout) = @_;

	my $deadline = $self->deadline($timeout);

	while (!$self->{eof}) {
		$self->{buf} = '';
		$self->fill($deadline) or last;
	}

	return $self->{eof};
}

sub close {
	my ($self) = @_;

	if ($self->{sock}) {
		$self->{sock}->close();
		$self->{sock} = undef;
	}
}

###############################################################################

# The client.

package Test::Railgun::WebSocket::Client;

our @ISA = ('Test::Railgun::WebSocket::Peer');

# The closing handshake from the client: a close frame, then the socket
# closed at once (the "client close" of a session).

sub close_ws {
	my ($self, $code) = @_;

	$self->send_frame(8, pack('n', $code || 1000));
	$self->close();
}

sub status { $_[0]{status} }
sub header { $_[0]{headers}{lc $_[1]} }

package Test::Railgun::WebSocket;

sub ws_connect {
	my (%o) = @_;

	my $port = port($o{port} || 8080);
	my $path = $o{path} || '/ws';
	my $host = $o{host} || 'localhost';

	my $sock = IO::Socket::INET->new(
		Proto => 'tcp',
		PeerAddr => "127.0.0.1:$port",
	) or die "ws_connect: connect to $port: $!\n";

	if ($o{ssl}) {
		require IO::Socket::SSL;
		IO::Socket::SSL->start_SSL($sock,
			SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_NONE(),
			SSL_hostname => $host,
		) or die "ws_connect: TLS: " . IO::Socket::SSL::errstr() . "\n";
	}

	my $c = Test::Railgun::WebSocket::Client->new($sock, mask => 1,
		timeout => $o{timeout});

	my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');

	my $request = "GET $path HTTP/1.1\r\n"
		. "Host: $host\r\n"
		. "Upgrade: websocket\r\n"
		. "Connection: Upgrade\r\n"
		. "Sec-WebSocket-Key: $key\r\n"
		. "Sec-WebSocket-Version: 13\r\n"
		. join('', map { "$_\r\n" } @{$o{headers} || []})
		. "\r\n";

	# the first frames in the same write as the request
	$request .= $o{early} if defined $o{early};

	$c->write($request) or die "ws_connect: write: $!\n";

	my $deadline = $c->deadline();

	while ($c->{buf} !~ /\r\n\r\n/) {
		$c->fill($deadline) or last;
	}

	my $head = '';
	$head = $1 if $c->{buf} =~ s/^(.*?\r\n)\r\n//s;

	my ($status) = $head =~ m!^HTTP/1\.\d (\d{3})!;
	$c->{status} = $status;
	$c->{response} = $head;
	$c->{headers} = {};

	for (split /\r\n/, $head) {
		$c->{headers}{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
	}

	$c->{accept_ok} = ($c->{headers}{'sec-websocket-accept'} || '')
		eq encode_base64(sha1($key . $GUID), '');

	return $c;
}

###############################################################################

# The backend: a forking server on logical port N that answers any upgrade
# request with 101, then echoes frame by frame, unmasked, keeping each
# frame's fin bit and opcode:
#
#   - a ping gets a pong with its payload, a pong gets nothing;
#   - a close frame gets a close frame back, then the backend closes;
#   - a frame with RSV bits or a reserved opcode gets its payload back in
#     one valid binary frame (so that only the client's direction breaks);
#   - a final text frame starting with "!" is a command, not echoed:
#       !send N SIZE    N binary messages of SIZE bytes
#       !raw HEX        these bytes, in one write
#       !slow HEX       these bytes, one byte per write, 10 ms apart
#       !pieces HEX,... each piece in a write of its own, 10 ms apart
#       !close          close the connection without a close frame
#
# A request whose URI has "early=HEX" in its query gets those bytes in the
# same write as its 101 response, and "then=HEX" those bytes 50 ms later,
# before anything else; a path ending in "/raw" gets its bytes
# echoed as they come, unparsed.

sub ws_backend {
	my ($t, $n) = @_;

	my $port = port($n);

	my $listen = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 128,
		ReuseAddr => 1,
	) or die "ws_backend: can't listen on $port: $!";

	$t->run_daemon(sub {
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';

		while (1) {
			my $c = $listen->accept() or next;

			my $pid = fork();
			next if !defined $pid;

			if ($pid == 0) {
				close $listen;
				eval { backend_connection($c) };
				POSIX::_exit(0);
			}

			close $c;
		}
	});

	close $listen;
	Test::Railgun::waitforsocket("127.0.0.1:$port")
		or die "ws_backend on $port did not start\n";

	return $t;
}

sub backend_connection {
	my ($sock) = @_;

	my $c = Test::Railgun::WebSocket::Peer->new($sock, mask => 0,
		timeout => 3600);

	my $deadline = $c->deadline();

	while ($c->{buf} !~ /\r\n\r\n/) {
		$c->fill($deadline) or return;
	}

	$c->{buf} =~ s/^(.*?)\r\n\r\n//s;
	my ($line, @lines) = split /\r\n/, $1;
	my (undef, $uri) = split / /, $line;

	my %h;
	for (@lines) {
		$h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
	}

	my $accept = encode_base64(sha1(($h{'sec-websocket-key'} || '')
		. $GUID), '');

	my $response = "HTTP/1.1 101 Switching Protocols\r\n"
		. "Upgrade: websocket\r\n"
		. "Connection: Upgrade\r\n"
		. "Sec-WebSocket-Accept: $accept\r\n\r\n";

	$response .= pack 'H*', $1 if $uri =~ /[?&]early=([0-9a-fA-F]*)/;

	$c->write($response) or return;

	# the rest of a frame begun in the 101's write, in a write of its own
	if ($uri =~ /[?&]then=([0-9a-fA-F]*)/) {
		sleep 0.05;
		$c->write(pack 'H*', $1) or return;
	}

	if ($uri =~ m!/raw(?:\?|$)!) {
		while (1) {
			if (length $c->{buf}) {
				$c->write($c->{buf}) or return;
				$c->{buf} = '';
			}
			$c->fill($c->deadline()) or return;
		}
	}

	while (my $f = $c->read_frame()) {
		my $op = $f->{opcode};

		if ($f->{rsv} || ($op > 2 && $op < 8) || $op > 10) {
			$c->send_frame(2, $f->{payload});

		} elsif ($op == 8) {
			$c->send_frame(8, $f->{payload});
			last;

		} elsif ($op == 9) {
			$c->send_frame(10, $f->{payload});

		} elsif ($op == 10) {
			next;

		} elsif ($op == 1 && $f->{fin}
			&& $f->{payload} =~ /^!(\w+) ?(.*)/s)
		{
			my ($cmd, $arg) = ($1, $2);

			if ($cmd eq 'send') {
				my ($n, $size) = split / /, $arg;
				my $payload = substr('0123456789abcdef'
					x ($size / 16 + 1), 0, $size);
				$c->send_frame(2, $payload) for 1 .. $n;

			} elsif ($cmd eq 'raw') {
				$c->write(pack 'H*', $arg);

			} elsif ($cmd eq 'slow') {
				$c->write(pack('H*', $arg), split => 1,
					pause => 0.01);

			} elsif ($cmd eq 'pieces') {
				for my $hex (split /,/, $arg) {
					$c->write(pack 'H*', $hex);
					sleep 0.01;
				}

			} elsif ($cmd eq 'close') {
				last;
			}

		} else {
			$c->send_frame($op, $f->{payload}, fin => $f->{fin});
		}
	}

	$c->close();
}

###############################################################################

# Scrape helpers.

# The WebSocket families of one (server, path), as numbers (0 when absent).

sub ws_stats {
	my ($m, $labels) = @_;

	my %l = %$labels;
	my $v = sub {
		my ($name, %more) = @_;
		return sample_sum($m, $name, { %l, %more }) || 0;
	};

	my $d = 'railgun_websocket_connection_duration_seconds';

	return {
		active => $v->('railgun_websocket_connections'),
		total => $v->('railgun_websocket_connections_opened_total'),
		duration_count => $v->("${d}_count"),
		duration_sum => $v->("${d}_sum"),
		in_messages => $v->('railgun_websocket_messages_total',
			direction => 'in'),
		out_messages => $v->('railgun_websocket_messages_total',
			direction => 'out'),
		in_bytes => $v->('railgun_websocket_bytes_total',
			direction => 'in'),
		out_bytes => $v->('railgun_websocket_bytes_total',
			direction => 'out'),
		in_errors => $v->('railgun_websocket_protocol_errors_total',
			direction => 'in'),
		out_errors => $v->('railgun_websocket_protocol_errors_total',
			direction => 'out'),
	};
}

# What changed between two ws_stats.

sub ws_delta {
	my ($before, $after) = @_;
	return { map { $_ => $after->{$_} - $before->{$_} } keys %$after };
}

# Scrapes until CODE returns true for a scrape (at most every 50 ms, for
# timeout seconds); returns the last scrape.  The test then asserts on it,
# so a timeout shows as the failing values.

sub wait_metrics {
	my ($t, $code, %o) = @_;

	my $deadline = time() + ($o{timeout} || 10);
	my $m;

	while (1) {
		$m = $t->metrics(%{$o{scrape} || {}});
		return $m if $code->($m) || time() > $deadline;
		sleep 0.05;
	}
}

###############################################################################

# The usual front: ws_front($t, %o) writes nginx.conf, starts a ws_backend
# on logical port 8081 and nginx.  The http block has an "upstream ws_up"
# of that backend and a server "localhost" on 8080 that sets the upgrade
# headers for proxying and has an unaccounted /metrics; its locations are
#
#   paths => [PATH...]   a "location PATH { proxy_pass http://ws_up; }" each
#   locations => TEXT    more, as nginx.conf text (indented 8 spaces)
#
# and the rest of the configuration is given as text too:
#
#   main => TEXT         main context lines (after %%TEST_GLOBALS%%)
#   http => TEXT         http context lines, before the upstream
#   listen => [ADDR...]  more listen directives of the 8080 server
#   servers => TEXT      more server blocks (indented 4 spaces)
#   tls => 1             a self-signed cert.pem and key.pem in the test
#                        directory, for the servers' ssl_certificate
#
# The text is expanded as by write_file_expand (%%PORT_N%%); it returns $t.

sub ws_front {
	my ($t, %o) = @_;

	my $locations = join '', map { <<"EOF" } @{$o{paths} || []};

        location $_ {
            proxy_pass http://ws_up;
        }
EOF

	$locations .= "\n$o{locations}" if defined $o{locations};

	my $listen = join '', map { "        listen       $_;\n" }
		@{$o{listen} || []};

	my ($main, $http, $servers) = map { defined $_ ? $_ : '' }
		@o{qw/ main http servers /};
	$main = "\n$main" if length $main;
	$http = "\n$http" if length $http;
	$servers = "\n$servers" if length $servers;

	$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%
$main
events {
}

http {
    %%TEST_GLOBALS_HTTP%%
$http
    upstream ws_up {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
$listen        server_name  localhost;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade \$http_upgrade;
        proxy_set_header    Connection "upgrade";

        location = /metrics {
            railgun_metrics;
            railgun off;
        }
$locations    }
$servers}

EOF

	ws_cert($t) if $o{tls};

	ws_backend($t, 8081);
	$t->run();

	return $t;
}

# A self-signed certificate for localhost: cert.pem, key.pem.

sub ws_cert {
	my ($t) = @_;

	my $d = $t->testdir();

	system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
		. "-subj /CN=localhost -keyout $d/key.pem -out $d/cert.pem "
		. ">$d/openssl.out 2>&1") == 0
		or die "openssl req failed: " . $t->read_file('openssl.out');
}

# The ws_stats of a path of ws_front's server, in a new scrape.

sub ws_path_stats {
	my ($t, $path) = @_;
	return ws_stats($t->metrics(),
		{ server => 'localhost', path => $path });
}

# Polls until the counts of a path of ws_front's server are those wanted
# (and no session is active, unless active is wanted), then returns them:
# the wanted keys only, for is_deeply.

sub ws_settle {
	my ($t, $path, %want) = @_;

	my $l = { server => 'localhost', path => $path };
	$want{active} = 0 unless exists $want{active};

	my $m = wait_metrics($t, sub {
		my $s = ws_stats($_[0], $l);
		!grep { $s->{$_} != $want{$_} } keys %want;
	});

	my $s = ws_stats($m, $l);
	return { map { $_ => $s->{$_} } keys %want };
}

# Messages and bytes in, messages and bytes out, the errors in and out
# (0 if not given), as ws_stats keys.

sub ws_counts {
	my ($im, $ib, $om, $ob, $ie, $oe) = @_;
	return (in_messages => $im, in_bytes => $ib, out_messages => $om,
		out_bytes => $ob, in_errors => $ie || 0,
		out_errors => $oe || 0);
}

###############################################################################

# Workers holding sessions (t/websocket_kill.t, _slots.t, _workers.t).
#
# ws_workers($t, N, worker_connections => C) writes nginx.conf and starts
# nginx with N workers, each accepting on a listening socket of its own
# (reuseport), so that sessions spread over them; /ws is proxied to a
# ws_backend on logical port 8081 and names the worker that took it in
# "X-Worker: PID"; /metrics is not accounted.  It returns the workers'
# pids once N of them run (at most 30 s: the listening sockets accept
# before the master has forked every worker), fewer if they did not.

sub ws_workers {
	my ($t, $workers, %o) = @_;

	my $events = $o{worker_connections}
		? "    worker_connections $o{worker_connections};\n" : '';

	$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes $workers;

events {
$events}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        # each worker accepts on a socket of its own
        listen       127.0.0.1:%%PORT_8080%% reuseport;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ws {
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
            proxy_http_version  1.1;
            proxy_set_header    Upgrade \$http_upgrade;
            proxy_set_header    Connection "upgrade";

            add_header X-Worker \$pid always;
        }
    }
}

EOF

	ws_backend($t, 8081);
	$t->run();

	my $deadline = time() + 30;
	my @pids;

	while (1) {
		@pids = $t->worker_pids();
		last if @pids >= $workers || time() > $deadline;
		sleep 0.02;
	}

	return @pids;
}

# A session of ws_workers' nginx, its worker's pid in {worker}; undef if
# the upgrade was refused.

sub ws_session {
	my $ws = ws_connect(path => '/ws');
	return undef unless ($ws->status // 0) == 101;
	$ws->{worker} = $ws->header('X-Worker');
	return $ws;
}

# The sessions gauge of ws_workers' /ws, in $scrape or a new scrape; and a
# wait until it is $n (10 s at most), returning what it was last.

my %WORKERS_WS = (server => 'localhost', path => '/ws');

sub ws_active {
	my ($t, $scrape) = @_;
	return ws_stats($scrape || $t->metrics(), \%WORKERS_WS)->{active};
}

sub ws_wait_active {
	my ($t, $n) = @_;
	return ws_active($t,
		wait_metrics($t, sub { ws_active($t, $_[0]) == $n }));
}

# The master logs a killed worker's exit as an [alert]: ws_kill_alerts($t,
# PID...) stops nginx, returns every [alert] and [emerg] line of error.log,
# and takes the "worker process PID exited on signal 9" lines of these pids
# out of error.log (kept whole in error.log.orig), so that the harness'
# "no alerts" check covers everything else.

sub ws_kill_alerts {
	my ($t, @pids) = @_;

	$t->stop();

	my $log = $t->read_file('error.log');
	my @alerts = $log =~ /^.*\[(?:alert|emerg)\].*$/mg;
	my %killed = map { $_ => 1 } @pids;

	$t->write_file('error.log.orig', $log);
	$log =~ s/^.*worker process (\d+) exited on signal 9\b.*\n/
		$killed{$1} ? '' : $&/mge;
	$t->write_file('error.log', $log);

	return @alerts;
}

1;
