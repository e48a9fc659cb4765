#!/usr/bin/perl

# Tests for how long a scrape holds the worker's event loop, without timing
# anything: from nginx's debug log, a write event of a scrape renders at
# most one buffer, and one round of the event loop at most a few (the
# module's round of 2, of which a cycle may see the end of one and the
# whole next), however many scrapes run; each buffer rendered is one chunk
# the client received, the bytes the client counted.  Over HTTP/1.1 read at
# full speed, several scrapes at once, gzip, and HTTP/2.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw/ time /;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $NPATHS = 1000;
my $NSCRAPES = 6;

# NGX_HTTP_RAILGUN_ROUND: buffers a round of the event loop renders
my $ROUND = 2;

# the debug log is what is read
plan(skip_all => 'nginx built without --with-debug')
	unless `$Test::Railgun::NGINX -V 2>&1` =~ /--with-debug/;

my $t = Test::Railgun->new()->has_daemon('curl')->plan(15);

my $d = $t->testdir();

# the debug log is a second error_log: error.log stays at info for the
# harness's checks
$t->write_file_expand('nginx.conf', <<"EOF");

%%TEST_GLOBALS%%
error_log $d/debug.log debug;

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        listen       127.0.0.1:%%PORT_8081%% http2;
        server_name  localhost;
        keepalive_requests 100000;

        location /items/ {
            railgun_path \$uri;
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
            gzip_min_length 0;
        }
    }
}

EOF

$t->run();

###############################################################################

# series to make the body many buffers: HTTP/1.1 pipelined on one
# connection, the last request closing it
my $req = join '', map {
	"GET /items/$_ HTTP/1.1\r\nHost: localhost\r\n"
		. ($_ == $NPATHS ? "Connection: close\r\n" : '') . "\r\n"
} 1 .. $NPATHS;
my $made = () = http($req, timeout => 60) =~ m!^HTTP/1.1 200 !mg;
is($made, $NPATHS, 'requests made');

# GETs of /metrics over HTTP/1.1, read at full speed side by side; returns
# for each the data chunks' sizes and the body
sub scrapes {
	my ($n, $path) = @_;

	my (@s, %buf, %done);
	my $sel = IO::Select->new();

	for my $i (0 .. $n - 1) {
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:'
			. port(8080)) or die "connect: $!";
		binmode $s;
		syswrite($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
			. "Connection: close\r\n\r\n");
		push @s, $s;
		$sel->add($s);
		$buf{$s} = '';
	}

	my $deadline = time() + 60;

	while ($sel->count() && time() < $deadline) {
		for my $s ($sel->can_read(1)) {
			my $r = sysread($s, $buf{$s}, 65536, length $buf{$s});
			next if $r;
			$sel->remove($s);
			close $s;
		}
	}

	return map { dechunk($buf{$_}) } @s;
}

# [sizes of the data chunks], the body; for a chunked 200 read whole
sub dechunk {
	my ($raw) = @_;

	my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
	return [[], undef] unless $head =~ m!^HTTP/1.1 200 !
		&& $head =~ /^transfer-encoding: chunked\r?$/mi;

	my (@sizes, $body);
	$body = '';

	while ($rest =~ s/^([0-9a-f]+)\r\n//i) {
		my $size = hex $1;
		last if $size == 0;
		push @sizes, $size;
		$body .= substr($rest, 0, $size, '');
		$rest =~ s/^\r\n// or return [[], undef];
	}

	return [\@sizes, $body];
}

