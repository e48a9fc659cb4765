package Test::Railgun;

# Test harness for ngx-railgun, in the manner of nginx-tests' Test::Nginx:
# each .t writes its whole nginx.conf inline, starts a real nginx with the
# module loaded on free loopback ports, talks raw HTTP, and ends with
# "no alerts", "no sanitizer errors" and "every scrape valid".
#
# Only Debian-packaged Perl modules are used.
#
# Environment:
#   RAILGUN_MODULE      path of the module .so
#                       (default <repo>/build/ngx_http_railgun_module.so)
#   RAILGUN_NGINX       nginx binary (default /usr/sbin/nginx)
#   RAILGUN_PROMTOOL    promtool binary (default promtool from PATH)
#   RAILGUN_TEST_LEAVE  keep the test directory and print its path
#   RAILGUN_TEST_ASAN   run nginx with the gcc ASan/UBSan runtimes preloaded
#                       and fail on any sanitizer report
#   RAILGUN_TEST_VALGRIND  run nginx under valgrind memcheck and fail on any
#                       memory error, or on a definite leak whose stack
#                       passes through the module
#
# Workers: the tests run as root, so nginx workers run as "nobody".  The test
# directory is made mode 0755 and every temp path lives inside it; nginx
# creates those directories itself and hands them to the worker user.  Log
# and pid files are opened by the master (root).  No "user" directive is
# added, so the module runs with the same privilege split as in production.

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ port http http_get http_split http_status http_header
	http_body timed_get bucket_range sum_range sample sample_sum series
	waitforsocket /;

our @EXPORT_OK = qw/ wait_for /;

use Cwd qw/ abs_path /;
use File::Basename qw/ dirname /;
use File::Temp qw/ tempdir /;
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw/ gunzip $GunzipError /;
use POSIX qw/ :sys_wait_h /;
use Scalar::Util ();
use Socket qw/ SOL_SOCKET SO_REUSEADDR /;
use Test::More ();
use Time::HiRes qw/ sleep time /;

our $REPO = abs_path(dirname(__FILE__) . '/../../..');
our $NGINX = $ENV{RAILGUN_NGINX} || '/usr/sbin/nginx';
our $MODULE = $ENV{RAILGUN_MODULE}
	|| "$REPO/build/ngx_http_railgun_module.so";
our $PROMTOOL = $ENV{RAILGUN_PROMTOOL} || 'promtool';

my %PORTS;
my @INSTANCES;

###############################################################################

sub new {
	my ($class) = @_;

	my $dir = tempdir('railgun-test-XXXXXXXX', TMPDIR => 1,
		CLEANUP => !$ENV{RAILGUN_TEST_LEAVE});

	# workers run as nobody and must reach the temp paths inside
	chmod 0755, $dir or die "chmod $dir: $!";

	my $self = bless {
		_pid => $$,
		_dir => $dir,
		_daemons => [],
		_scrape_errors => [],
		_scrapes => 0,
		_nginx_t => 0,
		_started => 0,
	}, $class;

	push @INSTANCES, $self;
	Scalar::Util::weaken($INSTANCES[-1]);

	return $self;
}

# The closing checks run once, from DESTROY or, when a test file's subs keep
# the object alive until global destruction, from END, which runs before
# Test::Builder's own END block checks the plan.

sub DESTROY {
	my ($self) = @_;
	$self->finish();
}

END {
	$_->finish() for grep { defined } @INSTANCES;
}

sub finish {
	my ($self) = @_;
	local $?;
	local $@;

	# forked children (clients, daemons) must not stop anything
	return if $self->{_pid} != $$ || $self->{_finished}++;

	$self->stop();
	$self->stop_daemons();

	if ($self->{_planned}) {
		$self->check_alerts();
		$self->check_sanitizers();

		my @e = @{$self->{_scrape_errors}};
		Test::More::ok(!@e, 'every scrape valid')
			or Test::More::diag(join "\n", @e);
	}

	if ($ENV{RAILGUN_TEST_LEAVE}) {
		Test::More::diag("test directory kept: $self->{_dir}");
	}
}

sub testdir {
	my ($self) = @_;
	return $self->{_dir};
}

sub has_daemon {
	my ($self, $bin) = @_;

	my $found = $bin =~ m!/! ? -x $bin
		: grep { -x "$_/$bin" } split /:/, ($ENV{PATH} || '');

	Test::More::plan(skip_all => "$bin not found") unless $found;
	return $self;
}

# N tests of the file, plus "no alerts", "no sanitizer errors" and
# "every scrape valid" run from DESTROY

sub plan {
	my ($self, $n) = @_;

	Test::More::plan(tests => $n + 3);
	$self->{_planned} = 1;
	return $self;
}

sub write_file {
	my ($self, $name, $content) = @_;

	open my $fh, '>', "$self->{_dir}/$name"
		or die "can't create $name: $!";
	binmode $fh;
	print $fh $content;
	close $fh;
	return $self;
}

sub read_file {
	my ($self, $name) = @_;

	open my $fh, '<', "$self->{_dir}/$name" or return '';
	binmode $fh;
	local $/;
	my $content = <$fh>;
	close $fh;
	return defined $content ? $content : '';
}

sub write_file_expand {
	my ($self, $name, $content) = @_;

	$self->write_file($name, $self->expand($content));
	return $self;
}

# Every expansion is one line, so "in FILE:LINE" in nginx's messages names
# the same line as in the test's heredoc.

