#!/usr/bin/perl

# Tests for "railgun on|off" at http, server and location level, and for
# the metrics location accounting itself after rendering (lag by one).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(12)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun off;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun on;
        }

        location /inherit/ {
            return 200 "inherit\n";
        }

        location /on/ {
            railgun on;
            return 200 "on\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8081%%;
        server_name  on-server;

        railgun on;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /x/ {
            return 200 "x\n";
        }

        location /off/ {
            railgun off;
            return 200 "off\n";
        }
    }
}

EOF

$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my %M = (server => 'localhost', path => '/metrics', method => 'GET');

# a scrape sees the scrapes before it, not itself

my $m = $t->metrics();
is(scalar(series($m, $REQ, { path => '/metrics' })), 0, 'first scrape');

$m = $t->metrics();
is(sample($m, $REQ, { %M, status => '200' }), 1, 'second scrape');

$m = $t->metrics();
is(sample($m, $REQ, { %M, status => '200' }), 2, 'third scrape');
is(sample($m, 'railgun_http_request_duration_seconds_count', \%M), 2,
	'scrapes timed');

http_get('/inherit/') for 1 .. 2;
http_get('/on/') for 1 .. 2;
http_get('/x/', port => 8081);
http_get('/off/', port => 8081);

$m = $t->metrics(port => 8081);

is(scalar(series($m, $REQ, { path => '/inherit/' })), 0,
	'off inherited from http');
is(sample($m, $REQ, { server => 'localhost', path => '/on/',
	method => 'GET', status => '200' }), 2, 'on in location');
is(sample($m, $REQ, { server => 'on-server', path => '/x/',
	method => 'GET', status => '200' }), 1, 'on in server');
is(scalar(series($m, $REQ, { path => '/off/' })), 0, 'off in location');

is(scalar(grep { ($_->{labels}{path} // '') =~ m!^/(?:inherit|off)/$! }
	@{$m->{series}}), 0, 'off locations in no family');

is(sample($m, $REQ, { %M, status => '200' }), 3, 'scrapes on localhost');
is(scalar(series($m, $REQ, { server => 'on-server', path => '/metrics' })),
	0, 'scrape with railgun off not counted');

$m = $t->metrics(port => 8081);
is(scalar(series($m, $REQ, { server => 'on-server', path => '/metrics' })),
	0, 'still not counted');

###############################################################################
