"""Generates Python gRPC stubs for the project's protos at test time (grpc_tools.protoc into a
temporary folder), so no generated code is kept in the repository.

`load(proto, includes)` compiles `proto` and the `google/api` protos it imports (from the
reference folder) and returns the imported `*_pb2` and `*_pb2_grpc` modules.
"""

import importlib
import os
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc

GOOGLE_API = ["google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto"]


def load(proto, includes):
    # The test gives a folder it removes afterwards; run by hand, a fresh temporary one.
    out = os.environ.get("MESHMOVE_STUBS_DIR") or tempfile.mkdtemp(prefix="meshmove-stubs-")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = [proto]
    if any(os.path.exists(os.path.join(i, GOOGLE_API[0])) for i in includes):
        files = GOOGLE_API + files
    args = ["protoc", f"--python_out={out}", f"--grpc_python_out={out}", f"-I{well_known}"]
    args += [f"-I{i}" for i in includes] + files
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {files}")
    sys.path.insert(0, out)
    # google/ is a namespace package shared with the installed protobuf runtime.
    importlib.invalidate_caches()
    base = proto[: -len(".proto")].replace("/", ".")
    return importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc")
