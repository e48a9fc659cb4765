#!/bin/bash
# bench/trace/capture.sh OUT EVENT... -- COMMAND [ARGS]
#
# Traces COMMAND with ftrace (tracefs, root), not perf: no tracer process
# runs during the trace (perf's own writes of its buffer held a CPU for up
# to 10 ms at a time on this kernel, which does not preempt a task in the
# kernel, and made slow requests of their own).  The clock is CLOCK_MONOTONIC
# (trace_clock mono), the clock of bench/stall.pl --dump.  OUT gets the
# events in the form of `perf script -F comm,tid,cpu,time,event,trace`,
# which the other scripts here read.
#
# Example: the stall check with the worker FIFO 1, as bench/run runs it:
#
#   chrt -f -p 1 $WORKER
#   bench/trace/capture.sh trace.txt sched:sched_switch sched:sched_wakeup \
#       sched:sched_stat_runtime irq:softirq_entry irq:softirq_exit \
#       timer:hrtimer_expire_entry timer:hrtimer_expire_exit -- \
#       perl bench/stall.pl --fifo --dump dump.txt $PORT /r /metrics $WORKER
#   bench/trace/attr.pl trace.txt dump.txt 3       # the slow requests
#   bench/trace/throttle.pl trace.txt $WORKER 1    # RT throttling
#   bench/trace/wakeup.pl trace.txt $PROBE $WORKER # wake-up latencies
#
# Uprobes made with `perf probe -x` (probe_mod:..., probe_nginx:...) and a
# filter set beforehand in tracefs (events/raw_syscalls/filter, say
# "common_pid == $WORKER") are kept.

set -eu

T=/sys/kernel/tracing
out=$1
shift

clock=$(sed 's/.*\[\(.*\)\].*/\1/' $T/trace_clock)
size=$(sed 's/ .*//' $T/buffer_size_kb)
on=$(cat $T/tracing_on)

echo 0 > $T/tracing_on
echo > $T/set_event
echo mono > $T/trace_clock
echo 262144 > $T/buffer_size_kb
while [ "$1" != "--" ]; do
    echo "$1" >> $T/set_event
    shift
done
shift

echo > $T/trace
echo 1 > $T/tracing_on
rc=0
"$@" || rc=$?
echo 0 > $T/tracing_on

if grep -q '^overrun: [1-9]' $T/per_cpu/cpu*/stats; then
    echo "capture: events lost (overrun): a shorter run" >&2
fi

perl -ne '
    next if /^#/;
    my ($comm, $pid, $cpu, $ts, $sys, $ev, $rest) =
        /^\s*(.+)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+):
            \s+(?:(\w+):)?(\w+):\s*(.*)$/x or next;
    $sys //= { sched_switch => "sched", sched_wakeup => "sched",
        sched_waking => "sched", sched_stat_runtime => "sched",
        softirq_entry => "irq", softirq_exit => "irq",
        irq_handler_entry => "irq", irq_handler_exit => "irq",
        hrtimer_expire_entry => "timer", hrtimer_expire_exit => "timer",
        sys_enter => "raw_syscalls", sys_exit => "raw_syscalls",
        page_fault_user => "exceptions" }->{$ev} // "probe";
    printf "%16s %6d [%03d] %s: %s:%s: %s\n",
        $comm, $pid, $cpu, $ts, $sys, $ev, $rest;' $T/trace > "$out"

echo > $T/set_event
echo > $T/trace
echo "$clock" > $T/trace_clock
echo "$size" > $T/buffer_size_kb
echo "$on" > $T/tracing_on
exit $rc
