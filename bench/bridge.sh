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
#     that of c (target ≤ 1 ms added); bridge RSS after the runs (target ≤ 30 MiB).
#   reverse lane (mesh gRPC → legacy HTTP/JSON):
#     (a') tonic client → bridge gRPC lane → hyper JSON echo, found through the bridge's Eureka
#     (c') direct HTTP to the hyper JSON echo (wrk for throughput, echo_load http for p99)
#     throughput a'/c', added p99 at 1000 rps.
#
# Installs wrk and nginx with apt-get when missing. Bounded: 8 runs of $SECS s (default 10) plus
# start-up; the release build is not counted. Stops everything it started, by PID.
# Usage: bench/bridge.sh   env: CARGO_TARGET_DIR, SECS (seconds per run), CONNS (default 32),
#   NO_BUILD=1 (use the release binaries already built)
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

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" in the background, records its PID, waits (bounded) for its `listening ADDR` line
# and puts ADDR in $addr. Not run in $(…): a subshell would lose the PID and leak the process.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if grep -q '^listening ' "$work/$name.out" 2>/dev/null; then
      addr=$(sed -n 's/^listening //p' "$work/$name.out" | head -1)
      return
    fi
    sleep 0.05
  done
  echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

start grpc-echo "$bin/echo_server" --grpc 127.0.0.1:0; grpc_echo=$addr
start http-echo "$bin/echo_server" --http 127.0.0.1:0; http_echo=$addr
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
wait_port "$nginx_port"

http_port=$(free_port); grpc_port=$(free_port); eureka_port=$(free_port); admin_port=$(free_port)
# One runtime thread, like nginx's `worker_processes 1` in (b) (docs/bridge-eureka.md: runtime),
# and so one HTTP/2 connection to the upstream (`pool_size`): a second one only halves the calls
# batched per write on a single thread (bridge 34-36 against 39-41 µs CPU per request).
cat >"$work/bridge.yaml" <<YAML
runtime: {worker_threads: 1}
eureka: {listen: "127.0.0.1:$eureka_port", advertise_host: 127.0.0.1}
admin: {listen: "127.0.0.1:$admin_port"}
lanes:
  http:
    listen: "127.0.0.1:$http_port"
    descriptors: {protos: [demo/echo.proto], includes: ["$root/rpc/proto"]}
    rules:
      - {selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: "*"}
    pool_size: 1
    upstreams:
      - {address: "$grpc_echo", services: [demo.echo.v1.Echo]}
  grpc:
    listen: "127.0.0.1:$grpc_port"
    descriptors: {protos: [demo/echo.proto], includes: ["$root/rpc/proto"]}
    rules:
      - {selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: "*"}
    services:
      - {service: demo.echo.v1.Echo, app: legacy-echo}
YAML
RUST_LOG=warn "$bin/bridge" --config "$work/bridge.yaml" >"$work/bridge.out" 2>"$work/bridge.err" &
bridge_pid=$!
pids+=($bridge_pid)
wait_port "$http_port"; wait_port "$grpc_port"; wait_port "$eureka_port"

# The legacy echo registers like any Eureka client would.
legacy_port=${http_echo##*:}
curl -fsS -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$eureka_port/eureka/apps/LEGACY-ECHO" -d @- <<JSON >/dev/null
{"instance": {"instanceId": "127.0.0.1:legacy-echo:$legacy_port", "hostName": "127.0.0.1",
 "app": "LEGACY-ECHO", "ipAddr": "127.0.0.1", "status": "UP",
 "port": {"\$": $legacy_port, "@enabled": "true"}, "securePort": {"\$": 443, "@enabled": "false"},
 "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo\$DefaultDataCenterInfo", "name": "MyOwn"}}}
JSON

payload=$(python3 -c 'import json; print(json.dumps({"message": "x" * 1009}))')
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$payload'
wrk.headers["Content-Type"] = "application/json"
LUA
[ "$(printf '%s' "$payload" | wc -c)" -eq 1024 ] || { echo "payload is not 1 KiB" >&2; exit 1; }
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"message":"check"}' "http://127.0.0.1:$http_port/v1/echo" | grep -q check
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"message":"check"}' "http://127.0.0.1:$nginx_port/v1/echo" | grep -q check

wrk_rps() { # url → requests/s
  wrk -t2 -c"$conns" -d"${secs}s" -s "$work/post.lua" "$1" 2>&1 | tee -a "$work/wrk.log" | awk '/Requests\/sec/ {print $2}'
}
load() { "$bin/echo_load" "$@" --seconds "$secs" --connections "$conns"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])['$1'])" "$2"; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "(a) wrk → bridge → tonic echo"; a_rps=$(wrk_rps "http://127.0.0.1:$http_port/v1/echo")
log "(b) wrk → nginx → hyper echo";   b_rps=$(wrk_rps "http://127.0.0.1:$nginx_port/v1/echo")
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

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$a_rps" "$b_rps" "$c_rps" "$a1k" "$c1k" "$r_rps" "$d_rps" "$r1k" "$d1k" "$rss_kib" "$hwm_kib" "$secs" "$conns" "$commit" "$load_before" "$load_after" <<'PY'
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
PY
