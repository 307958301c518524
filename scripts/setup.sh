#!/usr/bin/env bash
# Installs everything imgbuild's build, tests and benchmarks need, when it is missing.
# Idempotent: a second run on a set-up machine does nothing but check.
set -euo pipefail

APT_PKGS=(golang-go musl-tools gcc binutils skopeo umoci docker-registry apache2-utils cmake awscli jq zstd time hyperfine openssl curl)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The Debian package starts a system registry on :5000; tests start their own.
  $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
  $SUDO pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' 2>/dev/null || true
fi

if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  echo "setup: adding rust target x86_64-unknown-linux-musl" >&2
  rustup target add x86_64-unknown-linux-musl
fi
for c in rustfmt clippy; do
  rustup component list --installed | grep -q "^$c" || rustup component add "$c"
done

if ! python3 -c 'import moto.server' 2>/dev/null; then
  echo "setup: installing moto[server] from PyPI" >&2
  python3 -m pip install -q 'moto[server]'
fi
