#!/usr/bin/perl

# Tests for railgun_exemplar: configuration errors; exemplars only in
# OpenMetrics and only for the scopes that have the directive; the exemplar
# of a bucket is the latest request that landed there, checked against the
# access log's $request_id, $request_time and $upstream_response_time and
# the X-Request-Id the client saw; an unset or empty variable gives none;
# hostile values come out escaped and bounded; a WebSocket session's
# exemplar; a worker killed with SIGKILL in the middle of a load leaves
# every record writable.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use IO::Socket::INET;
use POSIX qw/ :sys_wait_h /;
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(47)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 2;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    log_format ex '$request_id $request_time "$upstream_response_time" $uri';

    railgun_buckets 0.05 0.25 1;

    large_client_header_buffers 4 32k;

    upstream backend {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        access_log %%TESTDIR%%/ex.log ex;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /ex/ {
            railgun_exemplar $request_id;
            proxy_pass http://backend/;
            add_header X-Request-Id $request_id always;
        }

        location /plain/ {
            proxy_pass http://backend/;
        }

        location /trace/ {
            railgun_exemplar $http_x_trace;
            return 200 "ok\n";
        }

        location /many/ {
            railgun_path /many/$arg_p;
            railgun_exemplar $http_x_trace;
            return 200 "ok\n";
        }

        location /hostile/ {
            railgun_exemplar $hostile;
            set $hostile "q\"b\\s\nl";
            return 200 "ok\n";
        }

        location /ws {
            railgun_exemplar $request_id;
            proxy_pass http://127.0.0.1:%%PORT_8083%%;
            proxy_http_version  1.1;
            proxy_set_header    Upgrade $http_upgrade;
            proxy_set_header    Connection "upgrade";
            add_header X-Request-Id $request_id always;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8082%%;
        server_name  scoped;

        railgun_exemplar $request_id;

        location / {
            return 200 "ok\n";
        }

        location /off/ {
            railgun_exemplar off;
            return 200 "ok\n";
        }
    }
}

EOF

my $dir = $t->testdir();
my $conf = $t->read_file('nginx.conf');
$conf =~ s/%%TESTDIR%%/$dir/g;
$t->write_file('nginx.conf', $conf);

$t->http_backend(8081);
ws_backend($t, 8083);
$t->run();

###############################################################################

my $OM = 'application/openmetrics-text; version=1.0.0';
my %EX = (server => 'localhost', path => '/ex/', method => 'GET');
my $DUR = 'railgun_http_request_duration_seconds_bucket';
my $UP = 'railgun_upstream_response_duration_seconds_bucket';
my $UPH = 'railgun_upstream_header_duration_seconds_bucket';

# configuration errors, with file and line

sub bad {
	my ($directive, $re, $name) = @_;

	$t->rejected(<<"EOF", '# BAD', $re, $name);
%%TEST_GLOBALS%%
events {
}
http {
    server {
        listen 127.0.0.1:%%PORT_8090%%;
        location / {
            $directive  # BAD
        }
    }
}
EOF
}

bad('railgun_exemplar request_id;', qr/"request_id" is not a variable/,
	'not a variable');
bad('railgun_exemplar $nosuch_var;',
	qr/unknown "\$nosuch_var" variable in railgun_exemplar/,
	'unknown variable');
bad('railgun_exemplar $1;', qr/"\$1" cannot name an exemplar's label/,
	'a capture');
bad('railgun_exemplar $__x;', qr/"\$__x" cannot name/, 'reserved name');
bad('railgun_exemplar $request_id; railgun_exemplar $request_id;',
	qr/"railgun_exemplar" directive is duplicate/, 'duplicate');
bad('railgun_exemplar $request_id $uri;',
	qr/invalid number of arguments in "railgun_exemplar"/,
	'two arguments');
