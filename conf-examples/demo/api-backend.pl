#!/usr/bin/perl
#
# api-backend.pl: a small fake JSON API for the ngx-railgun demo.
#
#   api-backend.pl --port PORT [--listen 127.0.0.1] [--name api-1]
#                  [--pidfile FILE] [--foreground]
#
# A forking HTTP/1.1 server (one process per connection, keep-alive
# honoured) with a few endpoints whose latency and errors make the metrics
# worth looking at:
#
#   GET  /api/v1/health        200, immediately
#   GET  /api/v1/users         200, 2-40 ms
#   GET  /api/v1/users/ID      200 for ID 1-50, else 404, 2-20 ms
#   GET  /api/v1/orders        200, 5-200 ms, 1 in 20 answers 500
#   POST /api/v1/orders        201, 10-120 ms, 1 in 20 answers 500
#   anything else              404 (405 for a known path, wrong method)
#
# It binds before it detaches, so a busy port is reported by the exit
# status; without --foreground it then forks into the background and writes
# the background pid to --pidfile.  SIGTERM stops it.  Core Perl only.

use strict;
use warnings;

use Getopt::Long;
use Time::HiRes qw(sleep);

use FindBin;
use lib $FindBin::Bin;
use DemoProc;

my %opt = (listen => '127.0.0.1', name => 'api');
GetOptions(\%opt, 'port=i', 'listen=s', 'name=s', 'pidfile=s', 'foreground')
    && defined $opt{port}
    or die "usage: $0 --port PORT [--listen ADDR] [--name NAME]"
         . " [--pidfile FILE] [--foreground]\n";

my $server = listen_on($opt{name}, $opt{listen}, $opt{port});

detach($opt{name}, $opt{pidfile}, $opt{foreground});

$0 = "api-backend.pl $opt{name} $opt{listen}:$opt{port}";

log_line("listening on $opt{listen}:$opt{port}");

forking_server($server, \&serve);
exit 0;


sub serve {
    my ($c) = @_;

    $c->autoflush(1);

    while (1) {
        my $line = read_line($c, 30) // return;
        next if $line eq '';                     # stray CRLF between requests

        my ($method, $target, $version) =
            $line =~ m{^([A-Z]+) (\S+) HTTP/(1\.[01])$}
            or return respond($c, '1.0', 0, 400, { error => 'bad request' });

        my %h;
        while (defined(my $hl = read_line($c, 30))) {
            last if $hl eq '';
            my ($k, $v) = $hl =~ /^([^:]+):\s*(.*)$/ or next;
            $h{lc $k} = $v;
        }

        my $body = '';
        my $len = $h{'content-length'} // 0;
        return if $len !~ /^\d+$/ || $len > 1048576;
        while (length($body) < $len) {
            my $n = sysread($c, $body, $len - length($body), length $body);
            return unless $n;
        }

        my $conn = lc($h{connection} // '');
        my $keep = $version eq '1.1' ? $conn ne 'close' : $conn eq 'keep-alive';

        my ($status, $doc) = route($method, $target, $body);
        respond($c, $version, $keep, $status, $doc, $method eq q{HEAD})
            or return;
        return unless $keep;
    }
}

sub route {
    my ($method, $target, $body) = @_;

    my ($path) = $target =~ m{^([^?]*)};
    my $get = $method eq 'GET' || $method eq 'HEAD';

    if ($path eq '/api/v1/health') {
        return not_allowed($method) unless $get;
        return (200, { status => 'ok', instance => $opt{name} });
    }

    if ($path eq '/api/v1/users') {
        return not_allowed($method) unless $get;
        delay(2, 40);
        return (200, { users => [map { user($_) } 1 .. 5], total => 50 });
    }

    if ($path =~ m{^/api/v1/users/(\d+)$}) {
        my $id = $1;
        return not_allowed($method) unless $get;
        delay(2, 20);
        return (404, { error => "no user $id" }) if $id < 1 || $id > 50;
        return (200, user($id));
    }

    if ($path eq '/api/v1/orders' && $method eq 'POST') {
        delay(10, 120);
        return (500, { error => 'order service unavailable' })
            if rand() < 0.05;
        return (201, { id => int(rand 100000), status => 'created',
                       bytes => length $body });
    }

    if ($path eq '/api/v1/orders') {
        return not_allowed($method) unless $get;
        delay(5, 200);
        return (500, { error => 'database timeout' }) if rand() < 0.05;
        return (200, { orders => [map { +{ id => $_, total => $_ * 7.5 } }
                                  1 .. 10] });
    }

    return (404, { error => 'not found', path => $path });
}

sub not_allowed {
    my ($method) = @_;
    return (405, { error => "method $method not allowed" });
}

sub user {
    my ($id) = @_;
    return { id => $id, name => "user$id", email => "user$id\@example.test" };
}

sub delay {
    my ($min_ms, $max_ms) = @_;
    sleep(($min_ms + rand($max_ms - $min_ms)) / 1000);
}

sub respond {
    my ($c, $version, $keep, $status, $doc, $head_only) = @_;

    my %reason = (200 => 'OK', 201 => 'Created', 400 => 'Bad Request',
                  404 => 'Not Found', 405 => 'Method Not Allowed',
                  500 => 'Internal Server Error');

    my $json = to_json($doc) . "\n";
    my $head = "HTTP/$version $status $reason{$status}\r\n"
             . "Content-Type: application/json\r\n"
             . "Content-Length: " . length($json) . "\r\n"
             . "X-Backend: $opt{name}\r\n"
             . "Connection: " . ($keep ? 'keep-alive' : 'close') . "\r\n"
             . "\r\n";

    return print {$c} $head, ($head_only ? q{} : $json);
}

sub read_line {
    my ($c, $timeout) = @_;

    my $line = '';
    my $rin = '';
    vec($rin, fileno $c, 1) = 1;

    while (1) {
        return undef unless select(my $rout = $rin, undef, undef, $timeout);
        my $n = sysread($c, my $ch, 1);
        return undef unless $n;
        return $line =~ s/\r$//r if $ch eq "\n";
        $line .= $ch;
        return undef if length $line > 8192;
    }
}

# Enough JSON for the documents above: hashes (sorted keys), arrays,
# numbers and strings.
sub to_json {
    my ($v) = @_;

    return 'null' unless defined $v;
    if (ref $v eq 'HASH') {
        return '{' . join(',', map { to_json("$_") . ':' . to_json($v->{$_}) }
                               sort keys %$v) . '}';
    }
    if (ref $v eq 'ARRAY') {
        return '[' . join(',', map { to_json($_) } @$v) . ']';
    }
    return $v if $v =~ /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;
    $v =~ s/(["\\])/\\$1/g;
    $v =~ s/([\x00-\x1f])/sprintf '\\u%04x', ord $1/ge;
    return qq{"$v"};
}
