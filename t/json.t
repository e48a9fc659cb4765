#!/usr/bin/perl

# Tests for the JSON exposition: negotiation (Accept, ?format=json), the
# schema of docs/metrics.md, the same families and samples as the text
# format, and valid JSON and UTF-8 whatever bytes a client puts into a label
# (railgun_path $uri), parsed by a strict parser, over a body of many
# buffers, plain and gzipped.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use Encode ();
use IO::Uncompress::Gunzip qw/ gunzip $GunzipError /;
use JSON::PP;
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(31)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;
        keepalive_requests 100000;

        location /h/ {
            railgun_path $uri;
            return 200 "h\n";
        }

        location /b/ {
            railgun_path $uri;
            railgun_buckets 0.1 1 2.5;
            return 200 "b\n";
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /gz {
            railgun_metrics;
            railgun off;
            gzip on;
            gzip_types application/json;
            gzip_min_length 0;
        }
    }
}

EOF

$t->run();

###############################################################################

# hostile label bytes: quote, backslash, control characters, DEL, bytes
# that are not UTF-8 (alone, overlong, truncated, a surrogate), valid
# multibyte characters

my @hostile = qw! %22 %5C %5C%22 %01 %1F %7F %09 %0D %FF %C0%AF %E2%82 %ED%A0%80
	%E2%82%AC %F0%9F%98%80 %22%7D%2C%22x%22%3A%7B !;

my $req = '';
my @uris = ((map { "/h/x$_" } @hostile), '/b/buckets',
	map { "/h/many/$_" } 1 .. 1500);
for my $i (0 .. $#uris) {
	$req .= "GET $uris[$i] HTTP/1.1\r\nHost: localhost\r\n"
		. ($i == $#uris ? "Connection: close\r\n" : '') . "\r\n";
}
my $got = () = http($req, timeout => 60) =~ m!^HTTP/1.1 200 !mg;
is($got, scalar @uris, 'requests made');

my $t0 = time();
my ($st, $h, $body) = http_split(scalar http_get('/metrics',
	headers => [ 'Accept: application/json' ]));
my $t1 = time();

is($st, 200, 'status');
is($h->{'content-type'}, 'application/json', 'content type');
is($h->{vary}, 'Accept', 'Vary');
ok(length($body) > 2 * 65536, 'many buffers') or diag(length $body);

ok(defined eval { Encode::decode('UTF-8', my $copy = $body,
	Encode::FB_CROAK) }, 'valid UTF-8') or diag($@);

my $json = eval { JSON::PP->new->utf8->decode($body) };
ok($json, 'strict JSON parser reads it') or diag($@);
$json ||= {};

is(join(',', sort keys %$json), 'families,start_time,time,version',
	'top-level keys');
like($json->{version}, qr/^\d+\.\d+\.\d+$/, 'version');
ok($json->{time} >= int($t0) && $json->{time} <= $t1 + 1, 'time')
	or diag("$json->{time} not in [$t0, $t1]");
like($body, qr/"time":\d+\.\d{3},/, 'time in milliseconds');

# the text format of the same zone: same families, same order, same samples

my $m = $t->metrics();

is($json->{start_time}, sample($m, 'railgun_start_time_seconds'),
	'start_time');

my @fams = @{$json->{families} || []};

is(join(' ', map { $_->{name} } @fams), join(' ', @{$m->{order}}),
	'families in the text order, 0.0.4 names');
is(join(' ', map { $_->{type} } @fams),
	join(' ', map { $m->{families}{$_}{type} } @{$m->{order}}), 'types');
is(join("\n", map { $_->{help} } @fams),
	join("\n", map { $m->{families}{$_}{help} } @{$m->{order}}), 'help');
is(join(' ', grep { ref $_->{samples} ne 'ARRAY' } @fams), '',
	'samples an array in every family');

# label set as text; JSON's strings are characters, the text's are bytes

sub lkey {
	my ($l, $json) = @_;
	return join ',', map { "$_=" . ($json
		? Encode::encode('UTF-8', $l->{$_}) : $l->{$_}) }
		sort grep { $_ ne 'le' } keys %$l;
}

# counters and gauges: every sample of the zone's families as in the text

my $VOLATILE = qr/^railgun_(nginx_connections|zone_bytes)/;
my (@want, @have);

for my $f (@fams) {
	next if $f->{type} eq 'histogram' || $f->{name} =~ $VOLATILE;
	push @have, map {
		"$f->{name}\{" . lkey($_->{labels}, 1) . "} $_->{value}" }
		@{$f->{samples}};
	push @want, map { "$_->{name}\{" . lkey($_->{labels}) . "} $_->{value}" }
		grep { $_->{family} eq $f->{name} } @{$m->{series}};
}

is(join("\n", @have), join("\n", @want), 'counter and gauge samples');

# hostile labels: each read back as the text format's label value

my %text_paths = map { $_->{labels}{path} => 1 }
	series($m, 'railgun_http_requests_total');
my ($req_fam) = grep { $_->{name} eq 'railgun_http_requests_total' } @fams;
my %json_paths = map { Encode::encode('UTF-8', $_->{labels}{path}) => 1 }
	@{$req_fam->{samples}};

is(scalar(grep { m!^/h/x! } keys %json_paths),
	scalar(grep { m!^/h/x! } keys %text_paths),
	'every hostile path a series');
is(join(' ', sort grep { !$text_paths{$_} } keys %json_paths), '',
	'label values as the text format has them');
ok($json_paths{"/h/x\"},\"x\":{"}, 'a quote cannot end the string');
ok($json_paths{"/h/x\x{1}"} && $body =~ /\\u0001/, 'control characters');
ok($json_paths{"/h/x\xef\xbf\xbd"}, 'invalid UTF-8 is U+FFFD');
ok($json_paths{"/h/x\xe2\x82\xac"}, 'valid UTF-8 kept');

# histograms

my ($dur) = grep { $_->{name} eq 'railgun_http_request_duration_seconds' }
	@fams;
my ($b) = grep { $_->{labels}{path} eq '/b/buckets' } @{$dur->{samples}};

is(join(',', map { $_->{le} } @{$b->{buckets}}), '0.1,1,2.5,+Inf',
	'bounds, +Inf last');
like($body, qr/"le":1\.0,/, 'bounds are floats');
is(join(',', map { $_->{count} } @{$b->{buckets}}), '1,1,1,1',
	'cumulative counts');
is($b->{count}, 1, 'count');
ok(defined $b->{sum} && $b->{sum} >= 0 && $b->{sum} < 1, 'sum')
	or diag($b->{sum});

my $bad = 0;
for my $s (@{$dur->{samples}}) {
	my @c = map { $_->{count} } @{$s->{buckets}};
	$bad++ if $s->{buckets}[-1]{le} ne '+Inf' || $c[-1] != $s->{count}
		|| grep { $c[$_] < $c[$_ - 1] } 1 .. $#c;
}
is($bad, 0, 'every histogram cumulative, +Inf = count');

# ?format=json, gzip

my ($st2, $h2, $b2) = http_split(scalar http_get('/gz?format=json',
	proto => '1.1', headers => [ 'Accept-Encoding: gzip' ]));
is($h2->{'content-encoding'}, 'gzip', 'format=json gzipped');
my $plain;
gunzip(\$b2 => \$plain) or diag("gunzip: $GunzipError");
my $json2 = eval { JSON::PP->new->utf8->decode($plain // '') };
is(scalar @{$json2->{families} || []}, scalar @fams,
	'?format=json: same families');

###############################################################################