bad('railgun_exemplar ' . ('$' . 'v' x 65) . ';',
	qr/cannot name an exemplar's label/, 'name too long');

# a variable that "set" declares further down, and a prefix variable

my ($rc, $out) = $t->nginx_t(<<'EOF');
%%TEST_GLOBALS%%
events {
}
http {
    railgun_exemplar $cookie_trace;
    server {
        listen 127.0.0.1:%%PORT_8090%%;
        location / {
            railgun_exemplar $later;
        }
        location /x/ {
            set $later "x";
        }
    }
}
EOF
is($rc, 0, 'a variable set further down, and a prefix one, accepted')
	or diag($out);

###############################################################################

# requests in known buckets: two each, the second is the one to see

my %log;

sub access_log {
	%log = ();
	for (split /\n/, $t->read_file('ex.log')) {
		my ($id, $rt, $urt, $uri) = /^(\S+) (\S+) "([^"]*)" (\S+)$/
			or next;
		$log{$id} = { request_time => $rt, upstream => $urt,
			uri => $uri };
	}
}

my (%latest, %window);

for my $ms (0, 0, 120, 120, 400, 400, 1100) {
	my $start = time();
	my ($r, undef, $b) = timed_get("/ex/delay/$ms");
	my $end = time();
	my $id = http_header($r, 'X-Request-Id') // '';
	my $bucket = $ms == 0 ? '0.05' : $ms == 120 ? '0.25'
		: $ms == 400 ? '1.0' : '+Inf';
	$latest{$bucket} = $id;
	$window{$id} = [ $start, $end, @$b ];
}

# requests elsewhere: no exemplar for them

http_get('/plain/delay/0') for 1 .. 2;
http_get('/trace/a');
http_get('/trace/b', headers => [ 'X-Trace: ' ]);

access_log();

my $m = $t->metrics(accept => $OM);

sub exemplar_of {
	my ($scrape, $name, $labels) = @_;
	my @s = series($scrape, $name, $labels);
	return undef unless @s == 1;
	return $s[0]{exemplar};
}

my ($ok, $why) = (0, '');

for my $le ('0.05', '0.25', '1.0', '+Inf') {
	my $e = exemplar_of($m, $DUR, { %EX, le => $le });
	my $id = $latest{$le};
	my $l = $log{$id};

	if (!$e || !$l) {
		$why .= " le=$le: " . ($e ? 'not in the log' : 'no exemplar');
		next;
	}

	my $got = $e->{labels}{request_id} // '';
	my $w = $window{$id};

	if ($got ne $id) {
		$why .= " le=$le: $got, not $id";
	} elsif ($e->{value} < $w->[2] - $Test::Railgun::TIMING_SLACK
		|| $e->{value} > $w->[3] + $Test::Railgun::TIMING_SLACK)
	{
		$why .= " le=$le: $e->{value} s outside [$w->[2], $w->[3]]";
	} elsif (abs($e->{value} - $l->{request_time}) > 0.02) {
		$why .= " le=$le: $e->{value} s, logged $l->{request_time}";
	} elsif ($e->{timestamp} < int($w->[0]) || $e->{timestamp} > $w->[1] + 1) {
		$why .= " le=$le: time $e->{timestamp} outside the request";
	} else {
		$ok++;
	}
}

is($ok, 4, 'each bucket: the latest request, its duration and time')
	or diag($why);

is(join(',', sort keys %{(exemplar_of($m, $DUR, { %EX, le => '0.05' })
	|| {})->{labels} || {}}), 'request_id',
	'label named after the variable');

# the upstream families: the attempt's own time, as the log has it

($ok, $why) = (0, '');

