#!/usr/bin/perl

# A worker started by a reload does not check a probe the old workers have
# just checked.  A new worker's first look at the probe's due time happens
# before its event loop ever ran: its cached ngx_current_msec is still the
# master's, read when the master began to read the configuration.  A check
# that ended meanwhile set a due time one interval after that end, which
# looked further away than an interval from the master's stale time and was
# taken for a due time left by a longer interval: the new worker pulled it
# in and checked at once, right after the old worker's check.  Under ASan,
# where a worker starts slowly, the same happened at the first start
# (t/gate_failover.t, gaps of 20-40 ms between checks of a peer).
#
# A large map makes reading the configuration take a while (~0.6 s here);
# the HUP is sent a little before a check is due, so that the check ends
# while the master reads the configuration.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(4)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    include map.conf;

    railgun_probe api http://127.0.0.1:%%PORT_8081%%/health interval=1s timeout=500ms rise=1 fall=1;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

# under valgrind a tenth of it takes longer still

my $entries = $ENV{RAILGUN_TEST_VALGRIND} ? 30000 : 300000;

$t->write_file('map.conf', "map \$uri \$railgun_clock_test {\n"
	. join('', map { "    /p$_ $_;\n" } 1 .. $entries) . "}\n");

my $backend = backend($t, 8081, 'b1');

$t->run();

###############################################################################

sub checks_seen {
	return map { $_->{time} } $backend->health();
}

ok(wait_for(10, sub { checks_seen() >= 2 }), 'probe checking');

# HUP some 450 ms before a check is due; the new workers are seen when they
# appear.  Tried again if the check did not end while the configuration was
# read (a busy machine may delay the HUP, a quiet one read the map in 0.3 s):
# that is the case tested.  Each try after the first aims at the middle of
# the reload the try before took.

my ($hup, $forked, $inside);
my $lead = 0.45;

for my $try (1 .. 5) {
	my $n = () = checks_seen();
	wait_for(5, sub { checks_seen() > $n }) or last;
	my $last = (checks_seen())[-1];

	my $aim = $last + 1 - $lead - time();
	sleep $aim if $aim > 0;

	my $master = $t->master_pid();
	my %old = map { $_ => 1 } Test::Railgun::children($master);

	$hup = time();
	kill 'HUP', $master;

	wait_for(60, sub {
		grep { !$old{$_} } Test::Railgun::children($master)
	}, 0.005);
	$forked = time();
	$lead = ($forked - $hup) / 2;

	$inside = grep { $_ > $hup && $_ < $forked } checks_seen();

	# the old workers gone
	wait_for(60, sub {
		!grep { $old{$_} } Test::Railgun::children($master)
	});

	last if $inside;
}

ok($inside, 'a check ended while the new configuration was read')
	or diag(sprintf 'hup %.3f, new workers at %.3f, checks %s',
		$hup, $forked, join(' ', checks_seen()));

# the new workers checked twice

my $n = grep { $_ > $forked } checks_seen();
ok(wait_for(10, sub { (grep { $_ > $forked } checks_seen()) >= $n + 2 }),
	'new workers checking');

# no check came less than an interval after the one before it, around the
# reload or anywhere else; without a doubled check every gap is at least
# the interval less the clocks' millisecond steps

my @t = checks_seen();
my @gaps = map { $t[$_] - $t[$_ - 1] } 1 .. $#t;
my ($min) = sort { $a <=> $b } @gaps;

cmp_ok($min, '>=', 0.9, 'checks an interval apart across the reload')
	or diag(sprintf 'hup %.3f, new workers at %.3f, checks %s',
		$hup, $forked, join(' ', @t));

###############################################################################
