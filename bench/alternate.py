#!/usr/bin/env python3
"""alternate.py RUNS CASE... : runs the commands of CASE (`name|folder|command words`) one after
the other, RUNS rounds, from this one process (a fresh interpreter per run adds its own start-up
noise to every sample), and prints `name|walls|cpus|rsss` per case (seconds, seconds, KiB; one
value per run, space-separated). Before each run the folder's `new` subfolder (a previous run's
output) is removed, outside the timing. Peak RSS and CPU time (user + system, all threads) come
from wait4's rusage of the child; stdout and stderr are discarded. Exits 1 if a command fails."""
import os, shutil, subprocess, sys, time

runs = int(sys.argv[1])
cases = [c.split("|", 2) for c in sys.argv[2:]]
walls, cpus, rsss = ({c[0]: [] for c in cases} for _ in range(3))
for _ in range(runs):
    for name, folder, cmd in cases:
        shutil.rmtree(os.path.join(folder, "new"), ignore_errors=True)
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd.split(), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)
        walls[name].append(time.perf_counter() - t0)
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"{name} failed (exit {os.waitstatus_to_exitcode(status)})", file=sys.stderr)
            sys.exit(1)
        cpus[name].append(usage.ru_utime + usage.ru_stime)
        rsss[name].append(usage.ru_maxrss)
for name, _, _ in cases:
    print("|".join([name] + [" ".join(f"{v:.4f}" if not isinstance(v, int) else str(v) for v in d[name]) for d in (walls, cpus, rsss)]))