for my $le ('0.05', '0.25', '1.0', '+Inf') {
	for my $fam ($UP, $UPH) {
		my $e = exemplar_of($m, $fam,
			{ upstream => 'backend', le => $le });
		my $id = $latest{$le};

		if (!$e) {
			$why .= " $fam le=$le: none";
		} elsif (($e->{labels}{request_id} // '') ne $id) {
			$why .= " $fam le=$le: not $id";
		} elsif ($fam eq $UP && abs($e->{value} - $log{$id}{upstream})
			> 0.0000001)
		{
			$why .= " $fam le=$le: $e->{value} s, logged "
				. $log{$id}{upstream};
		} else {
			$ok++;
		}
	}
}

is($ok, 8, 'upstream response and header: the latest attempt')
	or diag($why);

# only in the scopes with the directive

is(scalar(grep { $_->{exemplar} } series($m, $DUR,
	{ path => '/plain/' })), 0, 'no exemplar where the directive is not');
is(scalar(grep { $_->{exemplar} } series($m, $DUR,
	{ path => '/trace/' })), 0, 'unset and empty variable: none');

my @with = grep { $_->{exemplar} } @{$m->{series}};
is(scalar(grep { $_->{name} !~ /_bucket$/ } @with), 0,
	'exemplars on bucket lines only');

# never in the 0.0.4 text, nor in JSON

my $text = $t->metrics();
unlike($text->{body}, qr/ # \{/, 'none in the 0.0.4 text');

my $json = http_get('/metrics?format=json');
unlike($json, qr/request_id|exemplar/i, 'none in JSON');

###############################################################################

# the scope of a server, and "off" in a location under it

http_get('/a', port => 8082);
http_get('/off/a', port => 8082);

$m = $t->metrics(accept => $OM);

ok(exemplar_of($m, $DUR, { server => 'scoped', path => '/', le => '0.05' }),
	'server level: exemplar');
ok(!exemplar_of($m, $DUR,
	{ server => 'scoped', path => '/off/', le => '0.05' }),
	'off in a location: none');

# the latest replaces: a new request in the same bucket

my $r = http_get('/ex/delay/0');
my $id = http_header($r, 'X-Request-Id');
$m = $t->metrics(accept => $OM);
is((exemplar_of($m, $DUR, { %EX, le => '0.05' }) || {})->{labels}{request_id},
	$id, 'a newer request replaces the exemplar');
is((exemplar_of($m, $DUR, { %EX, le => '0.25' }) || {})->{labels}{request_id},
	$latest{'0.25'}, 'the other buckets keep theirs');

###############################################################################

# hostile values

sub trace {
	my ($value, $name) = @_;
	my $r = http_get("/trace/$name", headers => [ "X-Trace: $value" ]);
	my $m = $t->metrics(accept => $OM);
	my $e = exemplar_of($m, $DUR, { server => 'localhost',
		path => '/trace/', method => 'GET', le => '0.05' });
	return ($e ? $e->{labels}{http_x_trace} : undef, $m);
}

my ($v, $sm) = trace('plain-id', 'p');
is($v, 'plain-id', 'header variable as exemplar');

($v, $sm) = trace('q"b\\s', 'q');
is($v, 'q"b\\s', 'quote and backslash: escaped, read back');
like($sm->{body}, qr/ # \{http_x_trace="q\\"b\\\\s"\} /,
	'quote and backslash escaped in the line');

($v, $sm) = trace("\xff\xfeok", 'u');
is($v, "\xef\xbf\xbd\xef\xbf\xbdok", 'invalid UTF-8 replaced');

($v, $sm) = trace('x' x 10240, 'big');
is($v, 'x' x (128 - length('http_x_trace')), '10 KB cut to the bound');

# a character across the cut is left out whole

($v, $sm) = trace("\xe2\x82\xac" x 100, 'euro');
my $n = int((128 - length('http_x_trace')) / 3);
is($v, "\xe2\x82\xac" x $n, 'cut at a character boundary');

my $chars = $v;
utf8::decode($chars);
ok(length($chars) + length('http_x_trace') <= 128, '128 characters at most');

# a newline, from a variable set in the configuration

http_get('/hostile/x');
$m = $t->metrics(accept => $OM);
my $e = exemplar_of($m, $DUR, { path => '/hostile/', le => '0.05' });
is($e ? $e->{labels}{hostile} : undef, "q\"b\\s\nl",
	'newline, quote, backslash from set');
like($m->{body}, qr/ # \{hostile="q\\"b\\\\s\\nl"\} [\d.]+ \d+\.\d{3}\n/,
	'one line, escaped');

###############################################################################

# a body of many buffers, every exemplar as long as it can be once escaped:
# each line whole, whatever buffer it falls in

my $bad = "\xff" x 200;
http_get("/many/?p=$_", headers => [ "X-Trace: $bad" ]) for 1 .. 300;

$m = $t->metrics(accept => $OM);
my @many = grep { $_->{exemplar} } series($m, $DUR, { method => 'GET' });
@many = grep { $_->{labels}{path} =~ m!^/many/\d+$! } @many;
is(scalar @many, 300, 'many series, each with its exemplar');
ok(length($m->{body}) > 3 * 64 * 1024, 'over three buffers')
	or diag(length($m->{body}));
is(scalar(grep { $_->{exemplar}{labels}{http_x_trace}
	ne "\xef\xbf\xbd" x (128 - length('http_x_trace')) } @many), 0,
	'each value cut and replaced');

###############################################################################

# a WebSocket session: its duration's exemplar, taken as it ends

my $ws = ws_connect(path => '/ws');
is($ws->status, 101, 'session open');
my $wsid = $ws->header('X-Request-Id');
$ws->text('hi');
$ws->read_message();
$ws->close_ws();

my $wm = wait_metrics($t, sub {
	grep { $_->{exemplar} } series($_[0],
		'railgun_websocket_connection_duration_seconds_bucket',
		{ path => '/ws' })
}, scrape => { accept => $OM });

my @ws = grep { $_->{exemplar} } series($wm,
	'railgun_websocket_connection_duration_seconds_bucket',
	{ path => '/ws' });
is(scalar @ws, 1, 'session: one exemplar');
is($ws[0] ? $ws[0]{exemplar}{labels}{request_id} : undef, $wsid,
	'session: its request id');

###############################################################################

# a worker killed in the middle of a load: every record still written

my @workers = $t->worker_pids();
is(scalar @workers, 2, 'two workers');

my @clients;

for my $c (1 .. 4) {
	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		my $end = time() + 1.5;
		while (time() < $end) {
			my $s = IO::Socket::INET->new(
				PeerAddr => '127.0.0.1:' . port(8080)) or next;
			print $s "GET /ex/delay/0 HTTP/1.0\r\n\r\n";
			1 while <$s>;
		}
		POSIX::_exit(0);
	}

	push @clients, $pid;
}

sleep 0.5;
my $victim = $workers[0];
kill 'KILL', $victim;

waitpid($_, 0) for @clients;

my $deadline = time() + 10;
my @now;
while (time() < $deadline) {
	@now = $t->worker_pids();
	last if @now == 2 && !grep { $_ == $victim } @now;
	sleep 0.02;
}
ok(@now == 2 && !grep({ $_ == $victim } @now), 'worker respawned');

# each bucket takes a new request's exemplar, whichever worker serves it

my %after;
for my $ms (0, 120, 400) {
	for (1 .. 2) {
		my $r = http_get("/ex/delay/$ms");
		$after{$ms} = http_header($r, 'X-Request-Id');
	}
}

$m = $t->metrics(accept => $OM);

$ok = 0;
for (['0.05', 0], ['0.25', 120], ['1.0', 400]) {
	my ($le, $ms) = @$_;
	my $e = exemplar_of($m, $DUR, { %EX, le => $le });
	$ok++ if $e && $e->{labels}{request_id} eq $after{$ms};
}
is($ok, 3, 'after the kill: every bucket has the latest request');

###############################################################################

# the killed worker's exit is the one alert: checked, then taken out

$t->stop();

my $log = $t->read_file('error.log');
my @alerts = $log =~ /^.*\[(?:alert|emerg)\].*$/mg;

is(scalar @alerts, 1, 'one alert');
like($alerts[0] // '', qr/worker process $victim exited on signal 9\b/,
	'the alert is the killed worker\'s exit');

if (@alerts == 1 && $alerts[0] =~ /worker process $victim exited on signal 9/)
{
	$t->write_file('error.log.orig', $log);
	$log =~ s/^.*worker process $victim exited on signal 9.*\n//m;
	$t->write_file('error.log', $log);
}

###############################################################################
