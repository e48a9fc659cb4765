#!/usr/bin/perl

# Tests for probes across "nginx -s reload": the state and the counters are
# kept (probe_up stays 1 throughout, no new transition, checks_total goes on
# from where it was), a probe added by the reload starts on its own, old
# and new workers do not both probe, and a reload that fails (a listen
# address that cannot be bound) leaves the running probes and their gauges
# as they were.

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
	->plan(22);

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe api   http://127.0.0.1:%%PORT_7300%%/ interval=300ms timeout=250ms rise=2 fall=3;
    railgun_probe cache redis://127.0.0.1:%%PORT_6410%% interval=300ms timeout=250ms rise=2 fall=3;
    %%EXTRA%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

sub conf {
	my ($extra) = @_;
	(my $c = $CONF) =~ s/%%EXTRA%%/$extra/;
	return $c;
}

$t->write_file_expand('nginx.conf', conf(''));

http_target($t, 7300);
http_target($t, 7301);
my $redis = redis_start($t, 6410, maxmemory => '16mb');

$t->run();

###############################################################################

ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	probe_up($s, 'api') && probe_up($s, 'cache')
		&& probe_checks($s, 'api')->{ok} >= 3;
}), 'both probes up');

my $s0 = $t->metrics();
my %ok0 = map { $_ => probe_checks($s0, $_)->{ok} } qw/ api cache /;

# a scraper of its own watches the reload every 10 ms

my $watch = $t->testdir() . '/watch.log';
my $pid = fork();
die "fork: $!" unless defined $pid;

if ($pid == 0) {
	open my $fh, '>', $watch or POSIX::_exit(1);
	$fh->autoflush(1);
	while (!-e "$watch.stop") {
		my $s = scrape_fast($t);
		for my $p (qw/ api cache /) {
			my $up = probe_up($s, $p);
			my $ok = probe_checks($s, $p)->{ok};
			printf $fh "%s %s %s\n", $p, $up // 'none', $ok // 'none';
		}
		sleep 0.01;
	}
	close $fh;
	POSIX::_exit(0);
}

sleep 0.2;

$t->write_file_expand('nginx.conf', conf('railgun_probe extra '
	. 'http://127.0.0.1:%%PORT_7301%%/extra interval=300ms timeout=250ms '
	. 'rise=1;'));

my $hup = time();
ok($t->reload(), 'reloaded');

sleep 1;
$t->write_file('watch.log.stop', '');
waitpid($pid, 0);

###############################################################################

my @w = split /\n/, $t->read_file('watch.log');
my %seen;
my $bad = 0;
my %last = (api => 0, cache => 0);

for (@w) {
	my ($p, $up, $ok) = split / /;
	$seen{$p}++;
	$bad++, diag("watch: $_") if $up ne '1' || $ok eq 'none'
		|| $ok < $last{$p};
	$last{$p} = $ok if $ok ne 'none';
}

ok($seen{api} && $seen{api} > 20, "the reload watched ($seen{api} scrapes)");
is($bad, 0, 'up throughout, counters never went back');

my $s1 = $t->metrics();

for my $p (qw/ api cache /) {
	is(probe_transitions($s1, $p, 'up'), 1, "$p: still one transition");
	ok(probe_checks($s1, $p)->{ok} >= $ok0{$p},
		"$p: checks kept (" . probe_checks($s1, $p)->{ok}
		. " >= $ok0{$p})");
}

# and they go on from there

my $ok1 = probe_checks($s1, 'api')->{ok};

ok(wait_for(5, sub {
	probe_checks(scrape_fast($t), 'api')->{ok} >= $ok1 + 3;
}), 'api checks go on');

is(scalar(transition_lines($t, 'api')), 1, 'api: one transition line');
is(scalar(transition_lines($t, 'cache')), 1, 'cache: one transition line');

ok(probe_gauge($s1, 'railgun_redis_memory_max_bytes', 'cache')
	== 16 * 1024 * 1024, 'redis gauges kept');

# the probe the reload added starts from its own initial state

ok(wait_for(5, sub { probe_up(scrape_fast($t), 'extra') }),
	'added probe comes up');
like((transition_lines($t, 'extra'))[0] // '',
	qr/"extra" .* is up after 1 successful checks/, 'added probe line');

# old and new workers did not both probe: ~1 check per 300 ms from the
# HUP on, 5 in 1.5 s

my @acc = grep { $_->{time} < $hup + 1.5 } accepts($t, 7300, $hup);

ok(@acc >= 3 && @acc <= 7,
	scalar(@acc) . ' connections in the 1.5 s from the HUP');

###############################################################################

# A reload that fails after the zone was set up (nginx binds the listening
# sockets after the shared memory) keeps the old workers, which go on
# probing: their gauges must go on showing.

my $off = length $t->read_file('error.log');

$t->write_file_expand('nginx.conf', conf('railgun_probe extra '
	. 'http://127.0.0.1:%%PORT_7301%%/extra interval=300ms timeout=250ms '
	. 'rise=1; server { listen 192.0.2.1:%%PORT_8081%%; }'));

my @workers = $t->worker_pids();
kill 'HUP', $t->master_pid();

ok(wait_for(10, sub {
	substr($t->read_file('error.log'), $off) =~ /\[emerg\].*bind\(\)/;
}), 'reload failed to bind');

# the master has given up on the new configuration and logs nothing more
sleep 0.5;

is(join(' ', $t->worker_pids()), join(' ', @workers), 'old workers kept');

my $s2 = $t->metrics();
my $ok2 = probe_checks($s2, 'api')->{ok};

is(probe_up($s2, 'api'), 1, 'probe_up still shown after a failed reload');
is(probe_gauge($s2, 'railgun_redis_memory_max_bytes', 'cache'),
	16 * 1024 * 1024, 'redis gauges still shown after a failed reload');
ok(wait_for(5, sub {
	probe_checks(scrape_fast($t), 'api')->{ok} >= $ok2 + 2;
}), 'probing goes on after a failed reload');

# the failed reload's [emerg] is expected: with nginx stopped it goes, so
# that "no alerts" looks at the rest

$t->stop();

my $log = $t->read_file('error.log');
my $emerg = () = $log =~ /^.*\[emerg\] .*bind\(\) to 192\.0\.2\.1:\d+ failed.*\n/mg;
is($emerg, 1, 'one [emerg] line, the bind');
$log =~ s/^.*\[emerg\] .*bind\(\) to 192\.0\.2\.1:\d+ failed.*\n//mg;
$t->write_file('error.log', $log);

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
