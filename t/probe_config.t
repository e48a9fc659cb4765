#!/usr/bin/perl

# Tests for railgun_probe configuration: every mistake fails "nginx -t"
# with an [emerg] naming it and "in FILE:LINE" of the offending line (also
# two probes whose names and targets are one once escaped as label values,
# and an address twice in a checked upstream); a configuration using every
# parameter passes.

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

    railgun_probe ok_one http://127.0.0.1:8081/ready;

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

my $R = 'redis://127.0.0.1:6379';
my $H = 'http://127.0.0.1:8081/';

my $INVALID = qr/invalid parameter "([^"]*)"/;

# [ name, context, directive, what the message must say ]

my @cases = (
	[ 'unknown parameter', 'HTTP', "railgun_probe a $R color=blue;",
		qr/invalid parameter "color=blue"/ ],
	[ 'unknown scheme', 'HTTP', 'railgun_probe a ftp://127.0.0.1:21;',
		qr/invalid probe URL "ftp:\/\/127\.0\.0\.1:21"/ ],
	[ 'no scheme', 'HTTP', 'railgun_probe a 127.0.0.1:6379;',
		qr/invalid probe URL/ ],
	[ 'no URL', 'HTTP', 'railgun_probe a;',
		qr/invalid number of arguments/ ],
	[ 'user without password', 'HTTP',
		'railgun_probe a redis://probe@127.0.0.1:6379;',
		qr/password/ ],
	[ 'database not a number', 'HTTP',
		'railgun_probe a redis://127.0.0.1:6379/x;',
		qr/database/ ],
	[ 'bad port', 'HTTP', 'railgun_probe a redis://127.0.0.1:99999;',
		qr/port/ ],
	[ 'tcp without port', 'HTTP', 'railgun_probe a tcp://127.0.0.1;',
		qr/port/ ],
	[ 'jitter above interval', 'HTTP',
		"railgun_probe a $R interval=1s jitter=1001ms;",
		qr/jitter must not be more than interval/ ],
	[ 'jitter above the default interval', 'HTTP',
		"railgun_probe a $R jitter=3s;",
		qr/jitter must not be more than interval/ ],
	[ 'duplicate name', 'HTTP', "railgun_probe ok_one $R;",
		qr/railgun: duplicate probe "ok_one"/ ],
	[ 'interval not a time', 'HTTP', "railgun_probe a $R interval=soon;",
		qr/invalid parameter "interval=soon"/ ],
	[ 'interval 0', 'HTTP', "railgun_probe a $R interval=0;",
		qr/invalid parameter "interval=0"/ ],
	[ 'timeout not a time', 'HTTP', "railgun_probe a $R timeout=x;",
		qr/invalid parameter "timeout=x"/ ],
	[ 'jitter not a time', 'HTTP', "railgun_probe a $R jitter=lots;",
		qr/invalid parameter "jitter=lots"/ ],
	[ 'rise 0', 'HTTP', "railgun_probe a $R rise=0;",
		qr/invalid parameter "rise=0"/ ],
	[ 'fall not a number', 'HTTP', "railgun_probe a $R fall=x;",
		qr/invalid parameter "fall=x"/ ],
	[ 'initial sideways', 'HTTP', "railgun_probe a $R initial=sideways;",
		qr/invalid parameter "initial=sideways"/ ],
	[ 'status below 100', 'HTTP', "railgun_probe a $H status=99;",
		qr/invalid parameter "status=99"/ ],
	[ 'status range reversed', 'HTTP', "railgun_probe a $H status=300-200;",
		qr/invalid parameter "status=300-200"/ ],
	[ 'status not a number', 'HTTP', "railgun_probe a $H status=ok;",
		qr/invalid parameter "status=ok"/ ],
	[ 'status open range', 'HTTP', "railgun_probe a $H status=200-;",
		qr/invalid parameter "status=200-"/ ],
	[ 'empty body', 'HTTP', "railgun_probe a $H body=;",
		qr/invalid parameter "body="/ ],
	[ 'role on http', 'HTTP', "railgun_probe a $H role=master;",
		qr/invalid parameter "role=master"/ ],
	[ 'status on redis', 'HTTP', "railgun_probe a $R status=200;",
		qr/invalid parameter "status=200"/ ],
	[ 'body on redis', 'HTTP', "railgun_probe a $R body=PONG;",
		qr/invalid parameter "body=PONG"/ ],
	[ 'host on redis', 'HTTP', "railgun_probe a $R host=x;",
		qr/invalid parameter "host=x"/ ],
	[ 'role boss', 'HTTP', "railgun_probe a $R role=boss;",
		qr/invalid parameter "role=boss"/ ],
	[ 'user with an empty password', 'HTTP',
		'railgun_probe a redis://probe:@127.0.0.1:6379;',
		qr/an empty password/ ],
	[ 'an empty password', 'HTTP',
		'railgun_probe a redis://:@127.0.0.1:6379;',
		qr/an empty password/ ],
	[ 'a bad percent escape', 'HTTP',
		'railgun_probe a redis://:pa%zz@127.0.0.1:6379;',
		qr/two hexadecimal digits/ ],
	[ 'a space in the path', 'HTTP',
		'railgun_probe a "http://127.0.0.1:8081/a b";',
		qr/a space or a control character in the path/ ],
	[ 'CR LF in host=', 'HTTP',
		qq{railgun_probe a $H "host=a\\r\\nX-Injected: 1";},
		qr/a space or a control character would go into the request/ ],
	[ 'a space in host=', 'HTTP',
		qq{railgun_probe a $H "host=a b";},
		qr/a space or a control character would go into the request/ ],
	[ 'names one once escaped (invalid UTF-8)', 'HTTP',
		qq{railgun_probe "a\xff" $R; railgun_probe "a\xfe" $R;},
		qr/probe "a\xfe" 127\.0\.0\.1:6379 would share the state of /
			. qr/probe "a\xff"/ ],
	[ 'names one once cut at 256 bytes', 'HTTP',
		'railgun_probe ' . 'x' x 300 . "a $R; railgun_probe "
			. 'x' x 300 . "b $R;",
		qr/would share the state of probe "x{300}a"/ ],
	[ 'an address twice in a checked upstream', 'HTTP',
		'upstream twice { server 127.0.0.1:8081; server 127.0.0.1:8081; '
			. 'railgun_check; }',
		qr/probe "twice" 127\.0\.0\.1:8081 would share the state of probe /
			. qr/"twice" 127\.0\.0\.1:8081/ ],
	[ 'probe in server', 'SERVER', "railgun_probe a $R;",
		qr/"railgun_probe" directive is not allowed here/ ],
	[ 'probe in location', 'LOCATION', "railgun_probe a $R;",
		qr/"railgun_probe" directive is not allowed here/ ],
);

