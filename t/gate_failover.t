#!/usr/bin/perl

# Health gate failover under continuous load: three backends behind one
# upstream with railgun_check; one is stopped, and after "fall" failed
# checks no request reaches it while clients see no error at all; it is
# started again and gets traffic back once "rise" checks passed, not before.
# Then another hangs (SIGSTOP): its checks time out, it is skipped, and
# requests caught in it move on after proxy_read_timeout; it comes back once
# resumed.  One check per interval, though two workers could each make it.
#
# max_fails=0: nginx's own passive failure accounting is off, so whatever
# keeps requests away from the stopped backend is the gate.  Two workers:
# the worker that probes is not always the one that balances.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(28)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream api {
        railgun_check uri=/health interval=200ms timeout=150ms rise=2 fall=2;

        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
        server 127.0.0.1:%%PORT_8083%% max_fails=0;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location / {
            proxy_pass http://api;
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            add_header X-Addr $upstream_addr always;
        }
    }
}

EOF

my @b = (backend($t, 8081, 'b1'), backend($t, 8082, 'b2'),
	backend($t, 8083, 'b3'));
my $victim = $b[1];

$t->run();

###############################################################################

# every peer checked ok at least twice before the load starts

ok(wait_for(10, sub {
	my $s = scrape_quick($t);
	!grep { checks($s, 'api', $_, 'ok') < 2 } @b;
}), 'all peers checked');

my $c = client($t, sub { "/req/$_[0]" });

ok($c->more(60), 'load running');

my %seen = map { $_->{backend} => 1 } $c->results();
is(join(' ', sort keys %seen), 'b1 b2 b3', 'all three backends serve');

# stop one backend: "fall" checks later its peer is down

my $stopped = time();
$victim->stop();

