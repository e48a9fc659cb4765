#!/usr/bin/perl

# A unix-domain server of a checked upstream is checked with the upstream's
# name as Host however "unix:" is spelt: nginx takes "UNIX:/path" for a
# socket as it does "unix:/path" (the scheme is matched without case), and
# a Host of "UNIX:/path" is refused (400) by an nginx backend for its '/'.
# The backend here is a unix listener of the nginx under test; it logs the
# Host of each check.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(4);

my $sock = $t->testdir() . '/b.sock';

(my $conf = <<'EOF') =~ s/%%SOCK%%/$sock/g;

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    log_format hosts '$request_uri $status "$http_host"';

    upstream lower {
        railgun_check uri=/health/lower interval=100ms timeout=1s
                      rise=1 fall=1;
        server unix:%%SOCK%%;
    }

    upstream upper {
        railgun_check uri=/health/upper interval=100ms timeout=1s
                      rise=1 fall=1;
        server UNIX:%%SOCK%% weight=2;
    }

    server {
        listen       unix:%%SOCK%%;
        server_name  localhost;

        access_log   %%DIR%%/hosts.log hosts;

        location /health/ {
            return 200 "ok\n";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /lower {
            proxy_pass http://lower;
        }

        location /upper {
            proxy_pass http://upper;
        }
    }
}

EOF

my $d = $t->testdir();
$conf =~ s/%%DIR%%/$d/g;

$t->write_file_expand('nginx.conf', $conf);
$t->run();

###############################################################################

sub checked {
	my ($which) = @_;

	my $log = $t->read_file('hosts.log') // '';
	my @l = $log =~ m!^/health/\Q$which\E (\d+ "[^"]*")$!mg;
	return @l ? $l[-1] : undef;
}

ok(wait_for(5, sub { checked('lower') && checked('upper') }),
	'both upstreams checked');

is(checked('lower'), '200 "lower"', 'unix: the upstream\'s name as Host');
is(checked('upper'), '200 "upper"', 'UNIX: the upstream\'s name as Host too');

is(peer_up(scrape_quick($t), 'upper', "UNIX:$sock"), 1, 'UNIX: server up');

###############################################################################
