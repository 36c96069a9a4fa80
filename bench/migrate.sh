#!/usr/bin/env bash
# bench/migrate.sh [N_SERVICES] [RUNS]: converts a generated N-service stack (default 1000) end to
# end with `migrate` (load, model, chart, ledger as JSON on stdout, the chart written) and compares
# it with `docker stack config` (docker's loader, parse only, YAML on stdout) on the same file in
# the same run. Prints median wall time, median CPU time and peak RSS of each and the ratios.
# Targets (issue 3): migrate ≤ 0.25× docker's time and ≤ 0.5× its memory, for the first row.
#
# The chart (3000+ files for 1000 services) is written three ways:
#   - into a new folder on tmpfs (/dev/shm): a first conversion, what the program costs (the
#     folder of the previous run is removed before the timing starts);
#   - with --force over the chart of the previous run on tmpfs: a re-conversion, which also
#     removes the 3000+ files it replaces (these runs come after the others, on their own);
#   - into a new folder on the work disk: what this machine's disk adds (creating files varies
#     from 0.03 to 1.2 ms per file between runs on the build machine); half as many runs, after
#     the others, each after a sync.
# docker and the first row alternate, run by run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
runs=${2:-5}
disk=$(mktemp -d)
shm=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$disk" "$shm"' EXIT
command -v docker >/dev/null || { echo "docker CLI missing: run tests/run once (it installs docker.io)" >&2; exit 1; }

(cd "$root" && cargo build --release --locked --bin migrate >&2)
bin=${CARGO_TARGET_DIR:-$root/target}/release/migrate
python3 "$root/bench/gen_stack.py" "$n" >"$disk/stack.yml"
cp "$disk/stack.yml" "$shm/stack.yml"
bytes=$(wc -c <"$disk/stack.yml")
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# name|folder|command…  (run in that folder, stack.yml beside it)
cases=(
  "docker stack config|$disk|docker stack config -c stack.yml"
  "migrate, new chart, tmpfs|$shm|$bin --format json -o new stack.yml"
)
force_case="migrate --force, tmpfs|$shm|$bin --format json --force -o chart stack.yml"
disk_case="migrate, new chart, disk|$disk|$bin --format json -o new stack.yml"
# One run at a time, alternating commands, so load changes hit every command alike; all from one
# Python process (bench/alternate.py). The --force runs come next, on their own: the thousands of
# files each one removes leave the kernel work that follows the runs after it.
python3 "$root/bench/alternate.py" "$runs" "${cases[@]}" >"$disk/results"
python3 "$root/bench/alternate.py" "$runs" "$force_case" >>"$disk/results"
# The disk runs last and apart, each after a sync: the disk's write-back after a run would
# otherwise take CPU from the runs that follow it.
declare -A wall cpu rss
for ((r = 0; r < (runs + 1) / 2; r++)); do
  sync
  IFS='|' read -r name dir cmd <<<"$disk_case"
  rm -rf "$dir/new"
  read -r w m code t < <(cd "$dir" && python3 "$root/bench/measure.py" 1 -- $cmd)
  [ "$code" = 0 ] || { echo "$name failed (exit $code)" >&2; exit 1; }
  wall[$name]+="$w "; cpu[$name]+="$t "; rss[$name]+="$m "
done
sync
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

IFS='|' read -r name _ _ <<<"$disk_case"
echo "$name|${wall[$name]}|${cpu[$name]}|${rss[$name]}" >>"$disk/results"
python3 - "$n" "$bytes" "$runs" "$(nproc)" "$disk/results" <<'PY'
import statistics, sys
n, size, runs, cores, results = sys.argv[1:6]
rows = []
for line in open(results):
    name, w, c, m = line.rstrip("\n").split("|")
    med = lambda s: statistics.median(float(x) for x in s.split())
    rows.append((name, med(w), med(c), max(float(x) for x in m.split())))
print(f"\nstack: {n} services, {size} bytes; median of {runs} runs (disk: {(int(runs) + 1) // 2}); machine: {cores} cores\n")
print(f"| {'command':<26} | {'wall (s)':>8} | {'CPU (s)':>7} | {'peak RSS (MiB)':>14} | {'wall ratio':>10} | {'CPU ratio':>9} | {'memory ratio':>12} |")
print(f"|{'-'*28}|{'-'*10}|{'-'*9}|{'-'*16}|{'-'*12}|{'-'*11}|{'-'*14}|")
_, dw, dc, dr = rows[0]
for name, w, c, r in rows:
    print(f"| {name:<26} | {w:>8.4f} | {c:>7.4f} | {r/1024:>14.1f} | {w/dw:>10.3f} | {c/dc:>9.3f} | {r/dr:>12.3f} |")
print("\nratios are against docker stack config; targets (first migrate row): time ratio <= 0.25, memory ratio <= 0.5")
PY
