#!/usr/bin/env bash
# bench/eureka.sh: the bridge's Eureka API under load, on 127.0.0.1 only.
#
#   1. builds `bridge` in release and starts it with a loopback config;
#   2. registers 1k instances, then 9k more (10k), with bench/eureka_load.py (asyncio, 16 in flight);
#   3. for 1k and 10k instances: wrk, 64 connections, 10 s, GET /eureka/apps/ as JSON
#      (Accept: application/json) and as XML (no Accept) -> rps and p99 (wrk --latency); for 10k
#      also JSON with `Accept-Encoding: gzip` (what Java/Spring clients send; served from the
#      cache's gzipped copy), and both over a single connection (latency without queueing);
#   4. 10k instances heartbeating at Eureka's cadence (one PUT per instance per 30 s = 333 req/s,
#      wrk with a paced Lua script) for 30 s -> the bridge's CPU from /proc/PID/stat as % of a core;
#   5. prints a table against the targets and stops everything it started, by PID.
#
# Needs wrk (installed with apt-get if missing) and the venv from tests/run (httpx). Bounded: the
# measurements take under 2 minutes; the release build is not counted.
# Usage: bench/eureka.sh   env: CARGO_TARGET_DIR (default /work/target-bridge if it exists),
#                               EUREKA_BENCH_BIN (use this binary instead of building one)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '== eureka bench: %s\n' "$*" >&2; }

command -v wrk >/dev/null || {
  log "installing wrk"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq wrk >/dev/null; fi
}
venv=${MESHMOVE_CACHE:-$HOME/.cache/meshmove}/venv
python=$venv/bin/python3
[ -x "$python" ] && "$python" -c 'import httpx' 2>/dev/null || {
  echo "no venv with httpx at $venv: run tests/run once (it builds the venv)" >&2
  exit 1
}

if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target-bridge ]; then
  export CARGO_TARGET_DIR=/work/target-bridge
fi
target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ -n "${EUREKA_BENCH_BIN:-}" ]; then
  bin=$EUREKA_BENCH_BIN
  log "using EUREKA_BENCH_BIN=$bin (no build)"
else
  log "cargo build --release -p bridge"
  cargo build --release -p bridge --quiet
  bin=$target_dir/release/bridge
fi

work=$(mktemp -d)
bridge_pid=""
cleanup() {
  if [ -n "$bridge_pid" ] && kill -0 "$bridge_pid" 2>/dev/null; then
    kill -TERM "$bridge_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$bridge_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/bridge.yaml" <<'YAML'
eureka:
  listen: "127.0.0.1:0"
  advertise_host: 127.0.0.1
  advertise_port: 8080
admin:
  listen: "127.0.0.1:0"
mesh_services:
  - app: MESH-ORDER
    vip_address: mesh-order
    port: 8080
YAML

log "starting $bin"
NO_COLOR=1 RUST_LOG=${RUST_LOG:-warn,bridge=info} "$bin" --config "$work/bridge.yaml" >"$work/bridge.log" 2>&1 &
bridge_pid=$!
addr=""
for _ in $(seq 1 200); do
  addr=$(sed 's/\x1b\[[0-9;]*m//g' "$work/bridge.log" | grep -o 'eureka listening on [^ ]*' | head -1 | grep -oE '127\.0\.0\.1:[0-9]+' || true)
  [ -n "$addr" ] && break
  kill -0 "$bridge_pid" 2>/dev/null || { cat "$work/bridge.log" >&2; echo "bridge exited" >&2; exit 1; }
  sleep 0.05
done
[ -n "$addr" ] || { cat "$work/bridge.log" >&2; echo "no 'eureka listening on' within 10 s" >&2; exit 1; }
admin=$(sed 's/\x1b\[[0-9;]*m//g' "$work/bridge.log" | grep -o 'admin listening on [^ ]*' | head -1 | grep -oE '127\.0\.0\.1:[0-9]+' || true)
base="http://$addr/eureka/"
log "bridge pid $bridge_pid, eureka on $addr, admin on ${admin:-?}"

ticks() { awk '{print $14 + $15}' "/proc/$bridge_pid/stat"; }
hz=$(getconf CLK_TCK)
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$bridge_pid/status"; }

# wrk output -> "rps p99_ms"
wrk_summary() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
               else if (v ~ /ms$/) { sub(/ms$/, "", v) }
               else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
               p99 = v }
    END { printf "%.0f %.2f\n", rps, p99 }' "$1"
}

