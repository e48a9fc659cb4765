#!/usr/bin/perl
#
# load.pl: a steady trickle of API requests for the ngx-railgun demo, so
# that the status page's rates and latencies move while you watch it.
#
#   load.pl --port 8080 [--rate 5] [--pidfile FILE] [--foreground]
#
# Sends about --rate requests per second (default 5) to a few API paths
# through nginx on 127.0.0.1:--port, one HTTP/1.0 request per connection,
# now and then one that gets a 404.  Without --foreground it forks into the
# background and writes its pid to --pidfile; SIGTERM stops it.  Core Perl
# only.

use strict;
use warnings;

use Getopt::Long;
use IO::Socket::INET;
use Time::HiRes qw(sleep);

use FindBin;
use lib $FindBin::Bin;
use DemoProc;

my %opt = (rate => 5);
GetOptions(\%opt, 'port=i', 'rate=f', 'pidfile=s', 'foreground')
    && $opt{port} && $opt{rate} > 0
    or die "usage: $0 --port PORT [--rate N] [--pidfile FILE]"
         . " [--foreground]\n";

detach('load', $opt{pidfile}, $opt{foreground});

$0 = "load.pl 127.0.0.1:$opt{port}";

my @paths = ('/api/v1/users', '/api/v1/orders', '/api/v1/health',
             '/api/v1/users/7', '/api/v1/users/42');
my $n = 0;

while (running()) {
    my $path = $n % 17 == 16 ? '/api/v1/no-such-thing'
             : $paths[$n % @paths];
    $n++;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$opt{port}",
                                  Timeout => 5);
    if ($s) {
        print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
        1 while <$s>;
        close $s;
    }

    sleep(1 / $opt{rate});
}
