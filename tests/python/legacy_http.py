"""A legacy HTTP/JSON order service (Python http.server) that registers itself in the bridge's
Eureka API with py-eureka-client 0.13.3, for the bridge's mesh → legacy lane tests.

Answers the REST routes of demo.shop.v1.Orders like a Spring service would:
  GET /v1/orders/{id}     200 with the order; id `missing` → 404 Spring error body,
                          `boom` → 500, `unavailable` → 503, `slow` → answers after 3 s
  POST /v1/orders         201 with the posted order and orderId `new-1`
Prints one JSON line per request it gets ({"event": "request", "method", "path", "headers",
"body"}), after {"event": "listening", "port": N, "instance_id": ...} once registered.
Exits when stdin closes (deregistering first).
Usage: legacy_http.py --eureka URL --app NAME
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import py_eureka_client.eureka_client as eureka_client

_lock = threading.Lock()


def emit(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        lane = self.headers.get("x-lane")
        if lane:
            self.send_header("x-lane", lane)
        self.send_header("x-b3-traceid", self.headers.get("x-b3-traceid", "legacy-made"))
        self.end_headers()
        self.wfile.write(body)

    def record(self, body):
        emit({
            "event": "request",
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
        })

    def spring_error(self, status, error, message):
        self.reply(status, {
            "timestamp": "2026-01-01T00:00:00.000+00:00",
            "status": status,
            "error": error,
            "message": message,
            "path": self.path,
        })

    def do_GET(self):
        self.record(None)
        path = self.path.split("?", 1)[0]
        if not path.startswith("/v1/orders/"):
            return self.spring_error(404, "Not Found", "no route")
        order_id = path[len("/v1/orders/"):]
        if order_id == "missing":
            return self.spring_error(404, "Not Found", "no order missing")
        if order_id == "boom":
            return self.spring_error(500, "Internal Server Error", "database on fire")
        if order_id == "unavailable":
            return self.spring_error(503, "Service Unavailable", "warming up")
        if order_id == "slow":
            time.sleep(3)
        self.reply(200, {
            "orderId": order_id,
            "customerId": "c-1",
            "status": "STATUS_OPEN",
            "totalCents": "1250",
            "legacyOnlyField": True,
        })

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        self.record(raw)
        order = json.loads(raw) if raw else {}
        order["orderId"] = "new-1"
        self.reply(201, order)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--eureka", required=True)
    parser.add_argument("--app", required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    eureka_client.init(
        eureka_server=args.eureka,
        app_name=args.app,
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=port,
        renewal_interval_in_secs=1,
        should_discover=False,
    )
    emit({"event": "listening", "port": port,
          "instance_id": f"127.0.0.1:{args.app.lower()}:{port}"})
    sys.stdin.read()
    eureka_client.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
