"""The side-by-side demo: a legacy Eureka service and a migrated gRPC service talking through the
bridge, on 127.0.0.1 only, without a cluster. Started by run.sh (which builds the binaries).

  1. the migrated service: rpc's tonic echo server (demo.echo.v1.Echo)
  2. the bridge: its embedded defaults plus both lanes (config written to a temp dir)
  3. the legacy service: tests/python/legacy_http.py, registered with py-eureka-client
  4. discovery: the legacy caller looks the mesh app up in Eureka and finds the bridge
  5. legacy -> mesh: HTTP/JSON POST to that instance, transcoded to Echo.Say; the tonic server
     reports the x-lane header it received
  6. mesh -> legacy: a gRPC Orders.GetOrder (tests/python/grpc_client.py) to the bridge, which
     calls the legacy instance found in Eureka; the legacy service reports the x-lane it received

Every step prints one `step N/6 ok: ...` line (or `step N/6 FAILED: ...` and exit 1), then
`demo: 6/6 steps ok`. Every process is stopped by its PID; the whole run is bounded (60 s).
Usage: demo.py --bridge BIN --echo-server BIN [--lane NAME]
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PY_DIR = os.path.join(ROOT, "tests", "python")
SHARED_PROTOS = os.path.join(ROOT, "..", "shared", "reference", "protos")
STEPS = 6
DEADLINE = 60.0

children = []


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def fail(step, what):
    say(f"step {step}/{STEPS} FAILED: {what}")
    raise SystemExit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    # Linux: the child gets SIGTERM if the demo itself is killed, so nothing outlives it.
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(step, name, argv, **kw):
    try:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=kw.pop("stderr", subprocess.DEVNULL), text=True,
                             preexec_fn=_die_with_parent, **kw)
    except OSError as e:
        fail(step, f"cannot start the {name} ({argv[0]}): {e}")
    children.append((name, p))
    return p


def stop_all():
    """Stops every child by its PID: the legacy service by closing its stdin (it deregisters from
    Eureka and exits), the others with SIGTERM; SIGKILL after 5 s."""
    for name, p in reversed(children):
        if p.poll() is not None:
            continue
        if name == "legacy":
            try:
                p.stdin.close()
            except OSError:
                pass
        else:
            os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def http(method, url, body=None, headers=None, timeout=5):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def wait_until(what, step, probe, seconds=15):
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        try:
            got = probe()
            if got:
                return got
        except (OSError, ValueError) as e:
            last = e
        time.sleep(0.1)
    fail(step, f"{what} (waited {seconds}s; last error: {last})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--echo-server", required=True)
    parser.add_argument("--lane", default="demo-blue")
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(SHARED_PROTOS, "google", "api")):
        say(f"demo: needs google/api protos in {SHARED_PROTOS} (shop.proto imports them)")
        raise SystemExit(2)
    signal.signal(signal.SIGALRM, lambda *_: fail("?", f"the demo took longer than {DEADLINE}s"))
    signal.alarm(int(DEADLINE))
    lane = args.lane
    work = tempfile.mkdtemp(prefix="side-by-side-")
    try:
        run(args, lane, work)
    finally:
        signal.alarm(0)
        stop_all()
        for f in os.listdir(work):
            os.remove(os.path.join(work, f))
        os.rmdir(work)


def run(args, lane, work):
    # 1. The migrated service.
    echo = spawn(1, "echo", [args.echo_server, "--grpc", "127.0.0.1:0"])
    line = echo.stdout.readline().strip()
    if not line.startswith("listening "):
        fail(1, f"tonic echo server did not start: {line!r}")
    echo_addr = line.split(" ", 1)[1]
    say(f"step 1/{STEPS} ok: migrated gRPC service (tonic demo.echo.v1.Echo) on {echo_addr}")

    # 2. The bridge: defaults, loopback listeners, both lanes.
    eureka, admin, http_lane, grpc_lane = (free_port() for _ in range(4))
    config = f"""# written by examples/side-by-side/demo.py
eureka:
  listen: 127.0.0.1:{eureka}
  advertise_host: 127.0.0.1
  advertise_port: {http_lane}      # mesh apps in Eureka point at the HTTP lane
admin:
  listen: 127.0.0.1:{admin}
mesh_services:
  - app: mesh-echo
lanes:
  headers:
    lane_header: x-lane
  http:
    listen: 127.0.0.1:{http_lane}
    descriptors:
      protos: [demo/echo.proto]
      includes: [{ROOT}/rpc/proto]
    rules:
      - {{selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: "*"}}
    upstreams:
      - address: {echo_addr}
        services: [demo.echo.v1.Echo]
        hosts: [mesh-echo]
  grpc:
    listen: 127.0.0.1:{grpc_lane}
    descriptors:
      protos: [demo/shop.proto]
      includes: [{ROOT}/rpc/proto, {SHARED_PROTOS}]
    services:
      - service: demo.shop.v1.Orders
        app: legacy-orders
