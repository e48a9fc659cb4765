#!/usr/bin/perl

# Tests for upstream accounting: railgun_upstream_requests_total and the
# upstream response and header duration histograms, one observation per
# attempt, including proxy_next_upstream over a failing first peer.

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

my $t = Test::Railgun->new()->plan(24)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u_ok {
        server 127.0.0.1:%%PORT_8081%%;
    }

    # the first peer answers 502 to everything
    upstream u_next {
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
    }

    # nothing listens on the first peer
    upstream u_refused {
        server 127.0.0.1:%%PORT_8083%% max_fails=0;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        add_header X-Addr $upstream_addr always;
        add_header X-Status $upstream_status always;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ok/ {
            proxy_pass http://u_ok/;
        }

        location /next/ {
            proxy_pass http://u_next/;
            proxy_next_upstream error timeout http_502;
        }

        location /refused/ {
            proxy_pass http://u_refused/;
            proxy_next_upstream error timeout;
        }

        location /implicit/ {
            proxy_pass http://127.0.0.1:%%PORT_8081%%/;
        }
    }
}

EOF

$t->http_backend(8081);
$t->http_backend(8082, handler => sub { return (502, "bad gateway\n") });
$t->refused_port(8083);
$t->run();

###############################################################################

my $REQ = 'railgun_upstream_requests_total';
my $RESP = 'railgun_upstream_response_duration_seconds';
my $HDR = 'railgun_upstream_header_duration_seconds';

my $p81 = '127.0.0.1:' . port(8081);
my $p82 = '127.0.0.1:' . port(8082);
my $p83 = '127.0.0.1:' . port(8083);

# attempts per "peer status", as nginx itself reports them

my (%attempts, @timed);

sub get {
	my ($uri) = @_;

	my ($r, undef, $bracket) = timed_get($uri);
	push @timed, $bracket;
	my @addr = split /, /, http_header($r, 'X-Addr') // '';
	my @status = split /, /, http_header($r, 'X-Status') // '';

	$attempts{"$addr[$_] $status[$_]"}++ for 0 .. $#addr;
	return $r;
}

# u_ok: each attempt bracketed as in request.t

get('/ok/delay/60');
get('/ok/delay/60');
get('/ok/');
get('/ok/status/404');

my @ok_timed = @timed;

my %before = %attempts;
get('/next/') for 1 .. 4;
my $a_next = ($attempts{"$p82 502"} // 0) - ($before{"$p82 502"} // 0);

%before = %attempts;
get('/refused/') for 1 .. 3;
my $a_refused = ($attempts{"$p83 502"} // 0);

get('/implicit/') for 1 .. 2;

my $m = $t->metrics();

my %ok = (upstream => 'u_ok', peer => $p81);

is(sample($m, $REQ, { %ok, status => '200' }), 3, 'u_ok 200');
is(sample($m, $REQ, { %ok, status => '404' }), 1, 'u_ok 404');
is(sample($m, "${RESP}_count", \%ok), 4, 'u_ok response count');
for my $x ([ $RESP, '0.05' ], [ $RESP, '0.1' ], [ $HDR, '0.05' ],
	[ $HDR, '0.1' ])
{
	my ($fam, $le) = @$x;
	my ($lo, $hi) = bucket_range($le, @ok_timed);
	my $got = sample($m, "${fam}_bucket", { %ok, le => $le });
	ok(defined $got && $got >= $lo && $got <= $hi, "u_ok $fam le $le")
		or diag(($got // 'none') . ", expected $lo to $hi");
}

is(sample($m, "${HDR}_count", \%ok), 4, 'u_ok header count');

my ($smin, $smax) = sum_range(@ok_timed);
my $sum = sample($m, "${RESP}_sum", \%ok);
ok(defined $sum && $sum >= $smin && $sum <= $smax, 'u_ok response sum')
	or diag('sum ' . ($sum // 'missing') . ", expected $smin to $smax");

my %peers = map { $_->{labels}{peer} => 1 }
	series($m, $REQ, { upstream => 'u_ok' });
is(join(' ', sort keys %peers), $p81, 'u_ok peers');

# proxy_next_upstream: two attempts, two peers

ok($a_next > 0, 'a request went to the failing peer first');

my %a = (upstream => 'u_next', peer => $p82);
my %b = (upstream => 'u_next', peer => $p81);

is(sample($m, $REQ, { %a, status => '502' }), $a_next, 'next: first peer');
is(sample($m, $REQ, { %b, status => '200' }), 4, 'next: second peer');
is(sample($m, "${RESP}_count", \%a), $a_next, 'next: first response count');
is(sample($m, "${RESP}_count", \%b), 4, 'next: second response count');
is(sample($m, "${HDR}_count", \%a), $a_next, 'next: first header count');
is(sample($m, "${HDR}_count", \%b), 4, 'next: second header count');

is(sample($m, 'railgun_http_requests_total', { path => '/next/',
	method => 'GET', status => '200' }), 4, 'next: client saw 200');

# a refused connection is an attempt with status 502, as $upstream_status

ok($a_refused > 0, 'a request went to the refused peer first');

is(sample($m, $REQ, { upstream => 'u_refused', peer => $p83,
	status => '502' }), $a_refused, 'refused: first peer');
is(sample($m, $REQ, { upstream => 'u_refused', peer => $p81,
	status => '200' }), 3, 'refused: second peer');
is(sample($m, "${RESP}_count", { upstream => 'u_refused', peer => $p83 }),
	$a_refused, 'refused: response count');

# implicit upstream: named by proxy_pass host:port

is(sample($m, $REQ, { upstream => $p81, peer => $p81, status => '200' }), 2,
	'implicit upstream');
is(sample($m, "${RESP}_count", { upstream => $p81, peer => $p81 }), 2,
	'implicit upstream response count');

###############################################################################
