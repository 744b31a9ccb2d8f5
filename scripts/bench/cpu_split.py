#!/usr/bin/env python3
"""Runs a command and splits its CPU time between the process itself and its children:

  cpu_split.py COMMAND [ARGS...]   ->   "SELF_SECONDS CHILDREN_SECONDS EXIT_CODE"

The command is waited for with waitid(WNOWAIT): it has exited but is not yet reaped, so its /proc
entry is still there. SELF is its own on-CPU time from /proc/PID/schedstat (nanoseconds, the main
thread; the supervisor of `watchdog -q -- fetch` runs no other thread). Reaping it with wait4 then
gives the rusage of the process plus every child it reaped (microseconds); CHILDREN is that total
minus SELF, i.e. the fetch worker.
"""
import os
import subprocess
import sys

proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
with open(f"/proc/{proc.pid}/schedstat") as f:
    self_s = int(f.read().split()[0]) / 1e9
_, status, usage = os.wait4(proc.pid, 0)
total = usage.ru_utime + usage.ru_stime
print(f"{self_s:.6f} {max(0.0, total - self_s):.6f} {os.waitstatus_to_exitcode(status)}")
