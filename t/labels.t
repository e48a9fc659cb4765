#!/usr/bin/perl

# Tests for label values: the server label from server_name or the listen
# address, the path label from the location name or railgun_path, and
# escaping of hostile values (quotes, backslashes, newlines, invalid UTF-8).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use Encode ();

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(27)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost other.example;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /exact {
            return 200 "exact\n";
        }

        location ~ ^/re/(\d+)$ {
            return 200 "re\n";
        }

        location "/q\"t/" {
            return 200 "quote\n";
        }

        location /const/ {
            railgun_path api-v1;
            return 200 "const\n";
        }

        location /h/ {
            railgun_path $uri;
            return 200 "uri\n";
        }

        location /x/ {
            railgun_path $http_x_label;
            return 200 "header\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8081%%;

        location / {
            return 200 "nameless\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8082%%;
        server_name  first.example second.example;

        location / {
            return 200 "first\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%%;
        server_name  level.example;

        railgun_path srv-level;

        location / {
            return 200 "level\n";
        }

        location /own/ {
            railgun_path own;
            return 200 "own\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8084%%;
        server_name  var.example;

        railgun_path v-$request_method;

        location / {
            return 200 "var\n";
        }
    }
}

EOF

$t->run();

###############################################################################

my $REQ = 'railgun_http_requests_total';
my $R = "\xEF\xBF\xBD";

sub count {
	my ($m, %labels) = @_;
	return sample_sum($m, $REQ, \%labels) // 0;
}

http_get('/exact');
http_get('/exact?secret=1');
http_get('/re/1');
http_get('/re/2');
http_get('/q%22t/');
http_get('/const/');
http_get('/', port => 8081);
http_get('/', port => 8082);
http_get('/', port => 8083);
http_get('/own/', port => 8083);
http_get('/', port => 8084);

my %uri = (
	'/h/a%22b' => '/h/a"b',
	'/h/a%5Cb' => '/h/a\\b',
	'/h/a%0Ab' => "/h/a\nb",
	'/h/x%FFy' => "/h/x${R}y",
	'/h/z%C3' => "/h/z$R",
	'/h/%C3%A9' => "/h/\xC3\xA9",
);

for my $u (sort keys %uri) {
	die "$u rejected" unless http_status(http_get($u)) == 200;
}

http_get('/h/s%ED%A0%80');
http_get('/h/o%C0%AF');

http_get('/x/', headers => [ 'X-Label: a"b\\c' ]);
http_get('/x/', headers => [ "X-Label: \xFF\xFE" ]);

my $m = $t->metrics();
my $body = $m->{body};

# server label

is(count($m, server => 'localhost', path => '/exact'), 2,
	'first server_name');
is(count($m, server => '127.0.0.1:' . port(8081), path => '/'), 1,
	'listen address without server_name');
is(count($m, server => 'first.example', path => '/'), 1,
	'first of several names');
is(scalar(grep { ($_->{labels}{server} // '') =~ /other|second/ }
	@{$m->{series}}), 0, 'other names unused');

# path label

is(count($m, server => 'level.example', path => 'srv-level'), 1,
	'railgun_path from server');
is(count($m, server => 'level.example', path => 'own'), 1,
	'railgun_path in location');
is(count($m, server => 'var.example', path => 'v-GET'), 1,
	'railgun_path with a variable from server');
is(count($m, path => '^/re/(\d+)$'), 2, 'regex location');
like($body, qr/path="\^\/re\/\(\\\\d\+\)\$"/, 'regex escaped');
is(count($m, path => '/q"t/'), 1, 'location with a quote');
like($body, qr/path="\/q\\"t\/"/, 'quote escaped');
is(count($m, path => 'api-v1'), 1, 'constant railgun_path');
is(scalar(grep { /secret/ } keys %{$m->{samples}}), 0, 'no query string');

# hostile values through $uri

is(count($m, path => '/h/a"b'), 1, 'uri quote');
is(count($m, path => '/h/a\\b'), 1, 'uri backslash');
like($body, qr/path="\/h\/a\\\\b"/, 'backslash escaped');
is(count($m, path => "/h/a\nb"), 1, 'uri newline');
like($body, qr/path="\/h\/a\\nb"/, 'newline escaped');
is(count($m, path => "/h/x${R}y"), 1, 'invalid byte replaced');
is(count($m, path => "/h/z$R"), 1, 'truncated sequence replaced');
is(count($m, path => "/h/\xC3\xA9"), 1, 'valid UTF-8 kept');

my @s = grep { ($_->{labels}{path} // '') =~ m!^/h/s! } series($m, $REQ);
ok(@s == 1 && $s[0]{labels}{path} =~ /^\/h\/s(?:$R)+$/,
	'surrogate replaced');

my @o = grep { ($_->{labels}{path} // '') =~ m!^/h/o! } series($m, $REQ);
ok(@o == 1 && $o[0]{labels}{path} =~ /^\/h\/o(?:$R)+$/,
	'overlong replaced');

# hostile values through a header

is(count($m, path => 'a"b\\c'), 1, 'header quote and backslash');
is(count($m, path => "$R$R"), 1, 'header invalid bytes');

my $copy = $body;
ok(eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK()); 1 },
	'valid UTF-8');

is(scalar(grep { $_->{labels}{path} && $_->{labels}{path} =~ /\xFF|\xFE/ }
	@{$m->{series}}), 0, 'no raw invalid bytes');

###############################################################################
