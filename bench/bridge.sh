#!/usr/bin/env bash
# bench/bridge.sh: the bridge's transcoding lanes under load, on 127.0.0.1 only, 1 KiB JSON
# payload ({"message": "xxx…"}), keep-alive everywhere, the same echo logic behind every path.
#
#   forward lane (legacy HTTP/JSON → mesh gRPC):
#     (a) wrk → bridge HTTP lane → tonic gRPC echo            (rpc `echo_server --grpc`)
#     (b) wrk → nginx (Debian package, proxy_pass, keep-alive upstream) → hyper JSON echo
#                                                             (rpc `echo_server --http`)
#     (c) tonic client → tonic gRPC echo, direct              (rpc `echo_load grpc`)
#     throughput a/b (target ≥ 1.0); p99 at a fixed 1000 rps of a (echo_load http → bridge) minus
#     that of c (target ≤ 1 ms added); bridge RSS after the runs (target ≤ 30 MiB); and, for the
#     (a) and (b) runs, the CPU per request of the proxy and of the backend (user and system,
#     from /proc/PID/stat) and the share of the machine left idle (/proc/stat).
#   reverse lane (mesh gRPC → legacy HTTP/JSON):
#     (a') tonic client → bridge gRPC lane → hyper JSON echo, found through the bridge's Eureka
#     (c') direct HTTP to the hyper JSON echo (wrk for throughput, echo_load http for p99)
#     throughput a'/c', added p99 at 1000 rps.
#
# Installs wrk and nginx with apt-get when missing. Bounded: 8 runs of $SECS s (default 10) plus
# start-up; the release build is not counted. Stops everything it started, by PID.
# Usage: bench/bridge.sh   env: CARGO_TARGET_DIR, SECS (seconds per run), CONNS (default 32),
#   NO_BUILD=1 (use the release binaries already built),
#   AB_BRIDGE=PATH (another bridge binary, e.g. a build of the previous commit: after the table,
#   AB_PAIRS (default 12) rounds of 3 s wrk runs of (a) through this bridge, (a) through that one,
#   and (b), interleaved, so that a slow minute of a shared machine hits all three alike)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
log() { printf '== bridge bench: %s\n' "$*" >&2; }
secs=${SECS:-10}
conns=${CONNS:-32}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]}"
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ -z "${NO_BUILD:-}" ]; then
  log "cargo build --release -p bridge -p rpc --bins"
  cargo build --release -p bridge -p rpc --bins --quiet
fi
bin=$target_dir/release

# shellcheck source=lib/bridge_setup.sh
. "$root/bench/lib/bridge_setup.sh"

start_echoes
log "tonic echo on $grpc_echo, hyper JSON echo on $http_echo"

nginx_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream echo { server $http_echo; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
NGINX
"$nginx_bin" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx.err" &
pids+=($!)
nginx_pid=$!
wait_port "$nginx_port"
# The one nginx worker (its master only accepts the configuration).
nginx_worker=$(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null | awk '{print $1}')
[ -n "$nginx_worker" ] || nginx_worker=$(pgrep -P "$nginx_pid" | head -1)

http_port=$(free_port); grpc_port=$(free_port); eureka_port=$(free_port); admin_port=$(free_port)
bridge_config "$work/bridge.yaml" "$http_port" "$grpc_port" "$eureka_port" "$admin_port"
RUST_LOG=warn "$bin/bridge" --config "$work/bridge.yaml" >"$work/bridge.out" 2>"$work/bridge.err" &
bridge_pid=$!
pids+=($bridge_pid)
wait_port "$http_port"; wait_port "$grpc_port"; wait_port "$eureka_port"

if [ -n "${AB_BRIDGE:-}" ]; then
  # The other bridge: the same config on its own ports, in front of the same echo backends.
  ab_http=$(free_port)
  bridge_config "$work/ab.yaml" "$ab_http" "$(free_port)" "$(free_port)" "$(free_port)"
  RUST_LOG=warn "$AB_BRIDGE" --config "$work/ab.yaml" >"$work/ab.out" 2>"$work/ab.err" &
  pids+=($!)
  wait_port "$ab_http"
fi

register_legacy_echo "$eureka_port"
write_post_lua
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"message":"check"}' "http://127.0.0.1:$http_port/v1/echo" | grep -q check
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"message":"check"}' "http://127.0.0.1:$nginx_port/v1/echo" | grep -q check

