#!/usr/bin/perl

# Redis health as the dashboards show it: keyspace hits and misses, evicted
# keys (Redis' own counters, from INFO stats), pub/sub channels, and a
# replica's replication lag in bytes (master_repl_offset minus
# slave_repl_offset of its INFO), against a real master and replica.  The
# numbers are checked against the test's own GETs, SUBSCRIBEs and the
# servers' INFO.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use IO::Socket::INET;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(9);

my $P = 'interval=200ms timeout=150ms rise=1 fall=1';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe master  redis://127.0.0.1:%%PORT_6390%% $P;
    railgun_probe replica redis://127.0.0.1:%%PORT_6391%% role=replica $P;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

my $master = redis_start($t, 6390, maxmemory => '2mb',
	extra => "maxmemory-policy allkeys-lru\n");
my $replica = redis_start($t, 6391, replicaof => $master);

ok(wait_for(15, sub {
	(redis_info($replica, 'replication')->{master_link_status} // '')
		eq 'up';
}), 'replica linked to its master');

# hits and misses of our own: 5 hits, 3 misses on the master

redis_cmd($master, 'SET', 'k', 'v');
redis_cmd($master, 'GET', 'k') for 1 .. 5;
redis_cmd($master, 'GET', "missing$_") for 1 .. 3;

# two channels subscribed on a connection kept open

my $sub = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$master->{port}")
	or die "subscribe: $!";
syswrite $sub, Test::Railgun::Probe::resp_command('SUBSCRIBE', 'a', 'b');

# evictions: 4 MB into 2 MB

my $big = 'x' x 10000;
redis_cmd($master, 'SET', "big$_", $big) for 1 .. 400;

ok(wait_for(10, sub {
	(redis_info($master, 'stats')->{pubsub_channels} // 0) == 2
		&& (redis_info($master, 'stats')->{evicted_keys} // 0) > 0
}), 'two channels and evictions on the master');

my $stats = redis_info($master, 'stats');

$t->run();

# the probe's next INFO after all that: no command of ours since

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	my $h = probe_gauge($s, 'railgun_redis_keyspace_hits_total', 'master');
	defined $h && $h == $stats->{keyspace_hits} ? $s : 0;
}, 0.05);

ok($s, "keyspace hits as INFO says ($stats->{keyspace_hits})");
ok($stats->{keyspace_hits} >= 5 && $stats->{keyspace_misses} >= 3,
	'INFO counted our own GETs');
is(probe_gauge($s, 'railgun_redis_keyspace_misses_total', 'master'),
	$stats->{keyspace_misses}, 'keyspace misses as INFO says');
is(probe_gauge($s, 'railgun_redis_evicted_keys_total', 'master'),
	$stats->{evicted_keys}, "evicted keys as INFO says ($stats->{evicted_keys})");
is(probe_gauge($s, 'railgun_redis_pubsub_channels', 'master'), 2,
	'pub/sub channels');

# lag: the replica has it, the master none

is(probe_gauge($s, 'railgun_redis_replication_lag_bytes', 'master'), 0,
	'no lag for a master');

my $lag = probe_gauge($s, 'railgun_redis_replication_lag_bytes', 'replica');
my $r = redis_info($replica, 'replication');
ok(defined $lag && $lag >= 0 && $lag <= 4 * 1024 * 1024,
	sprintf('a replica lag of %s bytes (INFO: %s - %s)', $lag // 'none',
		$r->{master_repl_offset} // '?', $r->{slave_repl_offset} // '?'));

close $sub;

###############################################################################
