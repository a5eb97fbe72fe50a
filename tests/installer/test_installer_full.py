"""The real payload: download every locked Windows wheel from PyPI, stage, verify, compile, list.

Runs only with TTS_TURBO_INSTALLER_FULL=1 (network to PyPI, ~360 MB, about 5 minutes on 2 cores), and needs
a tts-turbo wheel: set TTS_TURBO_WHEEL=path, or have pyproject.toml in the repo so `uv build` can make one.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import build_payload
import wheel_lock

pytestmark = pytest.mark.installer_full


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    for tool in ("makensis", "7z", "uv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    wheel = os.environ.get("TTS_TURBO_WHEEL")
    out = tmp_path_factory.mktemp("full")
    return build_payload.build(out, app_wheel=Path(wheel) if wheel else None)


def test_wheelhouse_matches_the_locks(full):
    stage, _ = full
    pins = wheel_lock.parse_locks(*(stage / "lock" / n for n in build_payload.WHEELHOUSE_LOCKS))
    assert wheel_lock.verify_wheelhouse(stage / "wheelhouse", pins) == []
    names = {wheel_lock.WheelName.parse(w.name).name for w in (stage / "wheelhouse").glob("*.whl")}
    assert {"torch", "piper-tts", "pyside6-essentials", "shiboken6", "numpy", "sounddevice", "soundfile"} <= names


def test_uv_exe_is_the_locked_windows_binary(full):
    stage, _ = full
    data = (stage / "runtime" / "uv.exe").read_bytes()
    assert data[:2] == b"MZ" and len(data) > 10_000_000
    manifest = json.loads((stage / "manifest.json").read_text())
    assert manifest["uv"]["sha256"] == wheel_lock.sha256_file(stage / "runtime" / "uv.exe")


def test_installer_lists_the_payload_and_fits_nsis(full):
    stage, exe = full
    assert exe.stat().st_size < 2**31                                  # NSIS cannot exceed 2 GiB
    listing = subprocess.run(["7z", "l", "-slt", str(exe)], capture_output=True, text=True, check=True).stdout
    paths = {p for p in re.findall(r"^Path = (.+)$", listing, re.MULTILINE)[1:] if not p.startswith("$PLUGINSDIR")}
    manifest = json.loads((stage / "manifest.json").read_text())
    assert {f"wheelhouse/{w['file']}" for w in manifest["wheels"]} <= paths
    assert f"app/{manifest['app_wheel']['file']}" in paths
