#!/usr/bin/perl

# A reload takes effect even while an old worker, kept alive by a long
# request, still has a check running: the old worker's check ends after
# the reload, and the new worker with the shorter interval checks again at
# once, not an old interval after that end.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use IO::Socket::INET;
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(6);

my $CONF = <<'EOF';

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe slow redis://127.0.0.1:%%PORT_7311%% %%TIMES%%;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location / {
            proxy_pass http://127.0.0.1:%%PORT_8081%%;
            proxy_read_timeout 30s;
        }
    }
}

EOF

(my $conf = $CONF) =~ s/%%TIMES%%/interval=60s timeout=6s/;
$t->write_file_expand('nginx.conf', $conf);

# a target that never answers: each check lasts its timeout
fake_server($t, 7311, 'silent');
$t->http_backend(8081);

$t->run();

ok(wait_for(5, sub { accepts($t, 7311) >= 1 }, 0.05),
	'the first check (6 s) is open');

# a request of 15 s keeps the old worker alive past the reload and past
# the end of its check

my $hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8080))
	or die "connect: $!";
print $hold "GET /delay/15000 HTTP/1.0\r\nHost: localhost\r\n\r\n";

ok(wait_for(5, sub {
	my $s = scrape_fast($t);
	(sample($s, 'railgun_nginx_connections', { state => 'writing' })
		// 0) >= 2;
}, 0.05), 'the long request is in the old worker');

my ($old) = $t->worker_pids();

($conf = $CONF) =~ s/%%TIMES%%/interval=200ms timeout=1s/;
$t->write_file_expand('nginx.conf', $conf);

kill 'HUP', $t->master_pid();

ok(wait_for(5, sub { grep { $_ != $old } $t->worker_pids() }, 0.05),
	'a new worker runs');

# the old worker's check ends 6 s after it began, while the old worker
# still serves the long request

my $end = (accepts($t, 7311))[0]{time} + 6;
sleep 0.05 while time() < $end + 0.5;

ok(Test::Railgun::alive($old), 'the old worker still runs');

# 200 ms interval, 1 s timeout: a check every 1.2 s or so; 5 s after the
# old check ended, at least three more

sleep 0.05 while time() < $end + 5;
my @after = accepts($t, 7311, $end);

cmp_ok(scalar @after, '>=', 3, 'the new interval at once after the old '
	. 'worker\'s check ended: ' . scalar(@after) . ' checks in 5 s');

my $s = scrape_fast($t);
cmp_ok(probe_checks($s, 'slow')->{timeout}, '>=', 3, 'counted as timeouts');

close $hold;

###############################################################################
