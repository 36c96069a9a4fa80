#!/usr/bin/env bash
# examples/side-by-side/run.sh: the side-by-side demo in one command (README.md beside this file).
# Builds the bridge and rpc's tonic echo server (debug) unless MESHMOVE_BRIDGE_BIN and MESHMOVE_ECHO_SERVER_BIN are
# given, makes sure the Python peers are installed (the venv tests/run uses), runs demo.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${MESHMOVE_CACHE:-$HOME/.cache/meshmove}
venv=$cache/venv

if [ -z "${MESHMOVE_BRIDGE_BIN:-}" ] || [ -z "${MESHMOVE_ECHO_SERVER_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet -p bridge --bin bridge -p rpc --bin echo_server)
  target=${CARGO_TARGET_DIR:-$root/target}
  MESHMOVE_BRIDGE_BIN=${MESHMOVE_BRIDGE_BIN:-$target/debug/bridge}
  MESHMOVE_ECHO_SERVER_BIN=${MESHMOVE_ECHO_SERVER_BIN:-$target/debug/echo_server}
fi

# py-eureka-client and grpcio, pinned in tests/python/requirements.txt.
if ! "$venv/bin/python3" -c 'import py_eureka_client, grpc, grpc_tools' 2>/dev/null; then
  echo "installing the Python peers into $venv (tests/python/requirements.txt)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/tests/python/requirements.txt"
fi

exec "$venv/bin/python3" "$here/demo.py" --bridge "$MESHMOVE_BRIDGE_BIN" --echo-server "$MESHMOVE_ECHO_SERVER_BIN" "$@"