post() { wrk -t2 -c"$conns" -d"$1" -s "$work/post.lua" "$2" 2>&1; } # duration url → wrk's report
rps_of() { awk '/Requests\/sec/ {print $2}'; }
wrk_rps() { post "${secs}s" "$1" | tee -a "$work/wrk.log" | rps_of; } # url → requests/s
# CPU the proxy and the backend spent during a wrk run, and the machine's idle share:
# "requests proxy_user proxy_sys backend_user backend_sys idle_ticks all_ticks" (clock ticks).
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
machine() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
profiled_wrk() { # url proxy_pid backend_pid → sets rps and cpu
  local pu0 ps0 bu0 bs0 i0 t0 pu1 ps1 bu1 bs1 i1 t1 n
  read -r pu0 ps0 < <(ticks "$2"); read -r bu0 bs0 < <(ticks "$3"); read -r i0 t0 < <(machine)
  post "${secs}s" "$1" >"$work/wrk.out"
  read -r pu1 ps1 < <(ticks "$2"); read -r bu1 bs1 < <(ticks "$3"); read -r i1 t1 < <(machine)
  cat "$work/wrk.out" >>"$work/wrk.log"
  rps=$(rps_of <"$work/wrk.out")
  n=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  cpu="$n $((pu1 - pu0)) $((ps1 - ps0)) $((bu1 - bu0)) $((bs1 - bs0)) $((i1 - i0)) $((t1 - t0))"
}
load() { "$bin/echo_load" "$@" --seconds "$secs" --connections "$conns"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "(a) wrk → bridge → tonic echo"
profiled_wrk "http://127.0.0.1:$http_port/v1/echo" "$bridge_pid" "$grpc_echo_pid"; a_rps=$rps; a_cpu=$cpu
log "(b) wrk → nginx → hyper echo"
profiled_wrk "http://127.0.0.1:$nginx_port/v1/echo" "$nginx_worker" "$http_echo_pid"; b_rps=$rps; b_cpu=$cpu
log "(c) tonic client → tonic echo";  c=$(load grpc "$grpc_echo"); c_rps=$(field rps "$c")
log "(a) 1000 rps → bridge";          a1k=$(load http "127.0.0.1:$http_port" --rate 1000)
log "(c) 1000 rps → tonic echo";      c1k=$(load grpc "$grpc_echo" --rate 1000)
log "(a') tonic client → bridge gRPC lane → legacy echo"; r=$(load grpc "127.0.0.1:$grpc_port"); r_rps=$(field rps "$r")
log "(c') wrk → legacy echo direct";  d_rps=$(wrk_rps "http://$http_echo/v1/echo")
log "(a') 1000 rps";                  r1k=$(load grpc "127.0.0.1:$grpc_port" --rate 1000)
log "(c') 1000 rps";                  d1k=$(load http "$http_echo" --rate 1000)
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$bridge_pid/status")
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$bridge_pid/status")
for j in "$a1k" "$c1k" "$r1k" "$d1k" "$r"; do
  [ "$(field errors "$j")" = 0 ] || { echo "errors in a run: $j" >&2; exit 1; }
done

ab_rows=""
if [ -n "${AB_BRIDGE:-}" ]; then
  once() { post 3s "$1" | rps_of; }
  for i in $(seq 1 "${AB_PAIRS:-12}"); do
    log "A/B round $i: (a) this bridge, (a) $AB_BRIDGE, (b)"
    ab_rows="$ab_rows $(once "http://127.0.0.1:$http_port/v1/echo"),$(once "http://127.0.0.1:$ab_http/v1/echo"),$(once "http://127.0.0.1:$nginx_port/v1/echo")"
  done
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$a_rps" "$b_rps" "$c_rps" "$a1k" "$c1k" "$r_rps" "$d_rps" "$r1k" "$d1k" "$rss_kib" "$hwm_kib" "$secs" "$conns" "$commit" "$load_before" "$load_after" "$a_cpu" "$b_cpu" "$(getconf CLK_TCK)" "$ab_rows" "${AB_BRIDGE:-}" <<'PY'
import json, sys
a, b, c = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
a1k, c1k = json.loads(sys.argv[4]), json.loads(sys.argv[5])
r, d = float(sys.argv[6]), float(sys.argv[7])
r1k, d1k = json.loads(sys.argv[8]), json.loads(sys.argv[9])
rss, hwm = int(sys.argv[10]) / 1024, int(sys.argv[11]) / 1024
secs, conns = sys.argv[12], sys.argv[13]
commit, load_before, load_after = sys.argv[14], sys.argv[15], sys.argv[16]
def ok(v): return "yes" if v else "NO"
print(f"bridge transcoding benchmark: 1 KiB JSON, {conns} connections, {secs} s per run, loopback")
print(f"commit {commit}; load average (1/5/15 min) before {load_before}, after {load_after}")
print()
print("| forward lane (HTTP/JSON → gRPC) | value | target | met |")
print("|---|---|---|---|")
print(f"| (a) wrk → bridge → tonic echo | {a:,.0f} req/s | | |")
print(f"| (b) wrk → nginx → hyper JSON echo | {b:,.0f} req/s | | |")
print(f"| (c) tonic client → tonic echo | {c:,.0f} req/s | | |")
print(f"| throughput a/b | {a/b:.2f} | ≥ 1.0 | {ok(a/b >= 1.0)} |")
print(f"| p99 at 1000 rps: a / c | {a1k['p99_us']} µs / {c1k['p99_us']} µs | | |")
added = (a1k['p99_us'] - c1k['p99_us']) / 1000
print(f"| added p99 of a over c | {added:.3f} ms | ≤ 1 ms | {ok(added <= 1.0)} |")
print(f"| bridge RSS after all runs (peak) | {rss:.1f} MiB ({hwm:.1f} MiB) | ≤ 30 MiB | {ok(hwm <= 30)} |")
print()
print("| reverse lane (gRPC → HTTP/JSON) | value | target | met |")
print("|---|---|---|---|")
print(f"| (a') tonic client → bridge → legacy echo | {r:,.0f} req/s | | |")
print(f"| (c') wrk → legacy echo direct | {d:,.0f} req/s | | |")
print(f"| throughput a'/c' | {r/d:.2f} | | |")
print(f"| p99 at 1000 rps: a' / c' | {r1k['p99_us']} µs / {d1k['p99_us']} µs | | |")
added = (r1k['p99_us'] - d1k['p99_us']) / 1000
print(f"| added p99 of a' over c' | {added:.3f} ms | ≤ 1 ms | {ok(added <= 1.0)} |")
print()
# Where the forward lane's CPU goes: per request, from /proc/PID/stat around each wrk run.
hz = float(sys.argv[19])
print("| CPU per request (µs), forward-lane runs | proxy user | proxy sys | backend user | backend sys | machine idle |")
print("|---|---|---|---|---|---|")
for name, raw in (("(a) bridge, tonic echo", sys.argv[17]), ("(b) nginx worker, hyper echo", sys.argv[18])):
    n, pu, ps, bu, bs, idle, total = (int(x) for x in raw.split())
    us = lambda t: t / hz * 1e6 / max(n, 1)
    print(f"| {name} | {us(pu):.1f} | {us(ps):.1f} | {us(bu):.1f} | {us(bs):.1f} | {100 * idle / max(total, 1):.0f} % |")
rows = [tuple(float(x) for x in r.split(",")) for r in sys.argv[20].split()]
if rows:
    import statistics as st
    print()
    print(f"A/B against {sys.argv[21]}: {len(rows)} interleaved rounds of 3 s runs")
    print()
    print("| | this bridge | other bridge | nginx (b) |")
    print("|---|---|---|---|")
    print(f"| mean req/s | {st.mean(r[0] for r in rows):,.0f} | {st.mean(r[1] for r in rows):,.0f} | {st.mean(r[2] for r in rows):,.0f} |")
    print(f"| median a/b | {st.median(r[0] / r[2] for r in rows):.2f} | {st.median(r[1] / r[2] for r in rows):.2f} | |")
    print(f"| rounds this bridge passed more | {sum(r[0] > r[1] for r in rows)} of {len(rows)} | | |")
PY
