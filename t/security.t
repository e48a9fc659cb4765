#!/usr/bin/perl

# Security of what the module serves and logs:
#   - the metrics and gate locations honour allow/deny (403, and a denied
#     scrape gets no metrics) and auth_basic (401 without credentials, 200
#     with them; the htpasswd made with openssl passwd -apr1);
#   - nothing a client sends adds a line, a family or a label to the
#     exposition: hostile URIs (newlines, quotes, backslashes, braces, fake
#     exposition lines, bytes that are not UTF-8) under railgun_path $uri,
#     hostile Host and other headers, unknown methods; the scrape stays
#     valid (promtool and the harness' parser), keeps its families, and each
#     hostile value is exactly one escaped label value of as many series as
#     a plain path gets;
#   - Redis passwords (requirepass and an ACL user, right and wrong, and a
#     Redis that is down) never appear in the scrape, in the gate's JSON, in
#     error.log, nor in a debug-level log (Debian's nginx is built
#     --with-debug).

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::Probe;

use MIME::Base64 qw/ encode_base64 /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon($Test::Railgun::Probe::REDIS)
	->has_daemon('openssl')->has_daemon('promtool')->plan(55);

my $d = $t->testdir();

my %SECRET = (
	pw => 's3cr3t-PW',
	acl => 'Acl-s3cr3t-9',
	pw_bad => 'Wr0ng-PW-77',
	acl_bad => 'Bad-Acl-55',
	down => 'D0wn-PW-33',
);

# the metrics password, hashed by openssl
my $hash = `openssl passwd -apr1 'pr0m-pass'`;
chomp $hash;
$t->write_file('htpasswd', "prometheus:$hash\n");
chmod 0644, "$d/htpasswd";

my $P = 'interval=300ms timeout=200ms rise=1 fall=1';

my $conf = <<'EOF';

%%TEST_GLOBALS%%
error_log %%DIR%%/debug.log debug;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe pw      redis://:s3cr3t-PW@127.0.0.1:%%PORT_8090%% %%P%%;
    railgun_probe acl     redis://probe:Acl-s3cr3t-9@127.0.0.1:%%PORT_8090%% %%P%%;
    railgun_probe pw_bad  redis://:Wr0ng-PW-77@127.0.0.1:%%PORT_8090%% %%P%%;
    railgun_probe acl_bad redis://probe:Bad-Acl-55@127.0.0.1:%%PORT_8090%% %%P%%;
    railgun_probe down    redis://:D0wn-PW-33@127.0.0.1:%%PORT_8091%% %%P%%;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /metrics/allowed {
            railgun_metrics;
            railgun off;
            allow 127.0.0.1;
            deny all;
        }

        location = /metrics/denied {
            railgun_metrics;
            railgun off;
            deny all;
        }

        location = /metrics/other-net {
            railgun_metrics;
            railgun off;
            allow 10.0.0.0/8;
            deny all;
        }

        location = /metrics/auth {
            railgun_metrics;
            railgun off;
            auth_basic "metrics";
            auth_basic_user_file %%DIR%%/htpasswd;
        }

        location = /ready {
            railgun_gate pw acl pw_bad acl_bad down;
            railgun off;
        }

        location = /ready/denied {
            railgun_gate pw acl;
            railgun off;
            deny all;
        }

        location = /ready/auth {
            railgun_gate pw acl;
            railgun off;
            auth_basic "gate";
            auth_basic_user_file %%DIR%%/htpasswd;
        }

        location / {
            railgun_path $uri;
            return 200 "ok\n";
        }
    }
}

EOF

$conf =~ s/%%DIR%%/$d/g;
$conf =~ s/%%P%%/$P/g;
$t->write_file_expand('nginx.conf', $conf);

my $redis = redis_start($t, 8090, requirepass => $SECRET{pw},
	users => [ "probe on >$SECRET{acl} ~* +\@all" ]);
my $down = $t->refused_port(8091);

$t->run();

###############################################################################

# allow and deny

sub get {
	my ($uri, @headers) = @_;
	return http_get($uri, headers => \@headers);
}

my $auth = 'Authorization: Basic ' . encode_base64('prometheus:pr0m-pass', '');
my $wrong = 'Authorization: Basic ' . encode_base64('prometheus:nope', '');

my $r = get('/metrics/denied');
is(http_status($r), 403, 'deny all: 403');
unlike($r, qr/railgun_/, 'deny all: no metrics in the answer');

$r = get('/metrics/other-net');
is(http_status($r), 403, 'an address not allowed: 403');
unlike($r, qr/railgun_/, 'an address not allowed: no metrics');

