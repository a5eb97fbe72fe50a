#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine and run the CPU test suite (exactly what CI runs).
# GPU tests are marked `gpu` and skipped here; scripts/gpu_check.sh runs them on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# PortAudio for sounddevice, libsndfile for soundfile, EGL/xkb/fontconfig for Qt offscreen,
# NSIS and 7-Zip for the installer tests, python3-venv for the virtual environment.
bash scripts/apt_install.sh libportaudio2 libsndfile1 libegl1 libgl1 libxkbcommon0 libfontconfig1 \
  libdbus-1-3 fonts-dejavu-core nsis p7zip-full python3-venv
python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install -q -e ".[test]"
QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest -m "not gpu" -q "$@"
