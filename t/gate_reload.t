#!/usr/bin/perl

# The health gate across "nginx -s reload" under continuous load, with one
# peer down (its backend stopped): the new workers take the states the zone
# has, so the down peer stays skipped right after the reload (no request
# tries it, no error at all), and railgun_upstream_peer_up and the check
# counters carry over, for peers in process memory and for peers in an
# upstream zone (which a reload copies anew).  Peers new in the reloaded
# configuration start as "initial" says: with initial=down one gets no
# request before "rise" successful checks; with initial=up it gets requests
# before its checks could have made it rise (interval=1s there, so that the
# window is wide).  A peer removed by the reload has no
# railgun_upstream_peer_up series any more (SPEC: one series per peer).
#
# max_fails=0: nginx's own failure accounting is off, so a request that
# tried the stopped peer would show in $upstream_addr and nothing else would
# keep the peer out.  Two workers.

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

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u {
        railgun_check uri=/health/u interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
        server 127.0.0.1:%%PORT_8083%% max_fails=0;
    }

    # the same in shared memory: a reload copies the peers into the zone anew
    upstream z {
        zone z 64k;
        railgun_check uri=/health/z interval=200ms timeout=150ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        server 127.0.0.1:%%PORT_8082%% max_fails=0;
        server 127.0.0.1:%%PORT_8083%% max_fails=0;
    }

    upstream v {
        railgun_check uri=/health/v interval=200ms timeout=150ms rise=2 fall=2
                      initial=down;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        %%OLD_V%%
        %%NEW_V%%
    }

    upstream w {
        railgun_check uri=/health/w interval=1s timeout=500ms rise=2 fall=2
                      initial=up;
        server 127.0.0.1:%%PORT_8081%% max_fails=0;
        %%NEW_W%%
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        add_header X-Addr $upstream_addr always;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /u/ {
            proxy_pass http://u;
        }

        location /v/ {
            proxy_pass http://v;
        }

        location /w/ {
            proxy_pass http://w;
        }

        location /z/ {
            proxy_pass http://z;
        }
    }
}

EOF

sub conf {
	my ($new) = @_;

	my $c = $CONF;
	my $s = $new ? 'server 127.0.0.1:%%PORT_8084%% max_fails=0;' : '';
	$c =~ s/%%NEW_V%%/$s/;
	$c =~ s/%%NEW_W%%/$s/;
	my $old = $new ? '' : 'server 127.0.0.1:%%PORT_8083%% max_fails=0;';
	$c =~ s/%%OLD_V%%/$old/;
	return $c;
}

my $t = Test::Railgun->new()->plan(26)
	->write_file_expand('nginx.conf', conf(0));

my ($b1, $b2, $b3, $b4) = map { backend($t, 8080 + $_, "b$_") } 1 .. 4;

$t->run();

###############################################################################

ok(wait_for(10, sub {
	my $s = scrape_quick($t);
	!grep { checks($s, $_->[0], $_->[1], 'ok') < 2 }
		[ u => $b1 ], [ u => $b2 ], [ u => $b3 ], [ v => $b1 ],
		[ v => $b3 ], [ w => $b1 ], [ z => $b1 ], [ z => $b2 ],
		[ z => $b3 ];
}), 'every peer checked');

my @P = qw/ u v w z /;
my $c = client($t, sub { "/$P[$_[0] % 4]/$_[0]" });

ok($c->more(60), 'load running');

# b2 stopped: down in u

$b2->stop();

