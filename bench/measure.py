#!/usr/bin/env python3
"""measure.py RUNS -- CMD...: runs CMD RUNS times (stdout discarded) and prints
`median_wall_s max_rss_kib exit_code median_cpu_s`. Peak RSS and CPU time (user + system, all
threads) come from wait4's rusage of each child."""
import os, statistics, subprocess, sys, time

runs = int(sys.argv[1])
cmd = sys.argv[sys.argv.index("--") + 1:]
walls, cpus, rss, code = [], [], 0, 0
for _ in range(runs):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    walls.append(time.perf_counter() - t0)
    cpus.append(usage.ru_utime + usage.ru_stime)
    rss = max(rss, usage.ru_maxrss)
    code = os.waitstatus_to_exitcode(status)
print(f"{statistics.median(walls):.4f} {rss} {code} {statistics.median(cpus):.4f}")
