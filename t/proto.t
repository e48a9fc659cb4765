#!/usr/bin/perl

# The protobuf exposition (application/vnd.google.protobuf;
# proto=io.prometheus.client.MetricFamily; encoding=delimited), decoded by
# a decoder of its own written here from metrics.proto, not the module's:
#
# - negotiation: Prometheus 2.42's Accept with native histograms on gets
#   protobuf; without, or with a lower q, or another encoding, it does not;
# - every family and every sample equals the 0.0.4 text of the same zone
#   (no traffic between the two scrapes), classic buckets included;
# - native histograms: count = zero + buckets, each request of known
#   latency (backends answering after 50 and 400 ms, brackets from the
#   client's clock) in a bucket whose bounds hold it, and the native
#   buckets agree with the classic ones;
# - a family of 10,000 series spans many buffers: every series once;
# - label bytes a client chose (quotes, backslashes, new lines, bad UTF-8)
#   arrive as the text format's unescaped values;
# - WebSocket session durations are native too;
# - HEAD renders nothing; gzip; HTTP/2; Vary and Cache-Control as for the
#   others.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

use IO::Uncompress::Gunzip qw/ gunzip $GunzipError /;
use IO::Socket::INET;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->has_daemon('curl');

$t->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    railgun_zone 64m;
    railgun_max_series 20000;
    railgun_native_histograms on;

    upstream fast {
        server 127.0.0.1:%%PORT_8081%%;
    }

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        location /api/ {
            railgun_path /api;
            railgun_exemplar $request_id;
            proxy_pass http://fast/;
        }

        location /classic/ {
            railgun_path /classic;
            railgun_native_histograms off;
            proxy_pass http://fast/;
        }

        keepalive_requests 100000;

        location /ws {
            proxy_pass          http://127.0.0.1:%%PORT_8084%%;
            proxy_http_version  1.1;
            proxy_set_header    Upgrade $http_upgrade;
            proxy_set_header    Connection "upgrade";
        }

        location /many/ {
            railgun_path $uri;
            railgun_native_histograms off;
            return 204;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8082%%;
        server_name  metrics;

        railgun off;

        gzip on;
        gzip_min_length 1;
        gzip_types application/vnd.google.protobuf;

        location /metrics {
            railgun_metrics;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8083%% http2;
        server_name  h2;

        railgun off;

        location /metrics {
            railgun_metrics;
        }
    }
}

EOF

$t->http_backend(8081);
ws_backend($t, 8084);
$t->run();

$t->plan(34);

my $PB = 'application/vnd.google.protobuf;'
	. 'proto=io.prometheus.client.MetricFamily;encoding=delimited';

# what Prometheus 2.42 sends with --enable-feature=native-histograms
my $PROM = "$PB,application/openmetrics-text;version=1.0.0;q=0.8,"
	. 'application/openmetrics-text;version=0.0.1;q=0.75,'
	. 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

###############################################################################

# The decoder: a message is a list of [field, wire type, value]; a value is
# a number (varint), 8 raw bytes (fixed64) or a byte string (length).

sub varint {
	my ($buf, $pos) = @_;

	my ($v, $shift) = (0, 0);

	while (1) {
		die "varint past the end\n" if $$pos >= length $$buf;
		my $b = ord substr $$buf, $$pos++, 1;
		$v += ($b & 0x7f) * 2**$shift;
		last unless $b & 0x80;
		$shift += 7;
		die "varint too long\n" if $shift > 63;
	}

	return $v;
}

sub message {
	my ($buf) = @_;

	my ($pos, @f) = (0);

	while ($pos < length $buf) {
		my $key = varint(\$buf, \$pos);
		my ($field, $type) = (int($key / 8), $key % 8);
		my $v;

		if ($type == 0) {
			$v = varint(\$buf, \$pos);
		} elsif ($type == 1) {
			die "fixed64 past the end\n" if $pos + 8 > length $buf;
			$v = substr $buf, $pos, 8;
			$pos += 8;
		} elsif ($type == 2) {
			my $len = varint(\$buf, \$pos);
			die "length past the end\n" if $pos + $len > length $buf;
			$v = substr $buf, $pos, $len;
			$pos += $len;
		} else {
			die "wire type $type\n";
		}

		push @f, [ $field, $type, $v ];
	}

	return @f;
}