# What the debug log says since OFFSET: per connection, the renders of each
# of its events (the first, in the content handler, up to the next "http
# run request", then one count per event); per worker cycle, the renders;
# the bytes of every render, in order, per connection
sub events {
	my ($offset) = @_;

	my $log = $t->read_file('debug.log');
	my (%ev, %bytes, @cycle);

	for my $line (split /\n/, substr($log, $offset)) {
		if ($line =~ /\] \d+#\d+: worker cycle$/) {
			push @cycle, 0;
			next;
		}

		$line =~ /\] \d+#\d+: \*(\d+) (.*)$/ or next;
		my ($c, $msg) = ($1, $2);

		if ($msg =~ /^http process request line$/) {
			$ev{$c} = [0];

		} elsif ($msg =~ /^http run request: /) {
			push @{$ev{$c}}, 0 if $ev{$c};

		} elsif ($msg =~ /^railgun: scrape buffer rendered: (\d+) bytes/) {
			$ev{$c} //= [0];
			$ev{$c}[-1]++;
			$cycle[-1]++ if @cycle;
			push @{$bytes{$c}}, $1;
		}
	}

	return (\%ev, \@cycle, \%bytes);
}

sub max { my $m = 0; $_ > $m and $m = $_ for @_; $m }
sub sum { my $s = 0; $s += $_ for @_; $s }

###############################################################################

# one scrape read at full speed: one buffer an event; a chunk a buffer

my $off = length $t->read_file('debug.log');
my ($one) = scrapes(1, '/metrics');
my ($ev, $cycle, $bytes) = events($off);

my @renders = map { @$_ } values %$ev;
my @nonempty = grep { $_ } map { @$_ } values %$bytes;

ok(length($one->[1] // '') > 8 * 65536, 'body of many buffers');
is(max(@renders), 1, 'one buffer an event');
is(scalar(@nonempty), scalar(@{$one->[0]}), 'a chunk a buffer rendered')
	or diag("renders @nonempty, chunks @{$one->[0]}");
is(sum(@nonempty), length($one->[1]), 'bytes rendered, bytes received');
ok(max(@$cycle) <= $ROUND, 'one scrape: a round of the loop, a round')
	or diag("renders per cycle: max " . max(@$cycle));

# many scrapes at once: still one buffer an event, and a round of the loop
# renders its round, or the end of one and the next

$off = length $t->read_file('debug.log');
my @many = scrapes($NSCRAPES, '/metrics');
($ev, $cycle, $bytes) = events($off);

is(scalar(grep { ($_->[1] // '') =~ /\nrailgun_build_info\{[^\n]*\} 1\n\z/ }
	@many), $NSCRAPES, 'every scrape whole');
is(scalar(keys %$bytes), $NSCRAPES, 'each scrape rendered');
is(max(map { @$_ } values %$ev), 1, 'many: one buffer an event');
ok(max(@$cycle) <= 2 * $ROUND, "many: a cycle of the loop, two rounds at most")
	or diag("renders per cycle: max " . max(@$cycle));
note("$NSCRAPES scrapes: renders per cycle at most " . max(@$cycle));
is(sum(map { scalar @{$_->[0]} } @many),
	scalar(grep { $_ } map { @$_ } values %$bytes),
	'many: a chunk a buffer rendered');

# gzip: the filter's work per event is that of one buffer

$off = length $t->read_file('debug.log');
my $gz = `curl -s -o /dev/null -w '%{http_code} %{size_download}' \\
	-H 'Accept-Encoding: gzip' http://127.0.0.1:@{[ port(8080) ]}/gz`;
($ev, $cycle, $bytes) = events($off);

like($gz, qr/^200 [1-9]/, 'gzip scrape');
is(max(map { @$_ } values %$ev), 1, 'gzip: one buffer an event');

# HTTP/2: a stream's events, one buffer each

$off = length $t->read_file('debug.log');
my $h2 = `curl -s --http2-prior-knowledge -o /dev/null \\
	-w '%{http_code} %{size_download}' \\
	http://127.0.0.1:@{[ port(8081) ]}/metrics`;
($ev, $cycle, $bytes) = events($off);

ok($h2 =~ /^200 (\d+)$/ && $1 > 8 * 65536, 'HTTP/2 scrape') or diag($h2);
is(max(map { @$_ } values %$ev), 1, 'HTTP/2: one buffer an event');

###############################################################################
