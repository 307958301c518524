#!/usr/bin/env bash
# Benchmark section "build": a large static Go binary (the docker CLI on this machine, ~43 MB)
# into a compressed OCI layout with `imgbuild build`, side by side with `docker build` of a
# FROM-scratch Dockerfile plus `docker save`, and the shell pipeline `tar -c | gzip | sha256sum`.
# Prints a markdown section on stdout (scripts/bench.sh collects it into BENCHMARKS.md).
#   IMGBUILD=target/release/imgbuild RUNS=7 bash scripts/bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/bench/lib.sh
[ -x "$IMGBUILD" ] || cargo build -q --release --bin imgbuild
need build hyperfine jq docker /usr/bin/time

work=$(mktemp -d)
tag="imgbuild-bench-$$"
cleanup() {
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bin=$(input_binary "$work")
cp "$bin" "$work/app"
size_mb=$(awk -v b="$(stat -c %s "$work/app")" 'BEGIN{printf "%.1f", b/1e6}')
printf 'FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n' >"$work/Dockerfile"
cd "$work"

declare -a names cmds
add() { names+=("$1"); cmds+=("$2"); }
add "imgbuild build (gzip, default level 6)" "$IMGBUILD -q build --binary app --no-ca-certs -o oci:out-gz"
add "imgbuild build --compression-level 1" "$IMGBUILD -q build --binary app --no-ca-certs --compression-level 1 -o oci:out-gz1"
add "imgbuild build --compression zstd" "$IMGBUILD -q build --binary app --no-ca-certs --compression zstd -o oci:out-zstd"
add "tar -c \\| gzip \\| sha256sum" "tar -c app | gzip | sha256sum"
add "tar -c \\| gzip -1 \\| sha256sum" "tar -c app | gzip -1 | sha256sum"
add "docker build (FROM scratch, --no-cache) + docker save" \
  "docker build -q --no-cache -t $tag . && docker save -o saved.tar $tag"

args=()
for c in "${cmds[@]}"; do args+=("$c"); done
hyperfine --style none --runs "$RUNS" --warmup 1 \
  --prepare "rm -rf out-gz out-gz1 out-zstd saved.tar; docker rmi -f $tag >/dev/null 2>&1 || true" \
  --export-json times.json "${args[@]}" >/dev/null 2>&1

peak_mb() {
  /usr/bin/time -v sh -c "$1" 2>&1 >/dev/null | awk -F: '/Maximum resident set size/{printf "%.0f", $2/1024}'
}

median() { jq -r --argjson i "$1" '.results[$i].median' times.json; }
echo "## build: $size_mb MB static Go binary to a compressed image"
echo
echo "Input: \`$bin\` ($size_mb MB). $RUNS runs each after a warm-up; \`imgbuild\` writes a"
echo "complete OCI layout (layers, config, manifest, index; CA certificates left out so the"
echo "content matches the others). \`docker save\` writes an uncompressed archive; the daemon's"
echo "own memory and CPU are not in its figures (only the CLI's). CPU time is the mean user+sys"
echo "of the command and its children: it shows the work done, whatever else loads the machine."
echo
echo "| command | median (s) | min (s) | max (s) | CPU user+sys (s) | peak RSS (MB) |"
echo "|---|---:|---:|---:|---:|---:|"
for i in "${!names[@]}"; do
  rm -rf out-gz out-gz1 out-zstd saved.tar
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  mem=$(peak_mb "${cmds[$i]}")
  jq -r --argjson i "$i" --arg n "${names[$i]}" --arg m "$mem" \
    '.results[$i] | "| \($n) | \(.median*1000|round/1000) | \(.min*1000|round/1000) | \(.max*1000|round/1000) | \((.user+.system)*1000|round/1000) | \($m) |"' times.json
done
ours=$(median 0)
pipe=$(median 3)
dock=$(median 5)
echo
awk -v o="$ours" -v p="$pipe" -v d="$dock" 'BEGIN {
  printf "Wall-clock speed-up of imgbuild at its default level: %.1fx over the `tar -c | gzip | sha256sum` pipeline, ", p/o
  printf "%.1fx over `docker build` + `docker save`.\n", d/o
}'
jq -r '(.results[0].user + .results[0].system) as $o
  | "In CPU time it does \((.results[3].user + .results[3].system) / $o * 10 | round / 10)x less work than the pipeline (zlib-rs deflate, SHA-NI hashing) and spreads it over the cores (1 MiB gzip chunks compressed in parallel)."' times.json
echo
gz_size=$(du -sb out-gz 2>/dev/null | cut -f1 || true)
[ -n "$gz_size" ] || { "$IMGBUILD" -q build --binary app --no-ca-certs -o oci:out-gz >/dev/null; gz_size=$(du -sb out-gz | cut -f1); }
echo "Layout size at the default level: $(awk -v b="$gz_size" 'BEGIN{printf "%.1f", b/1e6}') MB."
