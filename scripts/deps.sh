#!/usr/bin/env bash
# Installs what baimo needs and is missing, and nothing else.
#   scripts/deps.sh build   C toolchain and libraries (make, make run)
#   scripts/deps.sh test    + Criterion, numpy/PyTorch, clang (fuzzing), Open MPI, npm references
set -euo pipefail
mode=${1:-build}
cd "$(dirname "$0")/.."

build_pkgs="gcc make pkg-config libpcre2-dev libutf8proc-dev libjansson-dev libmicrohttpd-dev
  libsqlite3-dev libcurl4-openssl-dev libopenblas-dev"
test_pkgs="libcriterion-dev python3-numpy python3-torch clang libclang-rt-14-dev
  openmpi-bin libopenmpi-dev nodejs npm chromium gcc-aarch64-linux-gnu qemu-user strace"

want=$build_pkgs
[ "$mode" = test ] && want="$build_pkgs $test_pkgs"

missing=""
for p in $want; do
  # node/npm may come from outside Debian; accept them when present on PATH
  case $p in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
  echo "deps: installing:$missing"
  SUDO=""
  [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "$mode" = test ]; then
  # npm references for tests (tests/package.json); only when absent
  need_npm=0
  for m in $(node -e 'const p=require("./tests/package.json");console.log(Object.keys(p.dependencies).join(" "))'); do
    [ -e "tests/node_modules/$m/package.json" ] || need_npm=1
  done
  if [ $need_npm = 1 ]; then
    echo "deps: npm install (tests/)"
    (cd tests && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi
