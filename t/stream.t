#!/usr/bin/perl

# Tests for the streamed exposition: a body of many buffers is the body the
# module rendered in one piece before streaming (main's build, compiled here
# from git, fed the same requests), over HTTP/1.0, HTTP/1.1 chunked, gzip
# and HTTP/2 with a throttled reader; a client that stops reading or leaves
# mid-scrape costs nothing once gone; series made during a scrape appear at
# most once; max_scrapes answers 503 with Retry-After and counts it.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use File::Temp qw/ tempdir /;
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw/ gunzip $GunzipError /;
use POSIX ();
use Time::HiRes qw/ sleep time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

# main before the exposition was streamed
my $BASELINE_REV = '293b5e8';
my $NPATHS = 3000;

my $t = Test::Railgun->new()->has_daemon('promtool')->has_daemon('curl')
	->plan(26);

sub conf {
	my ($port, $h2, $base) = @_;

	# main's build has no parameter
	my $one = $base ? '' : ' max_scrapes=1';

	return <<"EOF";

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_$port%% sndbuf=16k;
        listen       127.0.0.1:%%PORT_$h2%% http2;
        server_name  localhost;
        keepalive_requests 100000;

        location /items/ {
            railgun_path \$uri;
            railgun_buckets 60;
            return 200 "item\\n";
        }

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location = /gz {
            railgun_metrics;
            railgun off;
            gzip on;
            gzip_types text/plain application/openmetrics-text
                       application/json;
            gzip_min_length 0;
        }

        location = /one {
            railgun_metrics$one;
            railgun off;
        }
    }
}

EOF
}

$t->write_file_expand('nginx.conf', conf(8080, 8081));
$t->run();

###############################################################################

# HTTP/1.1 requests pipelined on one connection, the last one closing it

sub requests {
	my ($port, @uris) = @_;

	my $req = '';
	for my $i (0 .. $#uris) {
		$req .= "GET $uris[$i] HTTP/1.1\r\nHost: localhost\r\n"
			. ($i == $#uris ? "Connection: close\r\n" : '') . "\r\n";
	}

	my $r = http($req, port => $port, timeout => 60);
	return () = $r =~ m!^HTTP/1.1 200 !mg;
}

# a raw GET whose response is read by the caller

sub open_get {
	my ($port, $uri, @headers) = @_;

	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port($port))
		or die "connect: $!";
	binmode $s;
	print $s "GET $uri HTTP/1.0\r\nHost: localhost\r\n"
		. join('', map { "$_\r\n" } @headers) . "\r\n";

	return $s;
}

sub read_all {
	my ($s, $rate) = @_;

	my $r = '';
	my $sel = IO::Select->new($s);
	my $deadline = time() + 60;

	while (time() < $deadline) {
		next unless $sel->can_read(1);
		my $n = sysread($s, my $buf, 16384);
		last unless $n;
		$r .= $buf;
		sleep(16384 / $rate) if $rate;
	}

	return $r;
}

my @paths = map { "/items/$_" } 1 .. $NPATHS;

is(requests(8080, @paths), $NPATHS, 'requests made');

# the body is many buffers

my $m = $t->metrics();
my $text = $m->{body};

ok(length($text) > 8 * 65536, 'body of many buffers')
	or diag(length $text);
is(scalar(series($m, 'railgun_http_requests_total')), $NPATHS,
	'every series once');
is($m->{headers}{'content-length'}, undef, 'no content length');

my $rejected0 = sample($m, 'railgun_scrapes_rejected_total');
is($rejected0, 0, 'rejected counter shown from the start');

# HTTP/1.1 chunked, gzip: the same body (counters aside, scrapes move
# nothing but the connection families)

sub strip {
	my ($body) = @_;
	$body =~ s/^railgun_nginx_connections.*\n//mg;
	$body =~ s/^(railgun_zone_bytes\{state="used"\}) \d+$/$1 X/mg;
	return $body;
}

my ($st, $h, $chunked) = http_split(http_get('/metrics', proto => '1.1'));
is($h->{'transfer-encoding'}, 'chunked', 'HTTP/1.1 chunked');
is(strip($chunked), strip($text), 'chunked body');

my $gz = $t->metrics(path => '/gz', gzip => 1);
is($gz->{headers}{'content-encoding'}, 'gzip', 'gzip');
is(strip($gz->{body}), strip($text), 'gzip body');

