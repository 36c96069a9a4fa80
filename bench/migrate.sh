#!/usr/bin/env bash
# bench/migrate.sh [N_SERVICES] [RUNS]: converts a generated N-service stack (default 1000) end to
# end with `migrate` and compares it with `docker stack config` (docker's loader, parse only) on the
# same file in the same run. Prints median wall time and peak RSS of both and the ratios.
# Targets (issue 3): migrate ≤ 0.25× docker's time and ≤ 0.5× its memory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
runs=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v docker >/dev/null || { echo "docker CLI missing: run tests/run once (it installs docker.io)" >&2; exit 1; }

(cd "$root" && cargo build --release --locked --bin migrate >&2)
bin=${CARGO_TARGET_DIR:-$root/target}/release/migrate
python3 "$root/bench/gen_stack.py" "$n" >"$work/stack.yml"
bytes=$(wc -c <"$work/stack.yml")

cd "$work"
read -r d_wall d_rss d_code < <(python3 "$root/bench/measure.py" "$runs" -- docker stack config -c stack.yml)
read -r m_wall m_rss m_code < <(python3 "$root/bench/measure.py" "$runs" -- "$bin" --format json --force -o chart stack.yml)
[ "$d_code" = 0 ] || { echo "docker stack config failed (exit $d_code)" >&2; exit 1; }
[ "$m_code" = 0 ] || { echo "migrate failed (exit $m_code)" >&2; exit 1; }

python3 - "$n" "$bytes" "$runs" "$(nproc)" "$d_wall" "$d_rss" "$m_wall" "$m_rss" <<'PY'
import sys
n, size, runs, cores = sys.argv[1:5]
dw, dr, mw, mr = (float(x) for x in sys.argv[5:9])
print(f"\nstack: {n} services, {size} bytes; median of {runs} runs; machine: {cores} cores\n")
print(f"| {'command':<28} | {'wall (s)':>10} | {'peak RSS (MiB)':>14} |")
print(f"|{'-'*30}|{'-'*12}|{'-'*16}|")
print(f"| {'docker stack config':<28} | {dw:>10.4f} | {dr/1024:>14.1f} |")
print(f"| {'migrate --format json':<28} | {mw:>10.4f} | {mr/1024:>14.1f} |")
print(f"| {'ratio migrate / docker':<28} | {mw/dw:>10.3f} | {mr/dr:>14.3f} |")
print("\ntargets: time ratio <= 0.25, memory ratio <= 0.5")
PY
