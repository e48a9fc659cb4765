#!/usr/bin/perl

# The all-down lines of railgun_check are logged when it happens, not at the
# next request through the upstream: with no request at all, every server
# failing its checks logs "every server of upstream ... fails its checks"
# once, and one passing again logs "servers of upstream ... pass their
# checks again" once, each within a few ticks of the transition.  Two
# workers: the one whose check made it so logs, the other, which syncs at
# its probe timers, finds the episode's flag in the zone already moved.

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

my $t = Test::Railgun->new()->plan(6)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u {
        railgun_check uri=/health interval=100ms timeout=80ms rise=1 fall=1;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location / {
            proxy_pass http://u;
        }
    }
}

EOF

my @b = map { backend($t, 8080 + $_, "b$_") } 1 .. 2;

$t->run();

###############################################################################

my $back = 'servers of upstream "u" pass their checks again';

sub back_lines {
	return () = $t->read_file('error.log') =~ /^.*\[notice\].*\Q$back\E/mg;
}

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'u', $b[0]) // 0) == 1 }),
	'checks run');

$_->stop() for @b;

ok(wait_for(5, sub { scalar warn_lines($t, 'u') }),
	'all down: logged without a request');

$b[0]->start();

ok(wait_for(5, sub { back_lines() }), 'back: logged without a request');

is(scalar warn_lines($t, 'u'), 1, 'one all-down line');
is(back_lines(), 1, 'one line for the way back');

unlike($t->read_file('access.log'), qr/"GET \/ /, 'no request through u');

###############################################################################
