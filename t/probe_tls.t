#!/usr/bin/perl

# TLS probes with real peers on loopback and a test CA made here: https://
# probes verified by name and by address, SNI seen by the server, expired,
# wrong-name and untrusted certificates (verdict tls, up with
# ssl_verify=off), a client certificate, a plain-text server on the TLS
# port, a server that stalls in the handshake (timeout), Redis over TLS
# (redis-server --tls-port), sessions reused between checks, a checked
# https upstream whose dead peer is skipped, and the configuration mistakes
# nginx -t refuses with file and line.

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

my $t = Test::Railgun->new()->has_daemon('openssl')
	->has_daemon($Test::Railgun::Probe::REDIS);

plan(skip_all => 'redis-server without TLS')
	unless `$Test::Railgun::Probe::REDIS --help 2>&1; `
	. `$Test::Railgun::Probe::REDIS --tls-port 1 --port 0 --test-memory 1 2>&1`
	!~ /not supported|unrecognized/i;

$t->plan(48);

my $d = $t->testdir();

###############################################################################

# the test CA, a second CA nobody trusts, and certificates signed by the
# first: localhost (DNS and IP), an expired one, one for another name, a
# client's

sub ossl {
	my ($args) = @_;
	system("openssl $args >>$d/openssl.out 2>&1") == 0
		or die "openssl $args:\n" . $t->read_file('openssl.out');
}

$t->write_file('ca.cnf', <<"EOF");
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = $d/ca
database = $d/ca/index.txt
new_certs_dir = $d/ca
serial = $d/ca/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
EOF

mkdir "$d/ca";
$t->write_file('ca/index.txt', '');
$t->write_file('ca/serial', "1000\n");

for my $ca (qw/ ca other_ca /) {
	ossl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=$ca "
		. "-keyout $d/$ca.key -out $d/$ca.pem");
}

sub cert {
	my ($name, $cn, $san, $dates) = @_;

	ossl("req -newkey rsa:2048 -nodes -subj /CN=$cn "
		. ($san ? "-addext subjectAltName=$san " : '')
		. "-keyout $d/$name.key -out $d/$name.csr");
	ossl("ca -batch -config $d/ca.cnf -cert $d/ca.pem -keyfile $d/ca.key "
		. "$dates -in $d/$name.csr -out $d/$name.pem");
}

cert('server', 'localhost', 'DNS:localhost,IP:127.0.0.1', '-days 2');
cert('expired', 'localhost', 'DNS:localhost,IP:127.0.0.1',
	'-startdate 20200101000000Z -enddate 20200102000000Z');
cert('other', 'other.example', 'DNS:other.example', '-days 2');
cert('client', 'client', '', '-days 2');

###############################################################################

my $P = "interval=300ms timeout=1s rise=1 fall=1 initial=up";
my $V = "ssl_trusted_certificate=$d/ca.pem";
my $N = 'ssl_name=localhost';

my $redis_tls = port(6380);
my $redis_plain = port(6379);
my $dead = $t->refused_port(8999);

$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%

worker_processes 1;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    log_format tls '\$server_port "\$ssl_server_name" \$ssl_session_reused';

    railgun_probe https_ok   https://127.0.0.1:%%PORT_8443%%/ $P $N $V body=sni=[localhost];
    railgun_probe https_ip   https://127.0.0.1:%%PORT_8443%%/ $P $V body=sni=[];
    railgun_probe expired    https://127.0.0.1:%%PORT_8444%%/ $P $N $V;
    railgun_probe expired_off https://127.0.0.1:%%PORT_8444%%/ $P ssl_verify=off;
    railgun_probe wrongname  https://127.0.0.1:%%PORT_8445%%/ $P $N $V;
    railgun_probe wrongname_off https://127.0.0.1:%%PORT_8445%%/ $P $N ssl_verify=off;
    railgun_probe untrusted  https://127.0.0.1:%%PORT_8443%%/ $P $N ssl_trusted_certificate=$d/other_ca.pem;
    railgun_probe client_ok  https://127.0.0.1:%%PORT_8446%%/ $P $N $V ssl_certificate=$d/client.pem ssl_certificate_key=$d/client.key;
    railgun_probe client_none https://127.0.0.1:%%PORT_8446%%/ $P $N $V;
    railgun_probe plaintext  https://127.0.0.1:%%PORT_8080%%/ $P ssl_verify=off;
    railgun_probe stall      https://127.0.0.1:%%PORT_7501%%/ interval=300ms timeout=200ms rise=1 fall=1 initial=up ssl_verify=off;
    railgun_probe closer     https://127.0.0.1:%%PORT_7502%%/ $P ssl_verify=off;
    railgun_probe redis_tls  rediss://:secret\@127.0.0.1:$redis_tls $P $N $V;
    railgun_probe redis_pass rediss://:wrong\@127.0.0.1:$redis_tls $P $N $V;
    railgun_probe redis_plain rediss://:secret\@127.0.0.1:$redis_plain $P ssl_verify=off;

    upstream tls_up {
        server 127.0.0.1:%%PORT_8443%%;
        server 127.0.0.1:$dead;
        railgun_check ssl uri=/ $P body=sni=[tls_up];
    }

    upstream handshake {
        server 127.0.0.1:%%PORT_8443%%;
        server 127.0.0.1:%%PORT_8080%%;
        railgun_check type=tcp ssl $P;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
        }

        location /up {
            proxy_pass https://tls_up/;
            proxy_next_upstream off;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8443%% ssl;
        server_name  localhost;

        ssl_certificate      server.pem;
        ssl_certificate_key  server.key;
        ssl_session_cache    shared:tls:1m;

        access_log  $d/tls.log tls;

        location / {
            return 200 "sni=[\$ssl_server_name]";
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8444%% ssl;
        server_name  localhost;

        ssl_certificate      expired.pem;
        ssl_certificate_key  expired.key;

        return 200 "expired";
    }

    server {
        listen       127.0.0.1:%%PORT_8445%% ssl;
        server_name  localhost;

        ssl_certificate      other.pem;
        ssl_certificate_key  other.key;

        return 200 "other";
    }

    server {
        listen       127.0.0.1:%%PORT_8446%% ssl;
        server_name  localhost;

        ssl_certificate         server.pem;
        ssl_certificate_key     server.key;
        ssl_verify_client       on;
        ssl_client_certificate  ca.pem;

        location / {
            return 200 "client=\$ssl_client_s_dn";
        }
    }
}

