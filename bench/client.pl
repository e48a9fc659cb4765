#!/usr/bin/perl

# bench/client.pl: N sequential GETs over one keepalive connection.
#
#   client.pl [options] PORT PATH N
#
# PATH may hold "%d": it is replaced by the request's number (from --first,
# default 0), e.g. "/s?p=/api/v1/items/%d" makes N distinct paths.  Every
# response is read in full (its Content-Length) before the next request is
# sent, so the client never runs ahead of a slow server (nginx under
# valgrind); a chunked body (the streamed scrape) is read to its last
# chunk.  Any status but 200, a response with neither Content-Length nor
# chunked transfer coding, or a connection closed by the server is fatal.
#
# Options:
#   --wait SECONDS   retry the connect that long (a server still starting)
#   --first N        number of the first request (default 0)
#   --out FILE       write the body of the last response to FILE
#   --accept VALUE   send an Accept header
#   --method METHOD  the request method (default GET; HEAD reads no body)
#   --gzip           send "Accept-Encoding: gzip" (the body is kept as sent)
#
# Prints "requests=N bytes=B seconds=S" on stdout.

use warnings;
use strict;

use FindBin;
use Getopt::Long;
use Time::HiRes qw/ time /;

use lib $FindBin::Bin;
use BenchWire;

my ($wait, $first, $out, $accept, $method, $gzip)
	= (0, 0, undef, undef, 'GET', 0);

GetOptions('wait=f' => \$wait, 'first=i' => \$first, 'out=s' => \$out,
	'accept=s' => \$accept, 'method=s' => \$method, 'gzip' => \$gzip)
	and @ARGV == 3
	or die "usage: $0 [--wait S] [--first N] [--out FILE] "
		. "[--accept V] [--method M] PORT PATH N\n";

my ($port, $path, $n) = @ARGV;

my $sock = connect_wait('client', $port, $wait);

my $extra = defined $accept ? "Accept: $accept\r\n" : '';
$extra .= "Accept-Encoding: gzip\r\n" if $gzip;
my $start = time();
my $bytes = 0;
my $buf = '';
my $body;

for my $i ($first .. $first + $n - 1) {
	(my $p = $path) =~ s/%d/$i/g;

	my $req = "$method $p HTTP/1.1\r\nHost: bench\r\n$extra\r\n";

	write_all($sock, $req) or die "client: write: $!\n";

	# the header, then exactly Content-Length bytes of body

	my $end;
	until (($end = index($buf, "\r\n\r\n")) >= 0) {
		fill(\$buf);
	}

	my $head = substr($buf, 0, $end + 4, '');

	$head =~ m!^HTTP/1\.[01] (\d{3})!
		or die "client: bad status line in request $i\n";
	$1 == 200
		or die "client: status $1 for $method $p\n";
	if ($method ne 'HEAD' && $head =~ m!\r\ntransfer-encoding:\s*chunked!i)
	{
		$body = '';
		$bytes += length($head);

		while (1) {
			my $e;
			until (($e = index($buf, "\r\n")) >= 0) {
				fill(\$buf);
			}

			my $size = hex(substr($buf, 0, $e));
			my $need = $e + 2 + $size + 2;

			fill(\$buf) while length($buf) < $need;

			$body .= substr($buf, $e + 2, $size);
			substr($buf, 0, $need, '');
			$bytes += $need;

			last if $size == 0;
		}

		next;
	}

	$head =~ m!\r\ncontent-length:\s*(\d+)!i
		or die "client: no Content-Length for $method $p\n";
	my $len = $method eq 'HEAD' ? 0 : $1;

	fill(\$buf) while length($buf) < $len;

	$body = substr($buf, 0, $len, '');
	$bytes += length($head) + $len;
}

my $seconds = time() - $start;

close $sock;

if (defined $out) {
	open my $fh, '>', $out or die "client: $out: $!\n";
	binmode $fh;
	print $fh $body;
	close $fh;
}

printf "requests=%d bytes=%d seconds=%.3f\n", $n, $bytes, $seconds;

sub fill {
	my ($b) = @_;
	read_more('client', $sock, $b);
}
