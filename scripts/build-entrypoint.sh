#!/usr/bin/env bash
# Builds the static, size-optimised entrypoint; prints its path.
#
# Size (target: at most 4 MB stripped):
# - static non-PIE (relocation-model=static): no dynamic relocation table, ~0.2 MB smaller
#   than the musl target's default static-pie;
# - no unwind tables (panic = "abort" in the profile, so nothing unwinds): no .eh_frame_hdr,
#   and images/entrypoint/no-eh-frame.ld discards .eh_frame at link time, ~0.5 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
export CC_x86_64_unknown_linux_musl=musl-gcc
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C relocation-model=static -C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr -C link-arg=-Wl,-T,$PWD/images/entrypoint/no-eh-frame.ld"
cargo build -q -p imgbuild-entrypoint --profile entrypoint --target x86_64-unknown-linux-musl
bin=target/x86_64-unknown-linux-musl/entrypoint/imgbuild-entrypoint
if readelf -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "build-entrypoint: $bin has a program interpreter; it must be static" >&2
  exit 1
fi
echo "$PWD/$bin"
