#!/usr/bin/env bash
# Install Debian/Ubuntu packages quietly, with sudo when not root: scripts/apt_install.sh PKG...
set -euo pipefail
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
