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

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(16)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        # each worker accepts on a socket of its own
        listen       127.0.0.1:%%PORT_8080%% reuseport;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ws {
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
            proxy_http_version  1.1;
            proxy_set_header    Upgrade $http_upgrade;
            proxy_set_header    Connection "upgrade";

            add_header X-Worker $pid always;
        }
    }
}

EOF

ws_backend($t, 8081);
$t->run();

###############################################################################

my %WS = (server => 'localhost', path => '/ws');

sub active {
	my ($m) = @_;
	return ws_stats($m || $t->metrics(), \%WS)->{active};
}

sub wait_active {
	my ($n) = @_;
	return active(wait_metrics($t, sub { active($_[0]) == $n }));
}

sub session {
	my $ws = ws_connect(path => '/ws');
	return undef unless ($ws->status // 0) == 101;
	$ws->{worker} = $ws->header('X-Worker');
	return $ws;
}

# open sessions until both workers hold some

# the listening sockets accept before the master has forked its workers
my $deadline = time() + 10;
sleep 0.02 while (() = $t->worker_pids()) < 2 && time() < $deadline;

my @workers = $t->worker_pids();
is(scalar @workers, 2, 'two workers');

my %by;
my @all;

for (1 .. 40) {
	my $ws = session() or last;
	push @all, $ws;
	push @{$by{$ws->{worker}}}, $ws;
	last if keys %by == 2 && @all >= 4;
}

ok(@all >= 2 && keys %by == 2, 'both workers hold sessions')
	or diag(join ' ', map { "$_:" . scalar @{$by{$_}} } keys %by);

my $n = @all;
is(wait_active($n), $n, "$n sessions active");

# the worker with the most sessions dies

my ($victim) = sort { @{$by{$b}} <=> @{$by{$a}} } keys %by;
my @dead = @{$by{$victim}};
my @alive = grep { $_->{worker} != $victim } @all;

kill 'KILL', $victim;

# gone, reaped by the master: not even a zombie
$deadline = time() + 10;
sleep 0.01 while -e "/proc/$victim" && time() < $deadline;
ok(!-e "/proc/$victim", 'killed worker gone');

is(active(), scalar @alive, 'its sessions not counted, at once');

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

is(active(), scalar @alive, 'respawned worker adds nothing');

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
	my $ws = session() or last;
	push @fresh, $ws;
	last if $new && $ws->{worker} == $new;
}

ok($new && grep({ $_->{worker} == $new } @fresh), 'session on the new worker');
is(wait_active(@alive + @fresh), @alive + @fresh, 'gauge with new sessions');

my $s = ws_stats($t->metrics(), \%WS);
is($s->{total}, $n + @fresh, 'sessions total');

# all closed: back to 0

$_->close_ws() for @alive, @fresh;
is(wait_active(0), 0, 'gauge back to 0');

# the killed worker's exit is the one alert: checked, then taken out

$t->stop();

my $log = $t->read_file('error.log');
my @alerts = $log =~ /^.*\[(?:alert|emerg)\].*$/mg;

is(scalar @alerts, 1, 'one alert');
like($alerts[0] // '', qr/worker process $victim exited on signal 9\b/,
	'the alert is the killed worker\'s exit');

if (@alerts == 1 && $alerts[0] =~ /worker process $victim exited on signal 9/)
{
	$t->write_file('error.log.orig', $log);
	$log =~ s/^.*worker process $victim exited on signal 9.*\n//m;
	$t->write_file('error.log', $log);
}

is(() = $log =~ /\[(?:alert|emerg)\]/g, 0, 'no other alert');

###############################################################################
