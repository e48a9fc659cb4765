#!/usr/bin/perl

# Tests that no gauge keeps a dead worker's share when its pid is reused:
# a worker holding WebSocket sessions is killed while the master is stopped,
# and the master, let go, respawns a worker that gets the very same pid
# (kernel.ns_last_pid is set for it).  That worker takes the dead worker's
# slot, cleared: the gauge is the client's count of open sessions, then 0.
#
# The master logs the killed worker's exit as an [alert]; that line is
# taken out of error.log, so that the usual "no alerts" check covers the
# rest.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $NS_LAST_PID = '/proc/sys/kernel/ns_last_pid';

plan(skip_all => "$NS_LAST_PID not writable: a pid cannot be reused at will")
	unless -w $NS_LAST_PID && open(my $probe, '>>', $NS_LAST_PID);

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(6);

ws_workers($t, 2);

###############################################################################

sub set_last_pid {
	open(my $fh, '>', $NS_LAST_PID) or return;
	print $fh $_[0];
	close $fh;
}

my $master = $t->master_pid();
my @alive;
my %killed;
my $reused;

# a few tries: another process on the machine may take the pid first

for my $try (1 .. 5) {
	my %by;

	for (1 .. 40) {
		my $ws = ws_session() or last;
		push @alive, $ws;
		push @{$by{$ws->{worker}}}, $ws;
		last if keys %by == 2 && @{$by{$ws->{worker}}} >= 3;
	}

	my ($victim) = sort { @{$by{$b}} <=> @{$by{$a}} } keys %by;
	last unless $victim;

	@alive = grep { $_->{worker} != $victim } @alive;
	ws_wait_active($t, @alive + @{$by{$victim}});

	kill 'STOP', $master;
	kill 'KILL', $victim;
	$killed{$victim} = 1;

	# dead, a zombie that the stopped master cannot reap yet
	my $deadline = time() + 10;
	sleep 0.01 while -e "/proc/$victim/stat"
		&& `cat /proc/$victim/stat` !~ /\) Z/ && time() < $deadline;

	$_->wait_eof(5) for @{$by{$victim}};
	$_->close() for @{$by{$victim}};

	set_last_pid($victim - 1);
	kill 'CONT', $master;

	# the master reaps and forks the new worker
	$deadline = time() + 10;
	my @now;
	while (time() < $deadline) {
		@now = $t->worker_pids();
		last if @now == 2;
		sleep 0.01;
	}

	if (grep { $_ == $victim } @now) {
		$reused = $victim;
		last;
	}
}

ok($reused, 'a respawned worker got the dead worker\'s pid')
	or diag('the pid was taken by another process five times');

SKIP: {
	skip 'no pid reused', 3 unless $reused;

	# the respawned worker started with a clean slot: only the survivors
	is(ws_wait_active($t, scalar @alive), scalar @alive,
		'gauge is the client\'s count of open sessions');

	my $ok = 0;
	for my $ws (@alive) {
		$ws->text('still');
		$ok++ if (($ws->read_message() || {})->{payload} // '') eq 'still';
	}
	is($ok, scalar @alive, 'surviving sessions proxied');

	$_->close_ws() for @alive;
	is(ws_wait_active($t, 0), 0, 'all closed: gauge back to 0');
}

# every killed worker's exit is an alert: checked, then taken out

my @alerts = ws_kill_alerts($t, keys %killed);

is(scalar @alerts, scalar keys %killed, 'an alert per killed worker');
is(scalar(grep { /worker process (\d+) exited on signal 9\b/ && $killed{$1} }
	@alerts), scalar keys %killed, 'the alerts are the killed workers\'');

###############################################################################
