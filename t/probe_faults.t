#!/usr/bin/perl

# Tests for probes of misbehaving targets: a stopped Redis (refused), a
# SIGSTOPped one (timeout, while nginx keeps answering fast), fake servers
# that speak garbage, send a huge bulk reply or an array bomb (error, with
# no memory growth), drip a byte at a time or never answer (timeout), close
# early, report loading; a canned valid reply; TCP connect checks; the
# initial state before any result.

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
	->plan(48);

my $P = 'interval=600ms timeout=400ms rise=1 fall=1 initial=up';

$t->refused_port(7011);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe stopped     redis://127.0.0.1:%%PORT_6400%% $P;
    railgun_probe paused      redis://127.0.0.1:%%PORT_6401%% $P;
    railgun_probe garbage     redis://127.0.0.1:%%PORT_7001%% $P;
    railgun_probe huge        redis://127.0.0.1:%%PORT_7002%% $P;
    railgun_probe bomb        redis://127.0.0.1:%%PORT_7003%% $P;
    railgun_probe drip        redis://127.0.0.1:%%PORT_7004%% $P;
    railgun_probe silent      redis://127.0.0.1:%%PORT_7005%% $P;
    railgun_probe closes      redis://127.0.0.1:%%PORT_7006%% $P;
    railgun_probe loading     redis://127.0.0.1:%%PORT_7007%% $P;
    railgun_probe loading_err redis://127.0.0.1:%%PORT_7008%% $P;
    railgun_probe big_info    redis://127.0.0.1:%%PORT_7009%% $P;
    railgun_probe canned      redis://127.0.0.1:%%PORT_7010%% role=master $P;
    railgun_probe http_drip   http://127.0.0.1:%%PORT_7012%%/ $P;
    railgun_probe tcp_ok      tcp://127.0.0.1:%%PORT_7005%% $P;
    railgun_probe tcp_refused tcp://127.0.0.1:%%PORT_7011%% $P;

    railgun_probe init_up     redis://127.0.0.1:%%PORT_7005%% interval=10s timeout=2s initial=up;
    railgun_probe init_down   redis://127.0.0.1:%%PORT_7005%% interval=10s timeout=2s;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location = /fast {
            return 200 "fast\n";
        }
    }
}

EOF

# canned replies to PING and the five INFO sections

sub info_reply {
	my (%f) = @_;

	my %v = (role => 'master', loading => 0, used_memory => 123456,
		maxmemory => 777, connected_clients => 42, %f);

	return "+PONG\r\n"
		. redis_reply_bulk("# Replication\r\nrole:$v{role}\r\n"
			. "connected_slaves:0\r\n")
		. redis_reply_bulk("# Persistence\r\nloading:$v{loading}\r\n"
			. "async_loading:0\r\n")
		. redis_reply_bulk("# Memory\r\nused_memory:$v{used_memory}\r\n"
			. "used_memory_human:120.56K\r\n"
			. "maxmemory:$v{maxmemory}\r\n"
			. "maxmemory_human:777B\r\n")
		. redis_reply_bulk("# Clients\r\n"
			. "connected_clients:$v{connected_clients}\r\n"
			. "cluster_connections:0\r\n")
		. redis_reply_bulk("# Stats\r\nkeyspace_hits:7\r\n"
			. "keyspace_misses:3\r\nevicted_keys:2\r\n"
			. "pubsub_channels:1\r\n");
}

my $stopped = redis_start($t, 6400);
my $paused = redis_start($t, 6401);

fake_server($t, 7001, 'garbage');
fake_server($t, 7002, 'huge_bulk');
fake_server($t, 7003, 'array_bomb');
fake_server($t, 7004, 'drip', every => 0.1);
fake_server($t, 7005, 'silent');
fake_server($t, 7006, 'close');
fake_server($t, 7007, 'canned', reply => info_reply(loading => 1));
fake_server($t, 7008, 'canned',
	reply => "-LOADING Redis is loading the dataset in memory\r\n");
fake_server($t, 7009, 'canned', reply => "+PONG\r\n"
	. redis_reply_bulk("# Replication\r\n" . ('x' x 70000) . "\r\n"));
fake_server($t, 7010, 'canned', reply => info_reply());
fake_server($t, 7012, 'drip', every => 0.1,
	drip => "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");