"""
    cfg = os.path.join(work, "bridge.yaml")
    with open(cfg, "w") as f:
        f.write(config)
    log = open(os.path.join(work, "bridge.log"), "w")
    bridge = spawn(2, "bridge", [args.bridge, "--config", cfg], stderr=log,
                   env=dict(os.environ, RUST_LOG="warn"))
    wait_until("bridge /ready", 2,
               lambda: bridge.poll() is None
               and http("GET", f"http://127.0.0.1:{admin}/ready")[0] == 200
               or (bridge.poll() is not None and fail(2, f"bridge exited {bridge.returncode}: "
                                                         + open(log.name).read()[-2000:])))
    say(f"step 2/{STEPS} ok: bridge ready: Eureka http://127.0.0.1:{eureka}/eureka/, "
        f"HTTP lane 127.0.0.1:{http_lane}, gRPC lane 127.0.0.1:{grpc_lane}")

    # 3. The legacy service registers itself with py-eureka-client.
    legacy = spawn(3, "legacy", [sys.executable, os.path.join(PY_DIR, "legacy_http.py"),
                              "--eureka", f"http://127.0.0.1:{eureka}/eureka/",
                              "--app", "legacy-orders"])
    first = json.loads(legacy.stdout.readline() or "{}")
    if first.get("event") != "listening":
        fail(3, f"legacy service did not start: {first}")

    def legacy_up():
        status, _, body = http("GET", f"http://127.0.0.1:{eureka}/eureka/apps/LEGACY-ORDERS",
                               headers={"Accept": "application/json"})
        if status != 200:
            return None
        inst = json.loads(body)["application"]["instance"]
        inst = inst if isinstance(inst, list) else [inst]
        return [i for i in inst if i["status"] == "UP"]

    up = wait_until("LEGACY-ORDERS UP in Eureka", 3, legacy_up)
    say(f"step 3/{STEPS} ok: legacy HTTP service on 127.0.0.1:{first['port']} registered with "
        f"py-eureka-client as LEGACY-ORDERS ({up[0]['instanceId']}, status UP)")

    # 4. The legacy caller discovers the migrated service through Eureka.
    status, _, body = http("GET", f"http://127.0.0.1:{eureka}/eureka/apps/MESH-ECHO",
                           headers={"Accept": "application/json"})
    if status != 200:
        fail(4, f"GET /eureka/apps/MESH-ECHO answered {status}: {body}")
    inst = json.loads(body)["application"]["instance"]
    inst = inst[0] if isinstance(inst, list) else inst
    target = f"{inst['ipAddr']}:{inst['port']['$']}"
    if target != f"127.0.0.1:{http_lane}":
        fail(4, f"MESH-ECHO points at {target}, not the bridge's HTTP lane")
    say(f"step 4/{STEPS} ok: Eureka lookup of MESH-ECHO (vip {inst['vipAddress']}) -> {target} "
        "(the bridge)")

    # 5. legacy -> mesh with a lane header; the echo server replies with what it received.
    status, headers, body = http(
        "POST", f"http://{target}/v1/echo", body=json.dumps({"message": "headers"}).encode(),
        headers={"content-type": "application/json", "x-lane": lane})
    if status != 200:
        fail(5, f"POST /v1/echo answered {status}: {body}")
    seen = json.loads(json.loads(body)["message"])
    if seen.get("x-lane") != lane:
        fail(5, f"the tonic service did not get x-lane={lane}: {seen}")
    say(f"step 5/{STEPS} ok: legacy -> mesh: POST /v1/echo (x-lane: {lane}) -> 200; "
        f"tonic service received x-lane: {seen['x-lane']}")

    # 6. mesh -> legacy with a lane header; the legacy service prints the request it got.
    call = subprocess.run(
        [sys.executable, os.path.join(PY_DIR, "grpc_client.py"),
         "--target", f"127.0.0.1:{grpc_lane}", "--proto", "demo/shop.proto",
         "--include", os.path.join(ROOT, "rpc", "proto"), "--include", SHARED_PROTOS,
         "--method", "demo.shop.v1.Orders/GetOrder", "--request", '{"orderId": "42"}',
         "--metadata", f"x-lane={lane}"],
        capture_output=True, text=True, timeout=30)
    out = json.loads(call.stdout or "{}")
    if out.get("code") != "OK":
        fail(6, f"gRPC GetOrder: {out} {call.stderr[-500:]}")
    req = json.loads(legacy.stdout.readline() or "{}")
    if req.get("event") != "request" or req.get("headers", {}).get("x-lane") != lane:
        fail(6, f"the legacy service did not get x-lane={lane}: {req}")
    say(f"step 6/{STEPS} ok: mesh -> legacy: gRPC demo.shop.v1.Orders/GetOrder (x-lane: {lane}) "
        f"-> OK {json.dumps(out['response'], sort_keys=True)}; legacy service received "
        f"{req['method']} {req['path']} with x-lane: {req['headers']['x-lane']}")
    say(f"demo: {STEPS}/{STEPS} steps ok")


if __name__ == "__main__":
    main()
