#!/usr/bin/perl

# Tests for the one-prober rule: with worker_processes 4 a target gets one
# check per interval, not one per worker, counted as connections accepted
# at the target; when the worker that probed is killed (kill -9), and then
# when every worker is, the probing goes on at the same pace without a flap;
# jitter spreads the checks.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(21);

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 4;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe fast http://127.0.0.1:%%PORT_7200%%/ interval=200ms timeout=180ms rise=1 fall=5;
    railgun_probe slow http://127.0.0.1:%%PORT_7201%%/ interval=500ms timeout=400ms rise=1 fall=5;
    railgun_probe jit  http://127.0.0.1:%%PORT_7202%%/ interval=300ms timeout=180ms jitter=300ms;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

# who => 1: each accepted connection is logged with the nginx worker
# that made it

http_target($t, 7200, who => 1);
http_target($t, 7201);
http_target($t, 7202);

$t->run();

ok(wait_for(5, sub { probe_up(scrape_fast($t), 'fast') }), 'fast probe up');

###############################################################################

# Connections at the targets over a window of $secs; the expected count is
# at most $secs / interval (the next check starts an interval after the
# last one ended), and 4 workers probing on their own would make it 4x.

sub window {
	my ($secs) = @_;

	my $from = time();
	sleep $secs;
	my $to = time();

	my @fast = grep { $_->{time} < $to } accepts($t, 7200, $from);
	my @slow = grep { $_->{time} < $to } accepts($t, 7201, $from);

	return (\@fast, \@slow);
}

sub pids {
	my ($acc) = @_;
	my %n;
	$n{$_->{pid}}++ for @$acc;
	return join ', ', map { "$_: $n{$_}" } sort keys %n;
}

my $w0 = time();
my ($fast, $slow) = window(3);

ok(@$fast >= 8 && @$fast <= 17,
	'200ms interval, 3 s: ' . scalar(@$fast) . ' checks, not ~60')
	or diag(pids($fast));
ok(@$slow >= 3 && @$slow <= 8,
	'500ms interval, 3 s: ' . scalar(@$slow) . ' checks, not ~24');
# a prober is known when the target found the connection's process before
# the probe gave up on it
my @known = grep { $_->{pid} ne '-' } @$fast;
ok(@known >= 0.8 * @$fast, 'probers known') or diag(pids($fast));

note('probers: ' . pids($fast));

# the gaps: never two checks at once

my @gaps = map { $fast->[$_]{time} - $fast->[$_ - 1]{time} } 1 .. $#$fast;
my ($min) = sort { $a <=> $b } @gaps;
ok(defined $min && $min > 0.15, sprintf('checks apart (at least %.3f s)',
	$min // -1));

# jitter: each gap is the interval plus up to the jitter, and they vary

my @jit = grep { $_->{time} < $w0 + 3 } accepts($t, 7202, $w0);
my @jgaps = sort { $a <=> $b }
	map { $jit[$_]{time} - $jit[$_ - 1]{time} } 1 .. $#jit;

# (five uniform draws of 0-300 ms within 15 ms of each other: ~1 in 5,000)

ok(@jgaps >= 4 && $jgaps[0] > 0.28 && $jgaps[-1] < 0.7
	&& $jgaps[-1] - $jgaps[0] > 0.015,
	sprintf('jitter: %d gaps from %.3f to %.3f s', scalar @jgaps,
		$jgaps[0] // -1, $jgaps[-1] // -1));

###############################################################################

# kill -9 the worker that probed last

my $victim = $known[-1]{pid};
my %before = map { $_ => 1 } $t->worker_pids();

ok($before{$victim}, "last prober $victim is a worker");

kill 'KILL', $victim;
my $killed = time();

ok(wait_for(5, sub {
	my @now = $t->worker_pids();
	@now == 4 && !grep { $_ == $victim } @now;
}), 'master replaced the killed worker');

($fast, $slow) = window(3);

ok(@$fast >= 8 && @$fast <= 17,
	'after the kill: ' . scalar(@$fast) . ' checks in 3 s')
	or diag(pids($fast));
ok(@$slow >= 3 && @$slow <= 8,
	'slow probe after the kill: ' . scalar(@$slow) . ' checks');
ok(!grep({ $_->{pid} eq $victim } @$fast), 'not by the dead worker');

my @after = accepts($t, 7200, $killed);
ok(@after && $after[0]{time} - $killed < 0.6,
	sprintf('next check %.3f s after the kill',
		@after ? $after[0]{time} - $killed : -1));

###############################################################################

# kill -9 every worker at once

my @all = $t->worker_pids();
kill 'KILL', @all;
$killed = time();

ok(wait_for(5, sub {
	my %old = map { $_ => 1 } @all;
	my @now = $t->worker_pids();
	@now == 4 && !grep { $old{$_} } @now;
}), 'master replaced every worker');

($fast, $slow) = window(3);

ok(@$fast >= 8 && @$fast <= 17,
	'after killing all: ' . scalar(@$fast) . ' checks in 3 s')
	or diag(pids($fast));
ok(@$slow >= 3 && @$slow <= 8,
	'slow probe after killing all: ' . scalar(@$slow) . ' checks');

# no flap: up all along, one transition

my $s = $t->metrics();
is(probe_up($s, 'fast'), 1, 'still up');
is(probe_transitions($s, 'fast', 'up'), 1, 'one transition to up');
is(probe_transitions($s, 'fast', 'down'), 0, 'none to down');
# a busy machine may make a check time out; a kill must not make one fail
# otherwise
my $c = probe_checks($s, 'fast');
ok($c->{ok} > 25 && $c->{ok} + $c->{timeout} == probe_checks_total($s, 'fast'),
	'checks passed') or diag(explain $c);

###############################################################################

# the kills are the only alerts: nginx says so for each killed worker;
# with nginx stopped, those lines go so that "no alerts" looks at the rest

$t->stop();

my $log = $t->read_file('error.log');
my %dead = map { $_ => 1 } $victim, @all;
my @killed = $log =~ /^.*\[alert\] .*worker process (\d+) exited on signal 9.*\n/mg;

is(join(' ', sort @killed), join(' ', sort keys %dead),
	'an alert line per killed worker');

$log =~ s/^.*\[alert\] .*worker process (\d+) exited on signal 9.*\n//mg;
$t->write_file('error.log', $log);

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
