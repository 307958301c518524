#!/usr/bin/env bash
# Regenerates the README's CLI reference from `imgbuild SUB --help` (tests/readme.rs checks
# that the README matches the binary). Usage: bash scripts/readme-help.sh [IMGBUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build -q --bin imgbuild
  bin=target/debug/imgbuild
fi
python3 - "$bin" <<'PY'
import os, re, subprocess, sys
bin = sys.argv[1]
env = dict(os.environ, COLUMNS="100", NO_COLOR="1")
readme = open("README.md").read()
def block(m):
    sub = m.group(1)
    args = [bin] + ([sub] if sub != "imgbuild" else []) + ["--help"]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    return f"<!-- help:{sub} -->\n```text\n{out.rstrip()}\n```\n<!-- /help -->"
new = re.sub(r"<!-- help:(\S+) -->.*?<!-- /help -->", block, readme, flags=re.S)
open("README.md", "w").write(new)
PY
