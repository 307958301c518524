#!/usr/bin/env bash
# The benchmark suite: runs every scripts/bench/*.sh section and writes BENCHMARKS.md from
# their output (never typed by hand). Needs only what scripts/setup.sh installs.
#   bash scripts/bench.sh            # all sections
#   bash scripts/bench.sh build      # one section
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build -q --release --bin imgbuild
bash scripts/build-entrypoint.sh >/dev/null
export IMGBUILD="$PWD/target/release/imgbuild"
export ENTRYPOINT_BIN="$PWD/target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint"

sections=("$@")
((${#sections[@]})) || sections=(build push entrypoint)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# Benchmarks"
  echo
  echo "Produced by \`bash scripts/bench.sh\` on $(date -u +%Y-%m-%d); do not edit by hand."
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)."
  echo "Figures are medians of several runs; peak memory is the maximum resident set size (GNU time)."
  for s in "${sections[@]}"; do
    echo
    bash "scripts/bench/$s.sh"
  done
} >"$tmp"
mv "$tmp" BENCHMARKS.md
trap - EXIT
echo "wrote BENCHMARKS.md" >&2
