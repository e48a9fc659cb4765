#!/usr/bin/perl
# bench/trace/loop.pl TRACE PID
#
# The worker's loop iterations, from the return of epoll_wait() to its next
# call: their wall time, the renders in each (a uprobe named "rend" on
# ngx_http_railgun_render: perf probe -x MODULE.so rend=ngx_http_railgun_render),
# the writev() calls, and the softirq time and switches inside.  Needs
# raw_syscalls filtered on the worker (events/raw_syscalls/*/filter).

my ($f, $pid) = @ARGV; my (@it, $s, $nr, $si, $sis, $sw, $wr);
open my $t, '<', $f or die;
while (<$t>) {
  next unless /^\s*\S.*?\s+$pid\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)/ || /next_pid=$pid / || /prev_pid=$pid /;
  my ($ts, $ev, $r) = ($1, $2, $3);
  if (!defined $ts) { next }
  if ($ev eq 'raw_syscalls:sys_exit' && $r =~ /^NR 232 /) { $s = $ts; $nr = 0; $si = 0; $sw = 0; $wr = 0 }
  elsif (defined $s && $ev eq 'raw_syscalls:sys_enter' && $r =~ /^NR 232 /) { push @it, [($ts-$s)*1e6, $nr, $si*1e6, $sw, $wr, $s]; undef $s }
  elsif ($ev =~ /:rend$/) { $nr++ }
  elsif ($ev eq 'raw_syscalls:sys_enter' && $r =~ /^NR 20 /) { $wr++ }
  elsif ($ev eq 'irq:softirq_entry') { $sis = $ts }
  elsif ($ev eq 'irq:softirq_exit' && defined $sis) { $si += $ts - $sis; undef $sis }
  elsif ($ev eq 'sched:sched_switch') { $sw++ }
}
my @v = sort { $a->[0] <=> $b->[0] } @it;
my %byn; $byn{$_->[1]}++ for @it;
printf "iterations n=%d p50=%.0fus p99=%.0fus p999=%.0fus max=%.0fus; renders per iteration: %s\n", scalar @v, $v[@v/2][0], $v[int(@v*.99)][0], $v[int(@v*.999)][0], $v[-1][0], join ' ', map { "$_:$byn{$_}" } sort { $a <=> $b } keys %byn;
my @x = map { $_->[0] - $_->[2] } grep { $_->[3] == 0 } @it; @x = sort { $a <=> $b } @x;
printf "without switches, less softirq time: p99=%.0fus p999=%.0fus max=%.0fus\n", $x[int(@x*.99)], $x[int(@x*.999)], $x[-1];
printf "slowest: %s\n", join '; ', map { sprintf "%.0fus at %.6f (renders %d, writev %d, softirq %.0fus, switches %d)", $_->[0], $_->[5], $_->[1], $_->[4], $_->[2], $_->[3] } reverse @v[-8..-1];
