#!/usr/bin/perl

# Tests for WebSocket accounting with TLS on the client side: a "listen ...
# ssl" server proxying to a plain backend.  The client connection's send is
# the TLS one, which sees plaintext: counts must be exact as without TLS,
# frames buffered at the upgrade, split headers and a multi-megabyte
# message included.

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

eval { require IO::Socket::SSL; };
plan(skip_all => 'IO::Socket::SSL not installed') if $@;

my $t = Test::Railgun->new()->has_daemon('promtool')->has_daemon('openssl')
	->plan(25);

ws_front($t, tls => 1, servers => <<'EOF');
    server {
        listen       127.0.0.1:%%PORT_8443%% ssl;
        server_name  secure;

        ssl_certificate      cert.pem;
        ssl_certificate_key  key.pem;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade $http_upgrade;
        proxy_set_header    Connection "upgrade";

        location /ws {
            proxy_pass http://ws_up;
        }
    }
EOF

###############################################################################

my %WS = (server => 'secure', path => '/ws');

sub hex_of { unpack 'H*', $_[0] }

my ($in_m, $in_b, $out_m, $out_b) = (0, 0, 0, 0);

# a session whose first frames travel with the upgrade on both sides, in
# the same TLS record as the request and the same write as the 101

my $early_in = ws_frame(1, 'tls-early-in', mask => 1);
my $early_out = ws_frame(2, 'tls-early-out');

my $ws = ws_connect(port => 8443, ssl => 1,
	path => '/ws?early=' . hex_of($early_out), early => $early_in);

is($ws->status, 101, 'TLS: upgraded');

my $m = wait_metrics($t, sub { ws_stats($_[0], \%WS)->{active} == 1 });
is(sample($m, 'railgun_http_requests_total', { %WS, method => 'GET',
	status => '101' }), 1, 'TLS: handshake is a request');
is(ws_stats($m, \%WS)->{active}, 1, 'TLS: gauge up');

is(($ws->read_message() || {})->{payload}, 'tls-early-out',
	'TLS: frame after the 101');
is(($ws->read_message() || {})->{payload}, 'tls-early-in',
	'TLS: frame after the request');
$in_m += 1; $in_b += 12;
$out_m += 2; $out_b += 13 + 12;

# sizes, masked in and unmasked out

for my $size (0, 125, 126, 65535, 65536, 3 * 1024 * 1024) {
	my $payload = substr('abcdefghijklmnopqrstuvwxyz0123456789'
		x ($size / 36 + 1), 0, $size);

	$ws->binary($payload);
	my $echo = $ws->read_message(30);
	ok($echo && $echo->{payload} eq $payload, "TLS: $size bytes echoed");

	$in_m++; $in_b += $size;
	$out_m++; $out_b += $size;
}

# a fragmented message with a ping inside, every header byte in a TLS
# record of its own

my @frames = ([ 1, 'frag', fin => 0 ], [ 9, 'ping' ],
	[ 0, 'x' x 300, fin => 0 ], [ 0, 'y' x 70000 ]);

for my $frame (@frames) {
	my $f = ws_frame(@$frame, mask => 1);
	my $hlen = length($f) - length($frame->[1]);
	$ws->write($f, sizes => [ (1) x $hlen ], pause => 0.01);
}

my $msg = $ws->read_message();
is($msg && length $msg->{payload}, 4 + 300 + 70000, 'TLS: split message');
is($msg && scalar @{$msg->{control}}, 1, 'TLS: pong inside');
$in_m++; $in_b += 4 + 300 + 70000;
$out_m++; $out_b += 4 + 300 + 70000;

# the backend: a 16-bit frame, each header byte in a write of its own,
# then 3 MB

my $cmd = '!pieces ' . join ',',
	map { hex_of($_) } ws_header_pieces(ws_frame(1, 'z' x 200));
$ws->text($cmd);
is(length(($ws->read_message() || {})->{payload} // ''), 200,
	'TLS: backend header one byte per write');
$in_m++; $in_b += length $cmd;
$out_m++; $out_b += 200;

$cmd = '!send 1 ' . 3 * 1024 * 1024;
$ws->text($cmd);
is(length(($ws->read_message(30) || {})->{payload} // ''), 3 * 1024 * 1024,
	'TLS: backend 3 MB message');
$in_m++; $in_b += length $cmd;
$out_m++; $out_b += 3 * 1024 * 1024;

# exact counts, live

my %want = (in_messages => $in_m, in_bytes => $in_b,
	out_messages => $out_m, out_bytes => $out_b,
	in_errors => 0, out_errors => 0, active => 1);

my $match = sub {
	my ($s) = @_;
	!grep { $s->{$_} != $want{$_} } keys %want;
};

$m = wait_metrics($t, sub { $match->(ws_stats($_[0], \%WS)) });
my $s = ws_stats($m, \%WS);
is_deeply({ map { $_ => $s->{$_} } keys %want }, \%want, 'TLS: exact counts');

# a violation from the client stops counting in, not out

$ws->send_frame(0xb, 'reserved');
is(($ws->read_message() || {})->{payload}, 'reserved',
	'TLS: violation passed');
$ws->text('after');
is(($ws->read_message() || {})->{payload}, 'after', 'TLS: echo after it');

$want{in_errors} = 1;
$out_m += 2; $out_b += 8 + 5;
$want{out_messages} = $out_m;
$want{out_bytes} = $out_b;

$m = wait_metrics($t, sub { $match->(ws_stats($_[0], \%WS)) });
$s = ws_stats($m, \%WS);
is_deeply({ map { $_ => $s->{$_} } keys %want }, \%want,
	'TLS: violation counted, later messages in not');

# the client closes

$ws->close_ws();

$m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], \%WS);
	$x->{active} == 0 && $x->{duration_count} == 1;
});
$s = ws_stats($m, \%WS);
is($s->{active}, 0, 'TLS: client close, gauge back to 0');
is($s->{duration_count}, 1, 'TLS: client close, duration observed');

# the upstream closes

$ws = ws_connect(port => 8443, ssl => 1, path => '/ws');
$ws->text('!close');
ok($ws->wait_eof(), 'TLS: upstream close, closed by nginx');
$ws->close();

$m = wait_metrics($t, sub {
	my $x = ws_stats($_[0], \%WS);
	$x->{active} == 0 && $x->{duration_count} == 2;
});
$s = ws_stats($m, \%WS);
is($s->{active}, 0, 'TLS: upstream close, gauge back to 0');
is($s->{duration_count}, 2, 'TLS: upstream close, duration observed');
is($s->{total}, 2, 'TLS: sessions total');

###############################################################################
