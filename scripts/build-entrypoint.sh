#!/usr/bin/env bash
# Builds the static, size-optimised entrypoint; prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build -q -p imgbuild-entrypoint --profile entrypoint --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-entrypoint: $bin has a program interpreter; it must be static" >&2
  exit 1
fi
echo "$PWD/$bin"
