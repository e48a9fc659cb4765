#!/usr/bin/perl
# bench/trace/wakeup.pl TRACE PID...
#
# Wake-up latencies of those tasks (the probe, the worker): from
# sched_wakeup to the switch to them, with the task that held the CPU
# meanwhile (on this kernel, "Dynamic Preempt: none", a task in the kernel
# keeps the CPU until it returns to user space, SCHED_FIFO or not).

my ($f, @pids) = @ARGV; my %want = map { $_ => 1 } @pids;
my (%w, %lat);
open my $t, '<', $f or die;
while (<$t>) {
  if (/\[(\d+)\]\s+([\d.]+):\s+sched:sched_wakeup: comm=(\S+) pid=(\d+) prio=(\d+) target_cpu=(\d+)/) {
     $w{$4} = [$2, $4, $6] if $want{$4} && !$w{$4};
  } elsif (my ($c, $ts, $pc, $pp, $np) = /\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch: prev_comm=(.+?) prev_pid=(\d+) .*next_pid=(\d+) next_prio=/) {
     delete $w{$pp};
     if ($w{$np}) { my $d = ($ts - $w{$np}[0]) * 1e6; push @{$lat{$np}}, [$d, $w{$np}[0], "$pc/$pp", $c]; delete $w{$np}; }
  }
}
for my $p (sort keys %lat) {
  my @v = sort { $a->[0] <=> $b->[0] } @{$lat{$p}};
  printf "pid %d: n=%d p50=%.0fus p99=%.0fus p999=%.0fus max=%.0fus\n", $p, scalar @v, $v[@v/2][0], $v[int(@v*.99)][0], $v[int(@v*.999)][0], $v[-1][0];
  my %sum; $sum{$_->[2] =~ s/\/\d+$//r} += $_->[0] for grep { $_->[0] > 500 } @v;
  printf "  over 0.5ms, by the task switched from: %s\n", join ', ', map { sprintf "%s %.1fms", $_, $sum{$_}/1000 } sort { $sum{$b} <=> $sum{$a} } keys %sum;
  printf "  worst: %s\n", join '; ', map { sprintf "%.2fms at %.6f from %s cpu%d", $_->[0]/1000, $_->[1], $_->[2], $_->[3] } reverse @v[-6..-1];
}