ok(wait_for(10, sub {
	my $s = scrape_quick($t);
	(peer_up($s, 'u', $b2) // -1) == 0
		&& (peer_up($s, 'z', $b2) // -1) == 0;
}), 'stopped peer down');
my $down = time();

ok($c->more(60), 'load with the peer down');

my $before = $t->metrics();
my $refused = checks($before, 'u', $b2, 'refused');
my $all = checks($before, 'u', $b2);

is(transitions($before, 'u', $b2, 'down'), 1, 'one transition down');

# reload under load, b4 new in v (initial=down) and in w (initial=up), b3
# gone from v

my $offset = length $t->read_file('error.log');

$t->write_file_expand('nginx.conf', conf(1));

my $reloading = time();
ok($t->reload(), 'reloaded');
my $reloaded = time();

my $s = scrape_quick($t);
is(peer_up($s, 'u', $b2), 0, 'down peer still down right after the reload');
is(peer_up($s, 'z', $b2), 0, 'zone: down peer still down');
is(transitions($s, 'u', $b2, 'down'), 1, 'transitions kept');
cmp_ok(checks($s, 'u', $b2, 'refused'), '>=', $refused,
	'check counters kept');

ok($c->more(300), 'load after the reload');

ok(wait_for(10, sub {
	scalar $b4->traffic(uri => qr!^/v/!)
		&& scalar $b4->traffic(uri => qr!^/w/!)
}), 'the new peer gets traffic in v and w');

my @results = $c->stop();

###############################################################################

my @bad = grep { $_->{status} ne '200' } @results;
is(scalar @bad, 0, 'no error responses to ' . scalar(@results) . ' requests')
	or diag(join "\n", map { "$_->{t0} $_->{status} $_->{uri}" }
		@bad[0 .. ($#bad < 9 ? $#bad : 9)]);

my @tried = grep {
	$_->{t0} > $down && grep { $_ eq $b2->{addr} } @{$_->{addrs}}
} @results;

is(scalar @tried, 0, 'no request tried the down peer')
	or diag(join "\n", map { "$_->{t0} $_->{uri} @{$_->{addrs}}" }
		@tried[0 .. ($#tried < 9 ? $#tried : 9)]);

my @around = grep { $_->{t1} > $reloading && $_->{t0} < $reloaded }
	@results;
cmp_ok(scalar @around, '>', 0, 'requests during the reload')
	or diag('reload took ' . ($reloaded - $reloading) . ' s');

my %share;
$share{$_->{backend}}++ for grep { $_->{uri} =~ m!^/u/! && $_->{t0} > $down }
	@results;
ok($share{b1} && $share{b3} && !$share{b2}, 'u: the two others served')
	or diag(explain \%share);

%share = ();
$share{$_->{backend}}++ for grep { $_->{uri} =~ m!^/z/! && $_->{t0} > $down }
	@results;
ok($share{b1} && $share{b3} && !$share{b2}, 'z: the two others served')
	or diag(explain \%share);

# initial=down: no request of v at b4 before its second successful check

my @health = $b4->health(uri => qr!^/health/v!);
my @ok = grep { $_->{status} == 200 } @health;
my ($first) = $b4->traffic(uri => qr!^/v/!);

ok(@ok >= 2 && $first && $first->{time} >= $ok[1]{time},
	'v (initial=down): the new peer used only after rise checks')
	or diag('health: ' . join(' ', map { "$_->{time}/$_->{status}" }
		@health) . '; first request: '
		. ($first ? $first->{time} : 'none'));

# initial=up: requests of w at b4 before its second check (1 s apart)

@health = $b4->health(uri => qr!^/health/w!);
($first) = $b4->traffic(uri => qr!^/w/!);

ok($first && (@health < 2 || $first->{time} < $health[1]{time}),
	'w (initial=up): the new peer used before it could rise')
	or diag('health: ' . join(' ', map { "$_->{time}/$_->{status}" }
		@health) . '; first request: '
		. ($first ? $first->{time} : 'none'));

# states and counters

$s = $t->metrics();

is(peer_up($s, 'u', $b2), 0, 'peer_up of the stopped peer 0');
is(join(' ', map { peer_up($s, @$_) // 'none' }
	[ u => $b1 ], [ u => $b3 ], [ v => $b1 ], [ v => $b4 ],
	[ w => $b1 ], [ w => $b4 ]), '1 1 1 1 1 1',
	'peer_up of the others 1');
is(scalar(series($s, 'railgun_upstream_peer_up',
	{ upstream => 'v', peer => $b3->{addr} })), 0,
	'no peer_up series for a peer removed by the reload');

is(transitions($s, 'u', $b2, 'down'), 1, 'still one transition down');
cmp_ok(checks($s, 'u', $b2), '>', $all, 'checks went on counting');

is(scalar(grep { warn_lines($t, $_, $offset) } @P), 0,
	'no all-down warning after the reload');

ok(!quick_errors(), 'quick scrapes parse') or diag(join "\n", quick_errors());

###############################################################################
