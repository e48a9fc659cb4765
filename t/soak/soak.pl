#!/usr/bin/perl

# The soak behind t/soak/run (make soak).  One nginx with the module and
# worker_processes 4 in front of: an upstream of two backends with
# railgun_check, a Redis probed by railgun_probe, a WebSocket echo backend.
# Three phases, SOAK_SECONDS in all:
#
#   warm-up  (10 % of the time, at least 10 s): wrk on /api/ (proxied) and
#            /static (return 200), WebSocket churn, and one worker SIGKILLed
#            halfway.  Requests in flight in the killed worker are lost by
#            design, so nothing of this phase is counted against the client.
#   chaos    (the bulk): the same load, nginx -s reload (HUP) every 3 s,
#            Redis stopped/started every 4 s, backend b2 every 5 s.  Counted:
#            the module's request counters must equal nginx's own access log
#            exactly, and lie between what wrk got answers for and what it
#            sent (a request written on a keepalive connection that an old
#            worker closes at that very moment is lost in transit, and wrk
#            reports it as a socket error); WebSocket sessions opened by the
#            clients must equal the module's count exactly.
#   quiet    (10 %, at least 5 s): the load without faults; the module's
#            request counters must equal what wrk sent, exactly.
#
# A scrape every second all along (kept in the work directory), with the fd
# count and RSS of every nginx process.  Checks at the end print PASS/FAIL.

use warnings;
use strict;

BEGIN { use FindBin; chdir("$FindBin::Bin/.."); }

use lib 'lib';

BEGIN { $ENV{RAILGUN_TEST_LEAVE} = 1 if $ENV{SOAK_KEEP}; }

use Test::Railgun;
use Test::Railgun::Gate qw/ backend redis /;
use Test::Railgun::WebSocket qw/ ws_connect ws_backend /;

use POSIX qw/ :sys_wait_h /;
use Time::HiRes qw/ sleep time /;

$| = 1;

my $TOTAL = $ENV{SOAK_SECONDS} || 300;
$TOTAL = 600 if $TOTAL > 600;

my $WARM = int($TOTAL * 0.1); $WARM = 10 if $WARM < 10;
my $QUIET = int($TOTAL * 0.1); $QUIET = 5 if $QUIET < 5;
my $CHAOS = $TOTAL - $WARM - $QUIET;
$CHAOS = 15 if $CHAOS < 15;

# stated bounds
my $ZONE_GROWTH = 64 * 1024;	# zone bytes used, after warm-up
my $FD_GROWTH = 32;		# fds of a worker, last 10 % vs warm-up
my $RSS_GROWTH = 16 * 1024;	# kB of a worker or the master, same

my $t = Test::Railgun->new();
my $d = $t->testdir();

print "soak: $TOTAL s (warm-up $WARM, chaos $CHAOS, quiet $QUIET), "
	. "work directory $d\n";

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

worker_processes 4;
worker_shutdown_timeout 60s;

events {
    worker_connections 4096;
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_probe cache redis://127.0.0.1:%%PORT_8090%%
                  interval=500ms timeout=300ms rise=1 fall=1;

    upstream api {
        railgun_check uri=/health interval=500ms timeout=300ms rise=2 fall=2;
        server 127.0.0.1:%%PORT_8081%%;
        server 127.0.0.1:%%PORT_8082%%;
        keepalive 16;
    }

    upstream ws_up {
        server 127.0.0.1:%%PORT_8083%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  soak;

        keepalive_requests 1000000;

        location /api/ {
            proxy_pass http://api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }

        location = /static {
            return 200 "ok\n";
        }

        location /ws {
            proxy_pass http://ws_up;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /ready {
            railgun_gate cache api;
            railgun off;
        }
    }
}

EOF

my $redis = redis($t, 8090);
my $b1 = backend($t, 8081, 'b1');
my $b2 = backend($t, 8082, 'b2');
ws_backend($t, 8083);

$t->run();

my $PORT = port(8080);
my $master = $t->master_pid();

mkdir "$d/scrapes";

$t->write_file('count.lua', <<'EOF');
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) sent = 0; recv = 0 end
function request() sent = sent + 1; return wrk.format() end
function response(status, headers, body) recv = recv + 1 end
-- wrk calls request() once in the first thread's state to verify the script
-- (script_verify_request), before any connection: that one is never sent
function done(summary, latency, requests)
  local s, r = -1, 0
  for _, th in ipairs(threads) do s = s + th:get("sent"); r = r + th:get("recv") end
  io.write(string.format("SOAK sent %d recv %d\n", s, r))
