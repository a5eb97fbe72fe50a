#!/usr/bin/env bash
# Build TTS-Turbo-Setup-<version>.exe on Debian/Ubuntu in one command, then list and test it with 7z.
#
#   scripts/build_installer.sh                       # full payload: ~360 MB of Windows wheels from PyPI
#   scripts/build_installer.sh --python-dir DIR      # also bundle a Windows CPython 3.12 (offline installs)
#   scripts/build_installer.sh --stub                # tiny payload, same layout (seconds; what the tests build)
#   scripts/build_installer.sh --relock              # re-resolve installer/lock/*.txt with uv first
#
# Output: build/installer/TTS-Turbo-Setup-<version>.exe (other arguments go to installer/build_payload.py).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v makensis >/dev/null || missing+=(nsis)
command -v 7z >/dev/null || missing+=(p7zip-full)
if ((${#missing[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
command -v uv >/dev/null || python3 -m pip install --quiet uv    # builds our wheel and re-resolves the locks

python3 installer/build_payload.py --out build/installer "$@"
exe=$(ls -t build/installer/TTS-Turbo-Setup-*.exe | head -n 1)
7z l "$exe" | sed -n '/^   Date/,$p'
7z t "$exe" | grep -E '^(Everything is Ok|Files:|Size:)'
echo "built $exe"
