package DemoProc;

# The process chores the demo's helpers (api-backend.pl, ws-echo.pl,
# ws-client.pl, load.pl) share: going into the background with a pid file,
# stopping on SIGTERM, the accept-and-fork loop of the two servers, and
# log lines on stderr.  Core Perl only.
#
#   listen_on(NAME, ADDR, PORT)
#       the listening socket of a server on ADDR:PORT; dies if it cannot
#       bind, before the server detaches, so that the exit status says so
#   detach(NAME, PIDFILE, FOREGROUND, group => 1)
#       without FOREGROUND, forks: the parent writes the child's pid to
#       PIDFILE (if one is named) and exits, the child leads a session of
#       its own (setsid) with stdin and stdout on /dev/null.  With
#       FOREGROUND, writes its own pid; group => 1 makes it lead a process
#       group there too, so that forking_server's end reaches its children.
#       Then SIGTERM and SIGINT stop it (see running), SIGPIPE is ignored.
#   running()
#       true until SIGTERM or SIGINT came
#   forking_server(SERVER, CODE)
#       accepts on the listening SERVER until stopped, each connection
#       served by CODE->(SOCKET) in a child of its own; then sends TERM to
#       the children still serving (when it leads a process group), removes
#       the pid file and logs "stopped"
#   log_line(MSG...)
#       "DATE TIME NAME[PID]: MSG" on stderr

use strict;
use warnings;

use base qw(Exporter);

our @EXPORT = qw(listen_on detach running forking_server log_line);

use IO::Socket::INET;
use POSIX qw(setsid WNOHANG);

my $NAME = $0;
my $PIDFILE;
my $RUNNING = 1;

sub listen_on {
    my ($name, $addr, $port) = @_;

    my $server = IO::Socket::INET->new(
        LocalAddr => $addr,
        LocalPort => $port,
        Proto     => 'tcp',
        Listen    => 128,
        ReuseAddr => 1,
    ) or die "$name: cannot listen on $addr:$port: $@\n";

    return $server;
}

sub detach {
    my ($name, $pidfile, $foreground, %o) = @_;

    ($NAME, $PIDFILE) = ($name, $pidfile);

    if (!$foreground) {
        defined(my $pid = fork) or die "$name: fork: $!\n";
        if ($pid) {
            write_pidfile($pid) if $pidfile;
            exit 0;
        }
        setsid();
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';

    } else {
        setpgrp(0, 0) if $o{group};
        write_pidfile($$) if $pidfile;
    }

    $SIG{TERM} = $SIG{INT} = sub { $RUNNING = 0 };
    $SIG{PIPE} = 'IGNORE';
}

sub running {
    return $RUNNING;
}

sub forking_server {
    my ($server, $serve) = @_;

    $SIG{CHLD} = sub { 1 while waitpid(-1, WNOHANG) > 0 };

    while ($RUNNING) {
        my $client = $server->accept or next;    # EINTR from SIGCHLD: retry

        my $pid = fork;
        if (!defined $pid) {
            log_line("fork: $!");
            close $client;
            next;
        }

        if ($pid == 0) {
            $SIG{TERM} = $SIG{INT} = 'DEFAULT';
            $SIG{CHLD} = 'DEFAULT';
            close $server;
            srand($$ ^ time);
            $serve->($client);
            exit 0;
        }

        close $client;
    }

    # connections still open (keep-alive, sessions) are served by
    # children: end them too
    if (getpgrp() == $$) {
        local $SIG{TERM} = 'IGNORE';
        kill 'TERM', -$$;
    }

    unlink $PIDFILE if $PIDFILE;
    log_line("stopped");
}

sub write_pidfile {
    my ($pid) = @_;
    open my $fh, '>', $PIDFILE
        or die "$NAME: cannot write $PIDFILE: $!\n";
    print {$fh} "$pid\n";
    close $fh;
}

sub log_line {
    my @t = localtime;
    printf STDERR "%04d-%02d-%02d %02d:%02d:%02d %s[%d]: %s\n",
        $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0], $NAME, $$, "@_";
}

1;
