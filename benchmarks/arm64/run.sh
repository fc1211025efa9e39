#!/usr/bin/env bash
# The runtime on emulated 64-bit Arm: Debian 12 (Raspberry Pi OS Bookworm's base) arm64 Python 3.11
# with the aarch64 wheels of numpy, OpenCV, LiteRT and ONNX Runtime, run by QEMU 10 user mode.
#
#   benchmarks/arm64/run.sh setup                 build the environment once (cached), refresh edgecls
#   benchmarks/arm64/run.sh CPU ARGS...           run the arm64 python3.11 with ARGS under QEMU_CPU=CPU
#                                                 (cortex-a72 = Raspberry Pi 4, cortex-a76 = Raspberry Pi 5)
#   e.g. benchmarks/arm64/run.sh cortex-a72 -m edgecls info model_int8.tflite
#
# Cache: $EDGECLS_ARM64_CACHE (default .cache/arm64). Needs network once (Debian archive, PyPI).
# Debian 12's own qemu-user-static (QEMU 7.2) crashes LiteRT and ONNX Runtime (SIGSEGV), so QEMU
# comes from Debian 13's qemu-user package (static binaries), unpacked here, not installed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${EDGECLS_ARM64_CACHE:-$repo/.cache/arm64}"
mkdir -p "$cache"

# apt-get with a private sources list, lists and archive folder: never touches the system's apt state.
private_apt() {  # NAME SOURCES_LINE... -- apt-get args
  local name="$1"; shift
  local dir="$cache/apt-$name"; mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  local sources=()
  while [ "$1" != "--" ]; do sources+=("$1"); shift; done; shift
  printf '%s\n' "${sources[@]}" > "$dir/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::Archives=$dir/archives"
              -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root -qq)
  [ "$name" = arm64 ] && opts+=(-o APT::Architecture=arm64 -o APT::Architectures=arm64)
  [ -n "$(ls -A "$dir/lists" 2>/dev/null | grep -v partial)" ] || apt-get "${opts[@]}" update >/dev/null
  (cd "$dir/archives" && apt-get "${opts[@]}" "$@" >/dev/null)
  echo "$dir/archives"
}

setup_qemu() {
  [ -x "$cache/qemu/usr/bin/qemu-aarch64" ] && return
  local debs; debs="$(private_apt trixie "deb http://deb.debian.org/debian trixie main" -- download qemu-user)"
  rm -rf "$cache/qemu.tmp" && dpkg -x "$debs"/qemu-user_*.deb "$cache/qemu.tmp"
  mv "$cache/qemu.tmp" "$cache/qemu"
}

# python3.11 and the libraries it and the wheels link against (the wheels bundle the rest).
ARM64_PACKAGES="python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libc6 libgcc-s1 libstdc++6
  gcc-12-base zlib1g libbz2-1.0 liblzma5 libexpat1 libffi8 libssl3 libsqlite3-0 libncursesw6 libtinfo6
  libreadline8 libuuid1 libcrypt1 libnsl2 libtirpc3 libtirpc-common libdb5.3 libgdbm6 libgdbm-compat4
  libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libcom-err2 media-types"

setup_root() {
  [ -x "$cache/root/usr/bin/python3.11" ] && return
  local debs; debs="$(private_apt arm64 \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" -- download $ARM64_PACKAGES)"
  rm -rf "$cache/root.tmp" && mkdir "$cache/root.tmp"
  for deb in "$debs"/*_arm64.deb "$debs"/*_all.deb; do [ -e "$deb" ] && dpkg -x "$deb" "$cache/root.tmp"; done
  mv "$cache/root.tmp" "$cache/root"
}

# The runtime extras' dependencies as aarch64 wheels (glibc 2.36 = Bookworm), unpacked onto the path.
setup_wheels() {
  [ -d "$cache/site/numpy" ] && return
  local platforms=() v
  for v in 17 24 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_aarch64"); done
  rm -rf "$cache/wheels" "$cache/site.tmp" && mkdir -p "$cache/site.tmp"
  python -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none "${platforms[@]}" --platform manylinux2014_aarch64 --platform any \
    -d "$cache/wheels" numpy opencv-python-headless click ai-edge-litert onnxruntime
  for wheel in "$cache"/wheels/*.whl; do python -m zipfile -e "$wheel" "$cache/site.tmp"; done
  mv "$cache/site.tmp" "$cache/site"
}

# edgecls itself is pure Python: its wheel, rebuilt from this checkout on every setup.
setup_edgecls() {
  rm -rf "$cache/edgecls" "$cache/dist" && mkdir -p "$cache/edgecls"
  python -m pip wheel -q --no-deps --no-build-isolation -w "$cache/dist" "$repo" >/dev/null
  python -m zipfile -e "$cache"/dist/edgecls-*.whl "$cache/edgecls"
}

if [ "${1:-}" = setup ]; then
  setup_qemu; setup_root; setup_wheels; setup_edgecls
  echo "arm64 environment ready in $cache"
  exit 0
fi
[ $# -ge 1 ] || { echo "usage: $0 setup | $0 CPU ARGS..." >&2; exit 2; }
[ -x "$cache/root/usr/bin/python3.11" ] || { echo "run '$0 setup' first" >&2; exit 2; }
cpu="$1"; shift
QEMU_CPU="$cpu" QEMU_LD_PREFIX="$cache/root" PYTHONPATH="$cache/edgecls:$cache/site" PYTHONNOUSERSITE=1 PYTHONSAFEPATH=1 \
  exec "$cache/qemu/usr/bin/qemu-aarch64" "$cache/root/usr/bin/python3.11" "$@"