$t->run();

my $start = time();

###############################################################################

# before any result, probe_up tells the initial state; every result series
# is there from the start

my $s = scrape_fast($t);

SKIP: {
	skip 'too slow to see the state before the first result', 3
		if time() - $start > 1.5;

	is(probe_up($s, 'init_up'), 1, 'initial=up before any result');
	is(probe_up($s, 'init_down'), 0, 'initial down before any result');
	is(probe_checks_total($s, 'init_up'), 0, 'no result yet');
}

is(scalar(series($s, 'railgun_probe_checks_total', { probe => 'garbage' })),
	9, 'nine result series from the start');
ok(!series($s, 'railgun_redis_memory_used_bytes', { probe => 'tcp_ok' }),
	'no redis gauges for a tcp probe');

# the Redis servers pass before they are stopped

ok(wait_for(5, sub {
	my $s = scrape_fast($t);
	probe_checks($s, 'stopped')->{ok} && probe_checks($s, 'paused')->{ok};
}), 'both redis servers pass');

redis_stop($stopped);
redis_pause($paused);

my $pause_base = probe_checks(scrape_fast($t), 'paused');
my $dur_base = durations(scrape_fast($t), 'paused');

# nginx answers fast while the paused Redis times out

my @lat;
for (1 .. 30) {
	my $t0 = time();
	my $r = http_get('/fast');
	push @lat, time() - $t0;
	push @lat, 99 unless http_status($r) // 0 == 200;
	sleep 0.04;
}
@lat = sort { $a <=> $b } @lat;

ok($lat[15] < 0.05 && $lat[-1] < 0.25, sprintf('requests keep their latency meanwhile '
	. '(median %.3f s, max %.3f s)', $lat[15], $lat[-1]));

# every fault probe has at least three results of its own

my @faults = qw/ stopped paused garbage huge bomb drip silent closes loading
	loading_err big_info http_drip tcp_refused /;

$s = wait_for(15, sub {
	my $s = scrape_fast($t);
	return 0 if probe_checks($s, 'paused')->{timeout}
		< $pause_base->{timeout} + 3;
	return 0 if probe_checks($s, 'stopped')->{refused} < 3;
	(grep { probe_checks_total($s, $_) < 3 }
		qw/ garbage huge bomb drip silent closes loading loading_err
			big_info canned http_drip tcp_ok tcp_refused /) ? 0 : $s;
});
ok($s, 'three results of every probe');

$s = $t->metrics();

my %c = map { $_ => probe_checks($s, $_) } @faults, qw/ canned tcp_ok /;

sub mostly {
	my ($probe, $result, $except) = @_;
	my $c = $c{$probe};
	$except ||= {};

	ok($c->{$result} >= 3 && !grep({ $_ ne $result && !$except->{$_}
			&& $c->{$_} != 0 } keys %$c),
		"$probe: $result")
		or diag(explain $c);
}

mostly('stopped', 'refused', { ok => 1 });
mostly('garbage', 'error');
mostly('huge', 'error');
mostly('bomb', 'error');
mostly('drip', 'timeout');
mostly('silent', 'timeout');
mostly('closes', 'error');
mostly('loading', 'error');
mostly('loading_err', 'error');
mostly('big_info', 'error');
mostly('canned', 'ok');
mostly('http_drip', 'timeout');
mostly('tcp_ok', 'ok');
mostly('tcp_refused', 'refused');

my $pc = probe_checks($s, 'paused');
ok($pc->{timeout} >= $pause_base->{timeout} + 3
	&& $pc->{ok} == $pause_base->{ok}
	&& !grep({ $pc->{$_} != 0 } qw/ refused error auth bad_role /),
	'paused: timeout')
	or diag(explain $pc);

# a timeout takes the timeout: neither much less nor much more

sub durations {
	my ($s, $probe) = @_;

	my %d = map { $_ => sample($s, "railgun_probe_duration_seconds_$_",
		{ probe => $probe }) } qw/ sum count /;

	for my $le (qw/ 0.25 0.5 1 /) {
		$d{$le} = sample($s, 'railgun_probe_duration_seconds_bucket',
			{ probe => $probe, le => $le });
	}

	return \%d;
}

