#!/usr/bin/env bash
# Install the Mosquitto MQTT broker (Debian package) for the --mqtt tests; they start
# their own broker on 127.0.0.1 and never use a system service.
set -euo pipefail
if command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
