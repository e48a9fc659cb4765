#!/usr/bin/perl
# bench/trace/wakeup.pl TRACE PID...
#
# Wake-up latencies of those tasks (the probe, the worker): from
# sched_wakeup to the switch to them, with the task that held the CPU
# meanwhile (on this kernel, "Dynamic Preempt: none", a task in the kernel
# keeps the CPU until it returns to user space, SCHED_FIFO or not).

use strict;
use warnings;

my ($file, @pids) = @ARGV;
my %want = map { $_ => 1 } @pids;
my (%w, %lat);

open my $t, '<', $file or die "$file: $!\n";

while (<$t>) {
    if (my ($ts, $p) = /\[\d+\]\s+([\d.]+):\s+sched:sched_wakeup:
        \ comm=\S+\ pid=(\d+)\ /x)
    {
        $w{$p} //= $ts if $want{$p};

    } elsif (my ($c, $s, $pc, $pp, $np) = /\[(\d+)\]\s+([\d.]+):
        \s+sched:sched_switch:\ prev_comm=(.+?)\ prev_pid=(\d+)\ .*
        next_pid=(\d+)\ next_prio=/x)
    {
        # a wake-up of a running task wakes nothing
        delete $w{$pp};

        if (defined $w{$np}) {
            push @{$lat{$np}}, [($s - $w{$np}) * 1e6, $w{$np}, "$pc/$pp",
                $c];
            delete $w{$np};
        }
    }
}

for my $p (sort keys %lat) {
    my @v = sort { $a->[0] <=> $b->[0] } @{$lat{$p}};
    my $q = sub { $v[int($_[0] * $#v + 0.5)][0] };
    my %by;

    printf "pid %d: n=%d p50=%.0fus p99=%.0fus p999=%.0fus max=%.0fus\n",
        $p, scalar @v, map { $q->($_) } 0.5, 0.99, 0.999, 1;

    for (grep { $_->[0] > 500 } @v) {
        $by{$_->[2] =~ s!/\d+$!!r} += $_->[0];
    }

    printf "  over 0.5 ms, by the task switched from: %s\n",
        join ', ', map { sprintf "%s %.1fms", $_, $by{$_} / 1000 }
        sort { $by{$b} <=> $by{$a} } keys %by;

    for (reverse @v[($#v > 5 ? $#v - 5 : 0) .. $#v]) {
        printf "  %.2fms at %.6f from %s cpu%d\n",
            $_->[0] / 1000, @$_[1 .. 3];
    }
}
