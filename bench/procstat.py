#!/usr/bin/env python3
"""Whole-process A/B timing: runs each command (a shell line) in turn, N times (env N, default 9),
and prints the median wall time, CPU time (user + system of the child, from wait4: less
disturbed by a loaded machine than wall time) and minor page faults of each.

    N=11 bench/procstat.py "exec bams3 query a.bams3 X:1-1000" "exec samtools view a.bam X:1-1000"
"""
import os, statistics, subprocess, sys, time
N=int(os.environ.get('N','9'))
cmds=sys.argv[1:]
res={c:[] for c in cmds}
for i in range(N):
    for c in cmds:
        t=time.perf_counter()
        p=subprocess.Popen(c,shell=True,stdout=subprocess.DEVNULL)
        _,st,ru=os.wait4(p.pid,0)
        res[c].append((time.perf_counter()-t, ru.ru_utime+ru.ru_stime, ru.ru_minflt))
for c in cmds:
    w=statistics.median(r[0] for r in res[c]); cpu=statistics.median(r[1] for r in res[c]); f=statistics.median(r[2] for r in res[c])
    print(f"wall {w*1000:7.1f} ms  cpu {cpu*1000:7.1f} ms  faults {f:6.0f}  {c.replace(os.environ.get('HOME', '~'), '~')}")
