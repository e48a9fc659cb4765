#!/usr/bin/perl

# Up means used: a peer that failed a request (max_fails=1 fail_timeout=10s)
# and whose checks then went down and up again gets traffic as soon as the
# checks say it is up, within rise x interval + 1 s of its restart, not at
# the end of nginx's fail_timeout: the checks clear nginx's own passive
# failure state of a peer they bring up.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(6)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream app {
        server 127.0.0.1:%%PORT_8081%% max_fails=1 fail_timeout=10s;
        server 127.0.0.1:%%PORT_8082%% max_fails=1 fail_timeout=10s;
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location = /ready {
            railgun_gate app:min=2;
        }

        location / {
            proxy_pass http://app;
            proxy_next_upstream error timeout;
            add_header X-Addr $upstream_addr always;
        }
    }
}

EOF

my @b = map { backend($t, 8080 + $_, "b$_") } 1 .. 2;

$t->run();

ok(wait_for(5, sub {
	my $s = scrape_quick($t);
	(peer_up($s, 'app', $b[0]) // 0) == 1
		&& (peer_up($s, 'app', $b[1]) // 0) == 1;
}), 'both peers up');

my $c = client($t, '/x');

# b1 stops: a request fails on it (nginx counts the failure), its checks
# take it down

my $stopped = time();
$b[0]->stop();

ok(wait_for(5, sub {
	my @r = grep { $_->{t0} >= $stopped } $c->results();
	grep { grep({ $_ eq $b[0]{addr} } @{$_->{addrs}}) } @r;
}, 0.01), 'a request failed on the stopped peer');

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'app', $b[0]) // 1) == 0 }),
	'its checks took it down');

# back: its checks bring it up after rise x interval, and traffic follows

$b[0]->start();
my $started = time();

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'app', $b[0]) // 0) == 1 }),
	'its checks brought it up');

my $first;
wait_for(4, sub {
	($first) = $b[0]->traffic(since => $started);
	$first;
}, 0.02);

my $after = $first ? $first->{time} - $started : -1;
ok($first && $after <= 0.4 + 1,
	sprintf('traffic %.3f s after the restart, within rise x interval + 1 s '
		. '(fail_timeout is 10 s)', $after));

$c->stop();

is((gate('/ready'))[0], 200, 'the gate agrees');

###############################################################################