my $m = $t->metrics(path => '/metrics/allowed');
is($m->{status}, 200, 'an allowed address: 200');
ok(@{$m->{series}} > 0, 'an allowed address: the metrics');

# auth_basic

$r = get('/metrics/auth');
is(http_status($r), 401, 'auth_basic: 401 without credentials');
unlike($r, qr/railgun_/, 'auth_basic: no metrics without credentials');
like(http_header($r, 'WWW-Authenticate') // '', qr/Basic realm="metrics"/,
	'auth_basic: the challenge');

$r = get('/metrics/auth', $wrong);
is(http_status($r), 401, 'auth_basic: 401 with a wrong password');
unlike($r, qr/railgun_/, 'auth_basic: no metrics with a wrong password');

$m = $t->metrics(path => '/metrics/auth', headers => [ $auth ]);
is($m->{status}, 200, 'auth_basic: 200 with the credentials');
ok(@{$m->{series}} > 0, 'auth_basic: the metrics with the credentials');

# the gate

$r = get('/ready/denied');
is(http_status($r), 403, 'gate, deny all: 403');
unlike($r, qr/"status"|"pw"/, 'gate, deny all: no state in the answer');

$r = get('/ready/auth');
is(http_status($r), 401, 'gate, auth_basic: 401 without credentials');
unlike($r, qr/"status"|"pw"/, 'gate, auth_basic: no state without them');

