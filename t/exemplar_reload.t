#!/usr/bin/perl

# railgun_exemplar across reloads: the zone keeps a series' exemplar
# records, so a reload that takes every railgun_exemplar away must stop the
# scrape showing the request ids those records hold (an operator turning
# exemplars off, for the ids' sake, expects them gone, not shown until a
# restart); a reload that brings the directive back shows the new
# requests' exemplars in the same series.

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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(10);

my $conf = <<'EOF';

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
            %%EXEMPLAR%%
            add_header X-Request-Id $request_id always;
            return 200 ok;
        }
    }
}

EOF

sub config {
	my ($directive) = @_;
	(my $c = $conf) =~ s/%%EXEMPLAR%%/$directive/;
	$t->write_file_expand('nginx.conf', $c);
}

my $OM = 'application/openmetrics-text; version=1.0.0';
my $DUR = 'railgun_http_request_duration_seconds_bucket';

# the request ids of the exemplars of the /api/ buckets a scrape shows

sub ids {
	my $m = $t->metrics(accept => $OM);
	return join ' ', sort map { $_->{exemplar}{labels}{request_id} // () }
		series($m, $DUR, { path => '/api/' });
}

sub request {
	my $r = http_get('/api/x');
	return http_header($r, 'X-Request-Id') // '';
}

config('railgun_exemplar $request_id;');
$t->run();

my $first = request();
like($first, qr/^[0-9a-f]{32}$/, 'request id given');
is(ids(), $first, 'its exemplar is shown');

###############################################################################

# every railgun_exemplar gone

config('');
ok($t->reload(), 'reloaded without railgun_exemplar');

is(ids(), '', 'no exemplar shown once no scope has the directive');

request();
is(ids(), '', 'nor after a request in the same series');

###############################################################################

# "off" is no directive either

config('railgun_exemplar off;');
ok($t->reload(), 'reloaded with railgun_exemplar off');
is(ids(), '', 'none with "off"');

###############################################################################

# back: the same series, its records kept, the new request's exemplar

config('railgun_exemplar $request_id;');
ok($t->reload(), 'reloaded with railgun_exemplar again');

# the new request's exemplar is shown; a bucket it did not land in may
# still show the first request's (the records are kept, as documented),
# never anything else

my $third = request();
my @ids = split ' ', ids();
ok((grep { $_ eq $third } @ids), 'the new request\'s exemplar shown')
	or diag("@ids");
is(scalar(grep { $_ ne $third && $_ ne $first } @ids), 0,
	'no other exemplar') or diag("@ids");

###############################################################################