EOF

fake_server($t, 7501, 'silent');
fake_server($t, 7502, 'close_first');

my $redis = redis_start($t, 6379, requirepass => 'secret', extra =>
	"tls-port $redis_tls\ntls-cert-file $d/server.pem\n"
	. "tls-key-file $d/server.key\ntls-ca-cert-file $d/ca.pem\n"
	. "tls-auth-clients no\n");

$t->run();

###############################################################################

my @probes = qw/ https_ok https_ip expired expired_off wrongname
	wrongname_off untrusted client_ok client_none plaintext stall
	closer redis_tls redis_pass redis_plain /;

my $s = wait_for(20, sub {
	my $s = scrape_fast($t);
	(grep { probe_checks_total($s, $_) < 3 } @probes) ? 0 : $s;
}, 0.1);
ok($s, 'three results of every probe');

sub only {
	my ($probe, $result, $name) = @_;
	my $c = probe_checks($s, $probe);

	ok($c->{$result} >= 3 && $c->{$result} == probe_checks_total($s, $probe),
		"$probe: $result" . ($name ? ", $name" : ''))
		or diag(explain $c);
}

only('https_ok', 'ok', 'verified by name, SNI seen by the server');
only('https_ip', 'ok', 'verified by address, no SNI');
only('expired', 'tls', 'an expired certificate');
only('expired_off', 'ok', 'ssl_verify=off');
only('wrongname', 'tls', 'a certificate of another name');
only('wrongname_off', 'ok', 'ssl_verify=off');
only('untrusted', 'tls', 'a certificate of another CA');
only('client_ok', 'ok', 'a client certificate');
only('client_none', 'bad_status', 'none where one is required');
only('plaintext', 'tls', 'plain HTTP on the port');
only('stall', 'timeout', 'a server that never answers the hello');
only('closer', 'tls', 'a server that closes before the hello');
only('redis_tls', 'ok', 'Redis over TLS');
only('redis_pass', 'auth', 'a wrong password over TLS');
only('redis_plain', 'timeout',
	'rediss:// to the plain port, which awaits a line end');

is(probe_up($s, 'https_ok'), 1, 'https probe up');
is(probe_up($s, 'expired'), 0, 'expired probe down');
ok(probe_gauge($s, 'railgun_redis_memory_used_bytes', 'redis_tls') > 0,
	'INFO read over TLS');

# the handshake is in the duration: one observation per check

is(sample($s, 'railgun_probe_duration_seconds_count',
	{ probe => 'stall' }), probe_checks_total($s, 'stall'),
	'every check of the stalled target observed');

# reasons in the transition lines

sub reason {
	my ($probe, $re, $name) = @_;
	my @l = transition_lines($t, $probe);
	ok((grep { /is down after 1 failed checks, last: tls \($re\)/ } @l),
		"$probe: reason $name") or diag(join "\n", @l);
}

reason('expired', 'certificate has expired', 'expired');
reason('wrongname', 'certificate does not match ssl_name', 'name');
reason('untrusted', 'unable to (?:get local issuer|verify the first) '
	. 'certificate', 'issuer');
reason('plaintext', 'handshake failed', 'handshake');

# OpenSSL's reason of a failed handshake at info, not an error per check

my $log = $t->read_file('error.log');
ok($log =~ /\[info\].*SSL_do_handshake\(\) failed.*wrong version number/
	&& $log !~ /\[error\].*SSL_do_handshake/,
	'handshake failures logged at info');

# sessions: the later checks of https_ok resume the first one's session

my @reuse = map { /"localhost" (\S+)/ ? $1 : () }
	grep { /^\Q@{[port(8443)]}\E "localhost"/ } split /\n/,
	$t->read_file('tls.log');
