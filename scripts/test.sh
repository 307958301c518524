#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what is missing, builds the static
# entrypoint once, then runs every test against the real services (which the tests start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-entrypoint.sh >&2
cargo test --workspace --no-fail-fast "$@"
