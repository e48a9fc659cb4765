#!/usr/bin/perl

# An idle worker sleeps: with checked upstreams whose checks are a minute
# apart and no request, a worker wakes for nothing.  It used to wake every
# 100 ms per checked upstream to look at the checks' verdicts; now the
# worker that makes a check syncs its upstreams when a verdict changes,
# and the others at their next request (t/gate_warn.t: the all-down lines
# are still logged when the check fails, with no request).  Counted from
# the kernel's voluntary context switches of each worker, not from the
# module.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(3)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u {
        railgun_check uri=/health interval=60s timeout=1s rise=1 fall=1;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
    }

    upstream v {
        railgun_check type=tcp interval=60s timeout=1s;
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /u {
            proxy_pass http://u;
        }

        location /v {
            proxy_pass http://v;
        }
    }
}

EOF

my @b = map { backend($t, 8080 + $_, "b$_") } 1 .. 2;

$t->run();

###############################################################################

# every server's first check (1 to 100 ms after the start) is made

ok(wait_for(5, sub {
	my $m = scrape_quick($t);
	(peer_up($m, 'u', $b[0]) // 0) == 1
		&& (peer_up($m, 'u', $b[1]) // 0) == 1
}), 'first checks made');

my @w = $t->worker_pids();
is(scalar @w, 2, 'two workers');

sub switches {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/status" or return undef;
	local $/;
	my $s = <$fh>;
	return $s =~ /^voluntary_ctxt_switches:\s+(\d+)/m ? $1 : undef;
}

# the scrapes above went to some worker: let it settle, then look for 2 s.
# Each worker still looks at each probe not yet due once a second (whether
# its prober is alive, or the interval changed by a reload): 3 probes, at
# most 6 wakes, fewer where their timers fall together.  With the tick of
# 100 ms per checked upstream, each worker woke 22 to 24 times.

select undef, undef, undef, 0.3;

my %before = map { $_ => switches($_) } @w;
select undef, undef, undef, 2;
my %after = map { $_ => switches($_) } @w;

my @woke = map { ($after{$_} // 0) - ($before{$_} // 0) } @w;

ok(!grep({ $_ > 10 } @woke), "idle workers do not wake (woke: @woke)");

###############################################################################
