#!/usr/bin/perl

# Tests for when a session's counts reach the zone while it stays open: a
# message nginx forwards in one write counts at once; the payload of a
# bigger frame passes unread, and its bytes, and its message when its final
# write passed, reach the zone at most 1 s later (the session's timer,
# NGX_HTTP_RAILGUN_WS_FLUSH), with no more traffic to count them.  Each
# figure is compared with the client's own count, and the session is still
# open when the scrape sees it.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(10)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream ws_up {
        server 127.0.0.1:%%PORT_8081%%;
    }

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

        location /small {
            proxy_pass http://ws_up;
        }

        location /big {
            proxy_pass http://ws_up;
        }

        # the backend echoes bytes as they come, unparsed
        location /cut/raw {
            proxy_pass http://ws_up;
        }
    }
}

EOF

ws_backend($t, 8081);
$t->run();

###############################################################################

# the bound, and slack for a loaded machine: the figure asserted is that
# the counts come with no more traffic, while the session lives
my $BOUND = 1;
my $SLACK = $ENV{RAILGUN_TEST_VALGRIND} || $ENV{RAILGUN_TEST_ASAN} ? 10 : 2;

# polls until the counts of a path are those wanted while its session is
# open; returns the counts and the seconds they took

sub live {
	my ($path, %want) = @_;

	my $l = { server => 'localhost', path => $path };
	my $start = time();

	my $m = wait_metrics($t, sub {
		my $s = ws_stats($_[0], $l);
		$s->{active} == 1 && !grep { $s->{$_} != $want{$_} } keys %want;
	}, timeout => 3 * ($BOUND + $SLACK));

	my $s = ws_stats($m, $l);
	return ({ map { $_ => $s->{$_} } keys %want, 'active' },
		time() - $start);
}

###############################################################################

# small messages: each one write of nginx's, in the zone at once

my $ws = ws_connect(path => '/small');
is($ws->status, 101, 'small: upgraded');

my $got = 0;

for my $i (1 .. 5) {
	$ws->binary('m' x 100);
	my $msg = $ws->read_message(10);
	$got++ if $msg && $msg->{payload} eq 'm' x 100;
}

my ($s) = live('/small', in_messages => 5, out_messages => 5,
	in_bytes => 500, out_bytes => 500);
is_deeply($s, { in_messages => 5, out_messages => 5, in_bytes => 500,
	out_bytes => $got * 100, active => 1 }, 'small: counted, session open');

$ws->close_ws();

# a big message: 200,000 bytes, which nginx forwards in writes of
# proxy_buffer_size both ways; its last writes pass unread, and the idle
# session's timer counts it

my $big = 200000;
my $took;

$ws = ws_connect(path => '/big');
$ws->binary('b' x $big);

my $msg = $ws->read_message(30);
is(length(($msg || {})->{payload} // ''), $big, 'big: echoed');

($s, $took) = live('/big', in_messages => 1, out_messages => 1,
	in_bytes => $big, out_bytes => $big);
is_deeply($s, { in_messages => 1, out_messages => 1, in_bytes => $big,
	out_bytes => length(($msg || {})->{payload} // ''), active => 1 },
	'big: counted while the session is open and idle');
cmp_ok($took, '<', $BOUND + $SLACK, 'big: within the bound')
	or diag("took ${took}s");

# and a second one counts too, the session still open

$ws->binary('c' x $big);
$msg = $ws->read_message(30);

($s) = live('/big', in_messages => 2, out_messages => 2,
	in_bytes => 2 * $big, out_bytes => 2 * $big);
is_deeply($s, { in_messages => 2, out_messages => 2, in_bytes => 2 * $big,
	out_bytes => 2 * $big, active => 1 }, 'big: the second message');

$ws->close_ws();

# a frame that stops halfway: the header of a 1 MB frame and 30,000 of its
# payload bytes, echoed as they come; the session stays open, and the bytes
# that passed unread reach the zone with no more writes to count them

my $sent = 30000;
my $cut = substr(ws_frame(2, 'x' x 1048576, mask => 1), 0, 14 + $sent);

$ws = ws_connect(path => '/cut/raw');
is($ws->status, 101, 'cut: upgraded');

$ws->write($cut, split => 4096);
my $echo = length($ws->read_bytes(length $cut, 30));
is($echo, length $cut, 'cut: echoed');

($s, $took) = live('/cut/raw', in_bytes => $sent, out_bytes => $sent,
	in_messages => 0, out_messages => 0);
is_deeply($s, { in_bytes => $sent, out_bytes => $echo - 14,
	in_messages => 0, out_messages => 0, active => 1 },
	'cut: the bytes that passed, while the frame is unended');
cmp_ok($took, '<', $BOUND + $SLACK, 'cut: within the bound')
	or diag("took ${took}s");

$ws->close();

###############################################################################
