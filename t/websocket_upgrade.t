#!/usr/bin/perl

# Tests that only an upgrade to WebSocket is a WebSocket session: a backend
# that answers 101 with "Upgrade: h2c" or a protocol of its own, and then
# sends bytes that would read as WebSocket frames, makes a request and a
# tunnel, counted once (status 101, at the 101), never messages.  So does a
# backend that answers "websocket" to a client that asked for h2c.  A 101
# that answers "Upgrade: WebSocket", in any case, is a session.  Every 101
# counts its own bytes in railgun_http_response_bytes_total, as the client
# received them.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use IO::Socket::INET;
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(37)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade $http_upgrade;
        proxy_set_header    Connection "upgrade";

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location / {
            railgun_path $uri;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
    }
}

EOF

# what the backend sends once upgraded, whatever the protocol: three frames
# of a WebSocket server, text "hello"

my $FRAMES = ws_frame(1, 'hello') x 3;

# the client's bytes: two masked frames of a WebSocket client
my $CLIENT = ws_frame(1, 'ping', mask => 1) . ws_frame(2, 'x' x 200, mask => 1);

# path => the backend's Upgrade header
my %ANSWER = (
	'/h2c' => 'h2c',
	'/custom' => 'x-railgun-tunnel/2',
	'/liar' => 'websocket',
	'/ws' => 'WebSocket',
	'/list' => 'foo, websocket/13',
);

my $listen = IO::Socket::INET->new(
	Proto => 'tcp',
	LocalAddr => '127.0.0.1:' . port(8081),
	Listen => 128,
	ReuseAddr => 1,
) or die "can't listen: $!";

$t->run_daemon(sub {
	$SIG{CHLD} = 'IGNORE';

	while (1) {
		my $c = $listen->accept() or next;
		my $pid = fork();
		next if !defined $pid;

		if ($pid == 0) {
			my $head = '';
			while ($head !~ /\r\n\r\n/) {
				sysread($c, $head, 4096, length $head) or POSIX::_exit(0);
			}

			my ($path) = $head =~ m!^GET (\S+)!;
			my $up = $ANSWER{$path} || 'h2c';

			syswrite($c, "HTTP/1.1 101 Switching Protocols\r\n"
				. "Upgrade: $up\r\nConnection: Upgrade\r\n\r\n" . $FRAMES);

			# read until the client is gone
			1 while sysread($c, my $buf, 65536);
			POSIX::_exit(0);
		}

		close $c;
	}
});

close $listen;
Test::Railgun::waitforsocket('127.0.0.1:' . port(8081)) or die "no backend";

$t->run();

###############################################################################

# One upgrade through nginx: the client's 101 head as received, and whether
# the backend's bytes came through untouched.

sub upgrade {
	my ($path, $protocol) = @_;

	my $s = IO::Socket::INET->new(
		Proto => 'tcp',
		PeerAddr => '127.0.0.1:' . port(8080),
	) or die "connect: $!";

	my $request = "GET $path HTTP/1.1\r\nHost: localhost\r\n"
		. "Upgrade: $protocol\r\nConnection: Upgrade\r\n";
	$request .= "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		. "Sec-WebSocket-Version: 13\r\n" if $protocol =~ /websocket/i;
	syswrite($s, "$request\r\n");

	my $buf = '';
	my $deadline = time() + 10;

	# the head, then exactly the backend's bytes
	while (time() < $deadline) {
		my $want = $buf =~ /^(.*?\r\n\r\n)/s
			? length($1) + length($FRAMES) - length $buf : 1;
		last if $want <= 0;
		sysread($s, $buf, $want, length $buf) or last;
	}

	my ($head, $rest) = $buf =~ /^(.*?\r\n\r\n)(.*)$/s;

	syswrite($s, $CLIENT);

	return { sock => $s, head => $head // '', rest => $rest // '' };
}

my $REQS = 'railgun_http_requests_total';

my %u;

for my $case (['/h2c', 'h2c'], ['/custom', 'x-railgun-tunnel/2'],
	['/liar', 'h2c'], ['/ws', 'websocket'], ['/list', 'WebSocket'])
{
	my ($path, $protocol) = @$case;
	my $x = upgrade($path, $protocol);

	like($x->{head}, qr!^HTTP/1\.1 101 !, "$path: upgraded");
	is($x->{rest}, $FRAMES, "$path: backend's bytes through untouched");

	$u{$path} = $x;
}

# the sessions are open: the WebSocket ones live, the others not sessions

my $m = wait_metrics($t, sub {
	ws_stats($_[0], { server => 'localhost', path => '/list' })
		->{in_messages} == 2
});

for my $path ('/h2c', '/custom', '/liar') {
	is(scalar(grep { ($_->{labels}{path} // '') eq $path
		&& $_->{name} =~ /^railgun_websocket_/ } @{$m->{series}}),
		0, "$path: no WebSocket series");
}

for my $path ('/ws', '/list') {
	my $s = ws_stats($m, { server => 'localhost', path => $path });
	is($s->{active}, 1, "$path: a session");
	is($s->{out_messages}, 3, "$path: backend's messages counted");
	is($s->{in_messages}, 2, "$path: client's messages counted");
}

# all closed: each tunnel ends at the log phase, which writes access.log

$_->{sock}->close() for values %u;

my $deadline = time() + 10;
my $log;
while (time() < $deadline) {
	$log = $t->read_file('access.log');
	last if (() = $log =~ /" 101 /g) >= 5;
	sleep 0.05;
}

is((() = $log =~ /" 101 /g), 5, 'five tunnels ended');

$m = wait_metrics($t, sub {
	ws_stats($_[0], { server => 'localhost' })->{active} == 0
});

for my $path (sort keys %u) {
	my %l = (server => 'localhost', path => $path);

	is(sample($m, $REQS, { %l, method => 'GET', status => '101' }), 1,
		"$path: one request, status 101");
	is(sample_sum($m, $REQS, \%l), 1, "$path: counted once");

	# the 101's own bytes, as the client received them; not the tunnel's
	is(sample($m, 'railgun_http_response_bytes_total', \%l),
		length $u{$path}{head}, "$path: response bytes are the 101's");
}

my $all = ws_stats($m, { server => 'localhost' });
is($all->{total}, 2, 'two WebSocket sessions in all');
is($all->{in_messages} + $all->{out_messages}, 10, 'their messages only');

###############################################################################
