#!/usr/bin/perl

# Tests that a small zone holds what its bytes allow: a 1 MB zone, filled
# with label sets of the request families (a path each), runs out of bytes
# before its series table, so that the first sample sent to an overflow
# series finds the zone nearly all used.

###############################################################################

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Test::Railgun;

use IO::Socket::INET;

###############################################################################

select STDERR; $| = 1;
select STDOUT; $| = 1;

my $t = Test::Railgun->new()->has_daemon('promtool')->plan(5)
	->write_file_expand('nginx.conf', <<'EOF');

%%TEST_GLOBALS%%

events {
}

http {
    %%TEST_GLOBALS_HTTP%%

    access_log off;

    railgun_zone 1m;

    server {
        listen       127.0.0.1:%%PORT_8080%%;
        server_name  localhost;

        keepalive_requests 100000;

        location = /metrics {
            railgun_metrics;
            railgun off;
        }

        location /p/ {
            railgun_path $uri;
            return 204;
        }
    }
}

EOF

$t->run();

###############################################################################

my $s = IO::Socket::INET->new(
	Proto => 'tcp',
	PeerAddr => '127.0.0.1:' . port(8080),
) or die "connect: $!";

sub get {
	my ($path) = @_;

	syswrite($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n");

	my $buf = '';
	while ($buf !~ /\r\n\r\n/) {
		sysread($s, $buf, 4096, length $buf) or return undef;
	}

	return $buf =~ m!^HTTP/1\.1 204 !;
}

my $REQS = 'railgun_http_requests_total';

# a label set per path, until the first one goes to the overflow series

my ($sent, $m, $dropped) = (0, undef, 0);

# (scraped now and then only: each scrape is checked by promtool)

while ($sent < 20000 && !$dropped) {
	for (1 .. ($sent ? 100 : 1500)) {
		get(sprintf('/p/%06d', $sent++)) or last;
	}

	$m = $t->metrics();
	$dropped = sample($m, 'railgun_series_dropped_total',
		{ family => $REQS });
}

ok($dropped, 'the zone filled');

my @sets = grep { ($_->{labels}{path} // '') =~ m!^/p/! } series($m, $REQS);
my $used = sample($m, 'railgun_zone_bytes', { state => 'used' });
my $size = sample($m, 'railgun_zone_bytes', { state => 'size' });

note(sprintf('%d label sets, %.0f%% of %d bytes used', scalar @sets,
	100 * $used / $size, $size));

ok($used >= 0.9 * $size, 'the bytes ran out first')
	or diag("$used of $size bytes used");
ok(@sets >= 1536, 'twice the label sets of a table-bound zone')
	or diag(scalar @sets . ' label sets');

my $log = $t->read_file('error.log');
like($log, qr/zone full, samples of "$REQS"/, 'logged as a full zone');
unlike($log, qr/series table full/, 'the table never filled');

###############################################################################
