#!/usr/bin/perl

# The all-down line is logged without a request even when the check that
# makes every server fail ends in an old worker after a reload: a long
# request keeps the old worker alive, its check in flight at the reload
# ends there (the verdict changes in the zone), and the new worker's
# checks after it find the verdict already changed.  The new worker still
# logs the episode, without a request through the upstream.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Gate;

use IO::Socket::INET;
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(5)->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    upstream u {
        railgun_check uri=/health interval=200ms timeout=5s rise=1 fall=1;
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

        location /hold {
            proxy_pass http://127.0.0.1:%%PORT_8082%%/delay/8000;
            proxy_read_timeout 30s;
        }
    }
}

EOF

my $d = $t->testdir();

# /health: 200, or while "fail" exists a slow 503 (1.5 s), each start of
# which is written down

$t->http_backend(8081, handler => sub {
	my ($method, $uri) = @_;

	return unless $uri =~ m!^/health!;
	return (200, "ok\n") unless -e "$d/fail";

	if (open my $fh, '>>', "$d/slow") {
		print $fh time(), "\n";
		close $fh;
	}

	sleep 1.5;
	return (503, "failing\n");
});

$t->http_backend(8082);

$t->run();

###############################################################################

ok(wait_for(5, sub { (peer_up(scrape_quick($t), 'u', '127.0.0.1:'
	. port(8081)) // 0) == 1 }), 'checked, up');

# the old worker stays, held by a request of 8 s

my $hold = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8080))
	or die "connect: $!";
print $hold "GET /hold HTTP/1.0\r\nHost: localhost\r\n\r\n";

my $old = ($t->worker_pids())[0];

# the failing check starts in the worker there is, and the reload comes
# while it runs

open my $fh, '>', "$d/fail" or die "$d/fail: $!";
close $fh;

ok(wait_for(5, sub { -s "$d/slow" }), 'a slow failing check started');

my $offset = length $t->read_file('error.log');

kill 'HUP', $t->master_pid();

ok(wait_for(5, sub { grep { $_ != $old } $t->worker_pids() }),
	'a new worker');

# the check ends in the old worker 1.5 s after it started; the new worker
# has had time to check and to look at the verdicts after that

ok(wait_for(6, sub { scalar warn_lines($t, 'u', $offset) }),
	'all down: logged without a request, after a reload')
	or diag(substr $t->read_file('error.log'), $offset);

unlike($t->read_file('access.log'), qr/"GET \/u/, 'no request through u');

close $hold;

###############################################################################
