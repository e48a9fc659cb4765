#!/usr/bin/perl

# The location that matched decides: railgun on|off, railgun_path and the
# buckets come from the location a request was in before an error page
# (error_page to a URI, or to a named location) moved it, so that
# "location = /50x.html { railgun off; }" neither drops nor moves a proxied
# 502 and its upstream attempts.  A "rewrite ... last" is the operator's
# routing: the location it lands in decides.  Counts are checked against the
# access log.

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

my $t = Test::Railgun->new()->plan(22);

my $d = $t->testdir();

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u_bad {
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
    }

    upstream u_ok {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        root $d/html;

        # as docs/operations.md recommends
        error_page 502 /50x.html;

        location = /50x.html {
            railgun off;
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /api/ {
            railgun_path /api;
            railgun_buckets 0.5 1;
            proxy_pass http://u_bad;
            proxy_intercept_errors on;
        }

        # a named fallback with other settings
        location /fb/ {
            railgun_path /fb;
            railgun_buckets 0.5 1;
            proxy_pass http://u_bad;
            proxy_intercept_errors on;
            error_page 502 = \@ok;
        }

        location \@ok {
            railgun_path /named;
            proxy_pass http://u_ok;
        }

        # not counted, wherever its error page is
        location /quiet/ {
            railgun off;
            proxy_pass http://u_bad;
            proxy_intercept_errors on;
            error_page 502 /counted.html;
        }

        location = /counted.html {
            railgun_path /counted;
        }

        # "return" runs after the location was seen
        location /gone/ {
            railgun_path /gone;
            error_page 404 /50x.html;
            return 404;
        }

        # a rewrite routes: where it lands decides
        location /old/ {
            railgun off;
            rewrite ^/old/(.*)\$ /new/\$1 last;
        }

        location /new/ {
            railgun_path /new;
            return 200 "new\\n";
        }

        # try_files to a URI routes too
        location /tf/ {
            railgun off;
            try_files /nothing /app/tf;
        }

        location /app/ {
            railgun_path /app;
            return 200 "app\\n";
        }

        # try_files to a named location is a fallback
        location /tfn/ {
            railgun_path /tfn;
            try_files /nothing \@quiet;
        }

        location \@quiet {
            railgun off;
            return 200 "quiet\\n";
        }

        # "error_page =" answers with the fallback's status, still a fallback
        location /eq/ {
            railgun_path /eq;
            proxy_pass http://u_bad;
            proxy_intercept_errors on;
            error_page 502 = /app/eq;
        }
    }
}

EOF

mkdir "$d/html" or die "mkdir: $!";
$t->write_file('html/50x.html', "sorry\n");
$t->write_file('html/counted.html', "counted\n");

$t->http_backend(8081);
$t->http_backend(8082, handler => sub { return (502, "bad gateway\n") });
$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my $DUR = 'railgun_http_request_duration_seconds';
my $UREQ = 'railgun_upstream_requests_total';

my $p81 = '127.0.0.1:' . port(8081);
my $p82 = '127.0.0.1:' . port(8082);

http_get('/api/x') for 1 .. 3;
http_get('/fb/x') for 1 .. 2;
http_get('/quiet/x') for 1 .. 2;
http_get('/gone/x') for 1 .. 2;
http_get('/old/x') for 1 .. 2;
http_get('/tf/x') for 1 .. 2;
http_get('/tfn/x') for 1 .. 2;
http_get('/eq/x') for 1 .. 2;

my $m = $t->metrics();

# requests per "first path segment status", and attempts per "addr status",
# as nginx logged them

my (%req, %att);

for my $line (split /\n/, $t->read_file('access.log')) {
	my ($uri, $status, $addr, $ust) =
		$line =~ m!"GET (\S+) [^"]*" (\d+) .* "([^"]*)" "([^"]*)"$!
		or next;
	next if $uri eq '/metrics';
	my ($loc) = $uri =~ m!^(/[^/]+/)!;
	$req{"$loc $status"}++;

	my @a = split /, | : /, $addr;
	my @s = split /, | : /, $ust;
	$att{$loc}{"$a[$_] $s[$_]"}++ for grep { $a[$_] ne '-' } 0 .. $#a;
}

my %base = (server => 'localhost', method => 'GET');

# error_page to a URI whose location is "railgun off"

is($req{'/api/ 502'}, 3, 'api: three 502s logged');
is(sample($m, $REQ, { %base, path => '/api', status => '502' }),
	$req{'/api/ 502'}, 'api: counted under its own path');
is(sample($m, $UREQ, { upstream => 'u_bad', peer => $p82, status => '502' }),
	$att{'/api/'}{"$p82 502"} + $att{'/fb/'}{"$p82 502"}
	+ $att{'/eq/'}{"$p82 502"}, 'api, fb, eq: upstream attempts counted');
is(join(' ', map { $_->{labels}{le} }
	series($m, "${DUR}_bucket", { path => '/api' })), '0.5 1 +Inf',
	'api: its own buckets');

# error_page to a named location

is($req{'/fb/ 200'}, 2, 'fb: two fallbacks logged');
is(sample($m, $REQ, { %base, path => '/fb', status => '200' }),
	$req{'/fb/ 200'}, 'fb: counted under the first path');
is(scalar(series($m, $REQ, { path => '/named' })), 0,
	'fb: not under the named location');
is(join(' ', map { $_->{labels}{le} }
	series($m, "${DUR}_bucket", { path => '/fb' })), '0.5 1 +Inf',
	'fb: the first location\'s buckets');
is(sample($m, $UREQ, { upstream => 'u_ok', peer => $p81, status => '200' }),
	$att{'/fb/'}{"$p81 200"}, 'fb: the fallback\'s attempts counted');

# "railgun off" of the first location holds

is($req{'/quiet/ 502'}, 2, 'quiet: two logged');
is(scalar(series($m, $REQ, { path => '/counted' })), 0,
	'quiet: its error page does not count it');

# "return" of a location

is($req{'/gone/ 404'}, 2, 'gone: two 404s logged');
is(sample($m, $REQ, { %base, path => '/gone', status => '404' }),
	$req{'/gone/ 404'}, 'gone: counted under its path');

# rewrite ... last

is($req{'/old/ 200'}, 2, 'old: two logged');
is(sample($m, $REQ, { %base, path => '/new', status => '200' }),
	$req{'/old/ 200'}, 'rewrite: the location it lands in decides');

# try_files

is($req{'/tf/ 200'}, 2, 'tf: two logged');
is(sample($m, $REQ, { %base, path => '/app', status => '200' }),
	$req{'/tf/ 200'}, 'try_files to a URI: the location it lands in');
is($req{'/tfn/ 200'}, 2, 'tfn: two logged');
is(sample($m, $REQ, { %base, path => '/tfn', status => '200' }),
	$req{'/tfn/ 200'}, 'try_files to a named location: the first');

# error_page with "="

is($req{'/eq/ 200'}, 2, 'eq: two logged, with the fallback\'s status');
is(sample($m, $REQ, { %base, path => '/eq', status => '200' }),
	$req{'/eq/ 200'}, 'error_page =: the first location');

# nothing else

my %paths = map { $_->{labels}{path} => 1 } series($m, $REQ);
is(join(' ', sort keys %paths), '/api /app /eq /fb /gone /new /tfn',
	'no other path');

###############################################################################
