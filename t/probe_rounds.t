#!/usr/bin/perl

# Intervals and timeouts as NGINX Plus and HAProxy users write them: a
# timeout longer than the interval is accepted, an interval alone gets the
# smaller of 1s and the interval as its timeout; a target's next check
# starts an interval after the last one ended and never while one is open,
# across workers, even when the prober is stopped for longer than its
# timeout; a reload that shortens the interval takes effect at once.

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

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(9);

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe long  redis://127.0.0.1:%%PORT_7301%% interval=200ms timeout=1s;
    railgun_probe short redis://127.0.0.1:%%PORT_7302%% interval=300ms;
    railgun_probe later tcp://127.0.0.1:%%PORT_7303%% interval=%%LATER%%;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

(my $conf = $CONF) =~ s/%%LATER%%/60s/;
$t->write_file_expand('nginx.conf', $conf);

fake_server($t, 7301, 'silent', who => 1);
fake_server($t, 7302, 'silent');
fake_server($t, 7303, 'close_first');

$t->run();

# a long timeout: each round waits it out, the next starts 200 ms after

ok(wait_for(10, sub { accepts($t, 7301) >= 4 }, 0.1),
	'timeout above the interval: checks run');

my @a = accepts($t, 7301);
my @gaps = map { $a[$_]{time} - $a[$_ - 1]{time} } 1 .. $#a;
my ($min) = sort { $a <=> $b } @gaps;

ok($min >= 1.15, sprintf('never two at once: %d gaps of at least 1.2 s '
	. '(smallest %.3f s)', scalar @gaps, $min))
	or diag(join ' ', map { sprintf '%.3f', $_ } @gaps);

# an interval alone: its timeout is the interval's 300 ms, not 1 s

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	probe_checks($s, 'short')->{timeout} >= 3 ? $s : 0;
}, 0.1);

my $n = sample($s, 'railgun_probe_duration_seconds_count',
	{ probe => 'short' });
my $sum = sample($s, 'railgun_probe_duration_seconds_sum',
	{ probe => 'short' });
my $avg = $n ? $sum / $n : 0;

ok($n >= 3 && $avg >= 0.29 && $avg < 0.5,
	sprintf('interval=300ms alone: timeouts of %.3f s on average', $avg));

# the prober of the open round is stopped for 3 s, well past its timeout
# and interval: no other worker starts a round meanwhile

my $last;
ok(wait_for(5, sub {
	my @a = accepts($t, 7301);
	$last = $a[-1];
	$last && $last->{pid} ne '-' && time() - $last->{time} < 0.5;
}, 0.02), 'a round open, its prober known');

kill 'STOP', $last->{pid};
my $stopped = time();
sleep 3;
my @during = accepts($t, 7301, $last->{time} + 0.001);
kill 'CONT', $last->{pid};

is(scalar @during, 0, 'a stopped prober keeps its round')
	or diag(explain \@during);

ok(wait_for(5, sub { accepts($t, 7301, $stopped) >= 1 }, 0.05),
	'rounds go on after it resumes');

# a reload from 60s to 200ms: checks within a second, not in a minute

ok(wait_for(5, sub { accepts($t, 7303) >= 1 }), 'first check of later');

my $before = accepts($t, 7303);
($conf = $CONF) =~ s/%%LATER%%/200ms/;
$t->write_file_expand('nginx.conf', $conf);

ok($t->reload(), 'reloaded');

my $reloaded = time();
ok(wait_for(1.5, sub { accepts($t, 7303, $reloaded) >= 2 }, 0.05),
	'the shorter interval at once after the reload');

###############################################################################
