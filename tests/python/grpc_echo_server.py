"""A grpcio 1.85 server of demo.echo.v1.Echo for the bridge's end-to-end tests, steered like the
tonic one (rpc/src/echo.rs): `status:N:text` fails with code N, `sleep:MS` waits, `headers`
answers with the request metadata as JSON, anything else is echoed (`repeat` times for Stream).

Prints {"event": "listening", "port": N} once serving on 127.0.0.1; exits when stdin closes.
Usage: grpc_echo_server.py --proto-dir DIR [--port N]
"""

import argparse
import json
import sys
import time
from concurrent import futures

import grpc

import grpc_stubs


def metadata_json(context):
    out = {}
    for key, value in context.invocation_metadata():
        if isinstance(value, bytes):
            continue
        out[key] = out[key] + "," + value if key in out else value
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def steer(message):
    if message.startswith("status:"):
        rest = message[len("status:"):]
        code, _, text = rest.partition(":")
        return ("fail", int(code), text)
    if message.startswith("sleep:"):
        return ("sleep", int(message[len("sleep:"):]), None)
    if message == "headers":
        return ("headers", None, None)
    return ("echo", None, None)


def code_of(n):
    for c in grpc.StatusCode:
        if c.value[0] == n:
            return c
    return grpc.StatusCode.UNKNOWN


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    pb, pb_grpc = grpc_stubs.load("demo/echo.proto", [args.proto_dir])

    class Echo(pb_grpc.EchoServicer):
        def Say(self, request, context):
            kind, n, text = steer(request.message)
            if kind == "fail":
                context.abort(code_of(n), text)
            if kind == "sleep":
                time.sleep(n / 1000)
            message = metadata_json(context) if kind == "headers" else request.message
            return pb.SayReply(message=message, index=0)

        def Stream(self, request, context):
            kind, n, text = steer(request.message)
            for i in range(max(request.repeat, 1)):
                message = metadata_json(context) if kind == "headers" else request.message
                yield pb.SayReply(message=message, index=i)
                if kind == "fail":
                    context.abort(code_of(n), text)
                if kind == "sleep":
                    time.sleep(n / 1000)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    sys.stdout.write(json.dumps({"event": "listening", "port": port}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
