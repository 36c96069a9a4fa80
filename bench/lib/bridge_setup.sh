# bench/lib/bridge_setup.sh: the set-up bench/bridge.sh and bench/bridge_instructions.sh share,
# sourced by both (not run on its own). Needs $bin (the release binaries) and $root (the repo).
# Everything listens on 127.0.0.1; every process started here is stopped by PID on exit.

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
# Waits (bounded: 60 s, a bridge under valgrind starts slowly) until something listens on port $1.
wait_port() {
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

# The two echo backends of one echo logic: sets grpc_echo, http_echo (ADDR) and their PIDs.
start_echoes() {
  start grpc-echo "$bin/echo_server" --grpc 127.0.0.1:0; grpc_echo=$addr; grpc_echo_pid=${pids[-1]}
  start http-echo "$bin/echo_server" --http 127.0.0.1:0; http_echo=$addr; http_echo_pid=${pids[-1]}
}

# bridge_config FILE HTTP_PORT GRPC_PORT EUREKA_PORT ADMIN_PORT: the benchmark bridge's config.
# One runtime thread, like nginx's `worker_processes 1` in bench/bridge.sh's (b)
# (docs/bridge-eureka.md: runtime), and so one HTTP/2 connection to the upstream (`pool_size`): a
# second one only halves the calls batched per write on a single thread (bridge 34-36 against
# 39-41 µs CPU per request).
bridge_config() {
  cat >"$1" <<YAML
runtime: {worker_threads: 1}
eureka: {listen: "127.0.0.1:$4", advertise_host: 127.0.0.1}
admin: {listen: "127.0.0.1:$5"}
lanes:
  http:
    listen: "127.0.0.1:$2"
    descriptors: {protos: [demo/echo.proto], includes: ["$root/rpc/proto"]}
    rules:
      - {selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: "*"}
    pool_size: 1
    upstreams:
      - {address: "$grpc_echo", services: [demo.echo.v1.Echo]}
  grpc:
    listen: "127.0.0.1:$3"
    descriptors: {protos: [demo/echo.proto], includes: ["$root/rpc/proto"]}
    rules:
      - {selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: "*"}
    services:
      - {service: demo.echo.v1.Echo, app: legacy-echo}
YAML
}

# The legacy (hyper) echo registers in the bridge's Eureka on port $1, as any Eureka client would.
register_legacy_echo() {
  local legacy_port=${http_echo##*:}
  curl -fsS -X POST -H 'Content-Type: application/json' \
    "http://127.0.0.1:$1/eureka/apps/LEGACY-ECHO" -d @- <<JSON >/dev/null
{"instance": {"instanceId": "127.0.0.1:legacy-echo:$legacy_port", "hostName": "127.0.0.1",
 "app": "LEGACY-ECHO", "ipAddr": "127.0.0.1", "status": "UP",
 "port": {"\$": $legacy_port, "@enabled": "true"}, "securePort": {"\$": 443, "@enabled": "false"},
 "dataCenterInfo": {"@class": "com.netflix.appinfo.InstanceInfo\$DefaultDataCenterInfo", "name": "MyOwn"}}}
JSON
}

# $work/post.lua: wrk's POST of the 1 KiB JSON body {"message": "xxx…"}.
write_post_lua() {
  local payload
  payload=$(python3 -c 'import json; print(json.dumps({"message": "x" * 1009}))')
  [ "$(printf '%s' "$payload" | wc -c)" -eq 1024 ] || { echo "payload is not 1 KiB" >&2; exit 1; }
  cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$payload'
wrk.headers["Content-Type"] = "application/json"
LUA
}
