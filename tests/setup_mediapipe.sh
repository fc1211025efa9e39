#!/usr/bin/env bash
# Create .cache/mediapipe-venv with MediaPipe Tasks, for the compatibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/mediapipe-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import mediapipe" 2>/dev/null; then
  python -m venv "$venv"
  "$venv/bin/python" -m pip install -q "mediapipe==1.2.2"
fi
