#!/usr/bin/perl

# HTTP verdicts as HTTP has them: interim responses (100 Continue, 103
# Early Hints) before the final status are skipped; body= matches the
# decoded body of a chunked reply, across chunks; header lines ending in a
# bare LF are read as nginx reads them; a complete body that does not match
# is bad_body while the server keeps the connection open (Content-Length or
# the last chunk); a check of a unix: server sends the upstream's name as
# Host, or localhost when that name is no valid Host (a space, CR LF).  The targets answer and then hold the connection.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use IO::Socket::UNIX;
use Socket qw/ SOCK_STREAM /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->plan(13);

my $P = 'interval=300ms timeout=250ms rise=1 fall=1';
my $sock = $t->testdir() . '/backend.sock';
my $evil = $t->testdir() . '/evil.sock';

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe continue http://127.0.0.1:%%PORT_7501%%/ $P body=ok;
    railgun_probe hints    http://127.0.0.1:%%PORT_7502%%/ $P;
    railgun_probe chunks   http://127.0.0.1:%%PORT_7503%%/ $P body=NEEDLE;
    railgun_probe chunks_no http://127.0.0.1:%%PORT_7504%%/ $P body=NEEDLE;
    railgun_probe bare_lf  http://127.0.0.1:%%PORT_7505%%/ $P body=ready;
    railgun_probe length_no http://127.0.0.1:%%PORT_7506%%/ $P body=ready;
    railgun_probe chunk_ext http://127.0.0.1:%%PORT_7507%%/ $P body=abcdef;
    railgun_probe chunk_max http://127.0.0.1:%%PORT_7508%%/ $P body=ready;

    upstream sockets {
        server unix:$sock;
        railgun_check uri=/health $P;
    }

    upstream "a b\\r\\nX-Evil: 1" {
        server unix:$evil;
        railgun_check uri=/health $P;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }
    }
}

EOF

my $CL = "Content-Length: 2\r\n\r\nok";

fake_server($t, 7501, 'canned', reply => "HTTP/1.1 100 Continue\r\n\r\n"
	. "HTTP/1.1 200 OK\r\n$CL");
fake_server($t, 7502, 'canned', reply => "HTTP/1.1 103 Early Hints\r\n"
	. "Link: </style.css>; rel=preload\r\n\r\n"
	. "HTTP/1.1 100 Continue\r\n\r\n"
	. "HTTP/1.1 204 No Content\r\n\r\n");
fake_server($t, 7503, 'canned', reply => "HTTP/1.1 200 OK\r\n"
	. "Transfer-Encoding: chunked\r\n\r\n"
	. "2\r\nxN\r\n3\r\nEED\r\n1;ext=1\r\nL\r\n4\r\nEyyy\r\n0\r\n\r\n");
fake_server($t, 7504, 'canned', reply => "HTTP/1.1 200 OK\r\n"
	. "Transfer-Encoding: chunked\r\n\r\n"
	. "3\r\nNEE\r\n4\r\nxDLE\r\n0\r\n\r\n");
fake_server($t, 7505, 'canned', reply => "HTTP/1.1 200 OK\n"
	. "Content-Type: text/plain\nContent-Length: 5\n\nready");
fake_server($t, 7506, 'canned', reply => "HTTP/1.1 200 OK\r\n"
	. "Content-Length: 8\r\n\r\nstarting");
fake_server($t, 7507, 'canned', reply => "HTTP/1.1 200 OK\n"
	. "transfer-encoding: gzip, CHUNKED\n\n"
	. "3\nabc\n4\ndef!\n0\n\n");

# a chunk of 2^63 - 1 bytes, the largest size that parses: its first bytes
# came, the rest never will, and the check waits for them until its timeout
fake_server($t, 7508, 'canned', reply => "HTTP/1.1 200 OK\r\n"
	. "Transfer-Encoding: chunked\r\n\r\n7fffffffffffffff\r\nabc");

# the unix socket backends keep the Host of every request, and any other
# header than Host

sub unix_backend {
	my ($path, $log) = @_;

	$t->run_daemon(sub {
		my $l = IO::Socket::UNIX->new(Type => SOCK_STREAM,
			Local => $path, Listen => 16)
			or die "listen $path: $!";
		chmod 0777, $path;

		while (my $c = $l->accept()) {
			my $head = '';
			while ($head !~ /\r\n\r\n/) {
				sysread($c, $head, 4096, length $head) or last;
			}
			my ($host) = $head =~ /^Host: (.*?)\r$/mi;
			my @other = grep { !/^(Host|User-Agent|Connection|Accept):/i }
				$head =~ /^([^\r\n ]+:)/mg;
			open my $fh, '>>', $log;
			print $fh join(' ', $host // '(none)', @other) . "\n";
			close $fh;
			syswrite $c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				. "Connection: close\r\n\r\n";
			close $c;
		}
	});

	wait_for(5, sub { -S $path });
}

unix_backend($sock, $t->testdir() . '/hosts.log');
unix_backend($evil, $t->testdir() . '/evil.log');

$t->run();

my @probes = qw/ continue hints chunks chunks_no bare_lf length_no
	chunk_ext chunk_max /;

my $s = wait_for(10, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 } @probes) ? 0 : $s;
}, 0.1);
ok($s, 'three results of every probe');

sub only {
	my ($probe, $result) = @_;
	my $c = probe_checks($s, $probe);

	ok($c->{$result} >= 3 && $c->{$result} == probe_checks_total($s, $probe),
		"$probe: $result") or diag(explain $c);
}

only('continue', 'ok');
only('hints', 'ok');
only('chunks', 'ok');
only('chunks_no', 'bad_body');
only('bare_lf', 'ok');
only('length_no', 'bad_body');
only('chunk_ext', 'ok');
only('chunk_max', 'timeout');

ok(wait_for(5, sub {
	sample(scrape_fast($t), 'railgun_upstream_peer_up',
		{ upstream => 'sockets' }) }), 'unix: server checked and up');

my @h = split /\n/, $t->read_file('hosts.log');
ok(@h && !grep({ $_ ne 'sockets' } @h),
	'Host of a unix: check is the upstream name')
	or diag(join ', ', @h);

# an upstream name that would split the request: Host is localhost

ok(wait_for(5, sub {
	sample(scrape_fast($t), 'railgun_upstream_peer_up',
		{ upstream => "a b\r\nX-Evil: 1" }) }), 'unix: server of a CR LF '
	. 'name checked and up');

@h = split /\n/, $t->read_file('evil.log');
ok(@h && !grep({ $_ ne 'localhost' } @h),
	'Host of an upstream name with CR LF is localhost, no header injected')
	or diag(join ', ', @h);

###############################################################################
