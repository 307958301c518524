# Shared by the scripts/bench/*.sh sections (sourced, not run): defaults, tool checks, and the
# benchmark input binary.

# need SECTION TOOL...: fails naming the first missing tool.
need() {
  local section=$1
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || {
      echo "bench/$section: $tool missing: run scripts/setup.sh" >&2
      exit 1
    }
  done
}

# input_binary DIR: prints the path of the ~43 MB static Go binary the benchmarks use: the
# docker CLI on this machine when it is static, else the sample server built static into DIR.
input_binary() {
  local bin=/usr/local/bin/docker
  if ! [ -f "$bin" ] || readelf -l "$bin" 2>/dev/null | grep -q 'program interpreter'; then
    bin="$1/sample-server"
    (cd images/sample-server && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -o "$bin" .)
  fi
  echo "$bin"
}

IMGBUILD=${IMGBUILD:-$PWD/target/release/imgbuild}
RUNS=${RUNS:-7}