end
EOF

###############################################################################

my @FAIL;
my %fig;

sub check {
	my ($ok, $what) = @_;
	print(($ok ? 'PASS' : 'FAIL') . ": $what\n");
	push @FAIL, $what unless $ok;
	return $ok;
}

sub forked {
	my ($code) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0) {
		eval { $code->() };
		print STDERR "soak child: $@" if $@;
		POSIX::_exit(0);
	}
	return $pid;
}

sub stop_child {
	my ($pid) = @_;
	kill 'TERM', $pid;
	my $deadline = time() + 30;
	while (waitpid($pid, WNOHANG) == 0) {
		if (time() > $deadline) {
			kill 'KILL', $pid;
			waitpid($pid, 0);
			last;
		}
		sleep 0.05;
	}
}

sub slurp {
	my ($f) = @_;
	open my $fh, '<', $f or return '';
	local $/;
	my $s = <$fh>;
	return defined $s ? $s : '';
}

sub proc_status {
	my ($pid) = @_;
	my $st = slurp("/proc/$pid/status");
	my ($rss) = $st =~ /^VmRSS:\s+(\d+)/m;
	opendir(my $dh, "/proc/$pid/fd") or return;
	my $fds = grep { /^\d+$/ } readdir $dh;
	closedir $dh;
	return ($fds, $rss || 0);
}

# the scraper: one scrape a second, kept, with every nginx process' fds and
# RSS, until TERM

my $scraper = forked(sub {
	my $stop = 0;
	$SIG{TERM} = sub { $stop = 1 };
	open my $log, '>>', "$d/samples.log" or die;
	$log->autoflush(1);
	my $n = 0;
	my $next = time();

	while (!$stop) {
		$n++;
		my $start = time();
		my $r = http_get('/metrics', port => 8080, timeout => 10);
		my $took = time() - $start;
		open my $fh, '>', sprintf("$d/scrapes/%05d", $n) or die;
		print $fh $r;
		close $fh;

		my $m = (slurp("$d/nginx.pid") =~ /(\d+)/)[0] || 0;
		my @p = $m ? (Test::Railgun::children($m)) : ();
		my @ps;
		for my $p ($m, @p) {
			next unless $p;
			my ($fds, $rss) = proc_status($p);
			next unless defined $fds;
			push @ps, ($p == $m ? 'm' : 'w') . ":$p:$fds:$rss";
		}
		printf $log "%d %.3f %.3f %s\n", $n, $start, $took, "@ps";

		$next += 1;
		my $left = $next - time();
		sleep $left if $left > 0;
	}
});

# WebSocket churn: sessions of 5 echoed messages each, one after another,
# until TERM; the counts go to a file