declare -A result
fetch_bench() { # label, n, connections, then extra wrk/curl header args
  local label=$1 n=$2 conns=$3 out="$work/wrk-$1-$2.txt" size
  shift 3
  size=$(curl -s "$@" "${base}apps/" | wc -c)
  wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d10s --latency "$@" "${base}apps/" >"$out"
  read -r rps p99 < <(wrk_summary "$out")
  if grep -q 'Non-2xx' "$out"; then log "non-2xx answers in $label/$n: $(grep Non-2xx "$out")"; fi
  result[$label-$n]="$rps $p99 $size"
  log "GET apps $label, $n instances, c$conns: $rps req/s, p99 $p99 ms, body $size bytes"
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
paths=$work/heartbeat-paths.txt
: >"$paths"
log "registering 1000 instances"
reg1=$("$python" bench/eureka_load.py --base "$base" --count 1000 --paths "$paths")
log "$reg1"
fetch_bench json 1000 64 -H "Accept: application/json"
fetch_bench xml 1000 64
log "registering 9000 more (10000)"
reg2=$("$python" bench/eureka_load.py --base "$base" --start 1000 --count 9000 --paths "$paths")
log "$reg2"
fetch_bench json 10000 64 -H "Accept: application/json"
fetch_bench xml 10000 64
fetch_bench jsongz 10000 64 -H "Accept: application/json" -H "Accept-Encoding: gzip"
fetch_bench json1c 10000 1 -H "Accept: application/json"
fetch_bench jsongz1c 10000 1 -H "Accept: application/json" -H "Accept-Encoding: gzip"

# Heartbeats: 10 connections, each PUT then a 30 ms pause -> ~333 req/s, cycling over all 10k ids.
cat >"$work/heartbeat.lua" <<LUA
local paths = {}
for line in io.lines("$paths") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("PUT", paths[(i - 1) % #paths + 1], nil, "")
end
delay = function() return 30 end
LUA
log "heartbeats: 10000 instances at Eureka's cadence for 30 s"
idle0=$(ticks); sleep 5; idle1=$(ticks)
idle_pct=$(awk -v d=$((idle1 - idle0)) -v hz="$hz" 'BEGIN { printf "%.2f", d / hz / 5 * 100 }')
t0=$(ticks); s0=$(date +%s.%N)
wrk -t1 -c10 -d30s --latency -s "$work/heartbeat.lua" "http://$addr" >"$work/wrk-heartbeat.txt"
t1=$(ticks); s1=$(date +%s.%N)
read -r hb_rps hb_p99 < <(wrk_summary "$work/wrk-heartbeat.txt")
hb_non2xx=$(grep -o 'Non-2xx or 3xx responses: [0-9]*' "$work/wrk-heartbeat.txt" | grep -oE '[0-9]+$' || echo 0)
cpu_pct=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" \
  'BEGIN { printf "%.2f", d / hz / s * 100 }')
renewals=$([ -n "$admin" ] && curl -s "http://$admin/metrics" 2>/dev/null | awk '/^bridge_eureka_renewals_total/ {print $2}' || true)

pass() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 <= t + 0) ? "ok" : "MISSED" }'; }
read -r j1r j1p j1s <<<"${result[json-1000]}"
read -r x1r x1p x1s <<<"${result[xml-1000]}"
read -r j10r j10p j10s <<<"${result[json-10000]}"
read -r x10r x10p x10s <<<"${result[xml-10000]}"
read -r g10r g10p g10s <<<"${result[jsongz-10000]}"
read -r o10r o10p o10s <<<"${result[json1c-10000]}"
read -r q10r q10p q10s <<<"${result[jsongz1c-10000]}"
echo
echo "Eureka bench: bridge $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), RSS $(rss_mb) MB after the run, load average at start ${load0}"
echo "registration: 1k $(echo "$reg1" | grep -oE '"rate": [0-9.]+' | grep -oE '[0-9.]+$') /s, 9k $(echo "$reg2" | grep -oE '"rate": [0-9.]+' | grep -oE '[0-9.]+$') /s (bench/eureka_load.py, 16 in flight)"
printf '%-44s %10s %10s %12s %8s\n' "measurement" "req/s" "p99 ms" "body bytes" "target"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ JSON, 1k instances, c64" "$j1r" "$j1p" "$j1s" "-"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ XML,  1k instances, c64" "$x1r" "$x1p" "$x1s" "-"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ JSON, 10k instances, c64" "$j10r" "$j10p" "$j10s" "$(pass "$j10p" 5)"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ XML,  10k instances, c64" "$x10r" "$x10p" "$x10s" "$(pass "$x10p" 5)"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ JSON+gzip, 10k, c64" "$g10r" "$g10p" "$g10s" "$(pass "$g10p" 5)"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ JSON, 10k instances, c1" "$o10r" "$o10p" "$o10s" "$(pass "$o10p" 5)"
printf '%-44s %10s %10s %12s %8s\n' "GET /eureka/apps/ JSON+gzip, 10k, c1" "$q10r" "$q10p" "$q10s" "$(pass "$q10p" 5)"
printf '%-44s %10s %10s %12s %8s\n' "heartbeats, 10k instances / 30 s (PUT)" "$hb_rps" "$hb_p99" "-" "-"
echo "heartbeat window: bridge CPU ${cpu_pct}% of one core (idle before: ${idle_pct}%), non-2xx: ${hb_non2xx}, renewals counted: ${renewals:-n/a}; target < 5%: $(pass "$cpu_pct" 5)"
echo "targets: p99 <= 5 ms for the 10k-instance fetch from cache; heartbeats of 10k instances < 5% of one core"

# Stop the bridge by PID with SIGTERM; it must finish in-flight requests and exit 0.
kill -TERM "$bridge_pid"
for _ in $(seq 1 200); do kill -0 "$bridge_pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$bridge_pid" 2>/dev/null; then
  echo "bridge still running 10 s after SIGTERM (the exit trap kills it)"
else
  code=0; wait "$bridge_pid" || code=$?
  echo "bridge exit status after SIGTERM: $code"
  bridge_pid=""
fi

