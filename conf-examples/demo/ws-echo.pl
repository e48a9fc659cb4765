#!/usr/bin/perl
#
# ws-echo.pl: a small WebSocket echo server for the ngx-railgun demo.
#
#   ws-echo.pl --port PORT [--listen 127.0.0.1] [--name ws]
#              [--tick SECONDS] [--pidfile FILE] [--foreground]
#
# A forking server (one process per connection).  A WebSocket upgrade
# request (RFC 6455) gets its 101, then every text or binary message is
# sent back as it came, pings get their pong, a close gets its close.  With
# --tick, the server also pushes a text message {"tick":N} every SECONDS,
# so that messages flow to clients that send nothing.  A plain HTTP GET
# (no Upgrade) gets 200 {"status":"ok"}: the health check of the demo.
#
# It binds before it detaches, so a busy port is reported by the exit
# status; without --foreground it then forks into the background and writes
# the background pid to --pidfile.  SIGTERM stops it and its connections.
# Perl and Debian's libprotocol-websocket-perl only.

use strict;
use warnings;

use Getopt::Long;
use IO::Select;
use Protocol::WebSocket::Frame;
use Protocol::WebSocket::Handshake::Server;
use Time::HiRes qw(time);

use FindBin;
use lib $FindBin::Bin;
use DemoProc;

my %opt = (listen => '127.0.0.1', name => 'ws', tick => 0);
GetOptions(\%opt, 'port=i', 'listen=s', 'name=s', 'tick=f', 'pidfile=s',
           'foreground')
    && defined $opt{port}
    or die "usage: $0 --port PORT [--listen ADDR] [--name NAME]"
         . " [--tick SECONDS] [--pidfile FILE] [--foreground]\n";

my $server = listen_on($opt{name}, $opt{listen}, $opt{port});

# in the foreground too, lead a process group: TERM ends the sessions
detach($opt{name}, $opt{pidfile}, $opt{foreground}, group => 1);

$0 = "ws-echo.pl $opt{name} $opt{listen}:$opt{port}";

log_line("listening on $opt{listen}:$opt{port}");

forking_server($server, \&serve);
exit 0;


sub serve {
    my ($c) = @_;

    binmode $c;
    $c->autoflush(1);

    my $hs = Protocol::WebSocket::Handshake::Server->new;
    my $sel = IO::Select->new($c);
    my $head = '';

    # the request header, at most 16 KB within 30 s
    my $deadline = time + 30;
    while ($head !~ /\r\n\r\n/) {
        return if time > $deadline || length $head > 16384;
        next unless $sel->can_read(1);
        sysread($c, $head, 4096, length $head) or return;
    }

    if ($head !~ /^upgrade:\s*websocket\s*$/mi) {
        my $body = qq({"status":"ok","instance":"$opt{name}"}\n);
        print {$c} "HTTP/1.1 200 OK\r\n"
                 . "Content-Type: application/json\r\n"
                 . "Content-Length: " . length($body) . "\r\n"
                 . "Connection: close\r\n\r\n"
                 . ($head =~ /^HEAD / ? '' : $body);
        return;
    }

    my $rest = $head;
    $hs->parse($rest);

    if ($hs->error || !$hs->is_done) {
        print {$c} "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                 . "Connection: close\r\n\r\n";
        return;
    }

    print {$c} $hs->to_string;

    my $frame = $hs->build_frame(max_payload_size => 64 * 1024 * 1024);
    $frame->append($rest) if length $rest;

    my $ticks = 0;
    my $next_tick = $opt{tick} ? time + $opt{tick} : undef;

    while (1) {
        while (defined(my $msg = $frame->next_bytes)) {
            my $op = $frame->opcode;

            if ($op == 8) {                         # close: answer, end
                send_frame($c, $msg, 'close');
                return;
            }

            if ($op == 9) {                         # ping: pong
                send_frame($c, $msg, 'pong');
                next;
            }

            next if $op == 10;                      # a pong: nothing

            send_frame($c, $msg, $op == 2 ? 'binary' : 'text');
        }

        my $wait = defined $next_tick ? $next_tick - time : 60;
        $wait = 0 if $wait < 0;

        if ($sel->can_read($wait)) {
            my $n = sysread($c, my $buf, 65536);
            return unless $n;
            $frame->append($buf);
        }

        if (defined $next_tick && time >= $next_tick) {
            $ticks++;
            send_frame($c, qq({"tick":$ticks}), 'text') or return;
            $next_tick += $opt{tick};
        }
    }
}

sub send_frame {
    my ($c, $payload, $type) = @_;

    my $bytes = Protocol::WebSocket::Frame->new(buffer => $payload,
                                                type => $type)->to_bytes;
    return print {$c} $bytes;
}
