#!/usr/bin/env bash
# Benchmark section "entrypoint": the fetch-mode entrypoint's size, its image's size (vs the
# 462 MB Ubuntu + awscli image it replaces), its start-to-exec overhead with the download
# excluded, and fetching + running a ~43 MB static Go binary (the docker CLI on this machine)
# from a local S3 server side by side with Debian's `aws s3 cp` + chmod + run, as the old start
# script did. S3 is s3s-fs (a fast Rust S3 server: `cargo install s3s-fs --features binary`)
# when installed, else moto; both on 127.0.0.1.
# Prints a markdown section on stdout (scripts/bench.sh collects it into BENCHMARKS.md).
#   RUNS=7 bash scripts/bench/entrypoint.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
ENTRYPOINT_BIN=${ENTRYPOINT_BIN:-}
[ -n "$ENTRYPOINT_BIN" ] || ENTRYPOINT_BIN=$(bash scripts/build-entrypoint.sh)
need entrypoint hyperfine jq docker /usr/bin/time /usr/bin/aws

work=$(mktemp -d)
tag="imgbuild-entrypoint-bench-$$"
server_pid=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(input_binary "$work")
cp "$bin" "$work/server"
obj_bytes=$(stat -c %s "$work/server")
sha=$(sha256sum "$work/server" | cut -d' ' -f1)

# The S3 server: s3s-fs, installed once with cargo (0.14 is the last release building with
# Rust 1.95); moto when that fails.
if ! command -v s3s-fs >/dev/null; then
  echo "bench/entrypoint: installing s3s-fs with cargo (once)" >&2
  cargo install -q --locked s3s-fs --version 0.14.1 --features binary >&2 ||
    echo "bench/entrypoint: s3s-fs did not install; using moto" >&2
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
if command -v s3s-fs >/dev/null; then
  s3name="s3s-fs $(s3s-fs --version 2>/dev/null | awk '{print $2}')"
  mkdir -p "$work/s3"
  s3s-fs --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
    --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/s3" >"$work/s3.log" 2>&1 &
else
  s3name="moto $(python3 -c 'import moto; print(moto.__version__)')"
  python3 -m moto.server -H 127.0.0.1 -p "$port" >"$work/s3.log" 2>&1 &
fi
server_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3api create-bucket --bucket bench >/dev/null
/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3api put-object --bucket bench --key server --body "$work/server" \
  --checksum-algorithm SHA256 >/dev/null

ep="env IMGBUILD_FETCH=s3://bench/server IMGBUILD_SHA256=$sha IMGBUILD_EXEC=1"
aws_cmd="/usr/bin/aws --endpoint-url $AWS_ENDPOINT_URL s3 cp --quiet s3://bench/server $work/aws-server && chmod +x $work/aws-server && $work/aws-server --version"
file_cmd="$ep IMGBUILD_FETCH_TO=$work/ep-server $ENTRYPOINT_BIN --version"
mem_cmd="$ep IMGBUILD_PARALLEL=1 $ENTRYPOINT_BIN --version"
par_cmd="$ep $ENTRYPOINT_BIN --version"

# Wall time: hyperfine medians (the fresh-download runs delete the previous file first).
hyperfine -N --style none --warmup 1 --runs "$RUNS" --export-json "$work/fetch.json" \
  --prepare "rm -f $work/aws-server $work/ep-server" \
  -n aws "sh -c '$aws_cmd'" -n file "$file_cmd" -n memfd "$mem_cmd" -n parallel "$par_cmd" \
  >/dev/null 2>&1