ok(@reuse >= 3, 'https_ok checks logged by the server') or diag(scalar @reuse);
ok((grep { $_ eq 'r' } @reuse) >= @reuse - 1,
	'sessions reused after the first check')
	or diag(join ' ', @reuse);

# a checked https upstream: the dead peer is down, the live one serves

my $live = '127.0.0.1:' . port(8443);
my $gone = "127.0.0.1:$dead";

ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	my $l = sample($s, 'railgun_upstream_peer_up',
		{ upstream => 'tls_up', peer => $live });
	my $g = sample($s, 'railgun_upstream_peer_up',
		{ upstream => 'tls_up', peer => $gone });
	defined $l && defined $g && $l == 1 && $g == 0;
}, 0.1), 'checked over TLS: the live peer up, the dead one down');

# type=tcp ssl: a connect and a handshake; the plain port fails it

ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	my $l = sample($s, 'railgun_upstream_peer_up',
		{ upstream => 'handshake', peer => $live });
	my $plain = '127.0.0.1:' . port(8080);
	my $ok = sample($s, 'railgun_probe_checks_total',
		{ probe => 'handshake', target => $live, result => 'ok' });
	my $tls = sample($s, 'railgun_probe_checks_total',
		{ probe => 'handshake', target => $plain, result => 'tls' });
	defined $l && $l == 1 && $ok >= 2 && $tls >= 2
		&& sample($s, 'railgun_upstream_peer_up',
			{ upstream => 'handshake', peer => $plain }) == 0;
}, 0.1), 'a handshake check: the TLS peer up, the plain one down (tls)');

my $ok = 0;
for (1 .. 10) {
	my $r = http_get('/up/');
	$ok++ if http_status($r) == 200 && http_body($r) eq 'sni=[]';
}
is($ok, 10, 'every request through the upstream served');

my @ups = $t->read_file('access.log') =~ m!"GET /up/ HTTP/1.0" \d+ .* "([^"]*)" "[^"]*"$!mg;
is(scalar(grep { $_ eq $live } @ups), 10, 'all by the live peer')
	or diag(join ' ', @ups);

# a reload: new contexts, the probes go on, the old workers free their
# sessions

my $before = probe_checks($s, 'https_ok')->{ok};
ok($t->reload(), 'reloaded');
ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	my $c = probe_checks($s, 'https_ok');
	$c->{ok} >= $before + 3 && $c->{ok} == probe_checks_total($s, 'https_ok');
}, 0.1), 'https_ok checked after the reload, every check ok');

###############################################################################

# mistakes, refused with file and line

my $head = "%%TEST_GLOBALS%%\nevents {\n}\nhttp {\n";

$t->rejected($head . "railgun_probe a https://127.0.0.1:1/ "
	. "ssl_trusted_certificate=$d/missing.pem;\n}\n",
	'missing.pem', qr/ssl_trusted_certificate=".*missing\.pem" cannot be opened/,
	'a missing file');
$t->rejected($head . "railgun_probe b https://127.0.0.1:1/;\n}\n",
	'railgun_probe b', qr/ssl_verify=on needs ssl_trusted_certificate=/,
	'verify without a trusted certificate');
$t->rejected($head . "railgun_probe c http://127.0.0.1:1/ "
	. "ssl_verify=off;\n}\n",
	'railgun_probe c', qr/"ssl_verify=off" of probe "c" needs TLS/,
	'a TLS parameter on a plain URL');
$t->rejected($head . "railgun_probe e rediss://127.0.0.1:1 ssl_verify=off "
	. "ssl_certificate_key=$d/client.key;\n}\n",
	'railgun_probe e', qr/ssl_certificate_key= without ssl_certificate=/,
	'a key without a certificate');
$t->rejected($head . "upstream u {\nserver 127.0.0.1:1;\n"
	. "railgun_check ssl ssl_verify=on;\n}\n}\n",
	'railgun_check', qr/ssl_verify=on needs ssl_trusted_certificate=/,
	'a check verifying without a trusted certificate');
$t->rejected($head . "railgun_probe f https://127.0.0.1:1/ ssl_verify=off "
	. "ssl_certificate=$d/ca.pem ssl_certificate_key=$d/client.key;\n}\n",
	'railgun_probe f', qr/probe "f": TLS setup failed/,
	'a key of another certificate');
$t->rejected($head . "railgun_probe g https://127.0.0.1:1/ ssl_verify=off "
	. "ssl_name=localhost:8443;\n}\n",
	'railgun_probe g', qr/probe "g": ssl name "localhost:8443" is neither/,
	'an ssl name with a port');

# an IPv6 address is a name to match, not a mistake

my ($rc, $out) = $t->nginx_t($head . "railgun_probe h https://[::1]:1/ "
	. "ssl_verify=off;\nrailgun_probe i https://127.0.0.1:1/ ssl_verify=off "
	. "ssl_name=::1;\n}\n");
is($rc, 0, 'IPv6 ssl names accepted') or diag($out);

###############################################################################
