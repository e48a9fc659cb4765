package Test::Railgun::Browser;

# Debian's headless Chromium, driven through chromedriver's W3C WebDriver
# HTTP API with core Perl only (HTTP::Tiny, JSON::PP).
#
#   my $b = Test::Railgun::Browser->new($t) or plan skip_all => ...;
#   $b->get($url);
#   $b->wait_for('return document.title', 10);
#   my $v = $b->js('return 1 + 1');
#   my @errors = $b->console_errors();
#   $b->screenshot($file);
#
# chromedriver listens on a free loopback port and starts Chromium with a
# fresh profile in the test directory; both go away with the object.
# RAILGUN_CHROMIUM and RAILGUN_CHROMEDRIVER name other binaries.

use warnings;
use strict;

use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw/ decode_base64 /;
use POSIX qw/ :sys_wait_h /;
use Time::HiRes qw/ sleep time /;

use Test::Railgun qw/ port waitforsocket /;

our $CHROMIUM = $ENV{RAILGUN_CHROMIUM} || '/usr/lib/chromium/chromium';

# chromedriver process groups still running, for END when a test dies
# before the object goes away
my %GROUPS;
our $DRIVER = $ENV{RAILGUN_CHROMEDRIVER} || '/usr/bin/chromedriver';

# why the browser cannot run here, or undef
sub unavailable {
	return "Chromium not installed ($CHROMIUM; apt-get install chromium)"
		unless -x $CHROMIUM;
	return "chromedriver not installed ($DRIVER; "
		. 'apt-get install chromium-driver)'
		unless -x $DRIVER;
	return undef;
}

sub new {
	my ($class, $t, %opts) = @_;

	return undef if unavailable();

	my $port = port($opts{port} || 9515);
	my $dir = $t->testdir();
	my $profile = "$dir/chromium-profile";
	mkdir $profile;

	my $pid = fork();
	die "fork: $!" unless defined $pid;

	if ($pid == 0) {
		setpgrp(0, 0);
		open STDIN, '<', '/dev/null';
		open STDOUT, '>>', "$dir/chromedriver.log";
		open STDERR, '>&', \*STDOUT;
		exec($DRIVER, "--port=$port", '--allowed-ips=127.0.0.1')
			or POSIX::_exit(127);
	}

	$GROUPS{$pid} = $$;

	my $self = bless {
		pid => $pid,
		base => "http://127.0.0.1:$port",
		http => HTTP::Tiny->new(timeout => 60),
		json => JSON::PP->new->utf8->canonical->allow_nonref,
	}, $class;

	waitforsocket("127.0.0.1:$port")
		or die "chromedriver did not listen, see $dir/chromedriver.log\n";

	# root in a container: no sandbox; nothing of the network but ours
	my @args = ('--headless=new', '--no-sandbox', '--disable-gpu',
		'--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update',
		'--disable-sync', '--disable-dev-shm-usage',
		'--window-size=' . ($opts{size} || '1440,1800'),
		"--user-data-dir=$profile");

	my $r = $self->cmd('POST', '/session', { capabilities => {
		alwaysMatch => {
			browserName => 'chrome',
			'goog:chromeOptions' => {
				binary => $CHROMIUM,
				args => \@args,
			},
			'goog:loggingPrefs' => { browser => 'ALL' },
		} } });

	$self->{session} = $r->{sessionId}
		or die "no WebDriver session: " . $self->{json}->encode($r) . "\n";

	return $self;
}

sub DESTROY {
	my ($self) = @_;
	local ($?, $@);

	if ($self->{session}) {
		eval { $self->cmd('DELETE', "/session/$self->{session}") };
		delete $self->{session};
	}

	if (my $pid = delete $self->{pid}) {
		delete $GROUPS{$pid};
		kill 'TERM', -$pid;
		my $deadline = time() + 5;
		while (waitpid($pid, WNOHANG) == 0) {
			if (time() > $deadline) {
				kill 'KILL', -$pid;
				waitpid($pid, 0);
				last;
			}
			sleep 0.05;
		}
	}
}

END {
	# chromedriver and the Chromium it started share its process group
	for my $pid (grep { $GROUPS{$_} == $$ } keys %GROUPS) {
		kill 'TERM', -$pid;
		waitpid($pid, 0);
	}
}

# one WebDriver command; returns its "value", dies on a WebDriver error
sub cmd {
	my ($self, $method, $path, $body) = @_;

	my $res = $self->{http}->request($method, "$self->{base}$path", {
		headers => { 'Content-Type' => 'application/json' },
		defined $body ? (content => $self->{json}->encode($body)) : (),
	});

	my $v = eval { $self->{json}->decode($res->{content}) };
	die "webdriver $method $path: $res->{status} $res->{content}\n"
		unless $v;

	$v = $v->{value} if ref $v eq 'HASH' && exists $v->{value};

	die "webdriver $method $path: $v->{error}: $v->{message}\n"
		if ref $v eq 'HASH' && $v->{error};

	return $v;
}

sub s {
	my ($self, $method, $path, $body) = @_;
	return $self->cmd($method, "/session/$self->{session}$path", $body);
}

sub get {
	my ($self, $url) = @_;
	return $self->s('POST', '/url', { url => $url });
}

sub js {
	my ($self, $script, @args) = @_;
	return $self->s('POST', '/execute/sync',
		{ script => $script, args => \@args });
}

# polls a script until it returns true; returns its last value
sub wait_for {
	my ($self, $script, $timeout, @args) = @_;

	my $deadline = time() + ($timeout || 10);
	my $v;

	while (1) {
		$v = eval { $self->js($script, @args) };
		return $v if $v;
		return $v if time() > $deadline;
		sleep 0.1;
	}
}

# console entries of level SEVERE (script errors, failed loads) since the
# last call
sub console_errors {
	my ($self) = @_;

	my $log = $self->s('POST', '/se/log', { type => 'browser' });
	return map { "$_->{level}: $_->{message}" }
		grep { $_->{level} eq 'SEVERE' } @$log;
}

sub screenshot {
	my ($self, $file) = @_;

	my $png = decode_base64($self->s('GET', '/screenshot'));
	open my $fh, '>', $file or die "$file: $!";
	binmode $fh;
	print $fh $png;
	close $fh;
	return length $png;
}

1;
