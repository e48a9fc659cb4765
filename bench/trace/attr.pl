#!/usr/bin/perl
# bench/trace/attr.pl TRACE DUMP MIN_MS
#
# For each probe request of DUMP (bench/stall.pl --dump) slower than MIN_MS,
# what each CPU did while it waited: the time of each task, of each softirq
# (with the hrtimer callback running in it, if traced) and in whose
# context, and the steal: with PARAVIRT_TIME_ACCOUNTING, the wall time
# between two sched_stat_runtime events of a running task that its runtime
# leaves out, the time the host did not run this vCPU.  Needs
# sched_switch and sched_stat_runtime (softirq_*, hrtimer_expire_* help).
# "swapper" is a CPU idle; both CPUs idle while a request waited is a
# wake-up the host has not delivered yet (the IPI to a halted vCPU).

use strict; use warnings;
my ($trace, $dump, $min) = @ARGV;
my @req;
open my $d, '<', $dump or die;
while (<$d>) { my @f = split; next if $f[0] eq 'scrape';
    push @req, [$f[0], $f[1], $f[2]] if $f[1] * 1000 >= $min; }
close $d;
@req = sort { $a->[0] <=> $b->[0] } @req;
my @ev;   # [t, cpu, type, arg...]
open my $t, '<', $trace or die;
while (<$t>) {
    my ($comm, $tid, $cpu, $ts, $ev, $rest) =
        /^\s*(.+?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$/ or next;
    if ($ev eq 'sched:sched_switch') {
        my ($nc, $np) = $rest =~ /next_comm=(.+?) next_pid=(\d+)/;
        push @ev, [$ts, $cpu, 'sw', "$nc/$np", $np];
    } elsif ($ev eq 'sched:sched_stat_runtime') {
        my ($p, $rt) = $rest =~ /pid=(\d+) runtime=(\d+)/;
        push @ev, [$ts, $cpu, 'rt', $p, $rt / 1e9];
    } elsif ($ev eq 'irq:softirq_entry') {
        my ($v) = $rest =~ /action=(\w+)/; push @ev, [$ts, $cpu, 'si', $v];
    } elsif ($ev eq 'irq:softirq_exit') {
        push @ev, [$ts, $cpu, 'so'];
    } elsif ($ev eq 'irq:irq_handler_entry') {
        my ($v) = $rest =~ /name=(\S+)/; push @ev, [$ts, $cpu, 'ii', $v];
    } elsif ($ev eq 'irq:irq_handler_exit') {
        push @ev, [$ts, $cpu, 'io'];
    } elsif ($ev eq 'timer:hrtimer_expire_entry') {
        my ($f) = $rest =~ /function=(\S+)/; push @ev, [$ts, $cpu, 'hi', $f];
    } elsif ($ev eq 'timer:hrtimer_expire_exit') {
        push @ev, [$ts, $cpu, 'ho'];
    } elsif ($ev =~ /^probe/) {
        push @ev, [$ts, $cpu, 'u', $ev];
    }
    # the first event of a cpu tells its current task
    $ev[-1][5] //= "$comm/$tid" if @ev;
    $ev[-1][6] = $tid if @ev;
}
close $t;
@ev = sort { $a->[0] <=> $b->[0] } @ev;

# per cpu state machine, one pass; intervals of interest sorted
my (%cur, %ctid, %si, %hi, %last, %since);
my @acc = map { {} } @req;
my @act = ();   # active request indices
my $ri = 0;
sub charge {
    my ($cpu, $from, $to) = @_;
    return if $to <= $from;
    my $what = defined $si{$cpu}
        ? "softirq:$si{$cpu}" . (defined $hi{$cpu} ? "($hi{$cpu})" : '')
        . " in " . ($cur{$cpu} // '?')
        : ($cur{$cpu} // '?');
    for my $i (@act) {
        my ($a, $b) = ($req[$i][0], $req[$i][0] + $req[$i][1]);
        my $lo = $from > $a ? $from : $a; my $hi = $to < $b ? $to : $b;
        $acc[$i]{"cpu$cpu"}{$what} += $hi - $lo if $hi > $lo;
    }
}
my (%steal);  # request index => cpu => steal
for my $e (@ev) {
    my ($ts, $cpu, $ty) = @$e;
    while ($ri < @req && $req[$ri][0] <= $ts) { push @act, $ri++; }
    @act = grep { $req[$_][0] + $req[$_][1] >= ($last{$cpu} // 0) - 0.05 }
        @act;
    if (!defined $cur{$cpu}) {
        $cur{$cpu} = $e->[5];
        ($ctid{$cpu}) = $e->[5] =~ m!/(\d+)$!;
    }
    charge($cpu, $last{$cpu} // $ts, $ts);
    $last{$cpu} = $ts;
    if ($ty eq 'sw') {
        ($cur{$cpu}, $ctid{$cpu}, $since{$cpu}) = ($e->[3], $e->[4], $ts);
    }
    elsif ($ty eq 'si') { $si{$cpu} = $e->[3]; }
    elsif ($ty eq 'so') { delete $si{$cpu}; }
    elsif ($ty eq 'hi') { $hi{$cpu} = $e->[3]; }
    elsif ($ty eq 'ho') { delete $hi{$cpu}; }
    elsif ($ty eq 'rt') {
        if (defined $since{$cpu} && $e->[3] == ($ctid{$cpu} // -1)) {
            my $st = ($ts - $since{$cpu}) - $e->[4];
            if ($st > 0) {
                for my $i (@act) {
                    my ($a, $b) = ($req[$i][0], $req[$i][0] + $req[$i][1]);
                    my $lo = $since{$cpu} > $a ? $since{$cpu} : $a;
                    my $hi = $ts < $b ? $ts : $b;
                    next unless $hi > $lo;
                    $steal{$i}{$cpu} +=
                        $st * ($hi - $lo) / ($ts - $since{$cpu});
                }
            }
        }
        $since{$cpu} = $ts if $e->[3] == ($ctid{$cpu} // -1);
    }
}
for my $i (0 .. $#req) {
    my ($s, $l, $k) = @{$req[$i]};
    printf "== %.6f %.3fms %s\n", $s, $l * 1000, $k;
    for my $c (sort keys %{$acc[$i]}) {
        my $h = $acc[$i]{$c};
        my ($n) = $c =~ /(\d+)/;
        printf "  %s steal~%.2fms: %s\n", $c, ($steal{$i}{$n} // 0) * 1000,
            join ', ', map { sprintf "%s %.2f", $_, $h->{$_} * 1000 }
            grep { $h->{$_} >= 0.0001 }
            sort { $h->{$b} <=> $h->{$a} } keys %$h;
    }
}
