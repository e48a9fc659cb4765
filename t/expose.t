#!/usr/bin/perl

# Tests for the exposition in the Prometheus text format 0.0.4: content
# type, metadata once per family, contiguous families, promtool, HEAD,
# gzip, custom buckets and the process-wide families.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(33)
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

        location = /gz {
            railgun_metrics;
            railgun off;
            gzip on;
            gzip_types text/plain;
            gzip_min_length 0;
        }

        location /custom/ {
            railgun_buckets 0.1 1 2.5 10;
            return 200 "custom\n";
        }

        location /plain/ {
            return 200 "plain\n";
        }

        location /odd/ {
            railgun_buckets 0.0010 1.50 20;
            return 200 "odd\n";
        }
    }
}

EOF

my $t0 = time();
$t->run();

###############################################################################

my $DUR = 'railgun_http_request_duration_seconds';

http_get('/custom/') for 1 .. 2;
http_get('/plain/');
http_get('/odd/');

my $m = $t->metrics();
my $body = $m->{body};

is($m->{headers}{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
	'content type');

my %want = (
	railgun_http_requests_total => 'counter',
	railgun_http_request_duration_seconds => 'histogram',
	railgun_http_request_bytes_total => 'counter',
	railgun_http_response_bytes_total => 'counter',
	railgun_nginx_connections => 'gauge',
	railgun_nginx_connections_accepted_total => 'counter',
	railgun_nginx_connections_handled_total => 'counter',
	railgun_series_dropped_total => 'counter',
	railgun_zone_bytes => 'gauge',
	railgun_start_time_seconds => 'gauge',
	railgun_build_info => 'gauge',
);

my %got = map { $_ => $m->{families}{$_}{type} }
	grep { $want{$_} } keys %{$m->{families}};

is_deeply(\%got, \%want, 'families and types');

is(join(' ', grep { !/^railgun_/ } @{$m->{order}}), '', 'railgun_ prefix');

my %help;
$help{$1}++ while $body =~ /^# HELP (\S+) \S/mg;
my %type;
$type{$1}++ while $body =~ /^# TYPE (\S+) \S/mg;

is(join(' ', grep { $help{$_} != 1 } sort keys %type), '', 'HELP once');
is(join(' ', grep { ($type{$_} // 0) != 1 } sort keys %help), '',
	'TYPE once');
is(join(' ', grep { !$help{$_} || !$type{$_} } @{$m->{order}}), '',
	'HELP and TYPE for every family');

# family of each sample line, collapsed runs: a family seen twice was split

my (@runs, $prev);
for my $x (@{$m->{series}}) {
	my $f = $x->{family} // '';
	push @runs, $f if !defined $prev || $prev ne $f;
	$prev = $f;
}
my %seen;
is(join(' ', grep { $seen{$_}++ } @runs), '', 'families contiguous');

is(join("\n", $t->promtool($body, 'promtool', 'expose-check.txt')), '',
	'promtool check metrics');

# process-wide families

my $v = `$Test::Railgun::NGINX -v 2>&1`;
my ($nginx_version) = $v =~ m!nginx/(\S+)!;

my @bi = series($m, 'railgun_build_info');
is(scalar @bi, 1, 'build_info once');
is($bi[0]{labels}{nginx_version}, $nginx_version, 'build_info nginx_version');
like($bi[0]{labels}{version}, qr/^\d+\.\d+\.\d+/, 'build_info version');
is($bi[0]{value}, 1, 'build_info value');

is(sample($m, 'railgun_zone_bytes', { state => 'size' }), 16 * 1024 * 1024,
	'zone size default 16m');
my $used = sample($m, 'railgun_zone_bytes', { state => 'used' });
ok($used > 0 && $used <= 16 * 1024 * 1024, 'zone used');

my $start = sample($m, 'railgun_start_time_seconds');
ok($start >= int($t0) - 1 && $start <= time() + 1, 'start time')
	or diag("start $start, test started $t0");

is(join(',', sort map { $_->{labels}{state} }
	series($m, 'railgun_nginx_connections')),
	'active,reading,waiting,writing', 'connection states');
ok(sample($m, 'railgun_nginx_connections_accepted_total') >= 4,
	'accepted connections');

# buckets

is(join(',', map { $_->{labels}{le} } series($m, "${DUR}_bucket",
	{ path => '/custom/' })), '0.1,1,2.5,10,+Inf', 'custom buckets');
is(sample($m, "${DUR}_bucket", { path => '/custom/', le => '0.1' }), 2,
	'custom bucket count');
is(scalar(series($m, "${DUR}_bucket", { path => '/plain/' })), 12,
	'default buckets beside custom ones');
is(join(',', map { $_->{labels}{le} } series($m, "${DUR}_bucket",
	{ path => '/odd/' })), '0.001,1.5,20,+Inf', 'shortest decimal bounds');

# the format is negotiated and a scrape is never to be cached

is($m->{headers}{vary}, 'Accept', 'Vary: Accept');
is($m->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');

# HEAD: headers only

my ($status, $h, $hbody) = http_split(http_get('/metrics', method => 'HEAD'));

is($status, 200, 'HEAD status');
is($h->{'content-type'}, 'text/plain; version=0.0.4; charset=utf-8',
	'HEAD content type');
is($hbody, '', 'HEAD no body');
is($h->{vary}, 'Accept', 'HEAD Vary');
is($h->{'cache-control'}, 'no-store', 'HEAD Cache-Control');

like(http_get('/metrics', method => 'POST', body => 'x'), qr!^HTTP/1.. 405 !,
	'POST not allowed');

# gzip: the same scrape once decompressed

my $plain = $t->metrics(path => '/gz');
my $gz = $t->metrics(path => '/gz', gzip => 1);

is($gz->{headers}{'content-encoding'}, 'gzip', 'gzip');
like($gz->{headers}{vary}, qr/^Accept(, Accept-Encoding)?$/, 'gzip Vary');
is(join("\n", sort keys %{$gz->{samples}}),
	join("\n", sort keys %{$plain->{samples}}), 'gzip same series');
is(join(' ', map { $_->{value} } series($gz, 'railgun_http_requests_total')),
	join(' ', map { $_->{value} }
		series($plain, 'railgun_http_requests_total')),
	'gzip same values');

###############################################################################
