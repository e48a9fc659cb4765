package Test::Railgun::Probe;

# Helpers for the active probe tests (t/probe*.t), next to Test::Railgun:
#
#   - real redis-server processes on free loopback ports, each with a config
#     file written here (master, replica, requirepass, ACL users, maxmemory),
#     stopped, SIGSTOPped and SIGCONTed at will;
#   - fake TCP servers with a misbehaviour: garbage, a huge bulk reply, an
#     array bomb, a slow drip, accept and never answer, a canned reply;
#   - an HTTP target whose status and body the test changes at run time (it
#     re-reads a file per request) and which keeps the requests it got;
#   - a log of the connections each fake or HTTP target accepted, with the
#     time and, on request, the pid of the nginx process that connected;
#   - quick scrapes for tight polling loops (no promtool run), probe
#     accessors, transition log lines, VmRSS.
#
# Every server is a forked process leading its own process group; the ones
# still running are stopped from END (after a SIGCONT, in case they are
# stopped).  Forked children leave with POSIX::_exit and never run END.

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ redis_start redis_stop redis_pause redis_resume redis_cmd
	redis_info fake_server http_target http_set http_requests accepts
	server_stop scrape_fast probe_up probe_checks probe_checks_total
	probe_transitions probe_gauge transition_lines wait_for rss_kb
	redis_reply_bulk scrape_errors redis_monitor monitor_lines observations
	proc_start_time /;

use IO::Select;
use Scalar::Util ();
use IO::Socket::INET;
use Socket ();
use POSIX qw/ :sys_wait_h /;
use Test::More ();
use Time::HiRes qw/ sleep time /;

use Test::Railgun ();

our $REDIS = $ENV{RAILGUN_REDIS_SERVER} || '/usr/bin/redis-server';

our @RESULTS = qw/ ok timeout refused error bad_status bad_body bad_role
	auth tls /;

my %SERVERS;		# pid => { pid, port, name }
my @SCRAPE_ERRORS;		# problems of fast scrapes and observations
my $PARENT = $$;

END {
	local ($?, $@);
	return unless $$ == $PARENT;

	# nginx first, so that its probes do not see the targets go away
	my %t = map { Scalar::Util::refaddr($_->{t}) => $_->{t} }
		grep { $_->{t} } values %SERVERS;
	$_->stop() for values %t;

	server_stop($_) for values %SERVERS;
}

###############################################################################

# Forks a server leading its own process group; returns its record.

sub spawn_server {
	my ($t, $port, $name, $code) = @_;

	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		setpgrp(0, 0);
		eval { $code->() };
		print STDERR "$name: $@" if $@;
		POSIX::_exit($@ ? 1 : 0);
	}

	my $s = { pid => $pid, port => $port, name => $name, t => $t };
	$SERVERS{$pid} = $s;
	return $s;
}

# Stops a server and everything of its process group: SIGCONT first (a
# stopped process does not act on TERM), TERM, then KILL after 5 s.

sub server_stop {
	my ($s) = @_;

	my $pid = $s->{pid};
	return unless delete $SERVERS{$pid};

	kill 'CONT', -$pid, $pid;
	kill 'TERM', -$pid, $pid;

	my $deadline = time() + 5;

	while (waitpid($pid, WNOHANG) == 0) {
		if (time() > $deadline) {
			kill 'KILL', -$pid, $pid;
			waitpid($pid, 0);
			last;
		}
		sleep 0.01;
	}

	# per-connection children of a fake server
	kill 'KILL', -$pid;

	return $s;
}

###############################################################################

# Redis.  redis_start($t, $n, %opts) starts redis-server on logical port $n
# with a config file written in the test directory.  Options:
#   maxmemory   => '64mb'
#   requirepass => 'secret'
#   users       => [ 'name on >pass ~* +@all', ... ]  (ACL "user" lines)
#   replicaof   => $master (a record from redis_start)
#   databases   => 16
#   extra       => "more config lines\n"
# Waits until it answers PING (or NOAUTH).  Returns { pid, port, ... }.