sub expand {
	my ($self, $content, %opts) = @_;

	my $d = $self->{_dir};
	my $log = $opts{error_log} || 'error.log';
	my $pid = $opts{pid} || 'nginx.pid';

	my $globals = "load_module $MODULE; pid $d/$pid; "
		. "error_log $d/$log info;";
	$globals .= ' env ASAN_OPTIONS; env UBSAN_OPTIONS;'
		if $ENV{RAILGUN_TEST_ASAN};

	my $http = "log_format railgun_test '\$remote_addr \"\$request\" "
		. "\$status \$request_length \$bytes_sent \$request_time "
		. "\"\$upstream_addr\" \"\$upstream_status\"'; "
		. "access_log $d/access.log railgun_test; "
		. "client_body_temp_path $d/client_body_temp; "
		. "proxy_temp_path $d/proxy_temp; "
		. "fastcgi_temp_path $d/fastcgi_temp; "
		. "uwsgi_temp_path $d/uwsgi_temp; "
		. "scgi_temp_path $d/scgi_temp;";

	$content =~ s/%%TEST_GLOBALS%%/$globals/g;
	$content =~ s/%%TEST_GLOBALS_HTTP%%/$http/g;
	$content =~ s/%%PORT_(\d+)%%/port($1)/ge;

	return $content;
}

# A free loopback port per logical number, found by binding port 0;
# callable as a function or as a method.

sub port {
	shift if ref $_[0];
	my ($n) = @_;

	return $PORTS{$n} if exists $PORTS{$n};

	my %used = map { $_ => 1 } values %PORTS;

	for (1 .. 50) {
		my $s = IO::Socket::INET->new(
			Proto => 'tcp',
			LocalAddr => '127.0.0.1',
			LocalPort => 0,
			Listen => 1,
		) or die "can't bind a loopback port: $!";

		my $p = $s->sockport();
		close $s;

		next if $used{$p};
		return $PORTS{$n} = $p;
	}

	die "no free port for $n";
}

# A port where connections are refused and which nothing else (a parallel
# test's nginx) can take meanwhile: a bound socket that never listens.

sub refused_port {
	my ($self, $n) = @_;

	my $port = port($n);

	my $s = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "127.0.0.1:$port",
	) or die "can't reserve port $port: $!";

	push @{$self->{_reserved}}, $s;
	return $port;
}

###############################################################################

sub sanitizer_env {
	my ($self) = @_;

	return () unless $ENV{RAILGUN_TEST_ASAN};

	my @libs;
	for my $lib (qw/ libasan.so libubsan.so /) {
		my $path = `gcc -print-file-name=$lib`;
		chomp $path;
		die "sanitizer runtime $lib not found\n" unless $path =~ m!/!;
		push @libs, $path;
	}

	my $d = $self->{_dir};

	return (
		LD_PRELOAD => join(':', @libs),
		ASAN_OPTIONS => "detect_leaks=0:abort_on_error=0:"
			. "log_path=$d/asan",
		UBSAN_OPTIONS => "print_stacktrace=1:log_path=$d/ubsan",
	);
}

# Runs a command with the sanitizer environment, stdout and stderr appended
# to $out; returns the exit code.

sub spawn {
	my ($self, $out, @cmd) = @_;

	my %env = $self->sanitizer_env();

	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		@ENV{keys %env} = values %env;
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $out or POSIX::_exit(126);
		open STDERR, '>&', \*STDOUT or POSIX::_exit(126);
		exec(@cmd) or POSIX::_exit(127);
	}

	waitpid($pid, 0);
	return $? >> 8;
}

sub check_module {
	die "railgun module not built: $MODULE (run make)\n" unless -f $MODULE;
}

sub run {
	my ($self) = @_;

	return $self if $self->try_run();

	Test::More::diag("nginx stderr:\n" . $self->read_file('stderr'));
	Test::More::diag("error.log:\n" . $self->read_file('error.log'));
	die "can't start nginx\n";
}

# Starts nginx (the master daemonizes), waits for the pid file and for every
# "listen 127.0.0.1:PORT" of nginx.conf to accept.  Returns undef on failure,
# with nginx's stderr kept in the file "stderr".

sub try_run {
	my ($self) = @_;

	check_module();

	my $d = $self->{_dir};
	unlink "$d/nginx.pid";

	my $rc = $self->spawn("$d/stderr", $self->valgrind(), $NGINX, '-p',
		"$d/", '-c', "$d/nginx.conf");
	return undef if $rc != 0;

	my $pid;
	my $deadline = time() + ($ENV{RAILGUN_TEST_VALGRIND} ? 60 : 10);

	while (time() < $deadline) {
		$pid = $self->master_pid();
		last if $pid;
		sleep 0.02;
	}

	return undef unless $pid;
	$self->{_started} = 1;
	$self->{_master} = $pid;

	my $conf = $self->read_file('nginx.conf');
	while ($conf =~ /^\s*listen\s+127\.0\.0\.1:(\d+)/gm) {
		waitforsocket("127.0.0.1:$1") or return undef;
	}

	return $self;
}

# nginx -t on a configuration; the file gets its own error log and pid so
# that it never touches the running test's.  Returns (exit code, output).

sub nginx_t {
	my ($self, $conf) = @_;

	check_module();

	my $n = ++$self->{_nginx_t};
	my $name = "nginx-t-$n.conf";
	my $d = $self->{_dir};

	$self->write_file($name, $self->expand($conf,
		error_log => "nginx-t-$n.log", pid => "nginx-t-$n.pid"));

	my $out = "$d/nginx-t-$n.out";
	my $rc = $self->spawn($out, $NGINX, '-t', '-p', "$d/",
		'-c', "$d/$name");

	$self->{_t_outputs} ||= [];
	push @{$self->{_t_outputs}}, "nginx-t-$n.out";

	return ($rc, $self->read_file("nginx-t-$n.out"));
}