# HTTP/2, read at 2 MB/s: the flow control window closes and reopens

my $h2 = `curl -s --http2-prior-knowledge --limit-rate 2M -D - -o - \\
	http://127.0.0.1:@{[ port(8081) ]}/gz -H 'Accept-Encoding: gzip'`;
my ($h2head, $h2body) = split /\r\n\r\n/, $h2, 2;
like($h2head, qr!^HTTP/2 200!, 'HTTP/2 status');
my $h2plain;
gunzip(\$h2body => \$h2plain) or diag("gunzip: $GunzipError");
is(strip($h2plain // ''), strip($text), 'HTTP/2 gzip body');

my $json = `curl -s --http2-prior-knowledge --limit-rate 2M \\
	'http://127.0.0.1:@{[ port(8081) ]}/metrics?format=json'`;
like($json, qr/\]\}\n\z/, 'HTTP/2 JSON whole');

# byte for byte what main's build sends for the same zone

SKIP: {
	my $base = baseline();
	skip("no baseline build of $BASELINE_REV", 2) unless $base;

	my $b = Test::Railgun->new();
	{
		local $Test::Railgun::MODULE = $base;
		$b->write_file_expand('nginx.conf', conf(8090, 8091, 1));
	}
	$b->run();

	requests(8090, @paths);

	# the same requests on a fresh connection here too
	my $now = http_body(http_get('/metrics'));
	my $old = http_body(http_get('/metrics', port => 8090));

	is(same(common($now, $old)), same(renamed($old)),
		'0.0.4 body byte for byte as before but for the renamed counter');

	my $omnow = http_body(http_get('/metrics', headers =>
		[ 'Accept: application/openmetrics-text' ]));
	my $omold = http_body(http_get('/metrics', port => 8090, headers =>
		[ 'Accept: application/openmetrics-text' ]));

	is(same(common($omnow, $omold)), same(renamed($omold, 1)),
		'OpenMetrics body as before but for le and the renamed counter');

	$b->stop();
}

# What changed on purpose since: the sessions counter's name, and in
# OpenMetrics the "le" values as canonical floats and that counter's type.

