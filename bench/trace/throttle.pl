#!/usr/bin/perl
# bench/trace/throttle.pl TRACE PID [MIN_MS]
#
# The times the task PID (SCHED_FIFO) was switched out while runnable for
# a task of lower priority, and for how long (those of MIN_MS [1] and more
# listed): RT throttling when the CPU goes to the idle task (swapper) until
# sched_rt_period_timer; the fair server when a SCHED_OTHER task gets it.

use strict;
use warnings;

my ($file, $pid, $min) = @ARGV;
my ($out, $who, $n, $sum) = (undef, '', 0, 0);

$min //= 1;

open my $t, '<', $file or die "$file: $!\n";

while (<$t>) {
    next unless /sched:sched_switch:/;

    my ($c, $ts) = /\[(\d+)\]\s+([\d.]+):/ or next;

    if (my ($pp, $st, $nc, $np) = /prev_pid=$pid\ prev_prio=(\d+)
        \ prev_state=(\S+)\ ==>\ next_comm=(.+?)\ next_pid=\d+
        \ next_prio=(\d+)/x)
    {
        if ($st =~ /^R/ && $np > $pp) {
            ($out, $who) = ($ts, "$nc cpu$c");
        }

    } elsif (defined $out && /next_pid=$pid /) {
        my $d = ($ts - $out) * 1000;

        printf "preempted %.6f for %.3f ms (%s took the cpu)\n", $out, $d,
            $who if $d >= $min;
        $n++;
        $sum += $d;
        undef $out;
    }
}

printf "%d times, %.1f ms\n", $n, $sum;
