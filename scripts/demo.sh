#!/usr/bin/env bash
# The main job on the bundled sample, on a fresh machine: installs what is missing, builds the
# sample Go server (images/sample-server), shows why its default cgo build could never start in
# an empty image, builds its image without Docker, and, where a Docker engine runs, runs it and
# gets an HTTP answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# IMGBUILD names an already built imgbuild (the tests pass theirs); else build it here.
if [ -z "${IMGBUILD:-}" ]; then
  echo "== building imgbuild" >&2
  cargo build -q --bin imgbuild
fi
imgbuild=${IMGBUILD:-target/debug/imgbuild}
out=target/demo
rm -rf "$out" && mkdir -p "$out"

echo "== building the sample Go server, with cgo (Go's default) and with CGO_ENABLED=0" >&2
(
  cd images/sample-server
  export GOFLAGS=-buildvcs=false GOCACHE="$PWD/../../target/demo-gocache"
  CGO_ENABLED=1 go build -o "../../$out/server-cgo" .
  CGO_ENABLED=0 go build -trimpath -o ../../target/sample-server .
)

echo "== imgbuild inspect on the cgo build: why it would die with 'not found' in an empty image" >&2
"$imgbuild" inspect "$out/server-cgo"

echo "== imgbuild build from the spec images/sample-server.toml, as an OCI layout (no Docker used)" >&2
"$imgbuild" inspect target/sample-server
digest=$("$imgbuild" build images/sample-server.toml --output "oci:$out/oci")
echo "built $digest into $out/oci" >&2

if ! docker info >/dev/null 2>&1; then
  echo "== no Docker engine here: stopping after the build ($out/oci holds the image)" >&2
  exit 0
fi
echo "== loading it into Docker and running it" >&2
"$imgbuild" build images/sample-server.toml --tag imgbuild-sample:demo --output docker >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
docker rm -f imgbuild-demo >/dev/null 2>&1 || true
docker run -d --name imgbuild-demo --network host -e PORT="$port" imgbuild-sample:demo >/dev/null
trap 'docker rm -f imgbuild-demo >/dev/null 2>&1 || true' EXIT
for _ in $(seq 1 50); do
  if answer=$(curl -fsS "http://127.0.0.1:$port/"); then
    echo "$answer"
    echo "== the container answered HTTP on 127.0.0.1:$port" >&2
    exit 0
  fi
  sleep 0.2
done
docker logs imgbuild-demo >&2
echo "demo: the container did not answer on port $port" >&2
exit 1
