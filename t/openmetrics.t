#!/usr/bin/perl

# Tests for OpenMetrics 1.0 negotiation and format: content type, counter
# metadata without "_total", samples with it, "# EOF" at the end.

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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(28)
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

        location /plain/ {
            return 200 "plain\n";
        }
    }
}

EOF

$t->run();

###############################################################################

my $OM = 'application/openmetrics-text; version=1.0.0';
my $OM_CT = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
my $TEXT_CT = 'text/plain; version=0.0.4; charset=utf-8';

# what Prometheus 2.x sends
my $PROMETHEUS = 'application/openmetrics-text;version=1.0.0,'
	. 'application/openmetrics-text;version=0.0.1;q=0.75,'
	. 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

http_get('/plain/') for 1 .. 2;

my $m = $t->metrics(accept => $OM);
my $body = $m->{body};

is($m->{headers}{'content-type'}, $OM_CT, 'content type');
like($body, qr/\n# EOF\n\z/, 'ends with # EOF');
is(() = $body =~ /^# EOF$/mg, 1, 'one # EOF');
unlike($body, qr/\n\n/, 'no empty lines');

is(join(' ', $body =~ /^# TYPE (\S+_total) counter$/mg), '',
	'counter TYPE names without _total');
my %help = map { $_ => 1 } $body =~ /^# HELP (\S+) /mg;
is(join(' ', grep { !$help{$_} } $body =~ /^# TYPE (\S+) counter$/mg), '',
	'counter HELP names as TYPE names');
like($body, qr/^# TYPE railgun_http_requests counter$/m,
	'requests counter family');
like($body, qr/^# TYPE railgun_nginx_connections_accepted counter$/m,
	'accepted counter family');
like($body, qr/^# TYPE railgun_http_request_duration_seconds histogram$/m,
	'histogram family');

# what Prometheus 3 accepts as is: one name per family, canonical floats

my %names;
$names{$_}++ for $body =~ /^# TYPE (\S+) /mg;
is(join(' ', grep { $names{$_} > 1 } sort keys %names), '',
	'no two families of one name');
unlike($body, qr/^# TYPE \S+ unknown$/m, 'no unknown type');
like($body, qr/^# TYPE railgun_websocket_connections_opened counter$/m,
	'sessions counter is a counter family of its own');
like($body, qr/_bucket\{[^}]*,le="1\.0"\} /, 'le="1.0"');
like($body, qr/_bucket\{[^}]*,le="0\.005"\} /, 'le="0.005"');
like($body, qr/_bucket\{[^}]*,le="\+Inf"\} /, 'le="+Inf"');
is(join(' ', $body =~ /,le="(\d+)"/g), '', 'no le without a fraction');

my %L = (server => 'localhost', path => '/plain/', method => 'GET');

is(sample($m, 'railgun_http_requests_total', { %L, status => '200' }), 2,
	'counter sample keeps _total');
is(sample($m, 'railgun_http_request_duration_seconds_bucket',
	{ %L, le => '+Inf' }), 2, 'histogram sample');
ok(defined sample($m, 'railgun_nginx_connections_accepted_total'),
	'accepted sample keeps _total');

# same series as the 0.0.4 form, apart from optional _created and the
# float form of "le"

my $text = $t->metrics();

is($text->{headers}{'content-type'}, $TEXT_CT, 'no Accept: text format');
is(join("\n", sort grep { !/_created\{/ && !/_created$/ }
	map { (my $k = $_->{key}) =~ s/,le="(\d+)\.0"/,le="$1"/; $k }
	@{$m->{series}}),
	join("\n", sort map { $_->{key} } @{$text->{series}}),
	'same series as text format');

# negotiation

is($t->metrics(accept => $PROMETHEUS)->{headers}{'content-type'}, $OM_CT,
	'Prometheus Accept header');
is($t->metrics(accept => 'application/openmetrics-text')
	->{headers}{'content-type'}, $OM_CT, 'OpenMetrics without version');
is($t->metrics(accept => 'text/plain')->{headers}{'content-type'}, $TEXT_CT,
	'text/plain');
is(http_header(scalar http_get('/metrics',
	headers => [ 'Accept: application/json' ]),
	'Content-Type'), 'application/json', 'application/json');
is($t->metrics(accept => 'application/xml')->{headers}{'content-type'},
	$TEXT_CT, 'unsupported type falls back to text');

my ($status, $h, $hbody) = http_split(http_get('/metrics', method => 'HEAD',
	headers => [ "Accept: $OM" ]));

is($h->{'content-type'}, $OM_CT, 'HEAD content type');
is($hbody, '', 'HEAD no body');

###############################################################################