ok(wait_for(10, sub {
	my $s = scrape_fast($t);
	(probe_up($s, 'pw') // 0) == 1 && (probe_up($s, 'acl') // 0) == 1
		&& !grep { probe_checks_total($s, $_) < 3 }
			qw/ pw acl pw_bad acl_bad down /;
}), 'the probes with the right passwords up, every probe checked');

my $pc = $t->metrics();
ok(probe_checks($pc, "pw_bad")->{auth} && probe_checks($pc, "acl_bad")->{auth}
	&& probe_checks($pc, "down")->{refused},
	"wrong passwords fail with auth, the stopped Redis with refused");

$r = get('/ready/auth', $auth);
is(http_status($r), 200, 'gate, auth_basic: 200 with the credentials');
like(http_body($r), qr/^\{"status":"ready","pw":true,"acl":true\}/,
	'gate, auth_basic: the answer');

###############################################################################

# hostile input: a plain path first, for the families and the series a path
# gets

is(http_status(get('/plain')), 200, 'a plain request');

my $before = $t->metrics();
my @plain = grep { ($_->{labels}{path} // '') eq '/plain' }
	@{$before->{series}};

my %label_sets = map { $_->{name} => join(',', sort keys %{$_->{labels}}) }
	@plain;

# raw requests: URI => the $uri nginx decodes it to
my @hostile = (
	[ '/nl%0Arailgun_fake_total%201', "/nl\nrailgun_fake_total 1" ],
	[ '/crlf%0D%0A%23%20TYPE%20railgun_fake%20counter',
		"/crlf\r\n# TYPE railgun_fake counter" ],
	[ '/q%22%7D%20railgun_fake%7Ba=%22b', "/q\"} railgun_fake{a=\"b" ],
	[ '/bs%5C%5C%5C%22%5Cn', "/bs\\\\\\\"\\n" ],
	[ '/lbl%22,evil=%22x', "/lbl\",evil=\"x" ],
	[ '/eof%0A%23%20EOF%0A', "/eof\n# EOF\n" ],
	[ '/tab%09sp%20ace', "/tab\tsp ace" ],
);

for my $h (@hostile) {
	my $r = http("GET $h->[0] HTTP/1.0\r\nHost: localhost\r\n\r\n");
	is(http_status($r), 200, "hostile URI $h->[0]: 200");
}

# not UTF-8, a hostile Host, headers with quotes, unknown methods; these are
# counted under whatever path nginx gives them, or rejected by nginx (400)
http("GET /bad%FF%FEutf8%C3 HTTP/1.0\r\nHost: localhost\r\n\r\n");
http("GET /host HTTP/1.0\r\nHost: evil\"},x=\"y\r\n\r\n");
http("GET /host2 HTTP/1.1\r\nHost: a\\\"b\r\nConnection: close\r\n\r\n");
http("GET /hdr HTTP/1.0\r\nHost: localhost\r\nX-Evil: \"}\nrailgun_x 1\r\n"
	. "User-Agent: a\"b\\c\r\nReferer: x\r\n y\r\n\r\n");
http("XMETHOD /m HTTP/1.0\r\nHost: localhost\r\n\r\n");
http("GE\"T /m2 HTTP/1.0\r\nHost: localhost\r\n\r\n");
http("GET /m3 HTTP/1.0\r\nHost: localhost\r\nX-HTTP-Method-Override: "
	. "EVIL\"}\r\n\r\n");
http("G\nET /m4 HTTP/1.0\r\n\r\n");

my $after = $t->metrics();

is_deeply([ sort @{$after->{order}} ], [ sort @{$before->{order}} ],
	'no family added');
ok(!grep({ ($_->{family} // '') !~ /^railgun_/ } @{$after->{series}}),
	'every sample in a railgun_ family');

# each hostile URI: one escaped label value, with the plain path's series
# and label names, and nothing else

my $lines = 0;

for my $h (@hostile) {
	my @s = grep { ($_->{labels}{path} // '') eq $h->[1] }
		@{$after->{series}};
	my %sets = map { $_->{name} => join(',', sort keys %{$_->{labels}}) }
		@s;

	ok(@s == @plain && eq_hash(\%sets, \%label_sets),
		"hostile URI $h->[0]: " . scalar(@s) . ' series, as many as '
		. scalar(@plain) . ' of a plain path, same labels');
	$lines += @s;
}

# everything else that is new is a series of a path nginx gave a request
# (only the paths of the requests above), or a status or method of a known
# path, never a label name or a family

my %known = map { $_->{key} => 1 } @{$before->{series}};
my %hpaths = map { $_->[1] => 1 } @hostile;
my @new = grep { !$known{$_->{key}} } @{$after->{series}};
my @odd = grep {
	my $p = $_->{labels}{path};
	!(defined $p && $hpaths{$p})
		&& !(defined $p && $p =~ m!^(?:/bad.*utf8.*|/host2?|/hdr|/m\d?|)$!s)
} @new;

ok(!@odd, 'the other new series belong to the other requests\' paths')
	or diag(join "\n", map { $_->{key} } @odd);

my %names = map { $_ => 1 } map { keys %{$_->{labels}} } @{$before->{series}};
ok(!grep({ !$names{$_} } map { keys %{$_->{labels}} } @{$after->{series}}),
	'no label name added');

my ($bad) = grep { ($_->{labels}{path} // '') =~ /^\/bad/ }
	series($after, 'railgun_http_requests_total');
ok($bad && $bad->{labels}{path} =~ /\x{FFFD}|\xEF\xBF\xBD/,
	'bytes that are not UTF-8 replaced by U+FFFD')
	or diag($bad ? $bad->{key} : 'no series');

is(sample_sum($after, 'railgun_http_requests_total',
	{ path => '/m', method => 'OTHER' }), 1, 'an unknown method is OTHER');

# the raw text: a line per series and per HELP/TYPE, nothing injected

my @raw = split /\n/, $after->{body};
my $comments = grep { /^#/ } @raw;
is(scalar(@raw), $comments + scalar(@{$after->{series}}),
	'one line per sample and per HELP/TYPE, no other line');
ok(!grep({ /^railgun_fake|^railgun_x / } @raw),
	'no injected sample line');
is(scalar(grep { /^# (?:TYPE|HELP) railgun_fake/ } @raw), 0,
	'no injected HELP/TYPE');

###############################################################################

# secrets: flap Redis so that every failure path logs (refused, then auth
# errors again when it is back), then look everywhere

redis_stop($redis);
ok(wait_for(10, sub { (probe_up(scrape_fast($t), 'pw') // 1) == 0 }),
	'Redis stopped: probe down');

$redis = redis_start($t, 8090, requirepass => $SECRET{pw},
	users => [ "probe on >$SECRET{acl} ~* +\@all" ]);
ok(wait_for(10, sub { (probe_up(scrape_fast($t), 'pw') // 0) == 1 }),
	'Redis back: probe up');

my @texts = (
	[ 'scrape', $t->metrics()->{body} ],
	[ 'scrape (OpenMetrics)',
		$t->metrics(accept => 'application/openmetrics-text')->{body} ],
	[ 'gate JSON', http_body(get('/ready')) ],
);

$t->stop();

push @texts, map { [ $_, $t->read_file($_) ] }
	qw/ error.log debug.log stderr /;

my $debug = $t->read_file('debug.log');
like($debug, qr/\[debug\]/, 'debug.log has debug lines');
like($debug, qr/railgun/, 'and lines of the module');

for my $x (@texts) {
	my ($what, $text) = @$x;
	my @found = grep { index($text, $SECRET{$_}) >= 0 } sort keys %SECRET;
	ok(!@found, "no password in $what (" . length($text) . ' bytes)')
		or diag("found: @SECRET{@found}");
}

###############################################################################
