#!/usr/bin/perl

# Tests for the series cap: railgun_max_series per family, the overflow
# series with every label "__overflow__", and railgun_series_dropped_total.

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

my $t = Test::Railgun->new()->plan(16)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_max_series 3;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /c/ {
            railgun_path $uri;
            return 200 "c\n";
        }
    }
}

EOF

$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my $DUR = 'railgun_http_request_duration_seconds';
my $DROP = 'railgun_series_dropped_total';
my $O = '__overflow__';

my %over = (server => $O, path => $O, method => $O, status => $O);
my %over3 = (server => $O, path => $O, method => $O);
my %over2 = (server => $O, path => $O);

http_get($_) for qw{ /c/1 /c/2 /c/3 /c/1 /c/4 /c/4 /c/5 /c/5 /c/5 };

my $m = $t->metrics();

my %paths = map { $_->{labels}{path} => $_->{value} } series($m, $REQ);

is_deeply(\%paths, { '/c/1' => 2, '/c/2' => 1, '/c/3' => 1, $O => 5 },
	'three series and the overflow one');
is(sample($m, $REQ, \%over), 5, 'overflow series, all labels');
is(sample($m, $DROP, { family => $REQ }), 5, 'dropped requests');

is(sample($m, "${DUR}_count", \%over3), 5, 'histogram overflow');
is(join(',', map { $_->{labels}{le} } series($m, "${DUR}_bucket", \%over3)),
	'0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,+Inf',
	'histogram overflow buckets');
is(scalar(series($m, "${DUR}_count")), 4, 'histogram series capped');
is(sample($m, $DROP, { family => $DUR }), 5, 'dropped histogram samples');

ok(sample($m, 'railgun_http_request_bytes_total', \%over2) > 0,
	'request bytes overflow');
ok(sample($m, 'railgun_http_response_bytes_total', \%over2) > 0,
	'response bytes overflow');
is(scalar(series($m, 'railgun_http_request_bytes_total')), 4,
	'request bytes series capped');
is(sample($m, $DROP, { family => 'railgun_http_request_bytes_total' }), 5,
	'dropped request bytes');
is(sample($m, $DROP, { family => 'railgun_http_response_bytes_total' }), 5,
	'dropped response bytes');

# known series keep counting; new ones still overflow

http_get('/c/2');
http_get('/c/6');

$m = $t->metrics();

is(sample($m, $REQ, { path => '/c/2' }), 2, 'known series counts');
is(sample($m, $REQ, \%over), 6, 'new series overflows');
is(sample($m, $DROP, { family => $REQ }), 6, 'dropped counts on');
is(scalar(series($m, $REQ)), 4, 'still four series');

###############################################################################
