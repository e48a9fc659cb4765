#!/usr/bin/perl

# Tests for configuration mistakes: "nginx -t" rejects each with an
# [emerg] naming the problem and "in FILE:LINE" of the offending line.

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

%%MAIN%%

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

# [ name, context, directive, what the message must say ]

my @cases = (
	[ 'railgun maybe', 'LOCATION', 'railgun maybe;',
		qr/invalid value "maybe"/ ],
	[ 'railgun without value', 'LOCATION', 'railgun;',
		qr/invalid number of arguments/ ],
	[ 'zone size 10x', 'HTTP', 'railgun_zone 10x;',
		qr/railgun: invalid zone size "10x"/ ],
	[ 'zone size 1k', 'HTTP', 'railgun_zone 1k;',
		qr/railgun: zone size "1k" is too small/ ],
	[ 'zone too big to map', 'HTTP', 'railgun_zone 100000000m;',
		qr/railgun: zone size "100000000m" cannot be mapped/ ],
	[ 'second zone', 'HTTP', 'railgun_zone 16m; railgun_zone 32m;',
		qr/duplicate/ ],
	[ 'buckets decreasing', 'LOCATION', 'railgun_buckets 0.1 0.05;',
		qr/railgun: bucket "0\.05" is not greater/ ],
	[ 'buckets equal', 'LOCATION', 'railgun_buckets 0.1 1 1;', qr/"1"/ ],
	[ 'bucket negative', 'LOCATION', 'railgun_buckets -1 1;', qr/"-1"/ ],
	[ 'bucket not a number', 'HTTP', 'railgun_buckets 0.5 abc;',
		qr/railgun: invalid bucket "abc"/ ],
	[ 'no buckets', 'SERVER', 'railgun_buckets;',
		qr/invalid number of arguments/ ],
	# nginx's own number slot says so without quoting the value
	[ 'max_series 0', 'HTTP', 'railgun_max_series 0;',
		qr/"0"|must be between 1 and/ ],
	[ 'max_series abc', 'HTTP', 'railgun_max_series abc;',
		qr/"abc"|"railgun_max_series" directive invalid number/ ],
	[ 'metrics with argument', 'LOCATION', 'railgun_metrics on;',
		qr/railgun: invalid parameter "on"/ ],
	[ 'zone in server', 'SERVER', 'railgun_zone 16m;',
		qr/"railgun_zone" directive is not allowed here/ ],
	[ 'zone in main', 'MAIN', 'railgun_zone 16m;',
		qr/"railgun_zone" directive is not allowed here/ ],
	[ 'max_series in location', 'LOCATION', 'railgun_max_series 10;',
		qr/"railgun_max_series" directive is not allowed here/ ],
	[ 'metrics in server', 'SERVER', 'railgun_metrics;',
		qr/"railgun_metrics" directive is not allowed here/ ],
	[ 'path in http', 'HTTP', 'railgun_path /x;',
		qr/"railgun_path" directive is not allowed here/ ],
);

my $t = Test::Railgun->new()->plan(2 * @cases + 2);

###############################################################################

sub conf {
	my (%fill) = @_;

	my $c = $CONF;
	for my $k (qw/ MAIN HTTP SERVER LOCATION /) {
		my $v = $fill{$k} // '';
		$c =~ s/%%$k%%/$v/;
	}
	return $c;
}

# every directive with good values

my ($rc, $out) = $t->nginx_t(conf(
	HTTP => 'railgun_zone 8m; railgun_max_series 100; '
		. 'railgun_buckets 0.01 0.1 1; railgun on;',
	SERVER => 'railgun on; railgun_path srv; railgun_buckets 0.5 5;',
	LOCATION => 'railgun_metrics; railgun off; railgun_path $uri; '
		. 'railgun_buckets 0.001 0.002 0.5;'));

is($rc, 0, 'valid configuration')
	or diag($out);
like($out, qr/test is successful/, 'valid configuration output');

for my $case (@cases) {
	my ($name, $where, $directive, $msg) = @$case;

	$t->rejected(conf($where => "$directive  # BAD"), '# BAD', $msg, $name);
}

###############################################################################
