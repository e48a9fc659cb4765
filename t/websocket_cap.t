#!/usr/bin/perl

# Tests that nothing overflows silently in the WebSocket families: with
# railgun_max_series 2 and four WebSocket paths, the sessions past the cap of
# each family go to its overflow series, and railgun_series_dropped_total
# counts every update they made there, per family, as the client counts its
# sessions and messages.

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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(15)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_max_series 2;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ws/ {
            railgun_path $uri;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
            proxy_http_version  1.1;
            proxy_set_header    Upgrade $http_upgrade;
            proxy_set_header    Connection "upgrade";
        }
    }
}

EOF

ws_backend($t, 8081);
$t->run();

###############################################################################

my @paths = map { "/ws/$_" } qw/ a b c d /;
my $N = 3;                   # messages each way, one at a time

my @open;
my $echoed = 0;

for my $path (@paths) {
	my $ws = ws_connect(path => $path);
	next unless ($ws->status // 0) == 101;

	for my $i (1 .. $N) {
		$ws->text("message $i");
		$echoed++ if (($ws->read_message() || {})->{payload} // '')
			eq "message $i";
	}

	push @open, $ws;
}

is(scalar @open, 4, 'four sessions');
is($echoed, 4 * $N, 'every message echoed');

# a TCP close: no close frame, no control frame to count
$_->close() for @open;

my $m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], {});
	$x->{active} == 0 && $x->{duration_count} == 4
});

# overflow series included
my $s = ws_stats($m, {});
is($s->{duration_count}, 4, 'four sessions ended');

my %dropped = map { $_->{labels}{family} => $_->{value} }
	series($m, 'railgun_series_dropped_total');

# Each family holds 2 label sets.  A session's series: connections,
# connections_total and duration by path (a and b fit), messages and bytes
# by path and direction (only a's two directions fit).

my ($opened) = grep { /^railgun_websocket_connections_(?:opened_)?total$/ }
	keys %dropped;

# c and d: in the gauge at the start and at the end
is($dropped{railgun_websocket_connections}, 2 * 2, 'gauge drops');
is($dropped{$opened // ''}, 2, 'sessions counter drops');
is($dropped{railgun_websocket_connection_duration_seconds}, 2,
	'duration drops');

# b, c and d: each message in and each echo out is one update
is($dropped{railgun_websocket_messages_total}, 3 * 2 * $N,
	'messages drops');
is($dropped{railgun_websocket_bytes_total}, 3 * 2 * $N, 'bytes drops');
is($dropped{railgun_websocket_protocol_errors_total}, 0,
	'no protocol error, no drop');

# the handshakes: c and d past the request families' cap
is($dropped{railgun_http_requests_total}, 2, 'request drops');

# the overflow series took what the drops say

my %OV = (server => '__overflow__', path => '__overflow__',
	direction => '__overflow__');

is(sample($m, 'railgun_websocket_messages_total', \%OV), 3 * 2 * $N,
	'messages in the overflow series');
is(sample($m, 'railgun_websocket_bytes_total', \%OV),
	3 * 2 * length('message 1') * $N, 'bytes in the overflow series');
is(sample($m, 'railgun_websocket_connections',
	{ server => '__overflow__', path => '__overflow__' }) // 0, 0,
	'overflow gauge back to 0');

my $a = ws_stats($m, { server => 'localhost', path => '/ws/a' });
is($a->{in_messages} + $a->{out_messages}, 2 * $N, 'a counted as itself');

like($t->read_file('error.log'),
	qr/railgun_max_series reached, samples of "railgun_websocket_messages_total"/,
	'overflow logged');

###############################################################################
