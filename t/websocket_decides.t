#!/usr/bin/perl

# Tests that the location that matched decides for a WebSocket session as
# it does for its request: a WebSocket that "error_page 502 = @fallback"
# moved to a named location is a session of the first location (its
# railgun_path, its "railgun on|off"), the location its 101 is counted
# under, whatever the fallback's settings.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun qw/ port sample_sum /;
use Test::Railgun::WebSocket;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(7);

my $refused = $t->refused_port(8082);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade \$http_upgrade;
        proxy_set_header    Connection "upgrade";

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ws {
            railgun_path /first;
            proxy_pass http://127.0.0.1:$refused;
            error_page 502 = \@fallback;
        }

        location /off {
            railgun_path /first-off;
            proxy_pass http://127.0.0.1:$refused;
            error_page 502 = \@fallback_off;
        }

        location \@fallback {
            railgun_path /fallback;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }

        location \@fallback_off {
            railgun off;
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
        }
    }
}

EOF

ws_backend($t, 8081);
$t->run();

###############################################################################

sub session {
	my ($path) = @_;

	my $c = ws_connect(path => $path);
	is($c->status(), 101, "$path upgraded through the fallback");

	$c->text('hello');
	my $m = $c->read_message();
	$c->close_ws();

	return $m && $m->{payload};
}

is(session('/ws'), 'hello', 'echoed');

my $first = { server => 'localhost', path => '/first' };

my $m = wait_metrics($t, sub {
	ws_stats($_[0], $first)->{duration_count} >= 1
});

my $s = ws_stats($m, $first);
is($s->{total}, 1, 'session under the location that matched');
is(sample_sum($m, 'railgun_websocket_connections_opened_total',
	{ path => '/fallback' }) || 0, 0, 'none under the fallback');
is(sample_sum($m, 'railgun_http_requests_total',
	{ path => '/first', status => '101' }), 1, 'its 101 there too');

# railgun on in the location that matched, off in its fallback: counted

session('/off');

$m = wait_metrics($t, sub {
	ws_stats($_[0], { path => '/first-off' })->{duration_count} >= 1
});

is(ws_stats($m, { path => '/first-off' })->{total}, 1,
	'session of a location with railgun on, fallback off');

###############################################################################
