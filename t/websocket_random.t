#!/usr/bin/perl

# Random frame streams through the tunnel, checked against the client's own
# count: data messages of every length encoding, fragmented ones with pings
# and pongs between their fragments, written in pieces of random sizes (one
# byte to tens of KB) and echoed as they come by a raw backend, read back in
# rounds so that nginx's writes to the client are partial and wait.  Both
# directions carry the same bytes, so both count exactly the client's
# messages and payload bytes, with small and with default proxy buffers.
# RAILGUN_WS_SEED repeats a run.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;
use Test::Railgun::WebSocket;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

eval { require IO::Socket::SSL; };
plan(skip_all => 'IO::Socket::SSL not installed') if $@;

my $t = Test::Railgun->new()->has_daemon('openssl')->plan(7);

# TLS on both sides: the client's, and the upstream's, another server of
# this nginx that proxies to the raw backend

ws_front($t, tls => 1, paths => [ '/big/raw' ], locations => <<'EOF',
        location /small/raw {
            proxy_buffer_size  1k;
            proxy_pass http://ws_up;
        }
EOF
	servers => <<'EOF');
    server {
        listen       127.0.0.1:%%PORT_8443%% ssl;
        server_name  secure;

        ssl_certificate      cert.pem;
        ssl_certificate_key  key.pem;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade $http_upgrade;
        proxy_set_header    Connection "upgrade";

        location /tls/raw {
            proxy_buffer_size  1k;
            proxy_pass https://127.0.0.1:%%PORT_8444%%;
        }
    }

    server {
        listen       127.0.0.1:%%PORT_8444%% ssl;
        server_name  inner;

        ssl_certificate      cert.pem;
        ssl_certificate_key  key.pem;

        proxy_http_version  1.1;
        proxy_set_header    Upgrade $http_upgrade;
        proxy_set_header    Connection "upgrade";

        location /tls/raw {
            proxy_pass http://ws_up;
        }
    }
EOF

###############################################################################

my $seed = $ENV{RAILGUN_WS_SEED} || time();
note("seed $seed");
srand($seed);

sub size {
	my $r = rand;
	return int rand 126 if $r < 0.4;
	return (0, 1, 125, 126, 127, 65535, 65536, 65537)[int rand 8]
		if $r < 0.6;
	return int rand 70000 if $r < 0.9;
	return int rand 200000;
}

sub enc {
	my ($len) = @_;
	my @e = grep { $_ == 64 || ($_ == 16 && $len < 65536)
		|| ($_ == 7 && $len < 126) } (7, 16, 64);
	return $e[int rand @e];
}

sub frame {
	my ($op, $len, %o) = @_;
	return ws_frame($op, 'z' x $len, mask => 1, len => enc($len), %o);
}

sub control {
	my $len = int rand 126;

	# a control frame's length has 7 bits (RFC 6455, 5.5)
	return ws_frame((9, 10)[int rand 2], 'c' x $len, mask => 1, len => 7);
}

# a batch of frames: its bytes, its data messages and their payload bytes

sub batch {
	my ($bytes, $messages, $payload) = ('', 0, 0);

	while (length $bytes < 300000) {
		my $r = rand;

		if ($r < 0.15) {
			$bytes .= control();
			next;
		}

		$messages++;

		if ($r < 0.7) {
			my $len = size();
			$bytes .= frame(1 + int rand 2, $len);
			$payload += $len;
			next;
		}

		my $n = 1 + int rand 4;

		for my $i (0 .. $n) {
			my $len = size();
			$bytes .= frame($i ? 0 : 1 + int rand 2, $len,
				fin => $i == $n);
			$payload += $len;
			$bytes .= control() if rand() < 0.5 && $i < $n;
		}
	}

	return ($bytes, $messages, $payload);
}

sub pieces {
	my ($len) = @_;
	my @s;

	for (my $off = 0; $off < $len; ) {
		my $n = rand() < 0.3 ? 1 + int rand 3 : 1 + int rand 30000;
		push @s, $n;
		$off += $n;
	}

	return \@s;
}

for my $case (['localhost', '/small/raw'], ['localhost', '/big/raw'],
	['secure', '/tls/raw', 8443])
{
	my ($server, $path, $port) = @$case;
	my ($messages, $payload, $ok) = (0, 0, 1);

	my $ws = ws_connect(path => $path, port => $port || 8080,
		ssl => $port ? 1 : 0);

	for (1 .. 6) {
		my ($bytes, $m, $p) = batch();

		$ws->write($bytes, sizes => pieces(length $bytes));
		$ok &&= $ws->read_bytes(length $bytes, 30) eq $bytes;

		$messages += $m;
		$payload += $p;
	}

	ok($ok, "$path: echoed");

	$ws->close();

	my %want = (in_messages => $messages, out_messages => $messages,
		in_bytes => $payload, out_bytes => $payload,
		in_errors => 0, out_errors => 0, active => 0);

	# the TLS case's inner hop is a session of its own, as exact

	for my $l ({ server => $server, path => $path },
		$port ? { server => 'inner', path => $path } : ())
	{
		my $m = wait_metrics($t, sub {
			my $s = ws_stats($_[0], $l);
			!grep { $s->{$_} != $want{$_} } keys %want;
		});
		my $s = ws_stats($m, $l);

		is_deeply({ map { $_ => $s->{$_} } keys %want }, \%want,
			"$l->{server} $path: the client's counts (seed $seed)");
	}
}

###############################################################################
