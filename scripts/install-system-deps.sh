#!/usr/bin/env bash
# Installs the Debian packages the test suite drives (kcat, a real Kafka client built on librdkafka).
# Idempotent; does nothing when they are present. Needs root (CI runs as root).
set -euo pipefail
need=()
command -v kcat >/dev/null 2>&1 || need+=(kcat)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-system-deps: need root to apt-get install ${need[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