sub renamed {
	my ($body, $om) = @_;

	if ($om) {
		$body =~ s/^# (HELP|TYPE) railgun_websocket_connections_total /# $1 railgun_websocket_connections_opened /mg;
		$body =~ s/^(# TYPE railgun_websocket_connections_opened) unknown$/$1 counter/m;
		$body =~ s/,le="(\d+)"/,le="$1.0"/g;
	}

	$body =~ s/railgun_websocket_connections_total/railgun_websocket_connections_opened_total/g;

	return $body;
}

# Families that other changes added since the baseline (and build_info's
# software labels) are not the streaming's to compare: the body keeps only
# the families the baseline has, in its order.

sub common {
	my ($body, $base) = @_;
	my %had;

	for my $name (map { s/connections_total$/connections_opened_total/r }
		$base =~ /^# TYPE (\S+) /mg)
	{
		$had{$name} = 1;
		$had{$name =~ s/_total$//r} = 1;
		$had{"${name}_total"} = 1;
	}

	my $keep = 1;
	my @out;

	for my $line (split /^/, $body) {
		if ($line =~ /^# (?:HELP|TYPE) (\S+) /) {
			$keep = $had{$1};
		} elsif ($line =~ /^railgun_series_dropped_total\{family="([^"]+)"/) {
			next unless $had{$1};
		}
		push @out, $line if $keep || $line =~ /^# EOF/;
	}

	$body = join '', @out;
	$body =~ s/(^railgun_build_info\{[^}]*?),software="[^"]*",software_version="[^"]*"/$1/m;

	return $body;
}

# What two instances fed the same requests may not share: the time they
# started, their zone use, the latency sums; and the family this change
# adds.

sub same {
	my ($body) = @_;
	$body =~ s/^(railgun_\w+_sum\{.*\}) \S+$/$1 X/mg;
	$body =~ s/^(railgun_start_time_seconds) \d+$/$1 X/mg;
	$body =~ s/^(railgun_zone_bytes\{state="used"\}) \d+$/$1 X/mg;
	$body =~ s/^(railgun_nginx_connections_\w+_total) \d+$/$1 X/mg;
	$body =~ s/^# (HELP|TYPE) railgun_scrapes_rejected.*\n//mg;
	$body =~ s/^railgun_scrapes_rejected_total .*\n//mg;
	$body =~ s/^railgun_series_dropped_total\{family="railgun_scrapes_rej.*\n//mg;
	return $body;
}

# a client that does not read holds two buffers, and waits; the worker
# serves everything else meanwhile

my $stuck = open_get(8080, '/one');
sleep(0.2);

my $t0 = time();
like(http_get('/items/x'), qr/^HTTP\/1.. 200 /, 'served beside a stuck scrape');
ok(time() - $t0 < 1, 'at once') or diag(time() - $t0);

# max_scrapes=1: the stuck scrape is the one

my $busy = http_get('/one');
like($busy, qr/^HTTP\/1.. 503 /, '503 past max_scrapes');
is(http_header($busy, 'Retry-After'), '1', 'Retry-After');
like(http_get('/metrics'), qr/^HTTP\/1.. 200 /,
	'limit is per location, counted per worker');

like(http_get('/one', method => 'HEAD'), qr/^HTTP\/1.. 200 /,
	'HEAD renders nothing, never rejected');

# it leaves mid-scrape: the slot is free again

sysread($stuck, my $buf, 1000);
close $stuck;

my ($ok, $n503) = (0, 1);
for (1 .. 50) {
	my $r = http_get('/one');
	$ok = 1, last if $r =~ /^HTTP\/1.. 200 /;
	$n503++ if $r =~ /^HTTP\/1.. 503 /;
	sleep(0.1);
}
ok($ok, 'a client leaving mid-scrape frees its slot');

my $rejected = sample($t->metrics(), 'railgun_scrapes_rejected_total');
is($rejected, $n503, 'rejections counted, as the client saw them');

# series made while a scrape is read slowly: each at most once, families
# whole

my $slow = open_get(8080, '/metrics');
my @new = map { "/items/new-$_" } 1 .. 500;
my $reader = fork() // die "fork: $!";
if ($reader == 0) {
	requests(8080, @new);
	POSIX::_exit(0);
}
my $r = read_all($slow, 4 * 1024 * 1024);
waitpid($reader, 0);

my @errors;
my ($slow_status, undef, $slow_body) = http_split($r);
is($slow_status, 200, 'slow scrape');
my $p = Test::Railgun::parse_metrics($slow_body, 0, \@errors, 'slow scrape');
is(join("\n", @errors), '', 'slow scrape valid, no series twice');
is(join("\n", $t->promtool($slow_body, 'promtool', 'slow.txt')), '',
	'slow scrape passes promtool');
my $n = grep { $_->{labels}{path} =~ m!^/items/! }
	series($p, 'railgun_http_requests_total');
ok($n >= $NPATHS + 1 && $n <= $NPATHS + 501, 'old series all, new ones or not')
	or diag($n);

###############################################################################

# main's module at $BASELINE_REV, built once into build/ with the flags of
# the configured tree there

sub baseline {
	my $build = "$Test::Railgun::REPO/build";
	my $so = "$build/baseline-$BASELINE_REV.so";

	return $so if -f $so;
	return undef unless -f "$build/objs/ngx_auto_config.h"
		&& -d "$Test::Railgun::REPO/.git"
			|| -f "$Test::Railgun::REPO/.git";

	my $dir = tempdir('railgun-base-XXXXXXXX', TMPDIR => 1, CLEANUP => 1);

	system("git -C $Test::Railgun::REPO archive $BASELINE_REV src "
		. "| tar -x -C $dir") == 0 or return undef;

	my $ngx = "$build/nginx";
	my @inc = map { "-I$_" } ("$ngx/src/core", "$ngx/src/event",
		"$ngx/src/event/modules", "$ngx/src/os/unix", "$dir/src",
		"$build/objs", "$ngx/src/http", "$ngx/src/http/modules",
		"$ngx/src/http/v2");

	my @objs;
	for my $src (glob("$dir/src/*.c"),
		"$build/objs/ngx_http_railgun_module_modules.c")
	{
		(my $o = $src) =~ s!.*/(.*)\.c$!$dir/$1.o!;
		system("cc -c -O2 -fPIC @inc -o $o $src") == 0 or return undef;
		push @objs, $o;
	}

	system("cc -shared -o $so.tmp @objs -lhiredis") == 0 or return undef;
	rename "$so.tmp", $so or return undef;

	return $so;
}

###############################################################################
