#!/usr/bin/perl

# Tests for scrapes in subrequests: a page that includes the metrics
# location twice with SSI gets two whole expositions, one after the other.
# Subrequests share their main request's pool, and each scrape must find
# its own cursor there, not the last one made.

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

# enough label sets for an exposition of many 64 KB buffers
my $NPATHS = 400;

my $t = Test::Railgun->new()->plan(5);

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;
        keepalive_requests 100000;

        location /items/ {
            railgun_path $uri;
            return 200 "item\n";
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /page {
            railgun off;
            ssi on;
            ssi_types *;
            return 200 '<!--# include virtual="/metrics" -->SEP<!--# include virtual="/metrics" -->END';
        }
    }
}

EOF

$t->run();

###############################################################################

my $req = '';
for my $i (1 .. $NPATHS) {
	$req .= "GET /items/$i HTTP/1.1\r\nHost: localhost\r\n"
		. ($i == $NPATHS ? "Connection: close\r\n" : '') . "\r\n";
}
my $r = http($req, timeout => 60);
is(scalar(() = $r =~ m!^HTTP/1.1 200 !mg), $NPATHS, 'label sets made');

my $direct = http_body(http_get('/metrics', timeout => 30));
cmp_ok(length($direct), '>', 4 * 65536, 'exposition of several buffers');

my $page = http_get('/page', timeout => 30);
like($page, qr/END\z/, 'page with two scrapes complete');

my ($one, $two) = http_body($page) =~ /\A(.*)SEP(.*)END\z/s;

# the connection counters moved on with the page's own connection
sub body {
	my ($b) = @_;
	$b =~ s/^railgun_nginx_connections\S* .*\n//mg;
	return $b;
}

ok(defined $one && body($one) eq body($direct),
	'first include is the exposition');
ok(defined $two && $two eq $one, 'second include is the same exposition');

###############################################################################