# nginx -t of $conf must fail: an [emerg] matching $re, naming the file and
# the line of $conf that holds $mark (two tests, named after $name).

sub rejected {
	my ($self, $conf, $mark, $re, $name) = @_;

	my $line = 1 + (() = substr($conf, 0, index($conf, $mark)) =~ /\n/g);

	my ($rc, $out) = $self->nginx_t($conf);

	Test::More::ok($rc != 0 && $out =~ /\[emerg\].*$re/, "$name: rejected")
		or Test::More::diag("exit $rc: $out");
	Test::More::like($out,
		qr/\[emerg\].* in \S+\/nginx-t-\d+\.conf:$line$/m,
		"$name: file and line");
}

sub master_pid {
	my ($self) = @_;

	my $pid = $self->read_file('nginx.pid');
	return undef unless $pid =~ /^(\d+)\s*$/;
	return $1;
}

sub alive {
	my ($pid) = @_;

	return 0 unless $pid && kill(0, $pid);

	# a daemonized master is not our child: once it exits it may stay a
	# zombie of whatever reaps orphans here
	open my $fh, '<', "/proc/$pid/stat" or return 0;
	my $stat = <$fh>;
	close $fh;
	return 0 unless defined $stat && $stat =~ /^\d+ \(.*\) (\S)/s;
	return $1 ne 'Z' && $1 ne 'X';
}

sub children {
	my ($ppid) = @_;
	my @pids;

	opendir(my $dh, '/proc') or return ();
	for my $p (grep { /^\d+$/ } readdir $dh) {
		open my $fh, '<', "/proc/$p/stat" or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat;
		next unless $stat =~ /^\d+ \(.*\) (\S) (\d+)/s;
		push @pids, $p if $2 == $ppid && $1 ne 'Z' && $1 ne 'X';
	}
	closedir $dh;

	return sort { $a <=> $b } @pids;
}

sub worker_pids {
	my ($self) = @_;

	my $master = $self->master_pid() or return ();
	return children($master);
}

# HUP, then poll until every old worker has exited and the configured number
# of new ones runs.  Returns false if that did not happen or if the reload
# logged an [emerg] (a rejected configuration).

sub reload {
	my ($self) = @_;

	my $master = $self->{_master} || $self->master_pid() or return 0;
	my %old = map { $_ => 1 } children($master);
	my $offset = length $self->read_file('error.log');

	my ($want) = $self->read_file('nginx.conf')
		=~ /^\s*worker_processes\s+(\d+)\s*;/m;
	$want ||= 1;

	kill 'HUP', $master or return 0;

	my $deadline = time() + 20;

	while (time() < $deadline) {
		my @now = children($master);
		my @new = grep { !$old{$_} } @now;

		return 1 if @new >= $want && @new == @now;

		my $log = substr $self->read_file('error.log'), $offset;
		if ($log =~ /\[emerg\]/) {
			Test::More::diag("reload failed:\n$log");
			return 0;
		}

		sleep 0.02;
	}

	Test::More::diag('reload: old workers did not go away');
	return 0;
}

sub stop {
	my ($self) = @_;

	return $self unless $self->{_started};

	# remembered at start: the pid file may be gone with the directory
	my $pid = $self->{_master} || $self->master_pid();

	if ($pid && alive($pid)) {
		kill 'QUIT', $pid;

		my $deadline = time() + ($ENV{RAILGUN_TEST_ASAN} ? 60 : 20);
		sleep 0.02 while alive($pid) && time() < $deadline;

		if (alive($pid)) {
			Test::More::diag("nginx $pid did not exit, killing it");
			kill 'KILL', $pid;
			kill 'KILL', $_ for children($pid);
		}
	}

	$self->{_started} = 0;
	return $self;
}

# Forks a helper server: a code reference run in the child, or a command
# exec'ed.  The child leads its own process group, so that servers forking
# per connection go away as a whole.

sub run_daemon {
	my ($self, $code, @args) = @_;

	my $pid;

	if (ref $code eq 'CODE') {
		$pid = fork();
		die "fork: $!" unless defined $pid;

		if ($pid == 0) {
			setpgrp(0, 0);
			eval { $code->(@args) };
			POSIX::_exit($@ ? 1 : 0);
		}

	} else {
		$pid = spawn_group("$self->{_dir}/daemons.log",
			ref $code eq 'ARRAY' ? @$code : ($code, @args));
	}

	push @{$self->{_daemons}}, $pid;
	return $self;
}

# Forks a command leading its own process group, stdin from /dev/null,
# stdout and stderr appended to $out; returns its pid.

sub spawn_group {
	my ($out, @cmd) = @_;

	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		setpgrp(0, 0);
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', $out;
		open STDERR, '>&', \*STDOUT;
		exec(@cmd) or POSIX::_exit(127);
	}

	return $pid;
}

sub stop_daemons {
	my ($self) = @_;

	while (my $pid = shift @{$self->{_daemons}}) {
		kill 'TERM', -$pid;
		kill 'TERM', $pid;

		my $deadline = time() + 5;
		while (waitpid($pid, WNOHANG) == 0) {
			if (time() > $deadline) {
				kill 'KILL', -$pid;
				kill 'KILL', $pid;
				waitpid($pid, 0);
				last;
			}
			sleep 0.01;
		}
	}

	return $self;
}

