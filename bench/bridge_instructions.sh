#!/usr/bin/env bash
# bench/bridge_instructions.sh: user-space instructions per request of the bridge's lanes, under
# callgrind, for before/after comparisons on a machine whose wall-clock numbers are noisy.
# Starts the tonic and hyper echo backends and the bridge (one runtime thread, pool_size 1, as
# bench/bridge.sh) on 127.0.0.1, the bridge under `valgrind --tool=callgrind`; warms up 3 s,
# measures the idle cost for 5 s, zeroes the counters, loads it for $SECS s (forward lane:
# `wrk -t1 -c$CONNS` with the 1 KiB JSON POST; reverse lane, MODE=rev: `echo_load grpc`), dumps
# and prints Ir per request (also net of the idle cost). Stops everything it started by PID.
# Usage: bench/bridge_instructions.sh [BRIDGE_BIN [OUT_PREFIX]]
#   env: CARGO_TARGET_DIR (release binaries: bridge, echo_server, echo_load), SECS (default 10),
#        CONNS (32), MODE (fwd|rev). Needs valgrind and wrk. The profile stays at OUT_PREFIX.PID.N
#        (default /tmp/bridge-cg) for callgrind_annotate.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CARGO_TARGET_DIR:-$root/target}/release
bridge=${1:-$bin/bridge}; out=${2:-/tmp/bridge-cg}
secs=${SECS:-10}; conns=${CONNS:-32}; mode=${MODE:-fwd}
# shellcheck source=lib/bridge_setup.sh
. "$root/bench/lib/bridge_setup.sh"
start_echoes
http_port=$(free_port); grpc_port=$(free_port); eureka_port=$(free_port); admin_port=$(free_port)
bridge_config "$work/bridge.yaml" "$http_port" "$grpc_port" "$eureka_port" "$admin_port"
RUST_LOG=warn valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=$out.%p "$bridge" --config "$work/bridge.yaml" >"$work/bridge.out" 2>"$work/bridge.err" &
vg=$!; pids+=($vg)
wait_port "$http_port"; wait_port "$grpc_port"; wait_port "$eureka_port"
register_legacy_echo "$eureka_port"
write_post_lua
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"message":"check"}' "http://127.0.0.1:$http_port/v1/echo"; echo
# Idle cost: what the bridge does per second with no load (timers, registry tasks), subtracted.
callgrind_control -z $vg >/dev/null; sleep 5; callgrind_control -d $vg >/dev/null; sleep 1
fi0=$(ls -t $out.$vg* | head -1); idle=$(grep -E '^(summary|totals):' $fi0 | head -1 | awk '{print $2}')
if [ "$mode" = fwd ]; then
  wrk -t1 -c"$conns" -d3s -s "$work/post.lua" "http://127.0.0.1:$http_port/v1/echo" >/dev/null
  callgrind_control -z $vg >/dev/null
  wrk -t1 -c"$conns" -d"${secs}s" -s "$work/post.lua" "http://127.0.0.1:$http_port/v1/echo" > $work/wrk.txt
  n=$(awk '/requests in/ {print $1}' $work/wrk.txt); cat $work/wrk.txt | grep -E 'requests in|Non-2xx' || true
else
  $bin/echo_load grpc 127.0.0.1:$grpc_port --seconds 3 --connections $conns >/dev/null
  callgrind_control -z $vg >/dev/null
  j=$($bin/echo_load grpc 127.0.0.1:$grpc_port --seconds $secs --connections $conns); echo "$j"
  n=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['requests'])" "$j")
fi
callgrind_control -d $vg >/dev/null
sleep 1
f=$(ls -t $out.$vg* | head -1)
ir=$(grep -E '^(summary|totals):' $f | head -1 | awk '{print $2}')
python3 -c "import sys; ir,n,idle,secs=int(sys.argv[1]),int(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]); print(f'requests {n} Ir {ir} Ir/request {ir/n:.0f}; idle {idle/5:.0f} Ir/s; net of idle {(ir-idle/5*secs)/n:.0f}')" $ir $n $idle $secs
echo "profile: $f"
