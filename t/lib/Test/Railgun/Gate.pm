package Test::Railgun::Gate;

# Helpers for the health gate tests (t/gate*.t), next to Test::Railgun:
#
#   - backends: bare nginx processes (no railgun module), each with its own
#     prefix directory in the test directory and its own loopback port,
#     which the test stops (the port then refuses connections), starts
#     again, and makes fail its health checks while still serving traffic
#     ("sick": /health answers 503 while a file exists).  Every answer
#     carries "X-Backend: NAME" and the body "NAME\n"; the access log keeps
#     the time ($msec) and URI of every request, health checks included;
#   - a client process doing sequential requests through the nginx under
#     test, recording for each one its start and end time, the status, the
#     backend that answered and every peer nginx tried ($upstream_addr);
#   - a redis-server the test stops and starts (for a railgun_probe);
#   - quick scrapes (no promtool run, which takes ~150 ms) for polling,
#     peer_up and probe family accessors, and wait_for.
#
# Every process started here leads its own process group and is stopped
# from END; forked children leave with POSIX::_exit and never run END.

use warnings;
use strict;

use base qw/ Exporter /;

our @EXPORT = qw/ backend redis client wait_for scrape_quick quick_errors
	peer_up checks transitions gate warn_lines /;

use IO::Socket::INET;
use POSIX qw/ :sys_wait_h /;
use Test::More ();
use Time::HiRes qw/ sleep time /;

use Test::Railgun ();

my $PARENT = $$;
my @OBJECTS;

END {
	local ($?, $@);
	return unless $$ == $PARENT;
	for my $o (grep { defined } @OBJECTS) {
		$o->stop() if $o->{pid};
	}
}

# wait_for($timeout, $code, $step): Test::Railgun's

*wait_for = \&Test::Railgun::wait_for;

# stops a process group led by $pid: TERM, then KILL after 5 s

sub stop_group {
	my ($pid) = @_;

	# a stopped process does not act on TERM
	kill 'CONT', -$pid;
	kill 'TERM', $pid;

	my $deadline = time() + 5;

	while (waitpid($pid, WNOHANG) == 0) {
		if (time() > $deadline) {
			kill 'KILL', -$pid, $pid;
			waitpid($pid, 0);
			last;
		}
		sleep 0.01;
	}

	# workers left behind, if any
	kill 'KILL', -$pid;
}

###############################################################################

# backend($t, $n, $name): an nginx on logical port $n, started.

sub backend {
	my ($t, $n, $name) = @_;

	my $port = Test::Railgun::port($n);
	my $dir = $t->testdir() . "/backend-$name";

	mkdir $dir;
	chmod 0755, $dir;

	my $b = bless {
		t => $t,
		n => $n,
		name => $name,
		port => $port,
		addr => "127.0.0.1:$port",
		dir => $dir,
	}, 'Test::Railgun::Gate::Backend';

	my $conf = <<"EOF";
daemon off;
master_process on;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log notice;

events {
    worker_connections 512;
}

http {
    log_format backend '\$msec \$status "\$request_uri"';
    access_log $dir/access.log backend;

    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

    keepalive_requests 100000;

    server {
        listen 127.0.0.1:$port;

        default_type text/plain;
        add_header X-Backend $name always;

        location /health {
            if (-f $dir/sick) {
                return 503 "sick $name\\n";
            }
            return 200 "healthy $name\\n";
        }

        location / {
            return 200 "$name\\n";
        }
    }
}
EOF

	open my $fh, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
	print $fh $conf;
	close $fh;

	push @OBJECTS, $b;

	return $b->start();
}

###############################################################################

# redis($t, $n): a redis-server on logical port $n, started; stop() and
# start() as for a backend.

our $REDIS = $ENV{RAILGUN_REDIS_SERVER} || '/usr/bin/redis-server';

sub redis {
	my ($t, $n) = @_;

	my $port = Test::Railgun::port($n);
	my $dir = $t->testdir() . "/redis-$port";

	mkdir $dir;

	my $r = bless {
		t => $t,
		port => $port,
		addr => "127.0.0.1:$port",
		dir => $dir,
	}, 'Test::Railgun::Gate::Redis';

	push @OBJECTS, $r;

	return $r->start();
}

###############################################################################

# The client: client($t, $uri, %opts) forks a process doing sequential
# requests to port 8080 until stopped.  $uri may be a code reference
# getting the request number and returning the URI.  Options: headers.

