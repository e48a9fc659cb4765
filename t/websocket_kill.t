#!/usr/bin/perl

# Tests for the WebSocket gauge when a worker dies without a word: with two
# workers holding sessions, one killed with SIGKILL, the scrape stops
# counting its sessions as soon as it is gone, the respawned worker that
# takes its slot starts from zero, and the survivors' sessions go on.
#
# The master logs the killed worker's exit as an [alert]; that one line is
# checked here and taken out of error.log, so that the usual "no alerts"
# check covers everything else.

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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(16);

my @workers = ws_workers($t, 2);

###############################################################################

my %WS = (server => 'localhost', path => '/ws');

# open sessions until both workers hold some

is(scalar @workers, 2, 'two workers');

my %by;
my @all;

for (1 .. 40) {
	my $ws = ws_session() or last;
	push @all, $ws;
	push @{$by{$ws->{worker}}}, $ws;
	last if keys %by == 2 && @all >= 4;
}

ok(@all >= 2 && keys %by == 2, 'both workers hold sessions')
	or diag(join ' ', map { "$_:" . scalar @{$by{$_}} } keys %by);

my $n = @all;
is(ws_wait_active($t, $n), $n, "$n sessions active");

# the worker with the most sessions dies

my ($victim) = sort { @{$by{$b}} <=> @{$by{$a}} } keys %by;
my @dead = @{$by{$victim}};
my @alive = grep { $_->{worker} != $victim } @all;

kill 'KILL', $victim;

# gone, reaped by the master: not even a zombie
my $deadline = time() + 10;
sleep 0.01 while -e "/proc/$victim" && time() < $deadline;
ok(!-e "/proc/$victim", 'killed worker gone');

is(ws_active($t), scalar @alive, 'its sessions not counted, at once');

ok((grep { $_->wait_eof(5) } @dead) == @dead, 'its sessions closed');
$_->close() for @dead;

# the master respawns a worker, which takes the dead worker's slot

$deadline = time() + 10;
my @now;
while (time() < $deadline) {
	@now = $t->worker_pids();
	last if @now == 2 && !grep { $_ == $victim } @now;
	sleep 0.02;
}
my ($new) = grep { my $p = $_; !grep { $_ == $p } @workers } @now;
ok($new, 'worker respawned');

is(ws_active($t), scalar @alive, 'respawned worker adds nothing');

# the survivors' sessions go on

my $ok = 0;
for my $ws (@alive) {
	$ws->text('alive');
	$ok++ if (($ws->read_message() || {})->{payload} // '') eq 'alive';
}
is($ok, scalar @alive, 'surviving sessions proxied');

# sessions on the respawned worker count from zero

my @fresh;
for (1 .. 40) {
	my $ws = ws_session() or last;
	push @fresh, $ws;
	last if $new && $ws->{worker} == $new;
}

ok($new && grep({ $_->{worker} == $new } @fresh), 'session on the new worker');
is(ws_wait_active($t, @alive + @fresh), @alive + @fresh,
	'gauge with new sessions');

my $s = ws_stats($t->metrics(), \%WS);
is($s->{total}, $n + @fresh, 'sessions total');

# all closed: back to 0

$_->close_ws() for @alive, @fresh;
is(ws_wait_active($t, 0), 0, 'gauge back to 0');

# the killed worker's exit is the one alert: checked, then taken out

my @alerts = ws_kill_alerts($t, $victim);

is(scalar @alerts, 1, 'one alert');
like($alerts[0] // '', qr/worker process $victim exited on signal 9\b/,
	'the alert is the killed worker\'s exit');

is(() = $t->read_file('error.log') =~ /\[(?:alert|emerg)\]/g, 0,
	'no other alert');

###############################################################################
