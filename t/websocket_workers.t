#!/usr/bin/perl

# Tests the WebSocket gauge with more workers than the zone has slots (63):
# the workers without a slot keep their sessions out of the gauge rather
# than share a slot that nobody clears.  Killed, every worker leaves the
# gauge at 0; a reload while sessions are open, then every session closed,
# leaves it at 0.  The gauge never exceeds the client's count of open
# sessions.
#
# The master logs each killed worker's exit as an [alert]; those lines are
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

my $WORKERS = 70;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(13);

my @workers = ws_workers($t, $WORKERS, worker_connections => 64);

###############################################################################

sub sessions {
	my ($n) = @_;
	return grep { defined } map { ws_session() } 1 .. $n;
}

is(scalar @workers, $WORKERS, "$WORKERS workers");

# sessions over most workers, more workers than slots

my @open = sessions(250);
is(scalar @open, 250, '250 sessions');

# the workers without a slot say so, with their pid
my %slotless = map { $_ => 1 }
	$t->read_file('error.log') =~ /\[warn\] (\d+)#\d+: .*no free worker slot/g;
my $uncounted = grep { $slotless{$_->{worker}} } @open;

is(scalar keys %slotless, $WORKERS - 63, 'workers without a slot');
ok($uncounted > 0, 'sessions on workers without a slot')
	or diag('none of ' . join(' ', keys %slotless));

# exactly the sessions of workers with a slot

is(ws_wait_active($t, @open - $uncounted), @open - $uncounted,
	'gauge is the open sessions of workers with a slot');

# every worker killed: their sessions close, the gauge drops to 0

kill 'KILL', @workers;

my $eof = grep { $_->wait_eof(10) } @open;
is($eof, scalar @open, 'every session closed by the kill');
$_->close() for @open;

my $deadline = time() + 30;
my @now;
while (time() < $deadline) {
	@now = $t->worker_pids();
	last if @now == $WORKERS && !grep { my $p = $_; grep { $_ == $p } @workers }
		@now;
	sleep 0.05;
}
is(scalar @now, $WORKERS, 'workers respawned');

is(ws_wait_active($t, 0), 0, 'all killed: gauge 0');

# sessions again, a reload while they are open, then all closed

@open = sessions(100);
is(scalar @open, 100, 'sessions on the respawned workers');

my $master = $t->master_pid();
my %old = map { $_ => 1 } @now;

kill 'HUP', $master;

$deadline = time() + 30;
while (time() < $deadline) {
	last if grep({ !$old{$_} } $t->worker_pids()) >= $WORKERS;
	sleep 0.05;
}

my @new = grep { !$old{$_} } $t->worker_pids();
is(scalar @new, $WORKERS, 'new workers beside the old ones');

push @open, sessions(40);
my $counted = ws_active($t);
ok($counted <= @open, 'gauge within the open sessions during the reload')
	or diag("gauge $counted, open " . scalar @open);

$_->close_ws() for @open;

is(ws_wait_active($t, 0), 0, 'all closed after the reload: gauge 0');

$deadline = time() + 30;
sleep 0.05 while grep({ $old{$_} } $t->worker_pids()) && time() < $deadline;
is(scalar(grep { $old{$_} } $t->worker_pids()), 0, 'old workers gone');

# the killed workers' exits are the only alerts: taken out

ws_kill_alerts($t, @workers);

###############################################################################
