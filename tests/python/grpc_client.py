"""A grpcio 1.85 client for the bridge's gRPC facade: one unary call, the outcome printed as a
JSON line {"code", "details", "response", "initial_metadata", "trailing_metadata"}.

Usage: grpc_client.py --target HOST:PORT --proto demo/shop.proto --include DIR... \
         --method demo.shop.v1.Orders/GetOrder --request '{"orderId": "7"}' [--metadata k=v]...
"""

import argparse
import json
import sys

import grpc
from google.protobuf import json_format

import grpc_stubs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--proto", required=True)
    parser.add_argument("--include", action="append", default=[])
    parser.add_argument("--method", required=True)
    parser.add_argument("--request", default="{}")
    parser.add_argument("--metadata", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    pb, _ = grpc_stubs.load(args.proto, args.include)
    service, method = args.method.split("/")
    desc = pb.DESCRIPTOR.services_by_name[service.rsplit(".", 1)[1]].methods_by_name[method]
    from google.protobuf import message_factory
    req_cls = message_factory.GetMessageClass(desc.input_type)
    resp_cls = message_factory.GetMessageClass(desc.output_type)
    request = json_format.Parse(args.request, req_cls())
    channel = grpc.insecure_channel(args.target)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=resp_cls.FromString,
    )
    metadata = [tuple(m.split("=", 1)) for m in args.metadata]
    out = {}
    try:
        response, c = call.with_call(request, metadata=metadata, timeout=args.timeout)
        out["code"] = "OK"
        out["response"] = json.loads(json_format.MessageToJson(response))
        out["initial_metadata"] = dict(c.initial_metadata())
        out["trailing_metadata"] = dict(c.trailing_metadata() or [])
    except grpc.RpcError as e:
        out["code"] = e.code().name
        out["details"] = e.details()
        out["initial_metadata"] = dict(e.initial_metadata() or [])
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
