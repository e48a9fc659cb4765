#!/usr/bin/perl
#
# ws-client.pl: WebSocket clients for the ngx-railgun demo, keeping
# sessions open through nginx so that a scrape shows live sessions.
#
#   ws-client.pl --url ws://127.0.0.1:8080/ws/echo [--sessions 2]
#                [--every SECONDS] [--pidfile FILE] [--foreground]
#                [--name ws-client]
#
# Opens --sessions WebSocket sessions to --url and keeps them open: each
# sends a text message every --every seconds (default 1), a ping now and
# then, and reads whatever comes back.  A session that ends is opened again
# after a second.  One process, select() over the sessions.  Without
# --foreground it forks into the background and writes its pid to
# --pidfile; SIGTERM closes every session (a close frame each) and stops.
# Perl and Debian's libprotocol-websocket-perl only.

use strict;
use warnings;

use Getopt::Long;
use IO::Select;
use IO::Socket::INET;
use Protocol::WebSocket::Frame;
use Protocol::WebSocket::Handshake::Client;
use Time::HiRes qw(time);

use FindBin;
use lib $FindBin::Bin;
use DemoProc;

my %opt = (sessions => 2, every => 1, name => 'ws-client');
GetOptions(\%opt, 'url=s', 'sessions=i', 'every=f', 'pidfile=s',
           'foreground', 'name=s')
    && defined $opt{url} && $opt{url} =~ m{^ws://([^/:]+):(\d+)(/.*)?$}
    or die "usage: $0 --url ws://HOST:PORT/PATH [--sessions N]"
         . " [--every SECONDS] [--pidfile FILE] [--foreground]\n";

my ($host, $port) = ($1, $2);

detach($opt{name}, $opt{pidfile}, $opt{foreground});

$0 = "ws-client.pl $opt{name} $opt{url}";

my @sessions = map { { n => $_, retry => 0 } } 1 .. $opt{sessions};
my ($sent, $received) = (0, 0);

log_line("$opt{sessions} sessions to $opt{url}");

while (running()) {
    my $now = time;
    my $sel = IO::Select->new();
    my $wait = 1;

    for my $s (@sessions) {
        if (!$s->{sock}) {
            next if $now < $s->{retry};
            connect_session($s) or do { $s->{retry} = $now + 1; next };
        }

        if ($now >= $s->{next}) {
            $s->{count}++;
            my $msg = qq({"session":$s->{n},"seq":$s->{count}});
            my $type = $s->{count} % 10 == 0 ? 'ping' : 'text';
            send_frame($s, $msg, $type) or next;
            $sent++ if $type eq 'text';
            $s->{next} = $now + $opt{every};
        }

        my $left = $s->{next} - $now;
        $wait = $left if $left < $wait;
        $sel->add($s->{sock});
    }

    $wait = 0 if $wait < 0;

    for my $fh ($sel->can_read($wait)) {
        my ($s) = grep { $_->{sock} && $_->{sock} == $fh } @sessions;
        next unless $s;

        my $n = sysread($fh, my $buf, 65536);
        if (!$n) {
            drop($s, 'closed by the server');
            next;
        }

        $s->{frame}->append($buf);
        while (defined(my $msg = $s->{frame}->next_bytes)) {
            if ($s->{frame}->is_close) {
                drop($s, 'close frame from the server');
                last;
            }
            $received++ if $s->{frame}->is_text || $s->{frame}->is_binary;
        }
    }
}

for my $s (grep { $_->{sock} } @sessions) {
    send_frame($s, pack('n', 1001), 'close');
    close $s->{sock};
}

log_line("stopped: $sent messages sent, $received received");
unlink $opt{pidfile} if $opt{pidfile};
exit 0;


sub connect_session {
    my ($s) = @_;

    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                     Proto => 'tcp', Timeout => 5)
        or return 0;
    binmode $sock;
    $sock->autoflush(1);

    my $hs = Protocol::WebSocket::Handshake::Client->new(url => $opt{url});
    print {$sock} $hs->to_string;

    my $sel = IO::Select->new($sock);
    my $deadline = time + 5;

    until ($hs->is_done) {
        if (time > $deadline || !$sel->can_read(1)) {
            next if time <= $deadline;
            close $sock;
            return 0;
        }
        my $n = sysread($sock, my $buf, 4096);
        if (!$n || !$hs->parse($buf)) {
            log_line("session $s->{n}: handshake failed: "
                     . ($hs->error || 'connection closed'));
            close $sock;
            return 0;
        }
    }

    $s->{sock} = $sock;
    $s->{frame} = $hs->build_frame;
    $s->{next} = time;
    return 1;
}

sub drop {
    my ($s, $why) = @_;

    log_line("session $s->{n}: $why, reconnecting");
    close $s->{sock};
    delete $s->{sock};
    $s->{retry} = time + 1;
}

sub send_frame {
    my ($s, $payload, $type) = @_;

    my $bytes = Protocol::WebSocket::Frame->new(buffer => $payload,
                                                type => $type,
                                                masked => 1)->to_bytes;
    return 1 if print {$s->{sock}} $bytes;

    drop($s, "write failed: $!");
    return 0;
}
