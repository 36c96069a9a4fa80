#!/usr/bin/env bash
# bench/bad_input.sh [RUNS]: wall time and peak RSS of `migrate` (release) on each bad-input case
# of issue 2 (the same cases migrator/tests/bad_input.rs asserts messages and exit codes for).
# Target: each refused within 1 s and 100 MB. Baseline in the same run: `migrate` on the valid
# example stack (so the ratios show that refusing costs no more than converting a small stack).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root" && cargo build --release --locked --bin migrate >&2)
bin=${CARGO_TARGET_DIR:-$root/target}/release/migrate

cd "$work"
printf 'version: "3.9"\nservices:\n  web:\n    image: [nginx\n' >syntax.yml
printf 'version: "3.9"\nservices:\n  web:\n    image: nginx\n    deploy:\n      replicaz: 3\n' >schema.yml
printf 'version: "3.9"\nservices:\n  web:\n    image: nginx\n    secrets: [nope]\n' >unknown-secret.yml
printf 'version: "3.9"\nservices:\n  web:\n    image: nginx\n    secrets: [k]\nsecrets:\n  k:\n    file: ./missing.key\n' >missing-file.yml
printf 'version: "3.9"\nservices:\n  web:\n    image: "nginx:${TAG:?set TAG}"\n' >required-var.yml
python3 - <<'PY'
lines = ['version: "3.9"', 'x-a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for i in range(1, 10):
    lines.append(f"x-a{i}: &a{i} [" + ",".join([f"*a{i-1}"] * 9) + "]")
lines += ["services:", "  web:", "    image: nginx", "    labels:", "      bomb: *a9"]
open("alias-bomb.yml", "w").write("\n".join(lines) + "\n")
with open("huge.yml", "w") as f:
    f.write('version: "3.9"\nservices:\n')
    pad = "  # " + "padding " * 9 + "\n"
    f.write(pad * (50 * 1024 * 1024 // len(pad) + 1))
PY

rows=()
for f in syntax schema unknown-secret missing-file required-var alias-bomb huge; do
  read -r wall rss code _ < <(python3 "$root/bench/measure.py" "$runs" -- "$bin" -o "$work/out-$f" "$f.yml")
  [ "$code" = 1 ] || { echo "$f.yml: expected exit 1, got $code" >&2; exit 1; }
  [ ! -e "$work/out-$f" ] || { echo "$f.yml: output was written" >&2; exit 1; }
  rows+=("$f $wall $rss")
done
read -r bwall brss bcode _ < <(python3 "$root/bench/measure.py" "$runs" -- "$bin" --dry-run "$root/examples/stacks/shop/docker-stack.yml")
[ "$bcode" = 0 ] || { echo "baseline failed (exit $bcode)" >&2; exit 1; }

python3 - "$runs" "$bwall" "$brss" "${rows[@]}" <<'PY'
import sys
runs, bwall, brss = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"\nmedian of {runs} runs; baseline: migrate --dry-run on examples/stacks/shop ({bwall:.4f} s, {brss/1024:.1f} MiB)\n")
print(f"| {'case':<16} | {'wall (s)':>9} | {'peak RSS (MiB)':>14} | {'wall / baseline':>15} | {'within 1 s, 100 MB':>18} |")
print(f"|{'-'*18}|{'-'*11}|{'-'*16}|{'-'*17}|{'-'*20}|")
for row in sys.argv[4:]:
    name, wall, rss = row.split()
    wall, rss = float(wall), float(rss)
    ok = "yes" if wall <= 1.0 and rss / 1024 <= 100 else "NO"
    print(f"| {name:<16} | {wall:>9.4f} | {rss/1024:>14.1f} | {wall/bwall:>15.2f} | {ok:>18} |")
PY