sub waitforsocket {
	my ($peer) = @_;

	my $deadline = time() + 10;

	while (time() < $deadline) {
		my $s = IO::Socket::INET->new(
			Proto => 'tcp',
			PeerAddr => $peer,
		);
		if ($s) {
			close $s;
			return 1;
		}
		sleep 0.02;
	}

	return 0;
}

# Polls $code every $step seconds (0.02) until it returns true or $timeout
# seconds pass; returns its last value.  Test::Railgun::Gate and ::Probe
# export it.

sub wait_for {
	my ($timeout, $code, $step) = @_;

	my $deadline = time() + $timeout;
	my $v;

	while (1) {
		$v = $code->();
		return $v if $v;
		return $v if time() > $deadline;
		sleep($step || 0.02);
	}
}

###############################################################################

# Safety nets, run from DESTROY after nginx stopped.

sub check_alerts {
	my ($self) = @_;

	my @alerts;

	for my $f ('error.log', 'stderr') {
		push @alerts, map { "$f: $_" }
			$self->read_file($f) =~ /^.*\[(?:alert|emerg)\].*$/gm;
	}

	Test::More::ok(!@alerts, 'no alerts')
		or Test::More::diag(join "\n", @alerts);
}

# The valgrind command that nginx is started under, or nothing.  Forked
# workers are followed by valgrind itself; each process logs to its own file.

sub valgrind {
	my ($self) = @_;

	return () unless $ENV{RAILGUN_TEST_VALGRIND};

	my $supp = "$REPO/t/valgrind.supp";

	return ('valgrind', '--tool=memcheck', '--quiet',
		'--log-file=' . $self->{_dir} . '/valgrind.%p',
		'--leak-check=full', '--show-leak-kinds=definite',
		'--num-callers=30', "--suppressions=$supp");
}

# Memory errors anywhere, and definite leaks through the module, from the
# valgrind logs; nginx's own pools hold their memory until exit by design.

sub check_valgrind {
	my ($self) = @_;

	my $d = $self->{_dir};
	my @reports;

	opendir(my $dh, $d) or die "opendir $d: $!";
	my @files = grep { /^valgrind\./ } readdir $dh;
	closedir $dh;

	for my $f (@files) {
		my $text = $self->read_file($f);

		for my $block (split /\n==\d+== \n/, $text) {
			next unless $block =~ /^==\d+== \S/m;
			next if $block =~ /definitely lost/
				&& $block !~ /railgun/;
			next if $block =~ /^==\d+== (?:HEAP|LEAK) SUMMARY/m;
			next unless $block =~ /Invalid|uninitialised|Mismatched
				|definitely\ lost|overlap|Syscall\ param/x;
			push @reports, "$f:\n" . substr($block, 0, 4000);
		}
	}

	return @reports;
}

sub check_sanitizers {
	my ($self) = @_;

	my $d = $self->{_dir};
	my $re = qr/ERROR: \w*Sanitizer|runtime error:|LeakSanitizer/;

	my @reports;

	opendir(my $dh, $d) or die "opendir $d: $!";
	my @files = grep { /^(?:asan|ubsan)\./ } readdir $dh;
	closedir $dh;

	push @files, 'error.log', 'stderr', @{$self->{_t_outputs} || []};

	for my $f (@files) {
		my $text = $self->read_file($f);
		next unless $text =~ $re;
		push @reports, "$f:\n" . substr($text, 0, 4000);
	}

	push @reports, $self->check_valgrind();

	Test::More::ok(!@reports, 'no sanitizer errors')
		or Test::More::diag(join "\n", @reports);
}

###############################################################################

# Raw HTTP over a fresh connection; reads until the server closes.
# Options: port (logical port, default 8080), timeout (seconds, 10).

sub http {
	my ($request, %opts) = @_;

	my $port = port($opts{port} || 8080);
	my $timeout = $opts{timeout} || 10;

	my $s = IO::Socket::INET->new(
		Proto => 'tcp',
		PeerAddr => "127.0.0.1:$port",
	);

	unless ($s) {
		Test::More::diag("http: connect to $port: $!");
		return '';
	}

	binmode $s;
	$s->autoflush(1);

	my $off = 0;
	while ($off < length $request) {
		my $n = syswrite($s, $request, length($request) - $off, $off);
		unless ($n) {
			Test::More::diag("http: write: $!");
			last;
		}
		$off += $n;
	}

	my $response = '';
	my $sel = IO::Select->new($s);
	my $deadline = time() + $timeout;

	while (1) {
		my $left = $deadline - time();
		if ($left <= 0) {
			Test::More::diag("http: timeout reading response");
			last;
		}

		next unless $sel->can_read($left);

		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$response .= $buf;
	}

	close $s;
	return $response;
}

# http_get($uri, method => 'GET', headers => [...], body => '...',
#     proto => '1.0', port => 8080)
# In list context returns (response, request) so that byte counts can be
# taken from both.

sub http_get {
	my ($uri, %opts) = @_;

	my $method = $opts{method} || 'GET';
	my $proto = $opts{proto} || '1.0';
	my $body = $opts{body};

	my $request = "$method $uri HTTP/$proto\r\nHost: localhost\r\n";

	for my $h (@{$opts{headers} || []}) {
		$request .= "$h\r\n";
	}

	$request .= "Connection: close\r\n" if $proto eq '1.1';
	$request .= 'Content-Length: ' . length($body) . "\r\n"
		if defined $body;
	$request .= "\r\n";
	$request .= $body if defined $body;

	my $response = http($request, %opts);

	return wantarray ? ($response, $request) : $response;
}

