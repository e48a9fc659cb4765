#!/usr/bin/perl

# bench/stall.pl: the latency of requests on a worker while it streams
# scrapes, against the same requests with no scrape, in interleaved windows.
#
#   stall.pl [options] PORT PATH SCRAPE_PATH WORKER_PID
#
# The run is 2 x --pairs windows of --window seconds; each pair has an idle
# window and a scraping one, the idle first in even pairs and last in odd
# ones (ABBA), so that a drift of the machine's load falls on both alike.
#
# - The probe (this process) sends GET PATH over one keepalive connection
#   every --interval ms all along, waits for each response, and times it
#   from the send to the last byte.  Paced, far below what the worker can
#   serve, so that a latency is the wait of one request, not a queue of
#   requests (a closed loop of 16 connections, as wrk runs, keeps the worker
#   saturated and measures how the CPU is shared out instead).
# - The scraper (a child) scrapes SCRAPE_PATH back to back over one
#   keepalive connection (HTTP/1.1, chunked, read at full speed) during the
#   scraping windows, and only then; a scrape started in a scraping window
#   ends even if that takes it into the next window.  A SCRAPE_PATH that
#   is not chunked is read to its Content-Length, no buffers counted: the
#   control of bench/run, a static file as large as a scrape.
#
# A request is "scraping" when it was sent while a scrape was in progress,
# and "idle" when it was sent in an idle window and no scrape overlapped it;
# the others (sent between two scrapes) count for neither.
#
# The time to render one buffer, measured in the same run: the worker's CPU
# time during the scrapes (from /proc/WORKER_PID/schedstat, read by the
# scraper before each scrape and after its last byte), less the CPU of the
# probe's requests served meanwhile (at the rate of the idle windows), over
# the buffers sent, one chunk each.  The wall time per buffer is given too.
#
# The maximum of each kind is one request out of thousands: the machine's
# worst moment of the run (a softirq put off to ksoftirqd, an interrupt)
# lands in either kind, and with no difference at all between the kinds,
# the scraping maximum is the larger one time in two.  So the median of the
# windows' maxima (a window's worst request, the middle window) is given
# too: a worst case that a single spike does not make.
#
# For context, the worker's and the probe's run delay (time runnable but
# waiting for a CPU, from schedstat) per kind of window, and the 5 slowest
# requests with their window and what the worker waited for a CPU then.
#
# Options:
#   --pairs N         pairs of windows (default 25)
#   --window SECONDS  length of a window (default 0.4: two scraping
#                     windows in a row stay under the RT time a CPU allows
#                     a SCHED_FIFO worker in a second, see bench/run)
#   --interval MS     between two requests of the probe (default 1)
#   --gzip            the scrapes ask for gzip (the buffer figures are then
#                     of gzip's output, not of the module's buffers)
#   --fifo            the probe runs SCHED_FIFO 2 (chrt), if it may
#   --dump FILE       every request ("send latency kind", CLOCK_MONOTONIC
#                     seconds) and every scrape ("scrape start end bytes
#                     buffers max cpu") into FILE, to lay beside a trace
#
# Prints, on stdout, lines of "key=value" fields (milliseconds unless
# named otherwise):
#   probe prio=                      fifo, normal, or normal,chrt-failed
#   idle n= p50= p99= p999= max= windows= wmax=
#   scraping n= p50= p99= p999= max= windows= wmax=
#                                    wmax: the median of the windows' maxima
#   between n=
#   scrapes n= bytes= buffers= bufsize= cpu_ms= wall_ms= probe_cpu_us=
#       buf_cpu_us= buf_wall_us=
#   delay kind= windows= worker_ms= probe_ms= worker_cpu_ms=  (per kind)
#   slow rank= ms= at= window= kind= worker_delay_ms=  (at: s from start)
# Only Perl core modules are used.

use warnings;
use strict;

use File::Temp qw/ tempfile /;
use FindBin;
use Getopt::Long;
use POSIX qw/ floor /;
use Time::HiRes qw/ clock_gettime CLOCK_MONOTONIC sleep /;

use lib $FindBin::Bin;
use BenchWire;