my $t = Test::Railgun->new()->plan(2 * @cases + 2);

###############################################################################

sub conf {
	my (%fill) = @_;

	my $c = $CONF;
	for my $k (qw/ HTTP SERVER LOCATION /) {
		my $v = $fill{$k} // '';
		$c =~ s/%%$k%%/$v/;
	}
	return $c;
}

# every parameter with good values

my ($rc, $out) = $t->nginx_t(conf(HTTP => join ' ',
	"railgun_probe web $H interval=5s timeout=2s rise=3 fall=4",
		'jitter=500ms initial=up status=200-204,301,418 body=ready',
		'host=api.example.com;',
	'railgun_probe cache redis://probe:s3cret@127.0.0.1:6380/2',
		'role=replica interval=1s timeout=300ms initial=down;',
	'railgun_probe pw redis://:s3cret@127.0.0.1:6379 role=master;',
	'railgun_probe port tcp://127.0.0.1:5432 interval=10s;',
	"railgun_probe short $R interval=500ms;",
	"railgun_probe plus $H interval=200ms timeout=5s jitter=200ms;"));

is($rc, 0, 'valid configuration') or diag($out);
like($out, qr/test is successful/, 'valid configuration output');

for my $case (@cases) {
	my ($name, $where, $directive, $msg) = @$case;

	$t->rejected(conf($where => "$directive  # BAD"), '# BAD', $msg, $name);
}

###############################################################################
