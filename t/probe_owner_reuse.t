#!/usr/bin/perl

# A prober killed in the middle of a round whose pid another process takes
# before anybody looked (here: a process of the test, forked with that pid
# through /proc/sys/kernel/ns_last_pid) does not hold the round: the round
# record names the process by its pid and its start time, and the next
# check runs at once, not once that other process ends.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use POSIX ();
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

plan(skip_all => 'needs root and a writable /proc/sys/kernel/ns_last_pid')
	unless $> == 0 && -w '/proc/sys/kernel/ns_last_pid';

my $t = Test::Railgun->new()->plan(6);

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe held redis://127.0.0.1:%%PORT_7321%% interval=200ms timeout=3s;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

# a target that never answers: a round lasts its 3 s timeout
fake_server($t, 7321, 'silent', who => 1);

$t->run();

my $round;
ok(wait_for(5, sub {
	($round) = grep { $_->{pid} ne '-' } accepts($t, 7321);
	$round;
}, 0.05), 'a round open, its prober known');

my $victim = $round->{pid};
my @workers = $t->worker_pids();

kill 'KILL', $victim;
my $killed = time();

ok(wait_for(5, sub {
	my @now = $t->worker_pids();
	@now == 2 && !grep { $_ == $victim } @now;
}), 'master replaced the killed worker');

# the dead prober's pid, taken by a process that lives 10 s

my $holder;

for (1 .. 20) {
	last unless kill 0, $victim;
	sleep 0.05;
}

for (1 .. 5) {
	open my $fh, '>', '/proc/sys/kernel/ns_last_pid' or last;
	print $fh $victim - 1;
	close $fh;

	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		sleep 10;
		POSIX::_exit(0);
	}

	if ($pid == $victim) {
		$holder = $pid;
		last;
	}

	kill 'KILL', $pid;
	waitpid($pid, 0);
}

SKIP: {
	skip "could not take pid $victim", 2 unless $holder;

	ok(kill(0, $victim), "pid $victim lives again, in another process");

	# with the dead prober's round, the next check waits out the holder
	# (10 s); cleared, it runs within a recheck (at most a second)

	my $taken = time();
	ok(wait_for(3, sub { accepts($t, 7321, $killed) >= 1 }, 0.05),
		'the next check runs at once')
		or diag(sprintf 'killed %.3f, pid taken %.3f', $killed, $taken);

	my @next = accepts($t, 7321, $killed);
	ok(@next && $next[0]{pid} ne $victim, 'by a live worker');

	kill 'KILL', $holder;
	waitpid($holder, 0);
}

# the kill is the one alert: nginx says so; with nginx stopped, the line
# goes so that "no alerts" looks at the rest

$t->stop();

my $log = $t->read_file('error.log');
my @killed = $log =~ /^.*\[alert\] .*worker process (\d+) exited on signal 9.*\n/mg;

is("@killed", $victim, 'an alert line for the killed worker');

$log =~ s/^.*\[alert\] .*worker process (\d+) exited on signal 9.*\n//mg;
$t->write_file('error.log', $log);

###############################################################################