sub churn {
	my ($name) = @_;

	return forked(sub {
		$SIG{PIPE} = "IGNORE";
		my $stop = 0;
		my %c = (opened => 0, failed => 0, messages => 0, echoed => 0);

		# a stop file, not a signal: a signal would interrupt a handshake
		# that nginx completes, and the session would look failed
		while (!-e "$d/ws-$name.stop") {
			my $ws = eval { ws_connect(port => 8080,
				path => "/ws/$name", timeout => 5) };

			if (!$ws || ($ws->status || 0) != 101) {
				$c{failed}++;
				if (open my $f, ">>", "$d/ws-$name.failures") {
					print $f time() . " " . ($ws ? "status " . ($ws->status // "none") : "error $@");
					close $f;
				}
				sleep 0.05;
				next;
			}

			$c{opened}++;

			for my $i (1 .. 5) {
				$ws->text("msg $i " . ('x' x (10 * $i))) or last;
				$c{messages}++;
				my $m = $ws->read_message(5) or last;
				$c{echoed}++;
			}

			$ws->close_ws(1000);
		}

		open my $fh, '>', "$d/ws-$name.counts" or die;
		print $fh join(' ', map { "$_=$c{$_}" } sort keys %c), "\n";
		close $fh;
	});
}

sub churn_stop {
	my ($name, $pid) = @_;
	open my $fh, ">", "$d/ws-$name.stop" or die;
	close $fh;
	waitpid($pid, 0);
}

sub ws_counts {
	my ($name) = @_;
	return { slurp("$d/ws-$name.counts") =~ /(\w+)=(\d+)/g };
}

# wrk on a location for $secs seconds, 1 thread, 8 connections

sub wrk {
	my ($name, $uri, $secs) = @_;

	return forked(sub {
		open STDOUT, '>', "$d/wrk-$name.out";
		open STDERR, '>&', \*STDOUT;
		exec('wrk', '-t1', '-c8', "-d${secs}s", '--timeout', '10s',
			'-s', "$d/count.lua", "http://127.0.0.1:$PORT$uri");
	});
}

sub wrk_result {
	my ($name) = @_;
	my $out = slurp("$d/wrk-$name.out");
	my %r;
	@r{qw/ sent recv /} = $out =~ /SOAK sent (\d+) recv (\d+)/;
	$r{errors} = 0;
	if ($out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/) {
		$r{errors} = $1 + $2 + $3 + $4;
		$r{socket} = "connect $1, read $2, write $3, timeout $4";
	}
	$r{non2xx} = $out =~ /Non-2xx or 3xx responses: (\d+)/ ? $1 : 0;
	$r{out} = $out;
	return \%r;
}

sub scrape {
	my $m = $t->metrics(port => 8080);
	return $m;
}

sub requests_of {
	my ($m, $path) = @_;
	return sample_sum($m, 'railgun_http_requests_total', { path => $path })
		|| 0;
}

sub ws_total {
	my ($m) = @_;
	return sample_sum($m, 'railgun_websocket_connections_opened_total') || 0;
}

sub access_counts {
	my $log = slurp("$d/access.log");
	my %c = (api => 0, static => 0);
	$c{api}++ while $log =~ /"GET \/api\//g;
	$c{static}++ while $log =~ /"GET \/static /g;
	return \%c;
}

sub workers_settled {
	my ($timeout) = @_;
	my $deadline = time() + $timeout;
	while (time() < $deadline) {
		my @w = Test::Railgun::children($master);
		return 1 if @w == 4;
		sleep 0.1;
	}
	return 0;
}

###############################################################################

# warm-up, with the SIGKILL

print "soak: warm-up\n";

my @load = (wrk('warm-api', '/api/x', $WARM), wrk('warm-static', '/static',
	$WARM));
my $ws = churn('warm');

sleep $WARM / 2;

my @workers = Test::Railgun::children($master);
my $killed = $workers[0];
kill 'KILL', $killed;
print "soak: SIGKILL to worker $killed\n";

waitpid($_, 0) for @load;
churn_stop("warm", $ws);

workers_settled(30);
sleep 2;

my $m1 = scrape();
my $a1 = access_counts();
my %c1 = (api => requests_of($m1, '/api/'),
	static => requests_of($m1, '/static'), ws => ws_total($m1));
my $zone_warm = sample($m1, 'railgun_zone_bytes', { state => 'used' });
my $warm_scrapes = () = glob("$d/scrapes/*");

###############################################################################

# chaos: reloads, Redis and b2 flapping, under the same load

print "soak: chaos\n";

@load = (wrk('chaos-api', '/api/x', $CHAOS),
	wrk('chaos-static', '/static', $CHAOS));
$ws = churn('chaos');

my $start = time();
my ($reloads, $redis_flaps, $backend_flaps) = (0, 0, 0);
my %next = (reload => $start + 3, redis => $start + 4, b2 => $start + 5);

while (time() < $start + $CHAOS - 1) {
	my $now = time();

	if ($now >= $next{reload}) {
		kill 'HUP', $master;
		$reloads++;
		$next{reload} += 3;
	}

	if ($now >= $next{redis}) {
		if ($redis->{pid}) { $redis->stop() } else { $redis->start() }
		$redis_flaps++;
		$next{redis} += 4;
	}

	if ($now >= $next{b2}) {
		if ($b2->{pid}) { $b2->stop() } else { $b2->start() }
		$backend_flaps++;
		$next{b2} += 5;
	}

	sleep 0.1;
}

waitpid($_, 0) for @load;
churn_stop("chaos", $ws);

$redis->start() unless $redis->{pid};
$b2->start() unless $b2->{pid};

check(workers_settled(90), 'old workers gone after the last reload');
sleep 2;

my $m2 = scrape();
my $a2 = access_counts();
my %c2 = (api => requests_of($m2, '/api/'),
	static => requests_of($m2, '/static'), ws => ws_total($m2));

###############################################################################

# quiet: the load alone

print "soak: quiet\n";

@load = (wrk('quiet-api', '/api/x', $QUIET),
	wrk('quiet-static', '/static', $QUIET));
waitpid($_, 0) for @load;
sleep 2;

my $m3 = scrape();
my $a3 = access_counts();
my %c3 = (api => requests_of($m3, '/api/'),
	static => requests_of($m3, '/static'));

stop_child($scraper);

my $gauge = Test::Railgun::WebSocket::wait_metrics($t, sub {
	(sample_sum($_[0], 'railgun_websocket_connections') // 0) == 0
}, timeout => 10);

###############################################################################

print "\nsoak: checks\n";

# request totals

for my $loc (qw/ api static /) {
	my $path = $loc eq 'api' ? '/api/' : '/static';

	my $w = wrk_result("chaos-$loc");
	my $mod = $c2{$loc} - $c1{$loc};
	my $acc = $a2->{$loc} - $a1->{$loc};

	check(defined $w->{sent}, "wrk chaos $loc ran")
		or print $w->{out};
	$w->{sent} //= 0; $w->{recv} //= 0;

	check($mod == $acc, "chaos $path: module counted $mod, "
		. "access log has $acc");
	check($mod >= $w->{recv} && $mod <= $w->{sent},
		"chaos $path: module $mod within wrk's answered $w->{recv} "
		. "and sent $w->{sent}");
	check($w->{sent} - $mod <= $w->{errors},
		"chaos $path: " . ($w->{sent} - $mod) . " sent but not served, "
		. "wrk socket errors " . ($w->{socket} || 0));

	my $q = wrk_result("quiet-$loc");
	my $qmod = $c3{$loc} - $c2{$loc};
	my $qacc = $a3->{$loc} - $a2->{$loc};
	$q->{sent} //= -1;

	check($qmod == $q->{sent} && $qmod == $qacc,
		"quiet $path: module counted $qmod, wrk sent $q->{sent}, "
		. "access log $qacc");
	check($q->{errors} == 0 && $q->{non2xx} == 0,
		"quiet $path: no socket errors, no non-2xx");

	my $wu = wrk_result("warm-$loc");
	$fig{requests} += ($wu->{sent} || 0) + $w->{sent} + $q->{sent};
	$fig{"sent_$loc"} = ($wu->{sent} || 0) + $w->{sent} + $q->{sent};
	$fig{"chaos_non2xx_$loc"} = $w->{non2xx};
	$fig{"chaos_errors_$loc"} = $w->{errors};
}

# WebSocket sessions

my $wc = ws_counts('chaos');
my $ww = ws_counts('warm');
check(($wc->{opened} || 0) > 0, "chaos: WebSocket sessions opened "
	. ($wc->{opened} || 0) . ", failed " . ($wc->{failed} || 0));
check($c2{ws} - $c1{ws} == ($wc->{opened} || 0),
	"chaos: module counted " . ($c2{ws} - $c1{ws}) . " WebSocket sessions, "
	. "clients opened " . ($wc->{opened} || 0));
check((sample_sum($gauge, 'railgun_websocket_connections') // -1) == 0,
	'railgun_websocket_connections back to 0 at the end (sum '
	. (sample_sum($gauge, 'railgun_websocket_connections') // 'none') . ')');
$fig{ws} = ($wc->{opened} || 0) + ($ww->{opened} || 0);
$fig{ws_messages} = ($wc->{messages} || 0) + ($ww->{messages} || 0);

# the scrapes: valid, counters non-decreasing, zone use

my @files = sort glob("$d/scrapes/*");
my (%last, %type, @bad, @decrease, @zone);
my $n = 0;

for my $f (@files) {
	$n++;
	my ($status, $h, $body) = http_split(slurp($f));

	if (!defined $status || $status != 200) {
		push @bad, "$f: status " . ($status // 'none');
		next;
	}

	my @errors;
	my $s = Test::Railgun::parse_metrics($body, 0, \@errors, $f);
	push @bad, @errors;

	if ($n % 30 == 1 || $f eq $files[-1]) {
		push @bad, $t->promtool($body, "$f: promtool", 'promtool.txt');
	}

	for my $fam (keys %{$s->{families}}) {
		$type{$fam} = $s->{families}{$fam}{type} // '';
	}

	for my $x (@{$s->{series}}) {
		my $ty = $type{$x->{family} // ''} // '';
		next unless $ty eq 'counter' || $ty eq 'histogram';

		my $k = $x->{key};
		push @decrease, "$f: $k $last{$k} -> $x->{value}"
			if defined $last{$k} && $x->{value} < $last{$k};
		$last{$k} = $x->{value};
	}

	push @zone, [ $n, sample($s, 'railgun_zone_bytes',
		{ state => 'used' }) ];
}

$fig{scrapes} = $n;
$fig{series} = scalar keys %last;

check($n >= $TOTAL * 0.8, "scrapes taken: $n (one a second)");
check(!@bad, 'every scrape 200 and valid (parsed; promtool on every 30th)')
	or print map { "    $_\n" } @bad[0 .. ($#bad > 20 ? 20 : $#bad)];
check(!@decrease, "every counter and histogram series non-decreasing "
	. "across $n scrapes ($fig{series} series)")
	or print map { "    $_\n" } @decrease[0 .. ($#decrease > 20 ? 20
		: $#decrease)];

my @after = map { $_->[1] } grep { $_->[0] > $warm_scrapes && defined $_->[1] }
	@zone;
my ($zmax) = sort { $b <=> $a } @after;
$zmax //= -1;
$fig{zone_warm} = $zone_warm;
$fig{zone_max} = $zmax;
$fig{zone_size} = sample($m3, 'railgun_zone_bytes', { state => 'size' });
check(defined $zone_warm && $zmax - $zone_warm <= $ZONE_GROWTH,
	"zone bytes used: " . ($zone_warm // 'none') . " after warm-up, "
	. "at most $zmax after (bound +$ZONE_GROWTH), size "
	. ($fig{zone_size} // 'none'));

# fds and RSS: the workers and master of the first samples after warm-up
# against the last 10 %

my @samples = map { [ split ' ' ] } split /\n/, slurp("$d/samples.log");
my $tail = int(@samples * 0.9);

sub proc_max {
	my ($kind, @rows) = @_;
	my ($fd, $rss) = (0, 0);
	for my $r (@rows) {
		for my $p (@{$r}[3 .. $#$r]) {
			my ($k, $pid, $f, $s) = split /:/, $p;
			next unless $k eq $kind;
			$fd = $f if $f > $fd;
			$rss = $s if $s > $rss;
		}
	}
	return ($fd, $rss);
}

my @early = @samples[$warm_scrapes .. $warm_scrapes + 4];
my @late = @samples[$tail .. $#samples];
my ($wfd0, $wrss0) = proc_max('w', @early);
my ($wfd1, $wrss1) = proc_max('w', @late);
my (undef, $mrss0) = proc_max('m', @early);
my (undef, $mrss1) = proc_max('m', @late);
my ($wfdmax, $wrssmax) = proc_max('w', @samples);
@fig{qw/ wfd0 wfd1 wrss0 wrss1 mrss0 mrss1 wfdmax wrssmax /} =
	($wfd0, $wfd1, $wrss0, $wrss1, $mrss0, $mrss1, $wfdmax, $wrssmax);

check($wfd1 - $wfd0 <= $FD_GROWTH, "worker fds: at most $wfd0 after warm-up, "
	. "$wfd1 in the last 10 % (bound +$FD_GROWTH; peak $wfdmax)");
check($wrss1 - $wrss0 <= $RSS_GROWTH, "worker RSS: at most $wrss0 kB after "
	. "warm-up, $wrss1 kB in the last 10 % (bound +$RSS_GROWTH kB; "
	. "peak $wrssmax kB)");
check($mrss1 - $mrss0 <= $RSS_GROWTH, "master RSS: $mrss0 kB after warm-up, "
	. "$mrss1 kB in the last 10 % (bound +$RSS_GROWTH kB, $reloads reloads)");

# the error log: one killed worker, nothing else

$t->stop();

my $log = $t->read_file('error.log');
my @signals = $log =~ /^(.*exited on signal.*)$/mg;
my @alerts = grep { !/process $killed exited on signal 9\b/ }
	$log =~ /^(.*\[(?:alert|emerg)\].*)$/mg;

check(@signals == 1 && $signals[0] =~ /process $killed exited on signal 9\b/,
	"one worker exited on a signal, the one killed ($killed): "
	. scalar(@signals) . ' such line(s)')
	or print map { "    $_\n" } @signals;
check(!@alerts, 'no other alert or emerg in error.log')
	or print map { "    $_\n" } @alerts[0 .. ($#alerts > 20 ? 20 : $#alerts)];
check($log !~ /core dumped|Sanitizer|segfault/i, 'no core dump');

my $hups = () = $log =~ /signal 1 \(SIGHUP\) received/g;
check($hups == $reloads, "reloads: $reloads sent, $hups received");

$fig{reloads} = $reloads;
$fig{redis_flaps} = $redis_flaps;
$fig{backend_flaps} = $backend_flaps;

print "\nsoak figures: duration ${TOTAL}s; requests sent $fig{requests} "
	. "(/api/ $fig{sent_api}, /static $fig{sent_static}); WebSocket "
	. "sessions $fig{ws} ($fig{ws_messages} messages); scrapes "
	. "$fig{scrapes}; series $fig{series}; reloads $reloads; Redis "
	. "stops/starts $redis_flaps; b2 stops/starts $backend_flaps; 1 worker "
	. "SIGKILLed; zone used $fig{zone_warm} -> max $fig{zone_max} of "
	. ($fig{zone_size} // '?') . "; worker fds $wfd0 -> $wfd1; worker RSS "
	. "$wrss0 -> $wrss1 kB; master RSS $mrss0 -> $mrss1 kB; chaos non-2xx "
	. "/api/ $fig{chaos_non2xx_api}, socket errors /api/ "
	. "$fig{chaos_errors_api} /static $fig{chaos_errors_static}\n";

if (@FAIL) {
	print "\nsoak: FAIL (" . scalar(@FAIL) . " checks)\n";
	print "work directory kept: $d\n" if $ENV{SOAK_KEEP};
	exit 1;
}

print "\nsoak: PASS\n";
exit 0;
