#!/usr/bin/perl

# Tests for railgun_status over plain HTTP: the page with its metrics URI
# and interval, its assets byte for byte (the repository's files and
# Debian's Chart.js), Content-Security-Policy, ETag and 304 on
# If-None-Match, HEAD, methods and unknown assets, the location's
# allow/deny and auth_basic on the page and every asset, and nginx -t on
# bad parameters and a missing Chart.js (file and line named).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use MIME::Base64 qw/ encode_base64 /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $CHARTJS = '/usr/share/javascript/chart.js/chart.min.js';

plan(skip_all => "$CHARTJS missing (apt-get install libjs-chart.js)")
	unless -f $CHARTJS;

my $t = Test::Railgun->new()->plan(57);
my $d = $t->testdir();

my $hash = `openssl passwd -apr1 'st4tus-pass'`;
chomp $hash;
$t->write_file('htpasswd', "ops:$hash\n");
chmod 0644, "$d/htpasswd";

# a copy of Chart.js elsewhere, to check that chartjs= is read
$t->write_file('chart.js', "/* not the real one */\n");

$t->write_file_expand('nginx.conf', <<'EOF');

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
        }

        location = /status {
            railgun_status;
        }

        location /ops/ {
            railgun_status metrics=/ops/metrics interval=750ms
                           chartjs=chart.js;
            allow 127.0.0.2;
            deny all;
        }

        location = /alt {
            railgun_status metrics=/ops/metrics interval=750ms
                           chartjs=chart.js;
        }

        location = /locked {
            railgun_status metrics=/metrics?x=1&y=2;
            auth_basic "status";
            auth_basic_user_file htpasswd;
        }
    }
}

EOF

$t->run();

###############################################################################

sub repo_file {
	my ($name) = @_;
	open my $fh, '<', $name or die "$name: $!";
	binmode $fh;
	local $/;
	return scalar <$fh>;
}

# the page: placeholders replaced, no inline script or style

my $r = http_get('/status');
my ($status, $h, $body) = http_split($r);

is($status, 200, 'page');
is($h->{'content-type'}, 'text/html; charset=utf-8', 'page type');
like($body, qr!<meta name="railgun-metrics" content="/metrics">!,
	'default metrics URI');
like($body, qr!<meta name="railgun-interval" content="2000">!,
	'default interval');
unlike($body, qr/\@[A-Z]+\@/, 'no placeholder left');
unlike($body, qr/<script(?![^>]*\bsrc=)|<style|\son[a-z]+=|style=/i,
	'no inline script, style or handler');
is($h->{'content-security-policy'},
	"default-src 'none'; script-src 'self'; style-src 'self'; "
	. "connect-src 'self'; img-src 'self'; base-uri 'none'; "
	. "form-action 'none'; frame-ancestors 'none'", 'CSP: own origin only');
is($h->{'x-content-type-options'}, 'nosniff', 'nosniff');
is($h->{'cache-control'}, 'no-cache', 'revalidated');
like($h->{etag}, qr/^"[^"]+"$/, 'page ETag');
is($h->{'content-length'}, length $body, 'page length');

my $page = $body;
my @src = $page =~ /(?:src|href)="([^"]+)"/g;
is("@src", '?asset=icon.svg ?asset=page.css ?asset=chart.js ?asset=page.js',
	'assets referenced relative to the location');

# the assets are the repository's files and Debian's Chart.js

my %files = (
	'page.js' => ['../src/status/page.js', 'text/javascript; charset=utf-8'],
	'page.css' => ['../src/status/page.css', 'text/css; charset=utf-8'],
	'icon.svg' => ['../src/status/icon.svg', 'image/svg+xml'],
	'chart.js' => [$CHARTJS, 'text/javascript; charset=utf-8'],
);

my %etag;

for my $a (sort keys %files) {
	($status, $h, $body) = http_split(http_get("/status?asset=$a"));
	ok($status == 200 && $body eq repo_file($files{$a}[0])
		&& $h->{'content-type'} eq $files{$a}[1]
		&& $h->{'content-security-policy'} =~ /script-src 'self'/,
		"$a served as is");
	$etag{$a} = $h->{etag};
}

is(scalar(keys %{{ map { $_ => 1 } grep { defined } values %etag }}), 4,
	'an ETag per asset');