for my $probe (qw/ paused drip silent http_drip /) {
	my $d = durations($s, $probe);
	my $b = $probe eq 'paused' ? $dur_base
		: { sum => 0, count => 0, '0.25' => 0, '1' => 0 };

	my $n = $d->{count} - $b->{count};
	my $avg = $n ? ($d->{sum} - $b->{sum}) / $n : 0;

	ok($n >= 3 && $d->{'0.25'} == $b->{'0.25'}
		&& $d->{'1'} - $b->{'1'} == $n
		&& $avg >= 0.39 && $avg < 0.6,
		sprintf('%s: %d timeouts of %.3f s on average', $probe, $n,
			$avg))
		or diag(explain $d);
}

# the reasons, from the transition lines (initial=up, fall=1)

my %why = (
	stopped => qr/refused \(.*refused.*\)/,
	paused => qr/timeout \(.*\)/,
	garbage => qr/error \(.*\)/,
	huge => qr/error \(reply too large\)/,
	bomb => qr/error \(.*\)/,
	drip => qr/timeout \(.*\)/,
	closes => qr/error \(.*closed.*\)/,
	loading => qr/error \(.*loading.*\)/,
	loading_err => qr/error \(.*loading.*\)/,
	big_info => qr/error \(reply too large\)/,
);

for my $probe (sort keys %why) {
	my @l = grep { /is down/ } transition_lines($t, $probe);
	like($l[-1] // '', qr/"$probe" 127\.0\.0\.1:\d+ is down after 1 failed checks, last: $why{$probe}/,
		"$probe: down, and why");
}

# gauges from the canned INFO

is(probe_gauge($s, 'railgun_redis_memory_used_bytes', 'canned'), 123456,
	'used_memory from INFO');
is(probe_gauge($s, 'railgun_redis_memory_max_bytes', 'canned'), 777,
	'maxmemory from INFO');
is(probe_gauge($s, 'railgun_redis_connected_clients', 'canned'), 42,
	'connected_clients from INFO');
is(join(' ', map { probe_gauge($s, "railgun_redis_$_", 'canned') // 'none' }
	qw/ keyspace_hits_total keyspace_misses_total evicted_keys_total
		pubsub_channels /), '7 3 2 1', 'INFO stats');
is(probe_gauge($s, 'railgun_redis_replication_lag_bytes', 'canned'), 0,
	'no replication lag for a master');

###############################################################################

# the huge bulk reply and the array bomb read a bounded amount: the
# worker's memory does not grow with more of them

my ($worker) = $t->worker_pids();
my $rss0 = rss_kb($worker);
my $base = probe_checks($s, 'huge')->{error} + probe_checks($s, 'bomb')->{error};

ok(wait_for(20, sub {
	my $s = scrape_fast($t);
	probe_checks($s, 'huge')->{error} + probe_checks($s, 'bomb')->{error}
		>= $base + 10;
}, 0.1), '10 more huge and bomb checks');

my $rss1 = rss_kb($worker);

SKIP: {
	skip 'ASan keeps freed memory in quarantine', 1
		if $ENV{RAILGUN_TEST_ASAN};

	# valgrind too: its freed-blocks queue (--freelist-vol, 20 MB) and
	# redzones grow RSS with every allocation (4.5 MB seen); leaks are
	# what valgrind itself reports, checked at the end
	skip 'valgrind keeps freed memory in its freelist', 1
		if $ENV{RAILGUN_TEST_VALGRIND};

	ok(defined $rss0 && defined $rss1 && $rss1 - $rss0 < 4096,
		"worker RSS bounded ($rss0 kB, then $rss1 kB)");
}

# an allocation by a declared length (hiredis' own reply functions take
# 1.5 GB for "*200000000") need not touch its pages, so it would not show
# in VmRSS; it shows in the peak of the address space

SKIP: {
	skip 'ASan reserves terabytes of address space', 1
		if $ENV{RAILGUN_TEST_ASAN};

	my $peak = rss_kb($worker, 'VmPeak');
	ok(defined $peak && $peak < 256 * 1024,
		"worker VmPeak bounded ($peak kB)");
}

is(scalar(grep { $_ == $worker } $t->worker_pids()), 1, 'same worker');

redis_resume($paused);

ok(wait_for(5, sub {
	probe_checks(scrape_fast($t), 'paused')->{ok} > $pc->{ok};
}), 'resumed redis passes again');

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
