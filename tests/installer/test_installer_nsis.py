"""Compile the real NSIS script around a stub payload with `makensis -WX` and inspect it with 7z."""
import re
import shutil
import struct
import subprocess

import pytest

import build_payload

NSI = build_payload.NSI.read_text(encoding="utf-8")
needs_makensis = pytest.mark.skipif(shutil.which("makensis") is None,
                                    reason="makensis not installed (apt-get install nsis)")
needs_7z = pytest.mark.skipif(shutil.which("7z") is None, reason="7z not installed (apt-get install p7zip-full)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if shutil.which("makensis") is None:
        pytest.skip("makensis not installed (apt-get install nsis)")
    out = tmp_path_factory.mktemp("installer")
    stage, exe = build_payload.build(out, stub=True)
    return stage, exe


def seven_zip(*args):
    return subprocess.run(["7z", *args], capture_output=True, text=True, check=True).stdout


@needs_makensis
def test_compiles_warning_free_to_a_64bit_pe(built):
    _, exe = built
    assert exe.name == f"TTS-Turbo-Setup-{build_payload.read_version()}.exe"
    data = exe.read_bytes()
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[:2] == b"MZ" and data[pe:pe + 4] == b"PE\0\0"
    assert struct.unpack_from("<H", data, pe + 4)[0] == 0x8664          # IMAGE_FILE_MACHINE_AMD64


@needs_makensis
def test_a_warning_fails_the_build(tmp_path, built):
    """-WX is what keeps the script clean: the same script plus one unused variable must not compile."""
    stage, _ = built
    nsi = tmp_path / "warn.nsi"
    nsi.write_text(NSI.replace("Var SkipBootstrap", "Var SkipBootstrap\nVar Unused"), encoding="utf-8")
    p = subprocess.run(["makensis", "-WX", "-V2", "-DVERSION=0.1.0", "-DVERSION_QUAD=0.1.0.0", f"-DPAYLOAD={stage}",
                        f"-DOUTFILE={tmp_path / 'x.exe'}", str(nsi)], capture_output=True, text=True, check=False)
    assert p.returncode != 0 and "Unused" in p.stdout + p.stderr


@needs_makensis
@needs_7z
def test_listing_is_exactly_the_payload_plus_uninstaller(built):
    stage, exe = built
    listing = seven_zip("l", "-slt", str(exe))
    assert "Type = Nsis" in listing and "64-bit = +" in listing and "Unicode" in listing
    paths = {p for p in re.findall(r"^Path = (.+)$", listing, re.MULTILINE)[1:] if not p.startswith("$PLUGINSDIR")}
    staged = {str(f.relative_to(stage)).replace("\\", "/") for f in stage.rglob("*") if f.is_file()}
    assert paths == staged | {"uninstall.exe"}
    assert {"runtime/uv.exe", "manifest.json", "LICENSE.txt", "bootstrap/bootstrap.cmd", "bootstrap/gpu_select.py",
            "bootstrap/tts_bootstrap.py", "lock/requirements-win.txt", "assets/ttsturbo.ico"} <= paths
    assert any(p.startswith("app/tts_turbo-") and p.endswith("-py3-none-any.whl") for p in paths)
    assert any(p.startswith("wheelhouse/") for p in paths)
    seven_zip("t", str(exe))                                             # CRC of every entry


@needs_makensis
def test_bootstrap_cmd_is_crlf(built):
    stage, _ = built
    raw = (stage / "bootstrap" / "bootstrap.cmd").read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n") > 10


def test_uninstaller_removes_every_top_level_entry():
    """Everything the payload or the bootstrap puts in $INSTDIR has a matching RMDir /r or Delete."""
    section = NSI[NSI.index('Section "Uninstall"'):]
    removed = set(re.findall(r'_RemoveDir "([^"]+)"', section))
    removed |= set(re.findall(r'Delete "\$INSTDIR\\([^"\\]+)"', section))
    assert set(build_payload.TOP_LEVEL) | {"env", "logs", "state", "python-managed", "uninstall.exe"} <= removed
    assert "RMDir /r \"$INSTDIR\"" not in section                        # never wipe a user-chosen folder


def test_uninstall_key_is_per_user():
    assert re.search(r"^RequestExecutionLevel user$", NSI, re.MULTILINE)
    assert "HKLM" not in NSI
    for value in ("DisplayName", "DisplayVersion", "UninstallString", "QuietUninstallString", "InstallLocation"):
        assert f'"${{UNINSTKEY}}" "{value}"' in NSI
