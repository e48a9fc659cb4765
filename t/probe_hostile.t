#!/usr/bin/perl

# Every probe type (redis, http, tcp) and a railgun_check type=tcp against
# targets that misbehave at the start of a connection: one that speaks
# first (an SMTP banner), one that accepts and closes before reading, one
# that accepts and resets (SO_LINGER 0), one that accepts and holds.  No
# worker dies, every check is counted once per connection the target
# accepted, and each gets the verdict of its kind.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->plan(30);

my $P = 'interval=300ms timeout=200ms rise=1 fall=1 initial=up';

my %port = (greet => 7101, close_first => 7102, reset => 7103,
	hold => 7104);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe redis_greet  redis://127.0.0.1:%%PORT_7101%% $P;
    railgun_probe redis_close  redis://127.0.0.1:%%PORT_7102%% $P;
    railgun_probe redis_reset  redis://127.0.0.1:%%PORT_7103%% $P;
    railgun_probe redis_hold   redis://127.0.0.1:%%PORT_7104%% $P;
    railgun_probe http_greet   http://127.0.0.1:%%PORT_7101%%/ $P;
    railgun_probe http_close   http://127.0.0.1:%%PORT_7102%%/ $P;
    railgun_probe http_reset   http://127.0.0.1:%%PORT_7103%%/ $P;
    railgun_probe http_hold    http://127.0.0.1:%%PORT_7104%%/ $P;
    railgun_probe tcp_greet    tcp://127.0.0.1:%%PORT_7101%% $P;
    railgun_probe tcp_close    tcp://127.0.0.1:%%PORT_7102%% $P;
    railgun_probe tcp_reset    tcp://127.0.0.1:%%PORT_7103%% $P;
    railgun_probe tcp_hold     tcp://127.0.0.1:%%PORT_7104%% $P;

    upstream smtp {
        server 127.0.0.1:%%PORT_7111%%;
        server 127.0.0.1:%%PORT_7112%%;
        railgun_check type=tcp $P;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location = /ready {
            railgun_gate smtp:min=2;
        }
    }
}

EOF

# one target per kind for the probes; the check's servers have their own
# ports

fake_server($t, $port{$_}, $_ eq 'hold' ? 'silent' : $_, workers => 12)
	for keys %port;
fake_server($t, 7111, 'greet');
fake_server($t, 7112, 'close_first');

$t->run();

my $worker = wait_for(5, sub { ($t->worker_pids())[0] });

my @probes = map { my $k = $_; map { "${_}_$k" } qw/ redis http tcp / }
	qw/ greet close reset hold /;

my $s = wait_for(20, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 } @probes) ? 0 : $s;
}, 0.1);
ok($s, 'three results of every probe');

$s = $t->metrics();

my %c = map { $_ => probe_checks($s, $_) } @probes;

# only the results named may have counts, the first of them at least 3

sub verdict {
	my ($probe, @results) = @_;
	my $c = $c{$probe};
	my %allowed = map { $_ => 1 } @results;

	ok(($c->{$results[0]} // 0) >= 3
		&& !grep({ !$allowed{$_} && ($c->{$_} // 0) != 0 } keys %$c),
		"$probe: " . join(' or ', @results))
		or diag(explain $c);
}

# a connect check asks only that the target accepts; a reset may come
# before the worker saw the connection complete

verdict('tcp_greet', 'ok');
verdict('tcp_close', 'ok');
verdict('tcp_reset', 'ok', 'error');
verdict('tcp_hold', 'ok');

verdict('redis_greet', 'error');
verdict('redis_close', 'error');
verdict('redis_reset', 'error');
verdict('redis_hold', 'timeout');

verdict('http_greet', 'error');
verdict('http_close', 'error');
verdict('http_reset', 'error');
verdict('http_hold', 'timeout');

is(probe_up($s, 'tcp_greet'), 1, 'tcp probe of a banner up');
is(probe_up($s, 'redis_greet'), 0, 'redis probe of a banner down');

# each check is one connection the target accepted: the target's own
# count against the three probes' (one each may be in flight, and one
# more accepted between the scrape and the read of the log)

for my $kind (sort keys %port) {
	my $name = $kind eq 'close_first' ? 'close' : $kind;
	my $checks = 0;
	$checks += probe_checks_total($s, "${_}_$name") for qw/ redis http tcp /;
	my $accepted = () = accepts($t, $port{$kind});

	ok($accepted >= $checks && $accepted <= $checks + 6,
		"$kind: $checks checks, $accepted connections accepted");
}

# the reasons in the log (fall=1: every down names its last result)

my $log = $t->read_file('error.log');

like($log, qr/"redis_greet" .* is down after 1 failed checks, last: error \(bad reply\)/,
	'redis_greet: bad reply');
like($log, qr/"http_greet" .* is down after 1 failed checks, last: error \(bad status line\)/,
	'http_greet: bad status line');
like($log, qr/"redis_close" .* last: error \((?:connection closed early|recv failed|send failed)\)/,
	'redis_close: closed early');

# the upstream check of a banner and of a closing server: both up

ok(wait_for(5, sub {
	my $s = scrape_fast($t);
	my @up = map { sample($s, 'railgun_upstream_peer_up',
		{ upstream => 'smtp', peer => '127.0.0.1:' . port($_) }) // 0 }
		7111, 7112;
	$up[0] == 1 && $up[1] == 1;
}), 'railgun_check type=tcp: banner and closing servers up');

my $r = http_get('/ready');
is(http_status($r), 200, 'gate of the tcp checks ready');
like(http_body($r) // '', qr/"smtp":true/, 'gate body');

my $checks = sample_sum(scrape_fast($t), 'railgun_probe_checks_total',
	{ probe => 'smtp', result => 'ok' }) // 0;
ok($checks >= 2, "tcp checks of the upstream counted ($checks ok)");

# the whole time, one worker and no crash

is_deeply([ $t->worker_pids() ], [ $worker ], 'same worker throughout');
unlike($log, qr/exited on signal/, 'no worker died');

my $base = probe_checks_total($s, 'tcp_close');
ok(wait_for(5, sub {
	probe_checks_total(scrape_fast($t), 'tcp_close') >= $base + 3;
}), 'tcp checks go on');

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
