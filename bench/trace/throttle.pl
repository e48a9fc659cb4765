#!/usr/bin/perl
# bench/trace/throttle.pl TRACE PID [MIN_MS]
#
# The times the task PID (SCHED_FIFO) was switched out while runnable for
# a task of lower priority, and for how long (those of MIN_MS [1] and more
# listed): RT throttling when the CPU goes to the idle task (swapper) until
# sched_rt_period_timer; the fair server when a SCHED_OTHER task gets it.

my ($f, $pid, $min) = @ARGV; $min //= 1; my ($who, $out, $n, $sum);
open my $t, '<', $f or die;
while (<$t>) {
  if (my ($c, $ts, $pp, $st, $nc, $np) = /\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=\S+ prev_pid=$pid prev_prio=(\d+) prev_state=(\S+) ==> next_comm=(\S+) next_pid=\d+ next_prio=(\d+)/) {
     if ($st =~ /^R/ && $np > $pp) { $out = $ts; $who = "$nc cpu$c"; }
  } elsif (defined $out && /\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: .*next_pid=$pid /) {
     my $d = ($2 - $out) * 1000;
     printf "preempted %.6f for %.3f ms (%s took the cpu)\n", $out, $d, $who if $d >= $min; $n++; $sum += $d; undef $out;
  }
}
printf "%d times, %.1f ms\n", $n, $sum;