# ETag: 304 for the same, 200 for another; HEAD; methods; unknown asset

($status, $h, $body) = http_split(http_get('/status?asset=chart.js',
	headers => ["If-None-Match: $etag{'chart.js'}"]));
ok($status == 304 && $body eq '' && $h->{etag} eq $etag{'chart.js'},
	'304 on the same ETag');

($status) = http_split(http_get('/status?asset=chart.js',
	headers => ["If-None-Match: $etag{'page.js'}"]));
is($status, 200, '200 on another ETag');

($status, $h) = http_split(http_get('/status',
	headers => ['If-None-Match: W/"other", ' . http_header($r, 'etag')]));
is($status, 304, '304 on the page, ETag in a list');

($status, $h, $body) = http_split(http_get('/status?asset=page.js',
	method => 'HEAD'));
ok($status == 200 && $body eq '' && $h->{'content-length'} > 1000,
	'HEAD');

is(http_status(http_get('/status', method => 'POST', body => 'x')), 405,
	'POST refused');
is(http_status(http_get('/status?asset=../page.js')), 404, 'unknown asset');
is(http_status(http_get('/status?asset=')), 404, 'empty asset');
is(http_status(http_get('/status?other=1&asset=page.css')), 200,
	'asset among other arguments');

# parameters: metrics, interval, chartjs (relative to the configuration)

$body = http_body(http_get('/alt'));
ok($body =~ m!content="/ops/metrics"! && $body =~ m!content="750"!,
	'metrics and interval parameters');
is(http_body(http_get('/alt?asset=chart.js')), "/* not the real one */\n",
	'chartjs parameter');

# access: the location's allow/deny and auth_basic, on every asset

is(http_status(http_get('/ops/')), 403, 'deny: page refused');

for my $a ('', '?asset=page.js', '?asset=chart.js', '?asset=page.css') {
	is(http_status(http_get("/ops/x$a")), 403, "deny: /ops/x$a refused");
}

my $auth = 'Authorization: Basic ' . encode_base64('ops:st4tus-pass', '');
my $bad = 'Authorization: Basic ' . encode_base64('ops:nope', '');

for my $a ('', '?asset=page.js', '?asset=chart.js') {
	is(http_status(http_get("/locked$a")), 401, "auth: /locked$a 401");
	is(http_status(http_get("/locked$a", headers => [$bad])), 401,
		"auth: /locked$a wrong password 401");
}

($status, $h, $body) = http_split(http_get('/locked',
	headers => [$auth]));
ok($status == 200 && $body =~ m!content="/metrics\?x=1&y=2"!,
	'auth: page with credentials, metrics URI with arguments');

# configuration errors, with file and line

my $conf = <<'EOF';
%%TEST_GLOBALS%%
events {
}
http {
    %%TEST_GLOBALS_HTTP%%
    server {
        location = /status {
            MARK;
        }
    }
}
EOF

for my $case (
	['railgun_status chartjs=/nonexistent/chart.min.js',
		qr!open\(\) "/nonexistent/chart\.min\.js" failed.*libjs-chart\.js!,
		'missing Chart.js'],
	['railgun_status chartjs=/tmp', qr!"/tmp" is not Chart\.js!,
		'a directory as Chart.js'],
	['railgun_status metrics=http://elsewhere/metrics',
		qr!invalid parameter "metrics=http!, 'metrics on another origin'],
	['railgun_status metrics=//elsewhere/metrics',
		qr!invalid parameter "metrics=//!, 'metrics scheme-relative'],
	['railgun_status "metrics=/a\"><script>"',
		qr!invalid parameter!, 'metrics with markup'],
	['railgun_status interval=0', qr!invalid interval "interval=0"!,
		'interval 0'],
	['railgun_status interval=2x', qr!invalid interval!, 'interval 2x'],
	['railgun_status speed=1', qr!invalid parameter "speed=1"!,
		'unknown parameter'],
	['railgun_status; railgun_status', qr!is duplicate!, 'duplicate'],
)
{
	my ($directive, $re, $name) = @$case;
	(my $c = $conf) =~ s/MARK/$directive/;
	$t->rejected($c, $directive, $re, $name);
}

###############################################################################
