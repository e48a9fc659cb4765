#!/usr/bin/perl

# Up means used: a peer that failed a request (max_fails=1 fail_timeout=10s)
# and whose checks then went down and up again gets traffic as soon as the
# checks say it is up, within rise x interval + 1 s of its restart, not at
# the end of nginx's fail_timeout: the checks clear nginx's own passive
# failure state of a peer they bring up, also in a worker that got no
# request between the fall and the rise (so never saw the peer down).

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

my $t = Test::Railgun->new()->plan(10)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream app {
        server 127.0.0.1:%%PORT_8081%% max_fails=1 fail_timeout=10s;
        server 127.0.0.1:%%PORT_8082%% max_fails=1 fail_timeout=10s;
        railgun_check uri=/health interval=300ms timeout=200ms rise=2 fall=3;
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

# the client's first request may start before $stopped is taken (it runs
# as soon as it is forked), and be the one that fails on the peer: what
# counts is a request that ended after the stop and tried the peer but was
# answered by another

ok(wait_for(5, sub {
	my @r = grep { $_->{t1} >= $stopped } $c->results();
	grep { $_->{backend} ne 'b1'
		&& grep({ $_ eq $b[0]{addr} } @{$_->{addrs}}) } @r;
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
ok($first && $after <= 0.6 + 1,
	sprintf('traffic %.3f s after the restart, within rise x interval + 1 s '
		. '(fail_timeout is 10 s)', $after));

$c->stop();

is((gate('/ready'))[0], 200, 'the gate agrees');

# again, but no request reaches the worker between the fall and the rise:
# it never sees the peer down, and still clears the failure of the request
# that failed on it

$stopped = time();
$b[0]->stop();

my $failed;
for (1 .. 4) {
	my $r = http_get('/y');
	$failed = 1 if (http_header($r, 'X-Addr') // '') =~ /\Q$b[0]{addr}\E/;
	last if $failed;
}
ok($failed, 'again a request failed on the stopped peer');

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'app', $b[0]) // 1) == 0 }),
	'its checks took it down, with no request meanwhile');

$b[0]->start();
$started = time();

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'app', $b[0]) // 0) == 1 }),
	'its checks brought it up, with no request meanwhile');

my $hit;
for (1 .. 6) {
	my $r = http_get('/z');
	$hit++ if (http_header($r, 'X-Backend') // '') eq 'b1';
}
ok($hit, "traffic to it at once, not after fail_timeout: $hit of 6");

###############################################################################
