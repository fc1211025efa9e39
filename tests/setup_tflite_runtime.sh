#!/usr/bin/env bash
# Create .cache/tflite-runtime-venv: edgecls on the old standalone tflite-runtime 2.14 with numpy < 2,
# what older devices (and 32-bit Raspberry Pi OS images) still run. The tests compare it with LiteRT.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/tflite-runtime-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tflite_runtime, edgecls.runtime" 2>/dev/null; then
  rm -rf "$venv"
  python -m venv "$venv"
  "$venv/bin/python" -m pip install -q "numpy<2" "tflite-runtime==2.14.0" .
fi
