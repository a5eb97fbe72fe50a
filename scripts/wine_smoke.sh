#!/usr/bin/env bash
# Silent install / uninstall of TTS-Turbo-Setup-<version>.exe under wine64, in a throw-away prefix.
# Checks files, shortcuts, the HKCU uninstall key, the bootstrap's error path and that uninstalling leaves
# nothing behind. Too slow for every CI run (about a minute), so it is run by hand and reported.
#
#   scripts/wine_smoke.sh [SETUP.exe]     # default: build a stub installer first (installer/build_payload.py --stub)
#
# Needs: apt-get install wine wine64 nsis p7zip-full. No display needed. The bootstrap itself cannot run
# here: Debian 12's wine 8.0 lacks ProcessPrng (bcryptprimitives.dll) that uv.exe needs; the Windows workflow
# covers it.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/ttsturbo-wine.XXXXXX)
trap 'rm -rf "$work"' EXIT
setup=${1:-}
if [[ -z "$setup" ]]; then
  python3 installer/build_payload.py --stub --out "$work/build" >/dev/null
  setup=$(ls "$work"/build/TTS-Turbo-Setup-*.exe)
fi
payload=$(dirname "$setup")/payload

export WINEPREFIX="$work/prefix" WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
fails=0
check() {  # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
t0=$(date +%s)
wineboot -i >/dev/null 2>&1
wineserver -w
user_dir="$WINEPREFIX/drive_c/users/$(whoami)"
inst="$user_dir/AppData/Local/Programs/TTSTurbo"
start_menu="$user_dir/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/TTS Turbo"
key='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\TTSTurbo'
echo "prefix ready in $(( $(date +%s) - t0 )) s"

# 1. Silent install without the bootstrap.
t1=$(date +%s)
set +e; wine "$setup" /S /NOBOOTSTRAP; rc=$?; set -e
wineserver -w
echo "install took $(( $(date +%s) - t1 )) s"
check "installer exit code 0 (got $rc)" test "$rc" -eq 0
for f in runtime/uv.exe manifest.json LICENSE.txt uninstall.exe bootstrap/bootstrap.cmd bootstrap/tts_bootstrap.py \
         bootstrap/gpu_select.py assets/ttsturbo.ico lock/requirements-win.txt; do
  check "file $f" test -f "$inst/$f"
done
check "uv.exe byte-identical to the payload" cmp -s "$inst/runtime/uv.exe" "$payload/runtime/uv.exe"
check "wheelhouse copied" test "$(ls "$inst/wheelhouse" | wc -l)" -eq "$(ls "$payload/wheelhouse" | wc -l)"
check "app wheel copied" test "$(ls "$inst/app" | wc -l)" -eq 1
verify_installed() {  # the wheels as installed on "Windows" still match the hash-pinned locks
  python3 - "$inst" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "installer")
import wheel_lock
root = Path(sys.argv[1])
pins = wheel_lock.parse_locks(root / "lock" / "requirements-win.txt", root / "lock" / "torch-cpu-win.txt")
problems = wheel_lock.verify_wheelhouse(root / "wheelhouse", pins)
print("\n".join(problems) or f"     {len(pins)} installed wheels match the lock")
sys.exit(bool(problems))
PY
}
check "installed wheelhouse matches the lock hashes" verify_installed
for l in "TTS Turbo.lnk" "Repair or change GPU build.lnk" "Uninstall TTS Turbo.lnk"; do
  check "Start-menu shortcut $l" test -f "$start_menu/$l"
done
check "desktop shortcut" test -f "$user_dir/Desktop/TTS Turbo.lnk"
regq() { wine reg query "$1" /v "$2" 2>/dev/null | tr -d '\r' | grep -q "$3"; }
check "uninstall key DisplayName" regq "$key" DisplayName "TTS Turbo"
check "uninstall key DisplayVersion" regq "$key" DisplayVersion "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$payload/manifest.json")"
check "uninstall key QuietUninstallString" regq "$key" QuietUninstallString 'uninstall.exe" /S'
check "uninstall key EstimatedSize" regq "$key" EstimatedSize "0x"
echo "     EstimatedSize: $(( $(wine reg query "$key" /v EstimatedSize | tr -d '\r' | awk '/EstimatedSize/ {print $3}') / 1024 )) MiB"
check "HKCU\\Software\\TTSTurbo InstallDir" regq 'HKCU\Software\TTSTurbo' InstallDir 'TTSTurbo'

# 2. Silent uninstall (_?= makes it run in place so we can wait for it).
winpath=$(wine winepath -w "$inst" 2>/dev/null | tr -d '\r')
set +e; wine "$inst/uninstall.exe" /S "_?=$winpath"; rc=$?; set -e
wineserver -w
check "uninstaller exit code 0 (got $rc)" test "$rc" -eq 0
# On real Windows uninstall.exe stays behind when run with _?= (it cannot delete itself); wine deletes it.
left=$(find "$inst" -mindepth 1 ! -name uninstall.exe 2>/dev/null | head -5)
check "install dir empty after uninstall${left:+ (left: $left)}" test -z "$left"
check "Start-menu folder removed" test ! -e "$start_menu"
check "desktop shortcut removed" test ! -e "$user_dir/Desktop/TTS Turbo.lnk"
check "uninstall key removed" bash -c "! wine reg query '$key' >/dev/null 2>&1"
check "HKCU\\Software\\TTSTurbo removed" bash -c "! wine reg query 'HKCU\\Software\\TTSTurbo' >/dev/null 2>&1"

# 3. Custom folder with a user's file in it: the uninstaller must remove only what Setup created.
custom="$WINEPREFIX/drive_c/Tools/TTS"
mkdir -p "$custom" && echo keep > "$custom/notes.txt"
set +e; wine "$setup" /S /NOBOOTSTRAP "/D=C:\\Tools\\TTS"; rc=$?; set -e
wineserver -w
check "install to /D= folder (exit $rc)" test -f "$custom/runtime/uv.exe"
set +e; wine "$custom/uninstall.exe" /S "_?=C:\\Tools\\TTS"; set -e
wineserver -w
check "user's file kept after uninstall" test -f "$custom/notes.txt"
check "only the user's file is left" test "$(find "$custom" -mindepth 1 ! -name uninstall.exe | wc -l)" -eq 1

# 4. With the bootstrap: uv.exe cannot run here, so bootstrap.cmd must take its error path, write the
#    summary, and the installer must pass its exit code (7: no Python) back to the caller.
set +e; wine "$setup" /S; rc=$?; set -e
wineserver -w
check "bootstrap failure reaches the installer exit code (expect 7, got $rc)" test "$rc" -eq 7
check "bootstrap wrote state/summary.txt" grep -q "setup FAILED" "$inst/state/summary.txt"
wine "$inst/uninstall.exe" /S "_?=$winpath" >/dev/null 2>&1 || true
wineserver -w
left=$(find "$inst" -mindepth 1 ! -name uninstall.exe 2>/dev/null | head -5)
check "uninstall also removes bootstrap output (state/)${left:+ (left: $left)}" test -z "$left"

echo "wine smoke: $fails failed, total $(( $(date +%s) - t0 )) s"
exit $(( fails > 0 ))