median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median' "$work/fetch.json"; }
# Peak memory: GNU time's maximum resident set size, the largest of RUNS runs.
peak_kb() {
  local max=0 kb
  for _ in $(seq "$RUNS"); do
    rm -f "$work/aws-server" "$work/ep-server"
    kb=$(/usr/bin/time -f '%M' -o "$work/time.txt" sh -c "$1" >/dev/null 2>&1; cat "$work/time.txt")
    ((kb > max)) && max=$kb
  done
  echo "$max"
}
declare -A wall peak
wall[aws]=$(median aws); peak[aws]=$(peak_kb "$aws_cmd")
wall[file]=$(median file); peak[file]=$(peak_kb "$file_cmd")
wall[memfd]=$(median memfd); peak[memfd]=$(peak_kb "$mem_cmd")
wall[parallel]=$(median parallel); peak[parallel]=$(peak_kb "$par_cmd")
# What the program itself needs: running the binary directly.
peak_direct=$(peak_kb "$work/server --version")
# The download alone: `aws s3 cp` without the run, and the entrypoint's own peak before it
# execs (VmHWM, which it logs as "peak memory").
peak_awscp=$(peak_kb "/usr/bin/aws --endpoint-url $AWS_ENDPOINT_URL s3 cp --quiet s3://bench/server $work/aws-server")
self_peak() {
  local max=0 kb
  for _ in $(seq "$RUNS"); do
    rm -f "$work/ep-server"
    kb=$(sh -c "$1" 2>&1 >/dev/null | sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' | awk '{printf "%d", $1*1e6/1024}')
    ((kb > max)) && max=$kb
  done
  echo "$max"
}
self_file=$(self_peak "$file_cmd")
self_par=$(self_peak "$par_cmd")

# Start to exec without the download: the entrypoint's own log ("starting ... N ms after
# start" minus "fetched ... in M ms"), median of RUNS runs, in memory, one stream.
overheads=()
for _ in $(seq "$RUNS"); do
  log=$(sh -c "$mem_cmd" 2>&1 >/dev/null)
  f=$(sed -n 's/.*fetched .* in \([0-9]*\) ms.*/\1/p' <<<"$log")
  s=$(sed -n 's/.*starting .* \([0-9]*\) ms after start.*/\1/p' <<<"$log")
  overheads+=($((s - f)))
done
overhead=$(printf '%s\n' "${overheads[@]}" | sort -n | sed -n "$(((RUNS + 1) / 2))p")
# The same with nothing to download (IMGBUILD_FETCH_TO already holds the pinned binary), as
# wall time around the whole run, against running the binary directly.
sh -c "$file_cmd" >/dev/null 2>&1
hyperfine -N --style none --warmup 1 --runs "$RUNS" --export-json "$work/cached.json" \
  -n direct "$work/server --version" -n cached "$file_cmd" >/dev/null 2>&1
cached_ms=$(jq -r '(.results[] | select(.command=="cached") | .median) - (.results[] | select(.command=="direct") | .median) | . * 1000 | floor' "$work/cached.json")

# The image of the top-level Dockerfile.
cp /etc/ssl/certs/ca-certificates.crt target/ca-certificates.crt
docker build -q -t "$tag" . >/dev/null
image_bytes=$(docker image inspect -f '{{.Size}}' "$tag")

ms() { awk -v s="$1" 'BEGIN{printf "%.0f ms", s*1000}'; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f MB", k*1024/1e6}'; }
mb() { awk -v b="$1" 'BEGIN{printf "%.2f MB", b/1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a/b}'; }
ep_bytes=$(stat -c %s "$ENTRYPOINT_BIN")

cat <<EOF
## Fetch-mode entrypoint

\`bash scripts/bench/entrypoint.sh\` (RUNS=$RUNS). S3: $s3name on 127.0.0.1. The object is a
$(mb "$obj_bytes") static Go binary (\`$(basename "$bin")\`), uploaded with a SHA-256 checksum;
every entrypoint run verifies the pin and S3's checksum, analyses the binary, then runs
\`--version\`. Wall times are hyperfine medians, peak memory the largest maximum RSS (GNU time)
over the runs, of the whole command including the program run at the end.

| | figure | target |
|---|---|---|
| entrypoint binary (static musl, stripped) | $(mb "$ep_bytes") | at most 4 MB |
| fetch-mode image (entrypoint + CA certificates) | $(mb "$image_bytes") | vs 462 MB today |
| start to exec, download excluded (in memory) | $overhead ms | |
| start to exec, nothing to download (pinned file cached; hashing included) | $cached_ms ms | |

| fetch $(mb "$obj_bytes") and run \`--version\` | wall | peak memory |
|---|---|---|
| \`aws s3 cp\` + \`chmod\` + run (Debian awscli $(/usr/bin/aws --version 2>&1 | cut -d' ' -f1 | cut -d/ -f2)) | $(ms "${wall[aws]}") | $(mib "${peak[aws]}") |
| entrypoint, \`IMGBUILD_FETCH_TO\` (file, parallel ranges) | $(ms "${wall[file]}") | $(mib "${peak[file]}") |
| entrypoint, in memory (memfd), one stream | $(ms "${wall[memfd]}") | $(mib "${peak[memfd]}") |
| entrypoint, in memory (memfd), parallel ranges (default) | $(ms "${wall[parallel]}") | $(mib "${peak[parallel]}") |
| (the binary's own \`--version\`, run directly) | | $(mib "$peak_direct") |

The peak of a whole command is at least the program's own (its \`--version\` above). The
download alone:

| fetch $(mb "$obj_bytes") only | peak memory |
|---|---|
| \`aws s3 cp\` | $(mib "$peak_awscp") |
| entrypoint, \`IMGBUILD_FETCH_TO\`, before exec (its VmHWM) | $(mib "$self_file") |
| entrypoint, in memory, parallel ranges, before exec (its VmHWM) | $(mib "$self_par") |

Entrypoint (file) vs \`aws s3 cp\`: $(ratio "${wall[aws]}" "${wall[file]}")x faster (whole command), $(ratio "$peak_awscp" "$self_file")x less peak
memory for the download (targets: at least 3x faster, at most a fifth of the memory).
EOF
