#!/usr/bin/perl

# Tests for request accounting: railgun_http_requests_total, the request
# duration histogram and the byte counters, against a known sequence of
# proxied requests with backend delays.

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

my $t = Test::Railgun->new()->plan(32)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /api/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/;
        }

        location /other/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/;
        }
    }
}

EOF

$t->http_backend(8081);
$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my $DUR = 'railgun_http_request_duration_seconds';

my %L = (server => 'localhost', path => '/api/', method => 'GET');

# /api/: GET only, 3 fast, 2 at 60ms, 1 at 300ms, each bracketed between
# its delay and what the client saw (see bucket_range in Test::Railgun)

my ($api_in, $api_out, @timed) = (0, 0);

for my $ms (0, 0, 0, 60, 60, 300) {
	my ($r, $req, $bracket) = timed_get("/api/delay/$ms");
	$api_in += length $req;
	$api_out += length $r;
	push @timed, $bracket;
	die "unexpected response to /api/delay/$ms:\n$r"
		unless http_status($r) == 200;
}

# /other/: every method, a few statuses

my ($other_in, $other_out) = (0, 0);

for my $x (
	[ 'POST', '/other/bytes/100', 'x' x 1000 ],
	[ 'POST', '/other/', 'y' x 10 ],
	[ 'HEAD', '/other/' ],
	[ 'PUT', '/other/', 'put' ],
	[ 'DELETE', '/other/' ],
	[ 'OPTIONS', '/other/' ],
	[ 'PATCH', '/other/', 'patch' ],
	[ 'FOO', '/other/' ],
	[ 'PROPFIND', '/other/' ],
	[ 'GET', '/other/status/404' ],
	[ 'GET', '/other/status/503' ],
)
{
	my ($method, $uri, $body) = @$x;
	my ($r, $req) = http_get($uri, method => $method, body => $body);
	$other_in += length $req;
	$other_out += length $r;
	die "no response to $method $uri" unless http_status($r);
}

my $m = $t->metrics();

is(sample($m, $REQ, { %L, status => '200' }), 6, 'GET 200 count');
is(scalar(series($m, $REQ, { path => '/api/' })), 1,
	'one requests series for /api/');

is(join(',', map { $_->{labels}{le} } series($m, "${DUR}_bucket", \%L)),
	'0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,+Inf',
	'default bucket bounds');

for my $le (qw/ 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf /) {
	my ($lo, $hi) = bucket_range($le, @timed);
	my $got = sample($m, "${DUR}_bucket", { %L, le => $le });
	ok(defined $got && $got >= $lo && $got <= $hi, "le $le")
		or diag("le $le: " . ($got // 'none') . ", expected $lo to $hi");
}

is(sample($m, "${DUR}_count", \%L), 6, 'count');

my ($dmin, $cmax) = sum_range(@timed);

my $sum = sample($m, "${DUR}_sum", \%L);
ok(defined $sum && $sum >= $dmin && $sum <= $cmax, 'sum in range')
	or diag('sum ' . ($sum // 'missing') . ", expected $dmin to $cmax");
my ($sumline) = grep { /^${DUR}_sum\{[^}]*path="\/api\/"/ }
	split /\n/, $m->{body};
like($sumline, qr/\} \d+(?:\.\d{1,6})?$/, 'sum in microseconds, trailing zeros cut');

is(sample($m, 'railgun_http_request_bytes_total',
	{ server => 'localhost', path => '/api/' }), $api_in,
	'request bytes /api/');
is(sample($m, 'railgun_http_response_bytes_total',
	{ server => 'localhost', path => '/api/' }), $api_out,
	'response bytes /api/');

# /other/

my %O = (server => 'localhost', path => '/other/');
my %ok = map { $_->{labels}{method} => $_->{value} }
	series($m, $REQ, { %O, status => '200' });

is_deeply(\%ok, { POST => 2, HEAD => 1, PUT => 1, DELETE => 1,
	OPTIONS => 1, PATCH => 1, OTHER => 2 }, 'methods');

is(sample($m, $REQ, { %O, method => 'GET', status => '404' }), 1, 'GET 404');
is(sample($m, $REQ, { %O, method => 'GET', status => '503' }), 1, 'GET 503');
is(scalar(series($m, $REQ, \%O)), 9, 'series for /other/');
is(scalar(grep { ($_->{labels}{method} // "") =~ /^(?:FOO|PROPFIND)$/ }
	@{$m->{series}}), 0, 'unknown methods not used as labels');

is(sample($m, "${DUR}_count", { %O, method => 'POST' }), 2, 'POST count');
is(sample($m, "${DUR}_count", { %O, method => 'GET' }), 2,
	'GET count, statuses together');
is(sample($m, "${DUR}_count", { %O, method => 'OTHER' }), 2, 'OTHER count');

is(sample($m, 'railgun_http_request_bytes_total', \%O), $other_in,
	'request bytes /other/');
is(sample($m, 'railgun_http_response_bytes_total', \%O), $other_out,
	'response bytes /other/');

# nothing counted between scrapes: the metrics location is off

my $m2 = $t->metrics();

is(sample($m2, $REQ, { %L, status => '200' }), 6, 'count stable');
is(scalar(series($m2, $REQ, { path => '/metrics' })), 0,
	'metrics location not counted');

###############################################################################