my ($pairs, $window, $interval, $gzip, $fifo, $dump) = (25, 0.4, 1, 0, 0);

GetOptions('pairs=i' => \$pairs, 'window=f' => \$window,
	'interval=f' => \$interval, 'gzip' => \$gzip, 'fifo' => \$fifo,
	'dump=s' => \$dump)
	and @ARGV == 4
	or die "usage: $0 [--pairs N] [--window S] [--interval MS] [--gzip] "
		. "PORT PATH SCRAPE_PATH WORKER_PID\n";

my ($port, $path, $scrape_path, $worker) = @ARGV;

$interval /= 1000;

sub now { clock_gettime(CLOCK_MONOTONIC) }

# "on-CPU run-delay" in seconds, of a task
sub schedstat {
	my ($pid) = @_;

	open my $f, '<', "/proc/$pid/schedstat" or die "schedstat $pid: $!\n";
	my ($on, $delay) = split ' ', scalar <$f>;

	return ($on / 1e9, $delay / 1e9);
}

sub connect_to {
	return connect_wait('stall', $port, 0);
}

sub send_all {
	my ($s, $data) = @_;
	write_all($s, $data) or die "stall: write: $!\n";
}

sub fill {
	my ($s, $b) = @_;
	read_more('stall', $s, $b);
}

# windows: 0 .. 2 * pairs - 1; the idle one first in even pairs
sub kind {
	my ($w) = @_;
	my $pair = int($w / 2);

	return (($w % 2) == ($pair % 2)) ? 'idle' : 'scraping';
}

my $nwindows = 2 * $pairs;

# the start, a little ahead, so that both processes are ready
my $t0 = now() + 0.2;
my $t_end = $t0 + $nwindows * $window;

sub window_of {
	my ($t) = @_;
	return floor(($t - $t0) / $window);
}

my ($logfh, $logname) = tempfile('railgun-stall-XXXXXX', TMPDIR => 1,
	UNLINK => 1);

my $pid = fork() // die "stall: fork: $!\n";

if ($pid == 0) {
	# a session of its own: under autogroup scheduling, a group of its
	# own, apart from the probe
	POSIX::setsid();
	scraper();
	exit 0;
}

close $logfh;

# the probe, real-time if it may (the scraper, forked before, is not)

my $prio = 'normal';

if ($fifo) {
	# above a worker made SCHED_FIFO 1 (bench/run), which seldom blocks
	# while it scrapes: the probe must not wait for it on a shared CPU
	if (system("chrt -f -p 2 $$ > /dev/null 2>&1") == 0) {
		$prio = 'fifo';
	} else {
		$prio = 'normal,chrt-failed';
	}
}

my $sock = connect_to();
my $req = "GET $path HTTP/1.1\r\nHost: bench\r\n\r\n";
my $buf = '';
my (@sent, @lat);
my %ws;          # window => [worker on, worker delay, probe delay] at start
my $k = 0;
my $last_window = -1;

while (1) {
	my $due = $t0 + $k * $interval;
	$k++;

	last if $due >= $t_end;

	my $t = now();

	if ($due > $t) {
		sleep($due - $t);
	}

	my $s = now();
	my $w = window_of($s);

	next if $w < 0;
	last if $w >= $nwindows;

	if ($w != $last_window) {
		$ws{$w} = [schedstat($worker), (schedstat($$))[1]];
		$last_window = $w;
		$s = now();
	}

	send_all($sock, $req);

	my $end;
	until (($end = index($buf, "\r\n\r\n")) >= 0) {
		fill($sock, \$buf);
	}

	my $head = substr($buf, 0, $end + 4, '');

	$head =~ m!^HTTP/1\.[01] 200 !
		or die "stall: not a 200 for $path\n";
	$head =~ m!\r\ncontent-length:\s*(\d+)!i
		or die "stall: no Content-Length for $path\n";

	my $len = $1;

	fill($sock, \$buf) while length($buf) < $len;
	substr($buf, 0, $len, '');

	push @sent, $s;
	push @lat, now() - $s;
}

$ws{$nwindows} = [schedstat($worker), (schedstat($$))[1]];

waitpid($pid, 0);
$? == 0 or die "stall: the scraper failed\n";