# Timing brackets.  A request whose backend slept d seconds and whose
# client saw it take c seconds spent between d and c inside nginx: nginx
# starts timing after the client sent the request and logs before it closes
# the connection.  timed_get() returns (response, request, [d, c]) for a
# request to a backend's /delay/<ms>.  For a bucket bound b, bucket_range()
# gives how many of the bracketed requests must be at or below b (c + slack
# <= b) and how many may be (d - slack <= b); the slack covers nginx's
# millisecond clocks.  Exact on a calm machine, loose but never wrong on a
# loaded one.

our $TIMING_SLACK = 0.002;

sub timed_get {
	my ($uri, %opts) = @_;

	my ($ms) = $uri =~ m!/delay/(\d+)!;
	my $start = time();
	my ($r, $req) = http_get($uri, %opts);
	my $c = time() - $start;

	return ($r, $req, [ ($ms || 0) / 1000, $c ]);
}

sub bucket_range {
	my ($bound, @brackets) = @_;

	my $b = $bound eq '+Inf' ? 9**9**9 : $bound;
	my $lo = grep { $_->[1] + $TIMING_SLACK <= $b } @brackets;
	my $hi = grep { $_->[0] - $TIMING_SLACK <= $b } @brackets;

	return ($lo, $hi);
}

# The range a histogram's _sum over the bracketed requests may have.

sub sum_range {
	my (@brackets) = @_;

	my ($lo, $hi) = (0, 0);

	for (@brackets) {
		$lo += $_->[0] - $TIMING_SLACK;
		$hi += $_->[1] + $TIMING_SLACK;
	}

	return ($lo < 0 ? 0 : $lo, $hi);
}

# (status, {lowercased header => value}, body); a chunked body is decoded

sub http_split {
	my ($response) = @_;

	return (undef, {}, undef) unless defined $response;

	my ($head, $body) = split /\r\n\r\n/, $response, 2;
	$body = '' unless defined $body;

	my @lines = split /\r\n/, $head;
	my $statusline = shift @lines || '';
	my ($status) = $statusline =~ m!^HTTP/\d\.\d (\d{3})!;

	my %h;
	for (@lines) {
		my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
		$k = lc $k;
		$h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
	}

	if (($h{'transfer-encoding'} || '') =~ /chunked/i) {
		my $decoded = '';
		while ($body =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
			my $len = hex $1;
			last if $len == 0;
			$decoded .= substr $body, 0, $len, '';
			$body =~ s/^\r\n//;
		}
		$body = $decoded;
	}

	return ($status, \%h, $body);
}

sub http_status {
	my ($status) = http_split(@_);
	return $status;
}

sub http_header {
	my ($response, $name) = @_;
	my (undef, $h) = http_split($response);
	return $h->{lc $name};
}

sub http_body {
	my (undef, undef, $body) = http_split(@_);
	return $body;
}

###############################################################################

# A forking HTTP/1.1 backend on logical port $n:
#   /delay/<ms>    200 after sleeping ms milliseconds
#   /status/<code> that status
#   /bytes/<n>     200 with an n-byte body
#   anything else  200 "ok\n"
# Every response carries "X-Backend: <port>".  Keepalive is honoured for
# HTTP/1.1 requests without "Connection: close".  handler => sub { ... }
# gets (method, uri, headers, body) and may return (status, body) to
# override the defaults; it runs in the backend process.  workers => N
# processes serve connections in parallel (8).  addr => another loopback
# address to listen on (127.0.0.2, for a name resolving to several).

sub http_backend {
	my ($self, $n, %opts) = @_;

	my $port = port($n);
	my $addr = $opts{addr} || '127.0.0.1';

	my $listen = IO::Socket::INET->new(
		Proto => 'tcp',
		LocalAddr => "$addr:$port",
		Listen => 128,
		ReuseAddr => 1,
	) or die "backend: can't listen on $port: $!";

	pipe(my $rd, my $wr) or die "pipe: $!";

	$self->run_daemon(sub {
		close $rd;
		backend_loop($listen, $port, $opts{handler},
			$opts{workers} || 8, $wr);
	});

	close $wr;
	close $listen;

	# the pool is up when the leader says so
	my $ready = <$rd>;
	close $rd;
	die "backend on $port did not start\n" unless defined $ready;

	return $self;
}

# Forking per connection costs 10-20 ms on small VMs, which would show in
# the latencies under test: a fixed pool of processes accepts instead.

sub backend_loop {
	my ($listen, $port, $handler, $workers, $ready) = @_;

	my @pids;

	for (1 .. $workers) {
		my $pid = fork();
		die "fork: $!" unless defined $pid;

		if ($pid == 0) {
			close $ready;
			$SIG{TERM} = sub { POSIX::_exit(0) };

			while (1) {
				my $c = $listen->accept() or next;
				eval {
					backend_connection($c, $port, $handler);
				};
				close $c;
			}
		}

		push @pids, $pid;
	}

	syswrite $ready, "ready\n";
	close $ready;

	$SIG{TERM} = sub { kill 'KILL', @pids; POSIX::_exit(0) };
	waitpid($_, 0) for @pids;
}

