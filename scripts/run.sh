#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu desktop and start TTS Turbo with the bundled voice (en_US-joe-medium).
# Any extra arguments go to `tts-turbo` (e.g. `scripts/run.sh say "Hello" -o hello.wav`).
set -euo pipefail
cd "$(dirname "$0")/.."
# PortAudio for playback, the xcb libraries Qt 6 needs for a desktop window, python3-venv.
bash scripts/apt_install.sh libportaudio2 libsndfile1 libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 \
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 \
  libfontconfig1 libdbus-1-3 fonts-dejavu-core python3-venv
python3 -m venv --system-site-packages .venv
.venv/bin/python -m pip install -q -e .
exec .venv/bin/tts-turbo "$@"