sub double { unpack 'd<', $_[0] }
sub zigzag { my $v = shift; $v % 2 ? -($v + 1) / 2 : $v / 2 }

sub fields {
	my ($msg, $n) = @_;
	return map { $_->[2] } grep { $_->[0] == $n } @$msg;
}

sub field {
	my @v = fields(@_);
	return $v[-1];
}

my %TYPES = (0 => 'counter', 1 => 'gauge', 4 => 'histogram');

# the body as [ {name, help, type, metrics => [...]} ], one per message

sub decode {
	my ($body) = @_;

	my ($pos, @families) = (0);

	while ($pos < length $body) {
		my $len = varint(\$body, \$pos);
		die "message past the end\n" if $pos + $len > length $body;
		my @mf = message(substr $body, $pos, $len);
		$pos += $len;

		my $f = {
			name => field(\@mf, 1),
			help => field(\@mf, 2),
			type => $TYPES{field(\@mf, 3) // 0} // 'unknown',
			metrics => [],
		};

		for my $m (fields(\@mf, 4)) {
			my @m = message($m);
			my %labels;

			for my $l (fields(\@m, 1)) {
				my @l = message($l);
				$labels{field(\@l, 1)} = field(\@l, 2);
			}

			my $x = { labels => \%labels };

			if (my $c = field(\@m, 3)) {
				$x->{value} = double(field([ message($c) ], 1));
			} elsif (my $g = field(\@m, 2)) {
				$x->{value} = double(field([ message($g) ], 1));
			} elsif (my $h = field(\@m, 7)) {
				$x->{histogram} = histogram($h);
			}

			push @{$f->{metrics}}, $x;
		}

		push @families, $f;
	}

	return \@families;
}

sub histogram {
	my ($h) = @_;

	my @h = message($h);
	my $x = {
		count => field(\@h, 1),
		sum => double(field(\@h, 2)),
		buckets => [],
	};

	for my $b (fields(\@h, 3)) {
		my @b = message($b);
		my $ub = double(field(\@b, 2));

		# Bucket.exemplar: Exemplar {label, value, timestamp}
		if (my $e = field(\@b, 3)) {
			my @e = message($e);
			my @l = message(field(\@e, 1));
			my @ts = message(field(\@e, 3) // '');
			push @{$x->{exemplars}}, {
				le => $ub,
				name => field(\@l, 1),
				value => field(\@l, 2),
				v => double(field(\@e, 2)),
				time => (field(\@ts, 1) // 0)
					+ (field(\@ts, 2) // 0) / 1e9,
			};
		}

		# an explicit +Inf bucket carries only an exemplar
		next if $ub == 9**9**9;

		push @{$x->{buckets}}, [ $ub, field(\@b, 1) ];
	}

	if (defined field(\@h, 6)) {
		$x->{schema} = zigzag(field(\@h, 5) // 0);
		$x->{zero_threshold} = double(field(\@h, 6));
		$x->{zero_count} = field(\@h, 7) // 0;

		my @deltas;
		for my $packed (fields(\@h, 13)) {
			my $p = 0;
			push @deltas, zigzag(varint(\$packed, \$p))
				while $p < length $packed;
		}

		# absolute index => count
		my ($i, $n, %b) = (0, 0);
		my $first = 1;

		for my $s (fields(\@h, 12)) {
			my @s = message($s);
			my $off = zigzag(field(\@s, 1) // 0);
			$i = $first ? $off : $i + $off;
			$first = 0;

			for (1 .. (field(\@s, 2) // 0)) {
				die "more buckets than deltas\n" unless @deltas;
				$n += shift @deltas;
				$b{$i++} = $n;
			}
		}

		die "deltas left over\n" if @deltas;
		$x->{native} = \%b;
	}

	return $x;
}

sub scrape {
	my (%opts) = @_;

	my @h = ("Accept: " . ($opts{accept} // $PROM));
	push @h, 'Accept-Encoding: gzip' if $opts{gzip};

	my $r = http_get('/metrics', port => 8082,
		method => $opts{method} || 'GET',
		proto => $opts{gzip} ? '1.1' : '1.0', headers => \@h);

	my ($status, $h, $body) = http_split($r);

	if (($h->{'content-encoding'} || '') =~ /gzip/) {
		my $plain;
		gunzip(\$body => \$plain) or die "gunzip: $GunzipError\n";
		$body = $plain;
	}

	return ($status, $h, $body);
}

# the samples of a decoded body in the text format's terms:
# "name label=value,..." (labels sorted) => value

sub canonical {
	my ($name, $labels) = @_;
	return join ' ', $name,
		join ',', map { "$_=$labels->{$_}" } sort keys %$labels;
}

sub flatten {
	my ($families) = @_;

	my (%s, %meta);

	for my $f (@$families) {
		$meta{$f->{name}} = "$f->{type} $f->{help}";

		for my $m (@{$f->{metrics}}) {
			my $n = $f->{name};

			if (!$m->{histogram}) {
				$s{canonical($n, $m->{labels})} = $m->{value};
				next;
			}

			my $h = $m->{histogram};

			for my $b (@{$h->{buckets}}, [ '+Inf', $h->{count} ]) {
				$s{canonical("${n}_bucket",
					{ %{$m->{labels}}, le => $b->[0] eq '+Inf'
						? '+Inf' : 0 + $b->[0] })} = $b->[1];
			}

			$s{canonical("${n}_sum", $m->{labels})} = $h->{sum};
			$s{canonical("${n}_count", $m->{labels})} = $h->{count};
		}
	}

	return (\%s, \%meta);
}

sub text_samples {
	my ($scrape) = @_;

	my %s;

	for my $x (@{$scrape->{series}}) {
		my %l = %{$x->{labels}};
		$l{le} = 0 + $l{le} if defined $l{le} && $l{le} ne '+Inf';
		$s{canonical($x->{name}, \%l)} = $x->{value};
	}

	my %meta = map {
		my $f = $scrape->{families}{$_};
		($_ => "$f->{type} $f->{help}")
	} keys %{$scrape->{families}};

	return (\%s, \%meta);
}

###############################################################################

# negotiation

my ($status, $h, $body) = scrape();
is($status, 200, 'Prometheus with native histograms: 200');
like($h->{'content-type'} // '',
	qr!^application/vnd\.google\.protobuf; proto=io\.prometheus\.client\.MetricFamily; encoding=delimited$!,
	'and protobuf');
is($h->{vary}, 'Accept', 'Vary: Accept');
is($h->{'cache-control'}, 'no-store', 'Cache-Control: no-store');

($status, $h) = scrape(accept => 'application/openmetrics-text;'
	. 'version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,'
	. 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1');
like($h->{'content-type'} // '', qr!^application/openmetrics-text!,
	'Prometheus without them: OpenMetrics');

($status, $h) = scrape(accept => "$PB;q=0.5,"
	. 'application/openmetrics-text;version=1.0.0;q=0.8');
like($h->{'content-type'} // '', qr!^application/openmetrics-text!,
	'protobuf at a lower q than OpenMetrics: OpenMetrics');

($status, $h) = scrape(accept => 'application/vnd.google.protobuf;'
	. 'proto=io.prometheus.client.MetricFamily;encoding=text');
like($h->{'content-type'} // '', qr!^text/plain!,
	'protobuf text encoding is not served');

($status, $h) = scrape(accept => "text/plain;q=0.5, $PB;q=0");
like($h->{'content-type'} // '', qr!^text/plain!, 'q=0 refuses protobuf');

($status, $h, $body) = scrape(accept => "text/plain;q=0.1, "
	. 'application/vnd.google.protobuf ; proto=io.prometheus.client.MetricFamily ; encoding=delimited ; q=0.9');
like($h->{'content-type'} // '', qr!^application/vnd\.google\.protobuf!,
	'spaces around parameters');

($status, $h, $body) = scrape(method => 'HEAD');
ok($status == 200 && $h->{'content-type'} =~ /protobuf/
	&& $body eq '', 'HEAD: the type, no body');

###############################################################################

# known latencies; the client's brackets of each

my (@fast, @slow);

for (1 .. 6) {
	my (undef, undef, $b) = timed_get('/api/delay/50');
	push @fast, $b;
}

for (1 .. 3) {
	my (undef, undef, $b) = timed_get('/api/delay/400');
	push @slow, $b;
}

timed_get('/classic/delay/1');

# a WebSocket session, echoed once and closed by the client

{
	my $ws = ws_connect(path => '/ws');
	$ws->text('hi');
	my $m = $ws->read_message();
	ok($m && $m->{payload} eq 'hi', 'WebSocket session');
	$ws->close_ws();

	wait_metrics($t, sub {
		grep { $_->{name} eq
			'railgun_websocket_connection_duration_seconds_count'
			&& $_->{value} == 1 } @{$_[0]{series}};
	}, scrape => { port => 8082 });
}

# hostile label bytes: the path label is the client's

my @hostile = ('q"uote', 'back\\slash', "new\nline", "\xff\xfe bad utf-8",
	"\xe2\x82\xac euro", 'tab	x', '{}=,');

# and for the encoder's scan of the label text, 16 bytes at a time: values
# of every length about a chunk's and a one-byte length's end, a backslash
# (an escape) in a later chunk than the first, after pairs were written

push @hostile, map { 'v' x $_ } 1 .. 40, 118 .. 140;
push @hostile, map { ('x' x $_) . '\\' . 'y' } 0, 9, 10, 26, 41, 70, 130;
push @hostile, map { ('x' x $_) . '"' } 9, 10, 25, 26;

# and about the most a series' table of label boundaries takes, a value of
# 255 bytes ("/many/" and 249 more): one of 256, the most a value keeps, has
# no table and is cut into pairs by the scan

push @hostile, map { 'v' x $_ } 247 .. 250;

for my $p (@hostile) {
	(my $e = $p) =~ s/([^A-Za-z0-9])/sprintf '%%%02X', ord $1/ge;
	http_get("/many/$e");
}

# 10,000 series in one family, pipelined over one connection

my $N = 10000;
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . port(8080))
		or die "connect: $!";
	binmode $s;

	my $sent = 0;
	my $got = 0;
	my $buf = '';

	while ($got < $N) {
		while ($sent < $N && $sent - $got < 200) {
			my $c = $sent == $N - 1 ? 'close' : 'keep-alive';
			print $s "GET /many/series$sent HTTP/1.1\r\n"
				. "Host: localhost\r\nConnection: $c\r\n\r\n";
			$sent++;
		}

		my $n = sysread($s, $buf, 65536, length $buf) or last;
		$got += () = $buf =~ /HTTP\/1\.1 204/g;
		$buf =~ s/.*HTTP\/1\.1 204//s;
	}

	close $s;
}

###############################################################################

# the same zone in text and protobuf, nothing in between

my $text = $t->metrics(port => 8082, accept => 'text/plain');
($status, $h, $body) = scrape();

my $families = eval { decode($body) };
ok($families, 'the body decodes') or diag($@);
$families ||= [];

my ($ps, $pmeta) = flatten($families);
my ($ts, $tmeta) = text_samples($text);

my @missing = grep { !exists $ps->{$_} } sort keys %$ts;
my @extra = grep { !exists $ts->{$_} } sort keys %$ps;
# the two scrapes are two connections apart
my @differ = grep { exists $ps->{$_} && $ps->{$_} != $ts->{$_}
	&& !/^railgun_nginx_connections_(accepted|handled)_total / }
	sort keys %$ts;

ok(!@missing, 'every text sample in protobuf')
	or diag(scalar(@missing) . " missing: @missing[0 .. 4]");
ok(!@extra, 'no protobuf sample the text has not')
	or diag(scalar(@extra) . " extra: @extra[0 .. 4]");
ok(!@differ, 'every value equal')
	or diag(join "\n", map { "$_: $ps->{$_} != $ts->{$_}" }
		@differ[0 .. ($#differ < 4 ? $#differ : 4)]);
# a family without samples has no message
delete @$tmeta{grep { !$text->{families}{$_}{samples} } keys %$tmeta};
is_deeply($pmeta, $tmeta, 'every family with samples, its type and help');
cmp_ok(scalar(keys %$ts), '>', $N, 'and there are many');

# the big family: in several messages, every series once

my @reqs = grep { $_->{name} eq 'railgun_http_requests_total' } @$families;
my %seen;
$seen{$_->{labels}{path}}++
	for map { @{$_->{metrics}} } @reqs;
cmp_ok(scalar @reqs, '>', 2, 'requests_total: ' . scalar(@reqs)
	. ' messages of one family');
is(scalar(grep { /^\/many\/series\d+$/ } keys %seen), $N, "$N label sets");
ok(!grep({ $_ > 1 } values %seen), 'none twice');

my @hostile_text = grep { m!^/many/! && !m!^/many/series\d+$! }
	map { $_->{labels}{path} }
	series($text, 'railgun_http_requests_total');
my @hostile_pb = grep { m!^/many/! && !m!^/many/series\d+$! } keys %seen;

is_deeply([ sort @hostile_pb ], [ sort @hostile_text ],
	'hostile label bytes: as the text unescapes them')
	or diag(join ' ', map { unpack 'H*', $_ } sort @hostile_pb);

my %pb = map { $_ => 1 } @hostile_pb;
is_deeply([ grep { !$pb{"/many/$_"} } grep { !/\xff/ } @hostile ], [],
	'valid UTF-8 arrives byte for byte');

# native histograms

sub native_of {
	my ($name, $path) = @_;

	for my $f (grep { $_->{name} eq $name } @$families) {
		for my $m (@{$f->{metrics}}) {
			return $m->{histogram}
				if ($m->{labels}{path} // '') eq $path;
		}
	}

	return undef;
}

my $api = native_of('railgun_http_request_duration_seconds', '/api');
ok($api && defined $api->{schema} && $api->{schema} == 3
	&& $api->{zero_threshold} == 2**-10, 'native: schema 3, threshold 2^-10');

my $nat = $api->{native} || {};
my $total = $api->{zero_count} // 0;
$total += $_ for values %$nat;
is($total, $api->{count}, 'native: zero + buckets = count');

sub bounds {
	my ($schema, $i) = @_;
	return (2**(($i - 1) / 2**$schema), 2**($i / 2**$schema));
}

# each group of requests is in buckets that meet its brackets, and all of
# it; a bucket (lo, hi] meets [d, c] if lo < c and hi >= d

sub in_brackets {
	my ($h, @b) = @_;

	my ($d, $c) = (9**9**9, 0);
	for (@b) {
		$d = $_->[0] - $Test::Railgun::TIMING_SLACK if $_->[0] - $Test::Railgun::TIMING_SLACK < $d;
		$c = $_->[1] + $Test::Railgun::TIMING_SLACK if $_->[1] + $Test::Railgun::TIMING_SLACK > $c;
	}

	my $n = 0;
	for my $i (keys %{$h->{native}}) {
		my ($lo, $hi) = bounds($h->{schema}, $i);
		$n += $h->{native}{$i} if $lo < $c && $hi >= $d;
	}

	return $n;
}

is(in_brackets($api, @fast), 6, '50 ms requests: in buckets that hold them');
is(in_brackets($api, @slow), 3, '400 ms requests: in buckets that hold them');

# exemplars ($request_id) in Bucket.exemplar: each in its bucket, of this
# run, a request id

my @ex = @{$api->{exemplars} || []};
my $t0 = $^T;
my @badex = grep {
	my $e = $_;
	my ($prev) = reverse grep { $_ < $e->{le} }
		map { $_->[0] } @{$api->{buckets}};
	!($e->{name} eq 'request_id' && $e->{value} =~ /^[0-9a-f]{32}$/
		&& $e->{v} <= $e->{le} && $e->{v} > ($prev // 0)
		&& $e->{time} >= $t0 - 1 && $e->{time} <= time() + 1)
} @ex;
ok(@ex >= 2 && !@badex, scalar(@ex) . ' exemplars, each in its bucket')
	or diag(explain(\@ex));

# against the classic buckets, in every native histogram of the scrape

my @bad;

for my $f (grep { $_->{type} eq 'histogram' } @$families) {
	for my $m (@{$f->{metrics}}) {
		my $x = $m->{histogram};
		next unless $x->{native};

		for my $b (@{$x->{buckets}}) {
			my ($below, $maybe) = ($x->{zero_count}, $x->{zero_count});

			for my $i (keys %{$x->{native}}) {
				my ($lo, $hi) = bounds($x->{schema}, $i);
				$below += $x->{native}{$i} if $hi <= $b->[0];
				$maybe += $x->{native}{$i} if $lo < $b->[0];
			}

			push @bad, "$f->{name} le=$b->[0]: $below <= $b->[1] <= $maybe"
				unless $below <= $b->[1] && $b->[1] <= $maybe;
		}
	}
}

ok(!@bad, 'native buckets agree with the classic ones') or diag("@bad");

my $classic = native_of('railgun_http_request_duration_seconds', '/classic');
ok($classic && !defined $classic->{schema} && $classic->{count} == 1,
	'railgun_native_histograms off: classic buckets only');

# an upstream's series is its peer's, whichever location: made by /api's
# first request, it is native, and counts /classic's request too

my ($ups) = map { $_->{histogram} } grep { $_->{labels}{upstream} eq 'fast' }
	map { @{$_->{metrics}} }
	grep { $_->{name} eq 'railgun_upstream_response_duration_seconds' }
	@$families;
ok($ups && defined $ups->{schema} && $ups->{count} == 10,
	'upstream durations: native too');

# HTTP/2, read slowly: its flow control closes and reopens the window

my $D = $t->testdir();
system('curl', '-s', '--http2-prior-knowledge', '--limit-rate', '2M',
	'-H', "Accept: $PROM", '-o', "$D/h2.pb",
	'http://127.0.0.1:' . port(8083) . '/metrics');
my $h2 = eval { decode($t->read_file('h2.pb')) } || [];
my ($h2s) = flatten($h2);
is_deeply([ sort grep { !/^railgun_nginx_connections/ } keys %$h2s ],
	[ sort grep { !/^railgun_nginx_connections/ } keys %$ps ],
	'HTTP/2: the same samples');

my ($wsh) = map { $_->{histogram} }
	map { @{$_->{metrics}} }
	grep { $_->{name} eq 'railgun_websocket_connection_duration_seconds' }
	@$families;
ok($wsh && defined $wsh->{schema} && $wsh->{count} == 1,
	'WebSocket session durations: native too');

# gzip: the same messages

my ($gs, $gh, $gbody) = scrape(gzip => 1);
is($gh->{'content-encoding'}, 'gzip', 'gzip');
my $g = eval { decode($gbody) } || [];
is(scalar(@$g), scalar(@$families), 'gzip: as many messages');

###############################################################################