sub backend_connection {
	my ($c, $port, $handler) = @_;

	binmode $c;
	$c->autoflush(1);

	my $buf = '';

	while (1) {
		while ($buf !~ /\r\n\r\n/) {
			my $n = sysread($c, $buf, 65536, length $buf);
			return unless $n;
		}

		$buf =~ s/^(.*?)\r\n\r\n//s;
		my ($line, @lines) = split /\r\n/, $1;
		my ($method, $uri, $proto) = split / /, $line;
		$proto ||= 'HTTP/1.0';

		my %h;
		for (@lines) {
			$h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
		}

		my $len = $h{'content-length'} || 0;
		while (length $buf < $len) {
			my $n = sysread($c, $buf, 65536, length $buf);
			return unless $n;
		}
		my $body = substr $buf, 0, $len, '';

		my ($status, $out);
		($status, $out) = $handler->($method, $uri, \%h, $body)
			if $handler;

		unless (defined $status) {
			(my $path = $uri) =~ s/\?.*//;

			if ($path =~ m!^/delay/(\d+)!) {
				sleep($1 / 1000);
				($status, $out) = (200, "delayed $1\n");

			} elsif ($path =~ m!^/status/(\d{3})!) {
				($status, $out) = ($1, "status $1\n");

			} elsif ($path =~ m!^/bytes/(\d+)!) {
				($status, $out) = (200, 'x' x $1);

			} else {
				($status, $out) = (200, "ok\n");
			}
		}

		my $keepalive = $proto eq 'HTTP/1.1'
			&& ($h{connection} || '') !~ /close/i;

		my $response = "HTTP/1.1 $status X\r\n"
			. "Content-Type: text/plain\r\n"
			. 'Content-Length: ' . length($out) . "\r\n"
			. "X-Backend: $port\r\n"
			. 'Connection: ' . ($keepalive ? 'keep-alive' : 'close')
			. "\r\n\r\n";
		$response .= $out unless $method eq 'HEAD';

		print $c $response;

		return unless $keepalive;
	}
}

###############################################################################

# Scrapes the metrics location and checks it:
#   - status 200;
#   - promtool check metrics prints nothing and exits 0 (lint problems make
#     it exit 3 with text on stderr; our output must have none); an
#     OpenMetrics body is first rewritten to the 0.0.4 form promtool 2.42
#     reads (counter metadata gets its "_total" back, type "unknown" becomes
#     "untyped", "# EOF" and exemplars are dropped);
#   - OpenMetrics exemplars: only on histogram buckets and counter samples,
#     a label set whose names and values have at most 128 characters, a
#     number as value, the timestamp a number; the exemplar of a bucket
#     within the bucket;
#   - HELP and TYPE once per family, each before the family's samples, the
#     samples of a family contiguous, no series twice;
#   - histograms: le ascending, ending in "+Inf", buckets cumulative,
#     +Inf equal to _count, _sum and _count present.
# Problems are recorded and reported by the "every scrape valid" test.
#
# Options: port (8080), path ('/metrics'), method, accept, gzip (send
# Accept-Encoding: gzip over HTTP/1.1), headers.
#
# Returns {status, headers, body, format ('0.0.4' or 'openmetrics'),
# samples => {series text => value}, series => [{name, labels, value, key,
# exemplar => {labels, value, timestamp} when the line has one}],
# families => {name => {type, help}}, order => [family names]}.

