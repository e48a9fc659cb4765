#!/usr/bin/perl

# Redis credentials as RFC 3986 userinfo: percent-encoded bytes are
# decoded, and a password may hold "/", "@" and ":" as written too (the
# userinfo ends at the last "@").  A probe with each form passes against a
# real redis-server whose password has all of them; a wrong one is "auth".

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(5);

my $P = 'interval=200ms timeout=150ms rise=1 fall=1';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe encoded redis://:a%2Fb%40c%3Ad%25e\@127.0.0.1:%%PORT_7401%% $P;
    railgun_probe literal redis://:a/b\@c:d%25e\@127.0.0.1:%%PORT_7401%%/0 $P;
    railgun_probe user    redis://ap%70:p%2Fw\@127.0.0.1:%%PORT_7401%% $P;
    railgun_probe wrong   redis://:a%2Fb\@127.0.0.1:%%PORT_7401%% $P;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

redis_start($t, 7401, requirepass => 'a/b@c:d%e',
	users => [ 'app on >p/w ~* +@all' ]);

$t->run();

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 } qw/ encoded literal user wrong /)
		? 0 : $s;
}, 0.1);
ok($s, 'three results of every probe');

for my $p (qw/ encoded literal user /) {
	my $c = probe_checks($s, $p);
	ok($c->{ok} >= 3 && $c->{ok} == probe_checks_total($s, $p),
		"$p: ok") or diag(explain $c);
}

my $c = probe_checks($s, 'wrong');
ok($c->{auth} >= 3 && $c->{auth} == probe_checks_total($s, 'wrong'),
	'a wrong password: auth') or diag(explain $c);

###############################################################################