# the scrapes: "start end bytes chunks maxchunk cpu", in order

my @scr;

open my $lf, '<', $logname or die "stall: $logname: $!\n";
while (<$lf>) {
	push @scr, [split ' '];
}
close $lf;

@scr or die "stall: no scrape done\n";

# classify: a sweep over both lists, in time order

my (%lat, @dump);
my $j = 0;

for my $i (0 .. $#sent) {
	my ($s, $l) = ($sent[$i], $lat[$i]);
	my $e = $s + $l;

	$j++ while $j < @scr && $scr[$j][1] < $s;

	# $scr[$j] is the first scrape that ends at or after the send
	my $class;

	if ($j < @scr && $scr[$j][0] <= $s) {
		$class = 'scraping';

	} elsif (kind(window_of($s)) eq 'idle'
		&& ($j >= @scr || $scr[$j][0] > $e))
	{
		$class = 'idle';

	} else {
		$class = 'between';
	}

	push @{$lat{$class}}, [$l, $s];
	push @dump, sprintf("%.6f %.6f %s\n", $s, $l, $class) if $dump;
}

if ($dump) {
	open my $df, '>', $dump or die "stall: $dump: $!\n";
	print $df @dump;
	print $df map { "scrape @$_\n" } @scr;
	close $df;
}