my $down;
ok(wait_for(10, sub { (peer_up(scrape_quick($t), 'api', $victim) // -1) == 0 }),
	'peer_up 0 after the backend stopped');
$down = time();

my $took = $down - $stopped;
cmp_ok($took, '<', 3, 'peer down within a few checks')
	or diag("took $took s");

like($t->read_file('error.log'),
	qr/railgun: probe "api" \Q$victim->{addr}\E is down after 2 failed/,
	'transition logged');

# a while of load with the peer down

ok($c->more(150), 'load with the peer down');

# a check caught in the backend's shutdown fails reset (an error), not
# refused: the peer stays stopped until two checks were refused

wait_for(10, sub {
	checks(scrape_quick($t), 'api', $victim, 'refused') >= 2;
});

# start it again: traffic comes back after "rise" successful checks

my $health_before = () = $victim->health();
my $restarted = time();
$victim->start();

ok(wait_for(10, sub { (peer_up(scrape_quick($t), 'api', $victim) // -1) == 1 }),
	'peer_up 1 after the backend started');
my $up = time();

ok(wait_for(10, sub { scalar $victim->traffic(since => $restarted) }),
	'restarted backend gets traffic');

ok($c->more(300), 'load after the restart');

# b3 hangs (SIGSTOP): the kernel still accepts its connections and nothing
# answers.  Its checks time out; once it is down no new request goes there;
# one caught in it before times out (proxy_read_timeout) and goes on to the
# next peer.  Resumed, it takes traffic again.

my $hung = $b[2];
$hung->pause();

sub hung_up {
	return peer_up(scrape_quick($t), 'api', $hung) // -1;
}

ok(wait_for(10, sub { hung_up() == 0 }), 'hung peer down');
my $hung_down = time();

ok($c->more(150), 'load with the peer hung');

my $resumed = time();
$hung->resume();

ok(wait_for(10, sub { hung_up() == 1 }), 'resumed peer up');
ok(wait_for(10, sub {
	grep { $_->{t0} > $resumed && $_->{backend} eq 'b3' } $c->results()
}), 'resumed backend answers again');

my @results = $c->stop();

###############################################################################

# no error response at all over the whole run

my @bad = grep { $_->{status} ne '200' } @results;
is(scalar @bad, 0, 'no error responses to ' . scalar(@results) . ' requests')
	or diag(join "\n", map { "$_->{t0} $_->{status} $_->{uri}" }
		@bad[0 .. ($#bad < 9 ? $#bad : 9)]);

# between the peer going down and the restart no request tried it

my @tried = grep {
	$_->{t0} > $down && $_->{t1} < $restarted
		&& grep { $_ eq $victim->{addr} } @{$_->{addrs}}
} @results;

is(scalar @tried, 0, 'no request tried the down peer')
	or diag(join "\n", map { "$_->{t0} @{$_->{addrs}}" }
		@tried[0 .. ($#tried < 9 ? $#tried : 9)]);

my @while_down = grep { $_->{t0} > $down && $_->{t1} < $restarted } @results;
cmp_ok(scalar @while_down, '>=', 100, 'requests while the peer was down');

my %share = map { $_ => 0 } qw/ b1 b2 b3 /;
$share{$_->{backend}}++ for @while_down;
ok($share{b1} > 0 && $share{b3} > 0 && $share{b2} == 0,
	'the other two served it all')
	or diag(explain \%share);

# the first request to reach the restarted backend came after its "rise"-th
# successful check, not before: both are in its access log, in order

my @all = $victim->health();
my @health = @all[$health_before .. $#all];
my @ok = grep { $_->{status} == 200 } @health;
my ($first) = $victim->traffic(since => $restarted);

ok(@ok >= 2 && $first && $first->{time} >= $ok[1]{time},
	'traffic only after rise successful checks')
	or diag("health: " . join(' ', map { "$_->{time}/$_->{status}" }
		@health) . "; first request: "
		. ($first ? $first->{time} : 'none'));

# and it takes its share again

my @after = grep { $first && $_->{t0} > $first->{time} } @results;
my $back = grep { $_->{backend} eq 'b2' } @after;
cmp_ok($back, '>', @after / 6, 'restarted backend takes its share')
	or diag("$back of " . scalar(@after));

# the hung peer: nothing tried it once down

@tried = grep {
	$_->{t0} > $hung_down && $_->{t1} < $resumed
		&& grep { $_ eq $hung->{addr} } @{$_->{addrs}}
} @results;

is(scalar @tried, 0, 'no request tried the hung peer')
	or diag(join "\n", map { "$_->{t0} @{$_->{addrs}}" }
		@tried[0 .. ($#tried < 9 ? $#tried : 9)]);

# one check per interval, whichever of the two workers makes it

my @t = map { $_->{time} } $b[0]->health();
my @gaps = sort { $a <=> $b } map { $t[$_] - $t[$_ - 1] } 1 .. $#t;

# the next check is due an interval after the prober saw the reply, which
# is after the backend logged the check, so a gap is at least the interval
# less the clocks' millisecond steps, however late a check is; a check
# made twice (two workers, a worker's first look at the due time with the
# master's stale cached time) makes a gap near 0.  Under valgrind a gap
# of 0.144 s was seen once: a lower bar there.
my $min_gap = $ENV{RAILGUN_TEST_VALGRIND} ? 0.1 : 0.15;
cmp_ok($gaps[0], '>=', $min_gap,
	'checks of a peer 200 ms apart, not doubled')
	or diag("gaps: @gaps[0 .. 4]");

# the checks fed the probe families

my $s = $t->metrics();

is(transitions($s, 'api', $victim, 'down'), 1, 'one transition down');
is(transitions($s, 'api', $victim, 'up'), 1, 'one transition up');
cmp_ok(checks($s, 'api', $victim, 'refused'), '>=', 2,
	'refused checks counted');
cmp_ok(checks($s, 'api', $hung, 'timeout'), '>=', 2,
	'timed out checks counted');
is(transitions($s, 'api', $hung, 'up'), 1, 'hung: one transition up');

ok(!quick_errors(), 'quick scrapes parse') or diag(join "\n", quick_errors());

###############################################################################
