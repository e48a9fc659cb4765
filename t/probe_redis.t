#!/usr/bin/perl

# Tests for Redis probes against a real master and a real replica: role
# checks, master_link_status going down when the master stops, and the
# memory and clients gauges.

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
	->plan(28);

my $P = 'interval=300ms timeout=200ms';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe m_master  redis://127.0.0.1:%%PORT_6380%% role=master  $P rise=1 fall=1;
    railgun_probe m_replica redis://127.0.0.1:%%PORT_6380%% role=replica $P rise=1 fall=1;
    railgun_probe r_replica redis://127.0.0.1:%%PORT_6381%% role=replica $P rise=2 fall=2;
    railgun_probe r_master  redis://127.0.0.1:%%PORT_6381%% role=master  $P rise=1 fall=1;
    railgun_probe r_any     redis://127.0.0.1:%%PORT_6381%% role=any     $P rise=1 fall=1;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

my $master = redis_start($t, 6380, maxmemory => '64mb');
my $replica = redis_start($t, 6381, maxmemory => '32mb',
	replicaof => $master);

# the replica's link must be up before nginx looks at it

ok(wait_for(15, sub {
	(redis_info($replica, 'replication')->{master_link_status} // '')
		eq 'up';
}), 'replica linked to its master')
	or diag($t->read_file('redis-' . $replica->{port} . '.log'));

$t->run();

my $M = "127.0.0.1:$master->{port}";
my $R = "127.0.0.1:$replica->{port}";

###############################################################################

# every probe has a few results

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 }
		qw/ m_master m_replica r_replica r_master r_any /) ? 0 : $s;
});
ok($s, 'three checks of every probe');

$s = $t->metrics();

my %c = map { $_ => probe_checks($s, $_) }
	qw/ m_master m_replica r_replica r_master r_any /;

sub only {
	my ($c, $result) = @_;
	return $c->{$result} >= 3
		&& !grep { $_ ne $result && $c->{$_} != 0 } keys %$c;
}

ok(only($c{m_master}, 'ok'), 'role=master on the master: ok')
	or diag(explain $c{m_master});
ok(only($c{m_replica}, 'bad_role'), 'role=replica on the master: bad_role')
	or diag(explain $c{m_replica});
ok(only($c{r_replica}, 'ok'), 'role=replica on the replica: ok')
	or diag(explain $c{r_replica});
ok(only($c{r_master}, 'bad_role'), 'role=master on the replica: bad_role')
	or diag(explain $c{r_master});
ok(only($c{r_any}, 'ok'), 'role=any on the replica: ok')
	or diag(explain $c{r_any});

is(probe_up($s, 'm_master'), 1, 'master probe up');
is(probe_up($s, 'm_replica'), 0, 'wrong-role probe down');
is(probe_up($s, 'r_replica'), 1, 'replica probe up');

# labels: target is the resolved host:port

is(scalar(series($s, 'railgun_probe_up', { probe => 'm_master',
	target => $M })), 1, 'target label of the master');
is(scalar(series($s, 'railgun_probe_checks_total',
	{ probe => 'r_replica', target => $R })), 9,
	'nine result series of the replica probe');

# the duration histogram counts every check

is(sample($s, 'railgun_probe_duration_seconds_count',
	{ probe => 'm_master' }), probe_checks_total($s, 'm_master'),
	'duration count equals checks');

# gauges, against what the servers themselves say

my $mm = redis_info($master, 'memory');
my $rm = redis_info($replica, 'memory');

is(probe_gauge($s, 'railgun_redis_memory_max_bytes', 'm_master'),
	64 * 1024 * 1024, 'master maxmemory');
is(probe_gauge($s, 'railgun_redis_memory_max_bytes', 'r_replica'),
	32 * 1024 * 1024, 'replica maxmemory');

my $used = probe_gauge($s, 'railgun_redis_memory_used_bytes', 'm_master');
ok($used > 100_000 && $used > $mm->{used_memory} / 2
	&& $used < $mm->{used_memory} * 2,
	"master used_memory plausible ($used, INFO says $mm->{used_memory})");

$used = probe_gauge($s, 'railgun_redis_memory_used_bytes', 'r_replica');
ok($used > 100_000 && $used > $rm->{used_memory} / 2
	&& $used < $rm->{used_memory} * 2,
	"replica used_memory plausible ($used, INFO says $rm->{used_memory})");

my $clients = probe_gauge($s, 'railgun_redis_connected_clients', 'm_master');
ok($clients >= 1 && $clients < 20, "master connected_clients ($clients)");

$clients = probe_gauge($s, 'railgun_redis_connected_clients', 'r_replica');
ok($clients >= 1 && $clients < 20, "replica connected_clients ($clients)");

is(scalar(series($s, 'railgun_probe_transitions_total',
	{ probe => 'r_replica', to => 'up' })), 1, 'transitions series');
is(probe_transitions($s, 'r_replica', 'up'), 1, 'replica probe came up once');

###############################################################################

# the master goes away: the replica's link goes down

my $off = length $t->read_file('error.log');

redis_stop($master);

ok(wait_for(10, sub {
	(redis_info($replica, 'replication')->{master_link_status} // '')
		eq 'down';
}), 'replica sees its link down');

# from here on no check of the replica can pass

my %base = map { $_ => probe_checks(scrape_fast($t), $_) }
	qw/ r_replica r_any /;

$s = wait_for(10, sub {
	my $s = scrape_fast($t);
	probe_up($s, 'r_replica') == 0
		&& probe_checks($s, 'r_replica')->{bad_role}
			>= $base{r_replica}{bad_role} + 2 ? $s : 0;
});
ok($s, 'replica probe down after its master stopped');

$s = $t->metrics();
my $rr = probe_checks($s, 'r_replica');

ok($rr->{bad_role} > $base{r_replica}{bad_role}
	&& $rr->{ok} == $base{r_replica}{ok}
	&& !grep({ $rr->{$_} != $base{r_replica}{$_} }
		qw/ timeout refused error auth bad_status bad_body /),
	'link down counts as bad_role')
	or diag(explain $rr);

ok(probe_checks($s, 'r_any')->{bad_role} > $base{r_any}{bad_role},
	'link down is bad_role for role=any too');
ok(probe_checks($s, 'm_master')->{refused} > 0, 'stopped master refused');

my @lines = transition_lines($t, 'r_replica', $off);

is(scalar @lines, 1, 'one transition line') or diag(join "\n", @lines);
like($lines[0] // '', qr/\[warn\] .*railgun: probe "r_replica" \Q$R\E is down after 2 failed checks, last: bad_role \(.*link.*down\)/,
	'transition line says why');

###############################################################################
