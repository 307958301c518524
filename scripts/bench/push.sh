#!/usr/bin/env bash
# Benchmark section "push": a ~43 MB static Go binary image (the docker CLI on this machine) into
# a local distribution registry (Debian's docker-registry on 127.0.0.1), `imgbuild push --from
# oci:DIR` side by side with `skopeo copy oci:DIR docker://...` of the same layout:
#   - cold: into an empty registry (restarted with fresh storage before every run);
#   - warm: the same image again (only HEADs and the manifest should move);
#   - binary changed: the image of a changed binary on top of the first one (one layer moves);
# and build-plus-push in one command (`imgbuild push --binary`) against `docker build` +
# `docker push` of a FROM-scratch Dockerfile, both into an empty registry.
# Prints a markdown section on stdout (scripts/bench.sh collects it into BENCHMARKS.md).
#   IMGBUILD=target/release/imgbuild RUNS=7 bash scripts/bench/push.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
[ -x "$IMGBUILD" ] || cargo build -q --release --bin imgbuild
need push hyperfine jq skopeo docker docker-registry /usr/bin/time python3

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg="127.0.0.1:$port"
dtag="$reg/bench/docker:1"
cleanup() {
  [ -f "$work/registry.pid" ] && kill "$(cat "$work/registry.pid")" 2>/dev/null || true
  docker rmi -f "$dtag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(input_binary "$work")
cd "$work"
cp "$bin" app
cp "$bin" app2
printf 'imgbuild-bench-change' >>app2
size_mb=$(awk -v b="$(stat -c %s app)" 'BEGIN{printf "%.1f", b/1e6}')
"$IMGBUILD" -q build --binary app --name app --tag app:v1 -o oci:layout >/dev/null
"$IMGBUILD" -q build --binary app2 --name app --tag app:v2 -o oci:layout >/dev/null
layout_mb=$(awk -v b="$(du -sb layout | cut -f1)" 'BEGIN{printf "%.1f", b/1e6}')
printf 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n' >Dockerfile
mkdir -p empty-docker-config

# A registry script the hyperfine --prepare steps call: `fresh` restarts it on empty storage.
cat >registry.sh <<EOF
#!/usr/bin/env bash
set -euo pipefail
cd "$work"
if [ -f registry.pid ]; then kill "\$(cat registry.pid)" 2>/dev/null || true; fi
while curl -s -o /dev/null "http://$reg/v2/"; do sleep 0.05; done
rm -rf storage
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: $work/storage\nhttp:\n  addr: $reg\n' >config.yml
docker-registry serve config.yml >>registry.log 2>&1 &
echo \$! >registry.pid
until curl -s -o /dev/null "http://$reg/v2/"; do sleep 0.05; done
EOF
chmod +x registry.sh
./registry.sh

export DOCKER_CONFIG="$work/empty-docker-config"
ours() { echo "$IMGBUILD -q push --from oci:layout:$1 $reg/bench/$2"; }
theirs() { echo "skopeo copy -q --dest-tls-verify=false oci:layout:$1 docker://$reg/bench/$2"; }

# bench NAME PREPARE CMD: one hyperfine run, median/min/max appended to results.tsv.
bench() {
  hyperfine --style none --runs "$RUNS" --prepare "$2" --export-json one.json "$3" >/dev/null 2>&1
  jq -r --arg n "$1" '.results[0] | [$n, .median, .min, .max] | @tsv' one.json >>results.tsv
}
: >results.tsv
bench "cold imgbuild" "./registry.sh" "$(ours v1 app:1)"
bench "cold skopeo" "./registry.sh" "$(theirs v1 app:1)"
./registry.sh && $(ours v1 app:1) >/dev/null
bench "warm imgbuild" "true" "$(ours v1 app:1)"
bench "warm skopeo" "true" "$(theirs v1 app:1)"
bench "change imgbuild" "./registry.sh && $(ours v1 app:1)" "$(ours v2 app:2)"
bench "change skopeo" "./registry.sh && $(ours v1 app:1)" "$(theirs v2 app:2)"
bench "build+push imgbuild" "./registry.sh" "$IMGBUILD -q push --binary app --name app $reg/bench/built:1"
bench "build+push docker" "./registry.sh; docker rmi -f $dtag >/dev/null 2>&1 || true" \
  "docker build -q --no-cache -t $dtag . >/dev/null && docker push -q $dtag >/dev/null"

./registry.sh
peak=$(/usr/bin/time -v $(ours v1 app:1) 2>&1 >/dev/null | awk -F: '/Maximum resident set size/{printf "%.0f", $2/1024}')
./registry.sh && $(ours v1 app:1) >/dev/null
warm_json=$("$IMGBUILD" -q push --json --from "oci:layout:v1" "$reg/bench/app:1")
./registry.sh && $(ours v1 app:1) >/dev/null
change_json=$("$IMGBUILD" -q push --json --from "oci:layout:v2" "$reg/bench/app:2")

med() { awk -F'\t' -v n="$1" '$1==n {print $2}' results.tsv; }
row() {
  awk -F'\t' -v a="$1 imgbuild" -v b="$1 $2" -v label="$3" '
    $1==a {am=$2; an=$3; ax=$4} $1==b {bm=$2; bn=$3; bx=$4}
    END {printf "| %s | %.3f (%.3f–%.3f) | %.3f (%.3f–%.3f) | %.2fx |\n", label, am, an, ax, bm, bn, bx, bm/am}' results.tsv
}

echo "## push: $size_mb MB static Go binary image to a local registry"
echo
echo "Input: \`$bin\` ($size_mb MB) built by \`imgbuild build\` into an OCI layout (two layers:"
echo "CA certificates, the binary; $layout_mb MB for two tags). Registry: Debian's \`docker-registry\`"
echo "on 127.0.0.1, restarted on empty storage before every cold run. Median (min–max) seconds of"
echo "$RUNS runs with hyperfine. Commands:"
echo
echo "- imgbuild: \`imgbuild -q push --from oci:layout:v1 127.0.0.1:PORT/bench/app:1\`"
echo "- skopeo: \`skopeo copy -q --dest-tls-verify=false oci:layout:v1 docker://127.0.0.1:PORT/bench/app:1\`"
echo "- build+push: \`imgbuild -q push --binary app 127.0.0.1:PORT/bench/built:1\` vs"
echo "  \`docker build --no-cache -t 127.0.0.1:PORT/bench/docker:1 . && docker push 127.0.0.1:PORT/bench/docker:1\`"
echo "  (Dockerfile: \`FROM scratch\`, \`COPY app /app\`)"
echo
echo "| scenario | imgbuild (s) | other (s) | imgbuild speed-up |"
echo "|---|---:|---:|---:|"
row cold skopeo "cold push (vs skopeo copy)"
row warm skopeo "warm re-push, same image (vs skopeo copy)"
row change skopeo "binary changed, one layer moves (vs skopeo copy)"
row build+push docker "build + push in one command (vs docker build + docker push)"
echo
echo "What imgbuild sent: warm re-push $(jq -r '"\(.blobs_uploaded) blobs uploaded, \(.blobs_existing) found, \(.requests) requests"' <<<"$warm_json");"
echo "binary changed $(jq -r '"\(.blobs_uploaded) blobs uploaded (the binary layer and the config), \(.blobs_existing) found, \(.bytes_uploaded/1e6*10|round/10) MB sent"' <<<"$change_json")."
echo "Peak RSS of \`imgbuild push\` on the cold push: $peak MB (blobs stream from disk)."
