#!/usr/bin/perl

# railgun_native_histograms: "nginx -t" rejects bad values with file and
# line, and accepts the directive at every level.  What the native buckets
# hold is checked in t/proto.t (the protobuf exposition, decoded here by an
# independent decoder) and t/native_prometheus.t (a real Prometheus).

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

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    %%HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        %%SERVER%%

        location / {
            %%LOCATION%%
        }
    }
}

EOF

my @cases = (
	[ 'value maybe', 'LOCATION', 'railgun_native_histograms maybe;',
		qr/railgun: invalid value "maybe", "on" or "off"/ ],
	[ 'no value', 'LOCATION', 'railgun_native_histograms;',
		qr/invalid number of arguments/ ],
	[ 'schema 9', 'HTTP', 'railgun_native_histograms on schema=9;',
		qr/railgun: invalid schema "9", -4 to 8 is expected/ ],
	[ 'schema -5', 'SERVER', 'railgun_native_histograms on schema=-5;',
		qr/railgun: invalid schema "-5"/ ],
	[ 'schema empty', 'LOCATION', 'railgun_native_histograms on schema=;',
		qr/railgun: invalid schema ""/ ],
	[ 'schema x', 'LOCATION', 'railgun_native_histograms on schema=3x;',
		qr/railgun: invalid schema "3x"/ ],
	[ 'schema -', 'LOCATION', 'railgun_native_histograms on schema=-;',
		qr/railgun: invalid schema "-"/ ],
	[ 'max_buckets 7', 'LOCATION',
		'railgun_native_histograms on max_buckets=7;',
		qr/railgun: invalid max_buckets "7", 8 to 1024 is expected/ ],
	[ 'max_buckets 1025', 'LOCATION',
		'railgun_native_histograms on max_buckets=1025;',
		qr/railgun: invalid max_buckets "1025"/ ],
	[ 'max_buckets huge', 'LOCATION',
		'railgun_native_histograms on max_buckets=99999999999999999999;',
		qr/railgun: invalid max_buckets/ ],
	[ 'unknown parameter', 'LOCATION',
		'railgun_native_histograms on buckets=3;',
		qr/railgun: invalid parameter "buckets=3"/ ],
	[ 'off with parameters', 'LOCATION',
		'railgun_native_histograms off schema=2;',
		qr/railgun: "off" takes no parameters/ ],
	[ 'duplicate', 'LOCATION',
		'railgun_native_histograms on; railgun_native_histograms off;',
		qr/is duplicate/ ],
	[ 'in main', 'MAIN', 'railgun_native_histograms on;',
		qr/"railgun_native_histograms" directive is not allowed here/ ],
);

my $t = Test::Railgun->new()->plan(2 * @cases + 6);

sub conf {
	my (%fill) = @_;

	my $c = $CONF;
	$c =~ s/^(%%TEST_GLOBALS%%)$/$1\n%%MAIN%%/m;
	for my $k (qw/ MAIN HTTP SERVER LOCATION /) {
		my $v = $fill{$k} // '';
		$c =~ s/%%$k%%/$v/;
	}
	return $c;
}

my ($rc, $out) = $t->nginx_t(conf(
	HTTP => 'railgun_native_histograms on;',
	SERVER => 'railgun_native_histograms on schema=-4 max_buckets=8;',
	LOCATION => 'railgun_metrics; '
		. 'railgun_native_histograms on schema=8 max_buckets=1024;'));

is($rc, 0, 'every level, every bound') or diag($out);
like($out, qr/test is successful/, 'valid configuration output');

($rc, $out) = $t->nginx_t(conf(LOCATION => 'railgun_native_histograms off;'));
is($rc, 0, 'off') or diag($out);

for my $case (@cases) {
	my ($name, $where, $directive, $msg) = @$case;

	$t->rejected(conf($where => "$directive  # BAD"), '# BAD', $msg, $name);
}

# a series must fit the chunks the zone is carved in: 1024 buckets do not
# fit a 1m zone's 4k chunks, and the message names the directive's line

my $small = conf(HTTP => 'railgun_zone 1m;',
	LOCATION => 'railgun_native_histograms on max_buckets=1024;  # BAD');

my $line = 1 + (() = substr($small, 0, index($small, '# BAD')) =~ /\n/g);

($rc, $out) = $t->nginx_t($small);
ok($rc != 0 && $out =~ /\[emerg\] .*railgun: max_buckets=1024 does not fit the zone's \d+ byte chunks/,
	'max_buckets too big for the zone: rejected') or diag($out);
like($out, qr/in \S+\/nginx-t-\d+\.conf:$line$/m,
	'max_buckets too big for the zone: file and line');

($rc, $out) = $t->nginx_t(conf(HTTP => 'railgun_zone 1m;',
	LOCATION => 'railgun_native_histograms on;'));
is($rc, 0, 'the default max_buckets fits a 1m zone') or diag($out);

###############################################################################
