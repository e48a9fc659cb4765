#!/usr/bin/perl
# bench/trace/loop.pl TRACE PID
#
# The worker's loop iterations, from the return of epoll_wait() to its next
# call: their wall time, the renders in each (a uprobe named "rend" on the
# render: perf probe -x MODULE.so rend=ngx_http_railgun_render), the
# writev() calls, and the softirq time and switches inside.  Needs
# raw_syscalls filtered on the worker (events/raw_syscalls/*/filter).

use strict;
use warnings;

my ($file, $pid) = @ARGV;
my (@it, $s, $nr, $si, $sis, $sw, $wr);

open my $t, '<', $file or die "$file: $!\n";

while (<$t>) {
    my ($ts, $ev, $r) =
        /^\s*\S.*?\s+$pid\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)/ or next;

    if ($ev eq 'raw_syscalls:sys_exit' && $r =~ /^NR 232 /) {
        ($s, $nr, $si, $sw, $wr) = ($ts, 0, 0, 0, 0);
    } elsif (defined $s && $ev eq 'raw_syscalls:sys_enter'
             && $r =~ /^NR 232 /)
    {
        push @it, [($ts - $s) * 1e6, $nr, $si * 1e6, $sw, $wr, $s];
        undef $s;
    } elsif ($ev =~ /:rend$/) {
        $nr++;
    } elsif ($ev eq 'raw_syscalls:sys_enter' && $r =~ /^NR 20 /) {
        $wr++;
    } elsif ($ev eq 'irq:softirq_entry') {
        $sis = $ts;
    } elsif ($ev eq 'irq:softirq_exit' && defined $sis) {
        $si += $ts - $sis;
        undef $sis;
    } elsif ($ev eq 'sched:sched_switch') {
        $sw++;
    }
}

@it or die "no iteration: raw_syscalls of $pid not traced?\n";

my @v = sort { $a->[0] <=> $b->[0] } @it;
my %byn;

$byn{$_->[1]}++ for @it;

sub quant { my ($v, $p) = @_; return $v->[int($p * $#$v + 0.5)] }

printf "iterations n=%d p50=%.0fus p99=%.0fus p999=%.0fus max=%.0fus\n",
    scalar @v, map { quant(\@v, $_)->[0] } 0.5, 0.99, 0.999, 1;
printf "renders per iteration: %s\n",
    join ' ', map { "$_:$byn{$_}" } sort { $a <=> $b } keys %byn;

my @x = sort { $a <=> $b } map { $_->[0] - $_->[2] } grep { !$_->[3] } @it;

printf "without switches, less softirq time: p99=%.0fus p999=%.0fus "
    . "max=%.0fus\n", map { quant(\@x, $_) } 0.99, 0.999, 1;

for my $i (reverse @v[($#v > 7 ? $#v - 7 : 0) .. $#v]) {
    printf "slow %.0fus at %.6f: renders %d, writev %d, softirq %.0fus, "
        . "switches %d\n", @$i[0, 5, 1, 4, 2, 3];
}
