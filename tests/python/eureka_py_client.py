"""A real py-eureka-client 0.13.3 driven by an end-to-end test (tests/tests/eureka_py.rs).

The client library is used unmodified. The script only
  * installs a recording subclass of the library's own `HttpClient` (the documented
    `set_http_client` hook) that reports every request the library makes and its status,
  * answers commands read from stdin, one JSON object per line,
and prints what it observed as JSON lines on stdout:

  {"event": "started", "instance_id": ..., "app": ...}
  {"event": "http", "method": "PUT", "path": "/eureka/apps/APP/ID", "query": "...", "status": 200,
   "instance_status": "UP" (POST bodies only), "seq": n}
  {"event": "error", "type": ..., "error": ...}        (the library's on_error callback)
  {"event": "view", "apps": {APP: [instance...]}}       reply to {"cmd": "view"}: the client's cache
  {"event": "fetch", "apps": {...}}                     reply to {"cmd": "fetch"}: a fresh full GET
  {"event": "vip", "vip": ..., "apps": {...}}           reply to {"cmd": "vip", "vip": ...}
  {"event": "status"}                                   reply to {"cmd": "status", "value": ...}
                                                        (the library's `status_update`)
  {"event": "delete_override"}                          reply to {"cmd": "delete_override"}
                                                        (the library's `delete_status_override`)
  {"event": "stopped"}                                  reply to {"cmd": "stop"}, then exit 0

Usage: eureka_py_client.py --server URL --app NAME --port N [--renew SECS] [--no-discover]
"""

import argparse
import asyncio
import json
import os
import sys
import threading
import urllib.parse

import py_eureka_client.eureka_client as eureka_client
from py_eureka_client import eureka_basic, http_client

_print_lock = threading.Lock()


def emit(obj):
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class Recorder(http_client.HttpClient):
    """The library's HttpClient, unchanged, plus a report of each request and its outcome."""

    def __init__(self):
        super().__init__()
        self.cond = threading.Condition()
        self.seq = 0
        self.last_heartbeat_cycle_end = 0

    async def urlopen(self, request=None, data=None, timeout=None):
        if isinstance(request, http_client.HttpRequest):
            method, url = request.method, request.url
        else:
            method, url = "GET", str(request)
        parsed = urllib.parse.urlsplit(url)
        record = {"event": "http", "method": method, "path": parsed.path, "query": parsed.query}
        if data:
            try:
                record["instance_status"] = json.loads(data)["instance"]["status"]
            except (ValueError, KeyError, TypeError):
                pass
        try:
            res = await super().urlopen(request, data, timeout)
            record["status"] = res.raw_response.status_code
            record["content_type"] = res.raw_response.headers.get("content-type", "")
            return res
        except http_client.HTTPError as e:
            record["status"] = e.code
            raise
        except http_client.URLError as e:
            record["status"] = 0
            record["error"] = str(e.reason)
            raise
        finally:
            with self.cond:
                self.seq += 1
                record["seq"] = self.seq
                emit(record)
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        with self.cond:
            return self.cond.wait_for(pred, timeout)


def describe(applications):
    """The parts of a py-eureka-client `Applications` the test asserts on."""
    apps = {}
    if applications is None:
        return apps
    for app in applications.applications:
        apps[app.name] = [
            {
                "instanceId": i.instanceId,
                "app": i.app,
                "hostName": i.hostName,
                "ipAddr": i.ipAddr,
                "status": i.status,
                "vipAddress": i.vipAddress,
                "port": i.port.port if i.port else None,
                "portEnabled": i.port.enabled if i.port else None,
                "dataCenter": i.dataCenterInfo.name if i.dataCenterInfo else None,
                "lastRenewal": i.leaseInfo.lastRenewalTimestamp if i.leaseInfo else None,
                "metadata": i.metadata,
            }
            for i in app.instances
        ]
    return apps


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--renew", type=int, default=1)
    parser.add_argument("--no-discover", action="store_true")
    args = parser.parse_args()

    recorder = Recorder()
    http_client.set_http_client(recorder)

    def on_error(err_type, err):
        emit({"event": "error", "type": err_type, "error": repr(err)})

    client = eureka_client.init(
        eureka_server=args.server,
        app_name=args.app,
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=args.port,
        renewal_interval_in_secs=args.renew,
        should_discover=not args.no_discover,
        on_error=on_error,
    )
    instance_id = f"127.0.0.1:{args.app.lower()}:{args.port}"
    emit({"event": "started", "instance_id": instance_id, "app": args.app.upper()})

    loop = asyncio.new_event_loop()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        name = cmd.get("cmd")
        try:
            if name == "view":
                # The registry the client keeps (full fetch at start, then deltas every heartbeat).
                emit({"event": "view", "apps": describe(client.applications)})
            elif name == "fetch":
                apps = loop.run_until_complete(eureka_basic.get_applications(args.server))
                emit({"event": "fetch", "apps": describe(apps)})
            elif name == "vip":
                apps = loop.run_until_complete(eureka_basic.get_vip(args.server, cmd["vip"]))
                emit({"event": "vip", "vip": cmd["vip"], "apps": describe(apps)})
            elif name == "status":
                loop.run_until_complete(client.status_update(cmd["value"]))
                emit({"event": "status"})
            elif name == "delete_override":
                loop.run_until_complete(client.delete_status_override())
                emit({"event": "delete_override"})
            elif name == "stop":
                # The library's heartbeat thread keeps running after stop() (its Timer is already
                # past start), so stop right after a heartbeat cycle finished: the next one is a
                # full interval away and the process exits long before it.
                seen = recorder.seq
                recorder.wait_for(lambda: recorder.seq > seen, args.renew * 5 + 5)
                eureka_client.stop()
                emit({"event": "stopped"})
                os._exit(0)
            else:
                emit({"event": "bad-command", "cmd": cmd})
        except Exception as e:  # report and keep serving commands
            emit({"event": "command-failed", "cmd": name, "error": repr(e)})
    os._exit(0)


if __name__ == "__main__":
    main()