sub metrics {
	my ($self, %opts) = @_;

	my $path = $opts{path} || '/metrics';
	my @headers = @{$opts{headers} || []};
	push @headers, "Accept: $opts{accept}" if defined $opts{accept};
	push @headers, 'Accept-Encoding: gzip' if $opts{gzip};

	my $response = http_get($path,
		port => $opts{port} || 8080,
		method => $opts{method} || 'GET',
		proto => $opts{gzip} ? '1.1' : '1.0',
		headers => \@headers);

	my ($status, $h, $body) = http_split($response);

	my $n = ++$self->{_scrapes};
	my $where = "scrape $n ($path)";
	my @errors;

	push @errors, "$where: status " . ($status // 'none')
		unless defined $status && $status == 200;

	if (($h->{'content-encoding'} || '') =~ /gzip/) {
		my $plain;
		gunzip(\$body => \$plain)
			or push @errors, "$where: gunzip: $GunzipError";
		$body = $plain;
	}

	$body = '' unless defined $body;

	my $om = ($h->{'content-type'} || '')
		=~ m!application/openmetrics-text!;

	my $scrape = parse_metrics($body, $om, \@errors, $where);
	$scrape->{status} = $status;
	$scrape->{headers} = $h;
	$scrape->{raw} = $response;

	push @errors, $self->promtool($om ? om_to_text($body) : $body,
		"$where: promtool", "scrape-$n.txt");

	if (@errors) {
		push @{$self->{_scrape_errors}}, @errors;
		Test::More::diag($_) for @errors;
	}

	return $scrape;
}

# A scrape without the promtool run of metrics() (which takes ~150 ms), for
# polling loops: the same parser; the problems, named "WHAT: ...", are
# pushed onto @$errors for the caller's own test of them (the quick_errors
# of Test::Railgun::Gate, the scrape_errors of ::Probe).  Options: port
# (8080), path ('/metrics').

sub metrics_fast {
	my ($self, $errors, $what, %opts) = @_;

	my $r = http_get($opts{path} || '/metrics', port => $opts{port} || 8080);
	my ($status, undef, $body) = http_split($r);

	my @errors;
	push @errors, "$what: status " . ($status // 'none')
		unless defined $status && $status == 200;

	my $s = parse_metrics($body // '', 0, \@errors, $what);

	push @$errors, @errors;
	return $s;
}

# Pipes text to promtool through a file kept in the test directory; returns
# the problems found.

sub promtool {
	my ($self, $text, $where, $name) = @_;

	$self->write_file($name, $text);

	my $file = "$self->{_dir}/$name";
	my $out = `$PROMTOOL check metrics < '$file' 2>&1`;
	my $rc = $? >> 8;

	return ("$where: $PROMTOOL not found (Debian: apt-get install "
		. "prometheus)") if $rc == 127;

	return () if $rc == 0 && $out eq '';
	return ("$where: exit $rc: $out");
}

my $NAME = qr/[a-zA-Z_:][a-zA-Z0-9_:]*/;
my $LABEL = qr/[a-zA-Z_][a-zA-Z0-9_]*/;
my $NUMBER = qr/[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/;

# a label set, its braces outside the quoted values; a sample line before
# its exemplar
my $LABELSET = qr/\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}/;
my $SAMPLE = qr/$NAME(?:$LABELSET)? \S+(?: [-+]?\d\S*)?/;

sub om_to_text {
	my ($text) = @_;

	my %counter = map { $_ => 1 } $text =~ /^# TYPE (\S+) counter$/mg;

	$text =~ s/^($SAMPLE) # \{.*$/$1/mg;

	$text =~ s/^# EOF\n?\z//m;
	$text =~ s/^# (HELP|TYPE|UNIT) (\S+)/
		"# $1 " . ($counter{$2} ? "$2_total" : $2)/mge;
	$text =~ s/^# UNIT .*\n//mg;
	$text =~ s/^(# TYPE \S+) unknown$/$1 untyped/mg;

	return $text;
}

sub unescape_label {
	my ($v) = @_;
	$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
	return $v;
}

my %SUFFIXES = (
	counter => [ '', '_total', '_created' ],
	gauge => [ '' ],
	histogram => [ '_bucket', '_sum', '_count', '_created' ],
	summary => [ '', '_sum', '_count', '_created' ],
	untyped => [ '' ],
	unknown => [ '' ],
	info => [ '_info' ],
	stateset => [ '' ],
	gaugehistogram => [ '_bucket', '_gsum', '_gcount' ],
);


sub parse_labels {
	my ($lbl, $err, $what) = @_;
	my %labels;
	my $rest = $lbl;

	return {} if $rest eq '';

	$rest =~ s/^\{//;
	while ($rest =~ s/^($LABEL)="((?:[^"\\]|\\.)*)",?//) {
		$err->("label $1 twice in $what") if exists $labels{$1};
		$labels{$1} = unescape_label($2);
	}
	$err->("bad label set in line: $what") if $rest ne '}';

	return \%labels;
}

# " # {labels} value [timestamp]" of an OpenMetrics line
sub parse_exemplar {
	my ($text, $name, $line, $type, $err) = @_;

	$text =~ /^($LABELSET) ($NUMBER)(?: ($NUMBER))?$/
		or do { $err->("bad exemplar in line: $line"); return undef };

	my ($lbl, $value, $ts) = ($1, $2, $3);
	my $labels = parse_labels($lbl, $err, $line);

	my $chars = 0;
	for my $k (keys %$labels) {
		my $v = $labels->{$k};
		utf8::decode($v)
			or $err->("exemplar label not UTF-8 in line: $line");
		$chars += length($k) + length($v);
	}
	$err->("exemplar labels of $chars characters, over 128: $line")
		if $chars > 128;
	$err->("exemplar on a $type sample: $line")
		unless $name =~ /_bucket$/ && $type eq 'histogram'
			|| $name =~ /_total$/ && $type eq 'counter';

	return { labels => $labels, value => $value, timestamp => $ts };
}

sub parse_metrics {
	my ($body, $om, $errors, $where) = @_;

	my $s = {
		body => $body,
		format => $om ? 'openmetrics' : '0.0.4',
		samples => {},
		series => [],
		families => {},
		order => [],
	};

	my ($fam, %done);
	my $err = sub { push @$errors, "$where: @_" };

	my @lines = split /\n/, $body, -1;
	my $last = pop @lines;

	$err->('body does not end with a newline')
		if defined $last && $last ne '';

	if ($om) {
		$err->('OpenMetrics body does not end with "# EOF"')
			unless @lines && $lines[-1] eq '# EOF';
		pop @lines if @lines && $lines[-1] eq '# EOF';
	}

	for my $line (@lines) {

		if ($line =~ /^# (HELP|TYPE|UNIT) (\S+)(?: (.*))?$/) {
			my ($kind, $name, $rest) = ($1, $2, $3 // '');

			if (!defined $fam || $fam ne $name) {
				$err->("family $name interleaved with others")
					if $done{$name};
				$done{$fam} = 1 if defined $fam;
				$fam = $name;

				if (!$s->{families}{$name}) {
					$s->{families}{$name} = {};
					push @{$s->{order}}, $name;
				}
			}

			my $f = $s->{families}{$name};
			$err->("$kind $name twice") if exists $f->{lc $kind};
			$err->("$kind $name after its samples")
				if $f->{samples} && $kind ne 'UNIT';
			$f->{lc $kind} = $rest;
			$err->("TYPE $name: unknown type \"$rest\"")
				if $kind eq 'TYPE' && !$SUFFIXES{$rest};

			next;
		}

		next if $line =~ /^#/ && !$om;

		if ($line eq '') {
			$err->('empty line in OpenMetrics') if $om;
			next;
		}

		my $ex;

		if ($om && $line =~ /^($SAMPLE) # (.*)$/) {
			($line, $ex) = ($1, $2);
		}

		$line =~ /^($NAME)($LABELSET)?\s+(\S+)(?:\s+\S+)?$/
			or do { $err->("unparsable line: $line"); next };

		my ($name, $lbl, $value) = ($1, $2 // '', $3);
		my %labels = %{parse_labels($lbl, $err, $line)};

		if ($value =~ /^([-+]?)Inf$/) {
			$value = $1 eq '-' ? -9**9**9 : 9**9**9;

		} elsif ($value ne 'NaN'
			&& $value !~ /^$NUMBER$/)
		{
			$err->("bad value in line: $line");
		}

		my $owner = defined $fam ? $s->{families}{$fam} : undef;
		my $type = $owner ? ($owner->{type} // 'untyped') : undef;

		$ex = parse_exemplar($ex, $name, $line, $type // 'untyped', $err)
			if defined $ex;

		if (!$owner || !grep { "$fam$_" eq $name }
			@{$SUFFIXES{$type} || ['']})
		{
			$err->("sample $name outside its family (current: "
				. ($fam // 'none') . ')');
		} else {
			$err->("sample $name before TYPE $fam")
				unless defined $owner->{type};
			$err->("sample $name before HELP $fam")
				unless defined $owner->{help};
			$owner->{samples}++;
		}

		my $key = "$name$lbl";
		$err->("series twice: $key") if exists $s->{samples}{$key};

		$s->{samples}{$key} = $value;
		push @{$s->{series}}, {
			name => $name,
			labels => \%labels,
			value => $value,
			key => $key,
			family => $fam,
			$ex ? (exemplar => $ex) : (),
		};
	}

	check_histograms($s, $err);

	return $s;
}

sub check_histograms {
	my ($s, $err) = @_;

	for my $fam (@{$s->{order}}) {
		next unless ($s->{families}{$fam}{type} // '') eq 'histogram';

		my %groups;

		for my $x (@{$s->{series}}) {
			my ($kind) = $x->{name}
				=~ /^\Q$fam\E_(bucket|sum|count)$/ or next;
			my %l = %{$x->{labels}};
			my $le = delete $l{le};
			my $id = join ',', map { "$_=$l{$_}" } sort keys %l;
			my $g = $groups{$id} ||= { buckets => [] };

			if ($kind eq 'bucket') {
				$err->("$x->{key}: bucket without le"), next
					unless defined $le;
				push @{$g->{buckets}}, [ $le, $x->{value},
					$x->{exemplar} ];
			} else {
				$g->{$kind} = $x->{value};
			}
		}

		for my $id (sort keys %groups) {
			my $g = $groups{$id};
			my @b = @{$g->{buckets}};
			my $what = "$fam\{$id\}";

			$err->("$what: no _count"), next
				unless defined $g->{count};
			$err->("$what: no _sum") unless defined $g->{sum};
			$err->("$what: no buckets"), next unless @b;
			$err->("$what: last bucket le=\"$b[-1][0]\", not +Inf")
				if $b[-1][0] ne '+Inf';
			$err->("$what: +Inf $b[-1][1] != _count $g->{count}")
				if $b[-1][1] != $g->{count};

			for my $i (1 .. $#b) {
				my ($pl, $pv) = @{$b[$i - 1]};
				my ($l, $v) = @{$b[$i]};
				my $pn = $pl eq '+Inf' ? 9**9**9 : $pl;
				my $n = $l eq '+Inf' ? 9**9**9 : $l;

				$err->("$what: le=\"$l\" not above le=\"$pl\"")
					unless $n > $pn;
				$err->("$what: bucket le=\"$l\" ($v) below "
					. "le=\"$pl\" ($pv), not cumulative")
					if $v < $pv;
			}

			# an exemplar lies in its bucket: above the one before
			for my $i (0 .. $#b) {
				my $e = $b[$i][2] or next;
				my $n = $b[$i][0] eq '+Inf' ? 9**9**9 : $b[$i][0];
				my $pn = $i ? $b[$i - 1][0] : -9**9**9;
				$err->("$what: exemplar $e->{value} outside "
					. "le=\"$b[$i][0]\"")
					unless $e->{value} <= $n && $e->{value} > $pn;
			}
		}
	}
}

# Series of $name whose labels include every pair of \%labels.

sub series {
	my ($scrape, $name, $labels) = @_;

	$labels ||= {};

	return grep {
		my $x = $_;
		$x->{name} eq $name
			&& !grep {
				!defined $x->{labels}{$_}
					|| $x->{labels}{$_} ne $labels->{$_}
			} keys %$labels
	} @{$scrape->{series} || []};
}

# The value of the one series of $name matching \%labels; undef when none
# matches, or (with a diagnostic) when several do.

sub sample {
	my ($scrape, $name, $labels) = @_;

	my @m = series($scrape, $name, $labels);
	return $m[0]{value} if @m == 1;

	if (@m > 1) {
		Test::More::diag("sample $name: " . scalar(@m)
			. ' series match: ' . join ' ', map { $_->{key} } @m);
	}

	return undef;
}

# The sum of all series of $name matching \%labels; undef when none does.

sub sample_sum {
	my ($scrape, $name, $labels) = @_;

	my @m = series($scrape, $name, $labels);
	return undef unless @m;

	my $sum = 0;
	$sum += $_->{value} for @m;
	return $sum;
}

###############################################################################

1;