sub stats {
	my ($class) = @_;
	my @v = sort { $a->[0] <=> $b->[0] } @{$lat{$class} // []};

	return "$class n=0" unless @v;

	my $q = sub { $v[floor($_[0] * $#v + 0.5)][0] * 1000 };

	# each window's slowest, and their median: a worst case per window
	# that one spike of the machine does not make
	my %wmax;

	for (@v) {
		my $w = window_of($_->[1]);

		# a scrape that ran on into an idle window is its window's
		$w-- if $class eq 'scraping' && kind($w) eq 'idle';

		$wmax{$w} = $_->[0] if $_->[0] > ($wmax{$w} // 0);
	}

	my @m = sort { $a <=> $b } values %wmax;
	my $wmed = @m % 2 ? $m[$#m / 2] : ($m[@m / 2 - 1] + $m[@m / 2]) / 2;

	return sprintf "%s n=%d p50=%.3f p99=%.3f p999=%.3f max=%.3f "
		. "windows=%d wmax=%.3f", $class, scalar @v, $q->(0.5),
		$q->(0.99), $q->(0.999), $v[-1][0] * 1000, scalar @m,
		$wmed * 1000;
}

print "probe prio=$prio\n";
print stats('idle'), "\n";
print stats('scraping'), "\n";
printf "between n=%d\n", scalar @{$lat{between} // []};

# per kind of window: the worker's CPU and run delay, the probe's run delay

my (%cpu, %wdelay, %pdelay, %nwin);

for my $w (0 .. $nwindows - 1) {
	next unless $ws{$w} && $ws{$w + 1};

	my $kd = kind($w);

	$cpu{$kd} += $ws{$w + 1}[0] - $ws{$w}[0];
	$wdelay{$kd} += $ws{$w + 1}[1] - $ws{$w}[1];
	$pdelay{$kd} += $ws{$w + 1}[2] - $ws{$w}[2];
	$nwin{$kd}++;
}

for my $kd (qw/ idle scraping /) {
	next unless $nwin{$kd};
	printf "delay kind=%s windows=%d worker_ms=%.1f probe_ms=%.1f "
		. "worker_cpu_ms=%.1f\n", $kd, $nwin{$kd},
		$wdelay{$kd} * 1000, $pdelay{$kd} * 1000, $cpu{$kd} * 1000;
}

# the time to render one buffer

my ($bytes, $chunks, $maxchunk, $scpu, $swall) = (0, 0, 0, 0, 0);

for (@scr) {
	$bytes += $_->[2];
	$chunks += $_->[3];
	$maxchunk = $_->[4] if $_->[4] > $maxchunk;
	$scpu += $_->[5];
	$swall += $_->[1] - $_->[0];
}

# the worker's CPU per request of the probe, from the idle windows
my $idle_req = 0;

for my $i (0 .. $#sent) {
	$idle_req++ if kind(window_of($sent[$i])) eq 'idle';
}

my $per_req = $idle_req ? ($cpu{idle} // 0) / $idle_req : 0;
my $nscraping = scalar @{$lat{scraping} // []};
my $buf_cpu = ($scpu - $nscraping * $per_req) / ($chunks || 1);

printf "scrapes n=%d bytes=%d buffers=%d bufsize=%d cpu_ms=%.1f "
	. "wall_ms=%.1f probe_cpu_us=%.1f buf_cpu_us=%.1f buf_wall_us=%.1f\n",
	scalar @scr, $bytes, $chunks, $maxchunk, $scpu * 1000, $swall * 1000,
	$per_req * 1e6, $buf_cpu * 1e6, $swall / ($chunks || 1) * 1e6;

# the slowest requests, with their context

my @all = sort { $b->[0] <=> $a->[0] }
	map { my $c = $_; map { [@$_, $c] } @{$lat{$c}} }
	grep { $_ ne 'between' } keys %lat;

for my $rank (1 .. 5) {
	my $x = $all[$rank - 1] or last;
	my $w = window_of($x->[1]);
	my $d = ($ws{$w} && $ws{$w + 1})
		? ($ws{$w + 1}[1] - $ws{$w}[1]) * 1000 : -1;

	printf "slow rank=%d ms=%.3f at=%.3f window=%d kind=%s "
		. "worker_delay_ms=%.1f\n", $rank, $x->[0] * 1000,
		$x->[1] - $t0, $w, $x->[2], $d;
}

exit 0;

# the child: scrapes back to back in the scraping windows

sub scraper {
	my $s = connect_to();
	my $ae = $gzip ? "Accept-Encoding: gzip\r\n" : '';
	my $sreq = "GET $scrape_path HTTP/1.1\r\nHost: bench\r\n$ae\r\n";

	while (1) {
		my $t = now();
		my $w = window_of($t);

		last if $w >= $nwindows;

		if ($w < 0 || kind($w) ne 'scraping') {
			# to the next window's start
			sleep($t0 + ($w + 1) * $window - $t);
			next;
		}

		my ($on0) = schedstat($worker);
		my $start = now();

		send_all($s, $sreq);

		my $b = '';
		my $end;

		until (($end = index($b, "\r\n\r\n")) >= 0) {
			fill($s, \$b);
		}

		my $head = substr($b, 0, $end + 4, '');

		$head =~ m!^HTTP/1\.1 200 !
			or die "stall: not a 200 for $scrape_path\n";
		my ($bytes, $chunks, $max, $pos) = (0, 0, 0, 0);

		if ($head !~ m!\r\ntransfer-encoding:\s*chunked!i) {
			# a body of a known length: the static file of the
			# control, read and dropped; no buffers to count
			$head =~ m!\r\ncontent-length:\s*(\d+)!i
				or die "stall: neither chunked nor a length\n";

			my $left = $1 - length $b;

			$bytes = $1;
			$b = '';

			while ($left > 0) {
				my $r = sysread($s, $b,
					$left < 262144 ? $left : 262144);
				die "stall: read: $!\n" unless defined $r;
				die "stall: connection closed by the server\n"
					if $r == 0;
				$left -= $r;
			}

		} else {
			while (1) {
				my $e;

				until (($e = index($b, "\r\n", $pos)) >= 0) {
					substr($b, 0, $pos, '');
					$pos = 0;
					fill($s, \$b);
				}

				my $size = hex(substr($b, $pos, $e - $pos));
				my $need = $e + 2 + $size + 2;

				while (length($b) < $need) {
					substr($b, 0, $pos, '');
					$need -= $pos;
					$e -= $pos;
					$pos = 0;
					fill($s, \$b);
				}

				$pos = $need;

				last if $size == 0;

				$bytes += $size;
				$chunks++;
				$max = $size if $size > $max;
			}
		}

		my $stop = now();
		my ($on1) = schedstat($worker);

		printf $logfh "%.6f %.6f %d %d %d %.6f\n", $start, $stop, $bytes,
			$chunks, $max, $on1 - $on0;
	}

	close $logfh;
}