sub redis_start {
	my ($t, $n, %opts) = @_;

	my $port = Test::Railgun::port($n);
	my $d = $t->testdir();
	my $dir = "$d/redis-$port";

	mkdir $dir;

	my $conf = "port $port\n"
		. "bind 127.0.0.1\n"
		. "protected-mode no\n"
		. "daemonize no\n"
		. "save \"\"\n"
		. "appendonly no\n"
		. "dir $dir\n"
		. "logfile $d/redis-$port.log\n"
		. "repl-diskless-sync yes\n"
		. "repl-diskless-sync-delay 0\n"
		. "repl-diskless-load disabled\n";

	$conf .= "maxmemory $opts{maxmemory}\n" if defined $opts{maxmemory};
	$conf .= "requirepass $opts{requirepass}\n"
		if defined $opts{requirepass};
	$conf .= "user $_\n" for @{$opts{users} || []};
	$conf .= "databases $opts{databases}\n" if defined $opts{databases};
	$conf .= "replicaof 127.0.0.1 $opts{replicaof}{port}\n"
		if $opts{replicaof};
	$conf .= $opts{extra} if defined $opts{extra};

	$t->write_file("redis-$port.conf", $conf);

	my $s = spawn_server($t, $port, "redis $port", sub {
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$d/redis-$port.out";
		open STDERR, '>&', \*STDOUT;
		exec($REDIS, "$d/redis-$port.conf") or die "exec $REDIS: $!\n";
	});

	$s->{redis} = 1;
	$s->{password} = $opts{requirepass};

	my $ready = wait_for(10, sub {
		my $r = redis_cmd($s, 'PING');
		defined $r && ($r eq 'PONG' || $r =~ /^-NOAUTH/);
	});

	die "redis on $port did not start:\n" . $t->read_file("redis-$port.log")
		unless $ready;

	return $s;
}

sub redis_stop {
	my ($s) = @_;
	return server_stop($s);
}

sub redis_pause {
	my ($s) = @_;
	kill 'STOP', $s->{pid};

	# until the kernel says it is stopped
	wait_for(5, sub { proc_state($s->{pid}) eq 'T' });
	return $s;
}

sub redis_resume {
	my ($s) = @_;
	kill 'CONT', $s->{pid};
	return $s;
}

sub proc_state {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/stat" or return '';
	my $stat = <$fh>;
	close $fh;
	return $stat =~ /^\d+ \(.*\) (\S)/s ? $1 : '';
}

# One command over a fresh connection (AUTH first when the server has a
# password, or with auth => [user, pass] / [pass]).  Returns the reply:
# a string for status and bulk replies, "-ERR ..." for errors, an array
# reference for arrays; undef on a failed connection or a timeout.

sub redis_cmd {
	my ($s, @cmd) = @_;

	my %opts = ref $cmd[-1] eq 'HASH' ? %{pop @cmd} : ();

	my $c = IO::Socket::INET->new(
		Proto => 'tcp',
		PeerAddr => "127.0.0.1:$s->{port}",
		Timeout => 2,
	) or return undef;

	binmode $c;

	my @auth = $opts{auth} ? @{$opts{auth}}
		: defined $s->{password} ? ($s->{password}) : ();

	my $req = '';
	$req .= resp_command('AUTH', @auth) if @auth;
	$req .= resp_command(@cmd);

	syswrite($c, $req) == length $req or return undef;

	my $r = Test::Railgun::Probe::Reader->new($c);
	if (@auth) {
		my $a = $r->reply();
		return $a if !defined $a || $a =~ /^-/;
	}

	return $r->reply();
}

sub resp_command {
	return '*' . scalar(@_) . "\r\n"
		. join '', map { '$' . length($_) . "\r\n$_\r\n" } @_;
}

# INFO section parsed into a hash

