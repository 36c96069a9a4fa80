"""Loader for bench/eureka.sh: registers N synthetic instances with the bridge's Eureka API, fast.

Plain asyncio streams over keep-alive HTTP/1.1 connections (httpx was the bottleneck at ~150
registrations/s with 64 requests in flight; this does thousands per second on one core).

Usage: eureka_load.py --base http://127.0.0.1:PORT/eureka/ --count N [--start K]
                      [--per-app 20] [--concurrency 16] [--paths FILE]

Instances are spread over apps of --per-app instances each (BENCH-APP-0000, ...), all on host
127.0.0.1 with distinct ports (no traffic is ever sent to them). Every register must answer 204.
With --paths, appends one heartbeat request target per instance (the form py-eureka-client and
Spring send: `?status=UP&lastDirtyTimestamp=...`) for the wrk heartbeat script.
Prints one JSON line: {"registered": n, "seconds": s, "rate": r}.
"""

import argparse
import asyncio
import json
import sys
import time

import urllib.parse


def instance(i, per_app, now):
    app = f"bench-app-{i // per_app:04d}"
    port = 20000 + i
    return app.upper(), f"127.0.0.1:{app}:{port}", {
        "instance": {
            "instanceId": f"127.0.0.1:{app}:{port}",
            "hostName": "127.0.0.1",
            "app": app.upper(),
            "ipAddr": "127.0.0.1",
            "status": "UP",
            "overriddenstatus": "UNKNOWN",
            "port": {"$": port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn",
            },
            "leaseInfo": {"renewalIntervalInSecs": 30, "durationInSecs": 90},
            "metadata": {"management.port": str(port), "zone": "default"},
            "homePageUrl": f"http://127.0.0.1:{port}/",
            "statusPageUrl": f"http://127.0.0.1:{port}/actuator/info",
            "healthCheckUrl": f"http://127.0.0.1:{port}/actuator/health",
            "vipAddress": app,
            "secureVipAddress": app,
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": str(now),
            "lastDirtyTimestamp": str(now),
        }
    }


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--per-app", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--paths")
    args = p.parse_args()
    if not args.base.startswith("http://127.0.0.1:"):
        sys.exit("the loader only talks to loopback")
    base = args.base if args.base.endswith("/") else args.base + "/"
    prefix = urllib.parse.urlsplit(base).path
    now = int(time.time() * 1000)
    url = urllib.parse.urlsplit(base)
    host, port = url.hostname, url.port or 80
    queue = asyncio.Queue()
    for i in range(args.start, args.start + args.count):
        queue.put_nowait(i)
    failures = []
    targets = []

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                app, iid, body = instance(i, args.per_app, now)
                payload = json.dumps(body).encode()
                writer.write(
                    f"POST {prefix}apps/{app} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                    .encode() + payload)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ")[1])
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                text = (await reader.readexactly(length)).decode("utf-8", "replace") if length else ""
                if status != 204:
                    failures.append(f"{app}/{iid}: {status} {text[:200]}")
                targets.append(f"{prefix}apps/{app}/{iid}?status=UP&lastDirtyTimestamp={now}")
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    seconds = time.monotonic() - started
    if args.paths:
        with open(args.paths, "a") as f:
            f.write("".join(t + "\n" for t in targets))
    print(json.dumps({"registered": args.count - len(failures), "seconds": round(seconds, 2),
                      "rate": round(args.count / seconds, 1)}))
    if failures:
        sys.exit(f"{len(failures)} registrations failed, first: {failures[0]}")


if __name__ == "__main__":
    asyncio.run(main())
