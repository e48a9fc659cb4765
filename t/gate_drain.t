#!/usr/bin/perl

# Drain: railgun_gate ... drain_file=PATH answers 503
# {"status":"draining",...} while PATH exists, with the names' states as
# ever, and 200 again once it is gone; the probes go on meanwhile.  A
# relative PATH is relative to nginx's prefix.  A worker looks at PATH at
# most once a second (one stat() however many gate requests), so a change
# shows within a second or so.  An empty or second drain_file= is refused
# by nginx -t.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use JSON::PP ();
use POSIX ();
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(14);

my $d = $t->testdir();

my $CONF = <<"EOF";

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe svc tcp://127.0.0.1:%%PORT_7601%% interval=200ms rise=1 fall=1;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location = /ready {
            railgun_gate svc drain_file=$d/drain;
        }

        location = /ready/relative {
            railgun_gate drain_file=drain-rel svc;
        }

        %%EXTRA%%
    }
}

EOF

(my $conf = $CONF) =~ s/%%EXTRA%%//;
$t->write_file_expand('nginx.conf', $conf);

fake_server($t, 7601, 'close_first');

$t->run();

sub gate_json {
	my ($uri) = @_;
	my ($status, undef, $body) = http_split(http_get($uri));
	return ($status, eval { JSON::PP::decode_json($body // '') });
}

ok(wait_for(5, sub { (gate_json('/ready'))[0] == 200 }), 'ready');

# the file appears: draining, the probe's state still told

$t->write_file('drain', '');

my ($status, $j);
ok(wait_for(2, sub { ($status, $j) = gate_json('/ready'); $status == 503 }),
	'draining: 503');
is_deeply($j, { status => 'draining', svc => JSON::PP::true },
	'draining: the status and the states');
is((gate_json('/ready/relative'))[0], 200,
	'another file for the other location');

# the probe goes on meanwhile

my $base = probe_checks_total(scrape_fast($t), 'svc');
ok(wait_for(5, sub { probe_checks_total(scrape_fast($t), 'svc') >= $base + 3 }),
	'the probe goes on while draining');
is(probe_up(scrape_fast($t), 'svc'), 1, 'and stays up');
is((gate_json('/ready'))[0], 503, 'still draining');

unlink "$d/drain";
ok(wait_for(2, sub { (gate_json('/ready'))[0] == 200 }),
	'the file gone: ready again');

# relative to the prefix

$t->write_file('drain-rel', '');
ok(wait_for(2, sub {
	($status, $j) = gate_json('/ready/relative');
	$status == 503;
}), 'a relative drain_file');
is($j->{status}, 'draining', 'a relative drain_file: draining');

# at most one stat() of the file a second: the syscalls of the worker
# naming it, while the gate answers 100 requests

SKIP: {
	skip 'no strace', 1 unless -x '/usr/bin/strace';

	my ($worker) = $t->worker_pids();
	my $trace = "$d/strace.out";

	my $pid = fork() // die "fork: $!";
	if ($pid == 0) {
		open STDERR, '>', '/dev/null';
		exec '/usr/bin/strace', '-qq', '-e', 'trace=%stat,%file', '-o',
			$trace, '-p', $worker;
		POSIX::_exit(127);
	}

	# attached once a syscall shows (the gate's own stat at the latest)
	wait_for(5, sub { gate_json('/ready'); -s $trace }, 0.1);

	my $start = time();
	gate_json('/ready') for 1 .. 100;
	my $seconds = time() - $start;

	kill 'INT', $pid;
	waitpid($pid, 0);

	my $stats = () = $t->read_file('strace.out') =~ /"\Q$d\E\/drain"/g;
	ok($stats <= int($seconds) + 3,
		sprintf('%d stat() calls of drain_file for 100 gate requests in '
			. '%.1f s', $stats, $seconds));
}

# configuration mistakes

for my $bad ([ 'railgun_gate svc drain_file=;', 'empty' ],
	[ 'railgun_gate svc drain_file=a drain_file=b;', 'twice' ])
{
	(my $c = $CONF) =~ s/%%EXTRA%%/location = \/bad { $bad->[0] }/;
	my ($rc, $out) = $t->nginx_t($c);
	like($out, qr/\[emerg\].*an empty or second "drain_file=" in one railgun_gate.* in \S+:\d+$/m,
		"drain_file $bad->[1]: refused with file and line");
}

ok(!scrape_errors(), 'fast scrapes valid') or diag(join "\n", scrape_errors());

###############################################################################