sub client {
	my ($t, $uri, %opts) = @_;

	my $n = ++$t->{_gate_clients};
	my $file = $t->testdir() . "/client-$n.log";

	# the logical port is known before the fork
	Test::Railgun::port(8080);

	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		setpgrp(0, 0);

		my $stop = 0;
		$SIG{TERM} = sub { $stop = 1 };

		open my $fh, '>>', $file or POSIX::_exit(1);

		for (my $i = 0; !$stop; $i++) {
			my $u = ref $uri ? $uri->($i) : $uri;

			my $t0 = time();
			my $r = Test::Railgun::http_get($u, port => 8080,
				timeout => 5, headers => $opts{headers});
			my $t1 = time();

			my ($status, $h) = Test::Railgun::http_split($r);
			(my $addr = $h->{'x-addr'} // '-') =~ s/,? +/,/g;
			$addr = '-' if $addr eq '';

			syswrite $fh, sprintf("%.6f %.6f %s %s %s %s\n",
				$t0, $t1, $status // 'none',
				$h->{'x-backend'} // '-', $addr, $u);
		}

		close $fh;
		POSIX::_exit(0);
	}

	my $c = bless { t => $t, pid => $pid, file => $file },
		'Test::Railgun::Gate::Client';

	push @OBJECTS, $c;

	return $c;
}

###############################################################################

# A scrape of /metrics without the promtool run; parse problems are kept
# (quick_errors) so that a test can fail on them.

my @QUICK_ERRORS;

sub scrape_quick {
	my ($t, %opts) = @_;
	return $t->metrics_fast(\@QUICK_ERRORS, 'quick scrape', %opts);
}

sub quick_errors {
	return @QUICK_ERRORS;
}

# railgun_upstream_peer_up{upstream,peer}; $peer is a backend or an address

sub peer_up {
	my ($s, $upstream, $peer) = @_;

	$peer = $peer->{addr} if ref $peer;
	return Test::Railgun::sample($s, 'railgun_upstream_peer_up',
		{ upstream => $upstream, peer => $peer });
}

# railgun_probe_checks_total of a check (probe = upstream, target = peer),
# for one result or all

sub checks {
	my ($s, $upstream, $peer, $result) = @_;

	$peer = $peer->{addr} if ref $peer;

	my %l = (probe => $upstream, target => $peer);
	$l{result} = $result if defined $result;

	return Test::Railgun::sample_sum($s, 'railgun_probe_checks_total', \%l)
		// 0;
}

sub transitions {
	my ($s, $upstream, $peer, $to) = @_;

	$peer = $peer->{addr} if ref $peer;

	return Test::Railgun::sample($s, 'railgun_probe_transitions_total',
		{ probe => $upstream, target => $peer, to => $to }) // 0;
}

# (status, {headers}, body) of the gate at $uri; options as http_get

sub gate {
	my ($uri, %opts) = @_;
	return Test::Railgun::http_split(Test::Railgun::http_get($uri, %opts));
}

# the "every server ... fails its checks" lines of error.log for an upstream

sub warn_lines {
	my ($t, $upstream, $offset) = @_;

	my $log = $t->read_file('error.log');
	$log = substr $log, $offset if $offset;

	my $text = "every server of upstream \"$upstream\" fails its checks, "
		. 'all are kept in use';
	my @lines = $log =~ /^.*\[warn\].*\Q$text\E.*$/mg;
	return @lines;
}

###############################################################################

package Test::Railgun::Gate::Backend;

use POSIX qw/ :sys_wait_h /;
use Time::HiRes qw/ sleep time /;

sub start {
	my ($self) = @_;

	die "backend $self->{name} runs already\n" if $self->{pid};

	$self->{pid} = Test::Railgun::spawn_group("$self->{dir}/stderr",
		$Test::Railgun::NGINX, '-p', "$self->{dir}/",
		'-c', "$self->{dir}/nginx.conf");

	Test::Railgun::waitforsocket($self->{addr})
		or die "backend $self->{name} did not start:\n"
			. `cat $self->{dir}/stderr $self->{dir}/error.log`;

	return $self;
}

# TERM (nginx's fast shutdown), then until the port refuses connections

sub stop {
	my ($self) = @_;

	my $pid = delete $self->{pid} or return $self;

	Test::Railgun::Gate::stop_group($pid);

	Test::Railgun::Gate::wait_for(5, sub {
		!IO::Socket::INET->new(Proto => 'tcp',
			PeerAddr => $self->{addr})
	}) or die "backend $self->{name} still accepts\n";

	return $self;
}

# SIGSTOP to the whole backend: the kernel still accepts connections, nothing
# answers; resume() sends SIGCONT

sub pause {
	my ($self) = @_;
	kill 'STOP', -$self->{pid};
	return $self;
}

sub resume {
	my ($self) = @_;
	kill 'CONT', -$self->{pid};
	return $self;
}

# a sick backend fails its health checks and serves everything else

sub sick {
	my ($self, $on) = @_;

	my $f = "$self->{dir}/sick";

	if (!defined $on || $on) {
		open my $fh, '>', $f or die "$f: $!";
		close $fh;
	} else {
		unlink $f;
	}

	return $self;
}

# the requests of the access log, oldest first: { time, status, uri };
# filter => 'health' (health checks only), 'traffic' (all others)

sub requests {
	my ($self, %opts) = @_;

	open my $fh, '<', "$self->{dir}/access.log" or return ();

	my @r;

	while (<$fh>) {
		my ($time, $status, $uri) = /^(\S+) (\d+) "(.*)"$/ or next;
		my $health = $uri =~ m!^/health!;

		next if ($opts{filter} // '') eq 'health' && !$health;
		next if ($opts{filter} // '') eq 'traffic' && $health;
		next if defined $opts{since} && $time < $opts{since};
		next if defined $opts{uri} && $uri !~ $opts{uri};

		push @r, { time => $time, status => $status, uri => $uri };
	}

	close $fh;
	return @r;
}

sub traffic {
	my ($self, %opts) = @_;
	return $self->requests(%opts, filter => 'traffic');
}

sub health {
	my ($self, %opts) = @_;
	return $self->requests(%opts, filter => 'health');
}

###############################################################################

package Test::Railgun::Gate::Client;

# stops the client; returns its requests, oldest first:
# { t0, t1, status, backend, addrs => [ peers tried ], uri }

sub stop {
	my ($self) = @_;

	if (my $pid = delete $self->{pid}) {
		Test::Railgun::Gate::stop_group($pid);
	}

	return $self->results();
}

sub results {
	my ($self) = @_;

	open my $fh, '<', $self->{file} or return ();

	my @r;

	while (<$fh>) {
		chomp;
		my ($t0, $t1, $status, $backend, $addr, $uri) = split / /;
		next unless defined $uri;

		push @r, {
			t0 => $t0,
			t1 => $t1,
			status => $status,
			backend => $backend,
			addrs => [ $addr eq '-' ? () : split /,/, $addr ],
			uri => $uri,
		};
	}

	close $fh;
	return @r;
}

# waits until $n more requests have been done since now; false on timeout

sub more {
	my ($self, $n, $timeout) = @_;

	my $have = () = $self->results();

	return Test::Railgun::Gate::wait_for($timeout || 10, sub {
		my $now = () = $self->results();
		$now >= $have + $n;
	}, 0.01);
}

###############################################################################

package Test::Railgun::Gate::Redis;

use IO::Select;
use IO::Socket::INET;

sub start {
	my ($self) = @_;

	die "redis on $self->{port} runs already\n" if $self->{pid};

	$self->{pid} = Test::Railgun::spawn_group("$self->{dir}/stdout",
		$Test::Railgun::Gate::REDIS, '--port', $self->{port},
		'--bind', '127.0.0.1', '--protected-mode', 'no',
		'--save', '', '--appendonly', 'no',
		'--dir', $self->{dir},
		'--logfile', "$self->{dir}/redis.log");

	Test::Railgun::Gate::wait_for(10, sub { $self->ping() })
		or die "redis on $self->{port} did not start\n";

	return $self;
}

sub ping {
	my ($self) = @_;

	my $s = IO::Socket::INET->new(Proto => 'tcp',
		PeerAddr => $self->{addr}) or return 0;

	syswrite $s, "PING\r\n";
	return 0 unless IO::Select->new($s)->can_read(2);

	sysread $s, my $buf, 64;
	return defined $buf && $buf =~ /^\+PONG/;
}

sub stop {
	my ($self) = @_;

	my $pid = delete $self->{pid} or return $self;

	Test::Railgun::Gate::stop_group($pid);
	return $self;
}

###############################################################################

1;
