#!/usr/bin/perl

# Tests for the counts a session holds back while its flush timer is
# pending (NGX_HTTP_RAILGUN_WS_FLUSH, 1 s): a big message whose last writes
# passed unread, the session ended before the timer fires, by the client's
# close, by the backend's, and by a reload whose old worker ends it at
# worker_shutdown_timeout (ngx_exiting); and the same message through a TLS
# upstream, whose send moves c->sent by plaintext.  Every figure is the
# client's own count.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('openssl')->plan(12);

# /tls goes through a TLS hop of the same nginx, not accounted, to the
# backend: the accounted session's upstream connection is a TLS one

ws_front($t, tls => 1, main => "worker_shutdown_timeout 100ms;\n",
	paths => [ '/client', '/backend', '/reload' ],
	locations => <<'EOF', servers => <<'EOF');
        location /tls {
            proxy_pass https://127.0.0.1:%%PORT_8443%%;
            proxy_ssl_verify off;
        }
EOF
    server {
        listen       127.0.0.1:%%PORT_8443%% ssl;
        server_name  hop;

        ssl_certificate      cert.pem;
        ssl_certificate_key  key.pem;

        railgun off;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade $http_upgrade;
        proxy_set_header    Connection "upgrade";

        location / {
            proxy_pass http://ws_up;
        }
    }
EOF

###############################################################################

my $big = 300000;

# a session on $path that sent one big message and read its echo whole

sub echoed {
	my ($path) = @_;

	my $ws = ws_connect(path => $path);
	$ws->binary('b' x $big);
	my $msg = $ws->read_message(30);

	return ($ws, length(($msg || {})->{payload} // ''));
}

sub want {
	my (%w) = @_;
	return { map { $_ => $w{$_} }
		qw/ in_messages in_bytes out_messages out_bytes / };
}

# the client closes at once, before the session's timer

my ($ws, $echo) = echoed('/client');
is($echo, $big, 'client close: echoed');
$ws->close();

my $s = ws_settle($t, '/client', %{ want(in_messages => 1, in_bytes => $big,
	out_messages => 1, out_bytes => $echo) });
is_deeply($s, { %{ want(in_messages => 1, in_bytes => $big,
	out_messages => 1, out_bytes => $echo) }, active => 0 },
	'client close: every count, none twice');

# the backend closes at once: "!close" right behind the big message

$ws = ws_connect(path => '/backend');
$ws->write(ws_frame(2, 'b' x $big, mask => 1)
	. ws_frame(1, '!close', mask => 1));
my $msg = $ws->read_message(30);
$echo = length(($msg || {})->{payload} // '');
is($echo, $big, 'backend close: echoed');
ok($ws->wait_eof(10), 'backend close: closed by the backend');
$ws->close();

$s = ws_settle($t, '/backend', %{ want(in_messages => 2,
	in_bytes => $big + 6, out_messages => 1, out_bytes => $echo) });
is_deeply($s, { %{ want(in_messages => 2, in_bytes => $big + 6,
	out_messages => 1, out_bytes => $echo) }, active => 0 },
	'backend close: every count, none twice');

# a TLS upstream: counted while the session is open, then at its end

($ws, $echo) = echoed('/tls');
is($echo, $big, 'tls upstream: echoed');

$s = ws_settle($t, '/tls', active => 1, %{ want(in_messages => 1,
	in_bytes => $big, out_messages => 1, out_bytes => $echo) });
is_deeply($s, { %{ want(in_messages => 1, in_bytes => $big,
	out_messages => 1, out_bytes => $echo) }, active => 1 },
	'tls upstream: plaintext payload bytes, live');

$ws->binary('c' x 1000);
$msg = $ws->read_message(10);
$ws->close();

$s = ws_settle($t, '/tls', %{ want(in_messages => 2, in_bytes => $big + 1000,
	out_messages => 2, out_bytes => $echo + 1000) });
is_deeply($s, { %{ want(in_messages => 2, in_bytes => $big + 1000,
	out_messages => 2, out_bytes => $echo + 1000) }, active => 0 },
	'tls upstream: at the end');

# a reload: the old worker, exiting, ends the session 100 ms later, before
# the session's timer has counted the message

($ws, $echo) = echoed('/reload');
is($echo, $big, 'reload: echoed');

my $start = time();
ok($t->reload(), 'reload: new worker');
ok($ws->wait_eof(10), 'reload: session ended by worker_shutdown_timeout');
$ws->close();

$s = ws_settle($t, '/reload', %{ want(in_messages => 1, in_bytes => $big,
	out_messages => 1, out_bytes => $echo) });
is_deeply($s, { %{ want(in_messages => 1, in_bytes => $big,
	out_messages => 1, out_bytes => $echo) }, active => 0 },
	'reload: counted by the exiting worker, scraped from the new one');

###############################################################################
