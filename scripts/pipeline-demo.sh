#!/usr/bin/env bash
# The whole CodeBuild-to-ECS path on this machine, against local stand-ins for AWS:
#   moto (S3 + ECR APIs) and Debian's docker-registry on 127.0.0.1, and the local Docker engine.
#   1. "CodeBuild": build the sample server static, `imgbuild push` it to an ECR-named reference
#      (credentials from moto's GetAuthorizationToken; IMGBUILD_REGISTRY_MIRROR sends the
#      registry traffic to the local registry), and `imgbuild upload` it to S3 (fetch mode).
#   2. "ECS", baked mode: `docker pull` the pushed digest, run it, GET /.
#   3. "ECS", fetch mode: the fetch-mode image pinned to the uploaded sha256, run it, GET /.
# Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${IMGBUILD:-}" ]; then
  cargo build -q --bin imgbuild
fi
imgbuild=$(realpath "${IMGBUILD:-target/debug/imgbuild}")
bash scripts/build-entrypoint.sh >/dev/null
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
containers=()
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
wait_http() { # PORT
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$1/" && return 0; sleep 0.2; done
  return 1
}

account=123456789012 region=us-east-1
moto_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
reg_port=$(free_port)
htpasswd -Bbn AWS "$account-auth-token" >"$work/htpasswd"
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$reg_port}
auth: {htpasswd: {realm: local-ecr, path: $work/htpasswd}}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
until curl -s -o /dev/null "http://127.0.0.1:$moto_port/" && curl -s -o /dev/null "http://127.0.0.1:$reg_port/v2/"; do sleep 0.2; done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=$region
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port AWS_EC2_METADATA_DISABLED=true
ecr=$account.dkr.ecr.$region.amazonaws.com
export IMGBUILD_REGISTRY_MIRROR=$ecr=127.0.0.1:$reg_port
python3 -c "import boto3; boto3.client('s3', endpoint_url='$AWS_ENDPOINT_URL').create_bucket(Bucket='artifacts')"

echo "== CodeBuild: go build, imgbuild push (baked mode), imgbuild upload (fetch mode)" >&2
(cd images/sample-server && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -o "$work/server" .)
"$imgbuild" push --binary "$work/server" --port 8080 --create-repository \
  --digest-file "$work/digest.txt" "$ecr/sample/server:demo"
pin=$("$imgbuild" upload "$work/server" s3://artifacts/server)

echo "== ECS, baked mode: pull the pinned digest and run it" >&2
pinned=$(cat "$work/digest.txt")
local_ref=127.0.0.1:$reg_port/${pinned#"$ecr/"}
mkdir -p "$work/docker-config"
echo "$account-auth-token" | docker --config "$work/docker-config" login -u AWS --password-stdin "127.0.0.1:$reg_port" >/dev/null 2>&1
docker --config "$work/docker-config" pull -q "$local_ref" >/dev/null
port=$(free_port)
containers+=(imgbuild-pipeline-baked)
docker rm -f imgbuild-pipeline-baked >/dev/null 2>&1 || true
docker run -d --name imgbuild-pipeline-baked --network host -e PORT="$port" "$local_ref" >/dev/null
wait_http "$port"

echo "== ECS, fetch mode: the entrypoint image fetches the pinned binary from S3 and runs it" >&2
"$imgbuild" build --fetch s3://artifacts/server --sha256 "$pin" --tag imgbuild-pipeline:fetch --output docker >/dev/null
port=$(free_port)
containers+=(imgbuild-pipeline-fetch)
docker rm -f imgbuild-pipeline-fetch >/dev/null 2>&1 || true
docker run -d --name imgbuild-pipeline-fetch --network host -e PORT="$port" \
  -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_REGION -e AWS_ENDPOINT_URL \
  -e AWS_EC2_METADATA_DISABLED imgbuild-pipeline:fetch >/dev/null
wait_http "$port"
docker logs imgbuild-pipeline-fetch 2>&1 | grep -m1 'sha256' >&2 || true
docker rmi -f "$local_ref" imgbuild-pipeline:fetch >/dev/null 2>&1 || true
echo "== both modes answered HTTP" >&2