sub redis_info {
	my ($s, $section) = @_;

	my $r = redis_cmd($s, 'INFO', $section);
	return {} unless defined $r && !ref $r && $r !~ /^-/;

	my %h;
	for (split /\r?\n/, $r) {
		$h{$1} = $2 if /^([^#:]+):(.*)$/;
	}
	return \%h;
}

# MONITOR on a connection of its own: redis_monitor($s) returns a handle;
# monitor_lines($m, $seconds) gives the command lines seen meanwhile, each
# like '1700000000.000000 [3 127.0.0.1:40000] "PING"' (the number is the
# client's selected database).

sub redis_monitor {
	my ($s) = @_;

	my $c = IO::Socket::INET->new(
		Proto => 'tcp',
		PeerAddr => "127.0.0.1:$s->{port}",
		Timeout => 2,
	) or die "monitor: connect: $!";

	binmode $c;

	my $req = '';
	$req .= resp_command('AUTH', $s->{password}) if defined $s->{password};
	$req .= resp_command('MONITOR');
	syswrite($c, $req) == length $req or die "monitor: write: $!";

	my $r = Test::Railgun::Probe::Reader->new($c);
	$r->reply() if defined $s->{password};
	my $ok = $r->reply() // '';
	die "monitor: $ok\n" unless $ok eq 'OK';

	return $r;
}

sub monitor_lines {
	my ($r, $seconds) = @_;

	my $deadline = time() + $seconds;
	my $sel = IO::Select->new($r->{s});

	while ((my $left = $deadline - time()) > 0) {
		next unless $sel->can_read($left);
		sysread($r->{s}, $r->{buf}, 65536, length $r->{buf}) or last;
	}

	my @lines = map { s/^\+//r } grep { length } split /\r\n/, $r->{buf};
	$r->{buf} = '';
	return @lines;
}

# a bulk string reply of RESP

sub redis_reply_bulk {
	my ($s) = @_;
	return '$' . length($s) . "\r\n$s\r\n";
}

package Test::Railgun::Probe::Reader;

sub new {
	my ($class, $sock) = @_;
	return bless { s => $sock, buf => '' }, $class;
}

sub fill {
	my ($self) = @_;

	my $sel = IO::Select->new($self->{s});
	return 0 unless $sel->can_read(3);
	my $n = sysread($self->{s}, $self->{buf}, 65536, length $self->{buf});
	return $n ? 1 : 0;
}

sub line {
	my ($self) = @_;

	while ($self->{buf} !~ /\r\n/) {
		$self->fill() or return undef;
	}
	$self->{buf} =~ s/^(.*?)\r\n//s;
	return $1;
}

sub reply {
	my ($self) = @_;

	my $line = $self->line();
	return undef unless defined $line;

	my ($type, $rest) = (substr($line, 0, 1), substr($line, 1));

	return $rest if $type eq '+' || $type eq ':';
	return $line if $type eq '-';

	if ($type eq '$') {
		return undef if $rest < 0;
		while (length $self->{buf} < $rest + 2) {
			$self->fill() or return undef;
		}
		my $v = substr $self->{buf}, 0, $rest;
		substr($self->{buf}, 0, $rest + 2) = '';
		return $v;
	}

	if ($type eq '*') {
		return [ map { $self->reply() } 1 .. $rest ];
	}

	return undef;
}

package Test::Railgun::Probe;

###############################################################################

# Fake TCP servers on logical port $n: fake_server($t, $n, $kind, %opts).
# A pool of processes (workers => N, 4) serves the connections; every
# accepted connection is logged (see accepts()).  Kinds:
#   silent      accept, read everything, never answer
#   garbage     answer with $opts{reply} (default: text that is not RESP)
#   canned      answer with $opts{reply} once the request came
#   close       close as soon as the request came
#   huge_bulk   "$1000000000\r\n" and then bytes as fast as the peer reads,
#               until it goes away (at most 1 GB)
#   array_bomb  "*200000000\r\n" and then elements, likewise
#   drip        $opts{drip} (default "+" then "x"s, no end of line) one
#               byte every $opts{every} seconds (0.1), until the peer goes
#   http        see http_target
#   greet       send $opts{reply} (default an SMTP banner) at once, before
#               any request, then read and hold the connection
#   close_first close at once, before reading anything (FIN)
#   reset       abort at once with SO_LINGER 0 (RST)
# Options: who => 1 logs the pid of the nginx process that connected.

sub fake_server {
	my ($t, $n, $kind, %opts) = @_;

	my $port = Test::Railgun::port($n);
	my $d = $t->testdir();

	my $listen = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
		Listen => 128,
		ReuseAddr => 1,
	) or die "fake server: can't listen on $port: $!";

	unlink "$d/accepts-$port.log";

	# a pool of processes accepting in turn: forking per connection
	# costs tens of milliseconds on a busy small VM, which would show as
	# probe timeouts
	my $s = spawn_server($t, $port, "$kind $port", sub {
		$SIG{PIPE} = 'IGNORE';

		for (1 .. ($opts{workers} || 4)) {
			my $pid = fork();
			die "fork: $!" unless defined $pid;
			next if $pid;

			while (1) {
				my $c = $listen->accept() or next;
				my $when = time();

				eval {
					log_accept($d, $port, $c, $when, $opts{who});
					serve($c, $kind, $port, $d, \%opts);
				};
				close $c;
			}
		}

		close $listen;
		1 while wait() > 0;
	});

	close $listen;
	return $s;
}

sub log_accept {
	my ($d, $port, $c, $when, $who) = @_;

	my $peer = $c->peerport();
	my $pid = $who ? socket_owner($peer, $port, $d) || '-' : '-';

	open my $fh, '>>', "$d/accepts-$port.log" or return;
	syswrite $fh, sprintf("%.6f %d %s\n", $when, $peer, $pid);
	close $fh;
}

# The nginx process holding the loopback connection from $lport to $rport:
# its inode from /proc/net/tcp, then the process with that socket open;
# only the children of the test's own master (from the pid file in $d)
# are looked at, when there is one.

sub socket_owner {
	my ($lport, $rport, $d) = @_;

	open my $fh, '<', '/proc/net/tcp' or return undef;
	my $inode;

	while (<$fh>) {
		my @f = split ' ';
		next unless @f > 9;
		next unless $f[1] =~ /^0100007F:([0-9A-F]{4})$/
			&& hex($1) == $lport;
		next unless $f[2] =~ /^0100007F:([0-9A-F]{4})$/
			&& hex($1) == $rport;
		$inode = $f[9];
		last;
	}
	close $fh;

	return undef unless $inode;

	my $master;
	if (defined $d && open my $ph, '<', "$d/nginx.pid") {
		($master) = (<$ph> // '') =~ /^(\d+)/;
		close $ph;
	}

	my @pids = $master ? Test::Railgun::children($master) : do {
		opendir my $dh, '/proc' or return undef;
		my @p = grep { /^\d+$/ } readdir $dh;
		closedir $dh;
		@p;
	};

	for my $pid (@pids) {
		open my $ch, '<', "/proc/$pid/comm" or next;
		my $comm = <$ch> // '';
		close $ch;
		# under valgrind the process is named after the tool
		next unless $comm =~ /^(?:nginx|memcheck)/;

		opendir my $fd, "/proc/$pid/fd" or next;
		for my $f (readdir $fd) {
			my $l = readlink "/proc/$pid/fd/$f" or next;
			return $pid if $l eq "socket:[$inode]";
		}
		closedir $fd;
	}

	return undef;
}

# reads what the peer sent within $wait seconds (at least one read)

sub read_some {
	my ($c, $wait) = @_;

	my $sel = IO::Select->new($c);
	my $buf = '';
	my $deadline = time() + $wait;

	while ((my $left = $deadline - time()) > 0) {
		last unless $sel->can_read($left);
		my $n = sysread($c, $buf, 65536, length $buf);
		last unless $n;
		last if length $buf;
	}

	return $buf;
}

# reads until the peer closes, at most $max seconds

sub drain {
	my ($c, $max) = @_;

	my $sel = IO::Select->new($c);
	my $deadline = time() + $max;

	while ((my $left = $deadline - time()) > 0) {
		next unless $sel->can_read($left);
		my $n = sysread($c, my $buf, 65536);
		last unless $n;
	}
}

sub write_all {
	my ($c, $data) = @_;

	my $off = 0;
	while ($off < length $data) {
		my $n = syswrite($c, $data, length($data) - $off, $off);
		return 0 unless $n;
		$off += $n;
	}
	return 1;
}

sub serve {
	my ($c, $kind, $port, $d, $opts) = @_;

	binmode $c;

	if ($kind eq 'silent') {
		drain($c, 60);
		return;
	}

	if ($kind eq 'http') {
		serve_http($c, $port, $d, $opts);
		return;
	}

	if ($kind eq 'greet') {
		write_all($c, $opts->{reply}
			// "220 mail.example ESMTP ready\r\n");
		drain($c, 60);
		return;
	}

	return if $kind eq 'close_first';

	if ($kind eq 'reset') {
		setsockopt($c, Socket::SOL_SOCKET(), Socket::SO_LINGER(),
			pack('ii', 1, 0));
		return;
	}

	read_some($c, 2);

	if ($kind eq 'garbage' || $kind eq 'canned') {
		write_all($c, $opts->{reply}
			// "HELLO, I AM NOT REDIS\r\n\x00\xff garbage \x01\r\n");
		drain($c, 10);

	} elsif ($kind eq 'close') {
		return;

	} elsif ($kind eq 'huge_bulk' || $kind eq 'array_bomb') {
		my $head = $kind eq 'huge_bulk' ? "\$1000000000\r\n"
			: "*200000000\r\n";
		my $chunk = $kind eq 'huge_bulk' ? 'x' x 65536
			: "\$1\r\nx\r\n" x 8192;

		write_all($c, $head) or return;
		my $sent = 0;
		while ($sent < 1_000_000_000) {
			write_all($c, $chunk) or return;
			$sent += length $chunk;
		}

	} elsif ($kind eq 'drip') {
		my $data = $opts->{drip} // '+' . 'x' x 10000;
		my $every = $opts->{every} // 0.1;

		for my $i (0 .. length($data) - 1) {
			syswrite($c, substr($data, $i, 1)) or return;
			sleep $every;
		}
		drain($c, 10);

	} else {
		die "unknown fake server kind $kind\n";
	}
}

###############################################################################

# HTTP target on logical port $n whose answer comes from a file read per
# request: http_target($t, $n, status => 200, body => "ok\n", %opts);
# http_set($t, $n, status => ..., body => ...) changes it at once.  Every
# request head is kept (http_requests).  Responses carry Content-Length and
# "Connection: close".
#
# Scripted: plan => [ [status, body], ... ] answers the Nth request with
# the Nth element (the last one ever after), whatever the file says; then
# workers => 1 keeps the count (the default for a plan).  With observe =>
# $n, before answering request N the target scrapes nginx's /metrics on
# logical port $n and keeps it (observations()): with one prober, check N
# has not ended yet and check N - 1 has been recorded, so observation N
# is the state after exactly N - 1 checks, however slow the machine.

sub http_target {
	my ($t, $n, %opts) = @_;

	http_set($t, $n, status => $opts{status} // 200,
		body => $opts{body} // "ok\n");

	$opts{workers} ||= 1 if $opts{plan};

	if (defined $opts{observe}) {
		$opts{observe_port} = Test::Railgun::port($opts{observe});
		my $port = Test::Railgun::port($n);
		unlink glob($t->testdir() . "/observe-$port-*.txt");
	}

	return fake_server($t, $n, 'http', %opts);
}

# The observations of a target with observe: a list of scrapes as
# Test::Railgun::parse_metrics makes them, the Nth made when request N
# came (N from 1); undef where the scrape failed.

sub observations {
	my ($t, $n) = @_;

	my $port = Test::Railgun::port($n);
	my @obs;

	for (my $i = 1; -e $t->testdir() . "/observe-$port-$i.txt"; $i++) {
		my $r = $t->read_file("observe-$port-$i.txt");
		my ($status, undef, $body) = Test::Railgun::http_split($r);

		if (!defined $status || $status != 200) {
			push @obs, undef;
			next;
		}

		my @errors;
		push @obs, Test::Railgun::parse_metrics($body, 0, \@errors,
			"observation $i");
		push @SCRAPE_ERRORS, @errors;
	}

	return @obs;
}

sub http_set {
	my ($t, $n, %opts) = @_;

	my $port = Test::Railgun::port($n);
	my $d = $t->testdir();

	my $status = $opts{status} // 200;
	my $body = $opts{body} // '';

	# a rename is atomic: a request sees the old answer or the new one
	$t->write_file("http-$port.tmp", "$status\n$body");
	rename "$d/http-$port.tmp", "$d/http-$port.resp"
		or die "rename: $!";
}

sub serve_http {
	my ($c, $port, $d, $opts) = @_;

	my $sel = IO::Select->new($c);
	my $buf = '';
	my $deadline = time() + 5;

	while ($buf !~ /\r\n\r\n/) {
		my $left = $deadline - time();
		return if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($c, $buf, 65536, length $buf);
		return unless $n;
	}

	my ($head) = $buf =~ /^(.*?\r\n\r\n)/s;

	if (open my $fh, '>>', "$d/requests-$port.log") {
		syswrite $fh, $head . "----\n";
		close $fh;
	}

	my ($status, $body);

	if ($opts->{plan}) {
		my $n = ++$opts->{_served};
		my $plan = $opts->{plan};
		($status, $body) = @{$plan->[$n <= @$plan ? $n - 1 : -1]};

		if ($opts->{observe_port}) {
			my $r = Test::Railgun::http_get('/metrics',
				port => $opts->{observe});
			open my $fh, '>', "$d/observe-$port-$n.tmp" or return;
			binmode $fh;
			print $fh $r;
			close $fh;
			rename "$d/observe-$port-$n.tmp", "$d/observe-$port-$n.txt";
		}

	} else {
		open my $fh, '<', "$d/http-$port.resp" or return;
		binmode $fh;
		local $/;
		my $resp = <$fh>;
		close $fh;

		($status, $body) = $resp =~ /^(\d+)\n(.*)\z/s or return;
	}

	write_all($c, "HTTP/1.1 $status Test\r\n"
		. "Content-Type: text/plain\r\n"
		. 'Content-Length: ' . length($body) . "\r\n"
		. "Connection: close\r\n\r\n"
		. $body);

	# "Connection: close" means it: the end of the body is the end of the
	# connection, then wait for the peer to close (no RST)
	shutdown($c, 1);
	drain($c, 5);
}

# the request heads an HTTP target got, oldest first

sub http_requests {
	my ($t, $n) = @_;

	my $port = Test::Railgun::port($n);
	my $log = $t->read_file("requests-$port.log");
	return grep { length } split /----\n/, $log;
}

# connections accepted at the fake or HTTP target on logical port $n:
# a list of { time, peer, pid } (pid '-' unless who => 1), oldest first;
# with $since, only those accepted at or after that time()

sub accepts {
	my ($t, $n, $since) = @_;

	my $port = Test::Railgun::port($n);
	my @a;

	for (split /\n/, $t->read_file("accepts-$port.log")) {
		my ($when, $peer, $pid) = split / /;
		next if defined $since && $when < $since;
		push @a, { time => $when, peer => $peer, pid => $pid };
	}

	my @sorted = sort { $a->{time} <=> $b->{time} } @a;
	return @sorted;
}

###############################################################################

# A scrape without the promtool run of Test::Railgun::metrics (which takes
# ~150 ms), for polling loops; the same parser, and a parse error fails the
# file through a test of its own ("fast scrapes valid", see scrape_errors).

sub scrape_fast {
	my ($t, %opts) = @_;
	return $t->metrics_fast(\@SCRAPE_ERRORS, 'fast scrape', %opts);
}

sub scrape_errors {
	return @SCRAPE_ERRORS;
}

sub probe_up {
	my ($s, $probe) = @_;
	return Test::Railgun::sample($s, 'railgun_probe_up',
		{ probe => $probe });
}

# { result => count } for the probe; every result

sub probe_checks {
	my ($s, $probe) = @_;

	my %c;
	for my $r (@RESULTS) {
		$c{$r} = Test::Railgun::sample($s, 'railgun_probe_checks_total',
			{ probe => $probe, result => $r });
	}
	return \%c;
}

sub probe_checks_total {
	my ($s, $probe) = @_;
	return Test::Railgun::sample_sum($s, 'railgun_probe_checks_total',
		{ probe => $probe }) // 0;
}

sub probe_transitions {
	my ($s, $probe, $to) = @_;
	return Test::Railgun::sample($s, 'railgun_probe_transitions_total',
		{ probe => $probe, to => $to });
}

sub probe_gauge {
	my ($s, $family, $probe) = @_;
	return Test::Railgun::sample($s, $family, { probe => $probe });
}

# the transition lines of error.log for a probe (from $offset on)

sub transition_lines {
	my ($t, $probe, $offset) = @_;

	my $log = $t->read_file('error.log');
	$log = substr $log, $offset if $offset;

	my @lines = $log =~ /^.*railgun: probe "\Q$probe\E" .* is (?:up|down) after .*$/mg;
	return @lines;
}

# wait_for($timeout, $code, $step): Test::Railgun's

*wait_for = \&Test::Railgun::wait_for;

# VmRSS (or another field of /proc/PID/status, e.g. VmPeak) in kB

sub rss_kb {
	my ($pid, $field) = @_;

	$field ||= 'VmRSS';

	open my $fh, '<', "/proc/$pid/status" or return undef;
	local $/;
	my $st = <$fh>;
	close $fh;
	return $st =~ /^\Q$field\E:\s+(\d+)\s+kB/m ? $1 : undef;
}


# when a process started, in time() seconds (10 ms resolution)

sub proc_start_time {
	my ($pid) = @_;

	open my $fh, '<', "/proc/$pid/stat" or return undef;
	my $stat = <$fh>;
	close $fh;

	$stat =~ s/^.*\) //s;
	my $ticks = (split ' ', $stat)[19];

	# /proc/stat's btime has whole seconds: go from now and the uptime
	open $fh, '<', '/proc/uptime' or return undef;
	my ($uptime) = split ' ', scalar <$fh>;
	close $fh;

	my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
	return time() - $uptime + $ticks / $hz;
}

###############################################################################

1;
