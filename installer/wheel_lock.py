"""Hash-pinned lock files and the Windows wheelhouse: parse, check tags, verify hashes.

Used by build_payload.py (to refuse a bad payload before makensis runs) and by the tests. Stdlib only.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

TARGET_PY = (3, 12)                            # the Windows venv's Python


@dataclass(frozen=True)
class Pin:
    name: str                                  # normalised (PEP 503): "pyside6-essentials"
    version: str
    hashes: frozenset[str]                     # sha256 hex digests of every file PyPI serves for the pin


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, Pin]:
    """Parse `uv pip compile --generate-hashes` output: 'name==ver \\' lines followed by '--hash=sha256:' lines."""
    pins: dict[str, Pin] = {}
    joined = re.sub(r"\\\s*\n", " ", text)     # undo line continuations
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if not m:
            raise ValueError(f"unpinned or unsupported lock line: {line!r}")
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
        if not hashes:
            raise ValueError(f"no sha256 hash for {m.group(1)}")
        pins[normalize(m.group(1))] = Pin(normalize(m.group(1)), m.group(2), hashes)
    return pins


def parse_locks(*paths: Path) -> dict[str, Pin]:
    """Merge locks; a package pinned twice must have the same version in both (they share constraints)."""
    merged: dict[str, Pin] = {}
    for p in paths:
        for name, pin in parse_lock(Path(p).read_text(encoding="utf-8")).items():
            if name in merged and merged[name].version != pin.version:
                raise ValueError(f"{name} pinned to {merged[name].version} and {pin.version}")
            merged[name] = pin
    return merged


@dataclass(frozen=True)
class WheelName:
    name: str
    version: str
    python: str                                # "cp312", "py3", "py2.py3", "cp310"
    abi: str                                   # "cp312", "abi3", "none"
    platform: str                              # "win_amd64", "any"

    @classmethod
    def parse(cls, filename: str) -> WheelName:
        if not filename.endswith(".whl"):
            raise ValueError(f"not a wheel: {filename}")
        parts = filename[:-4].split("-")
        if len(parts) not in (5, 6):           # a 6th part is the optional build tag
            raise ValueError(f"bad wheel name: {filename}")
        return cls(normalize(parts[0]), parts[1], parts[-3], parts[-2], parts[-1])


def installs_on_windows(w: WheelName, py: tuple[int, int] = TARGET_PY) -> bool:
    """True if pip/uv would install this wheel on 64-bit Windows CPython `py` (pure or win_amd64 only)."""
    if not all(p in ("win_amd64", "any") for p in w.platform.split(".")):
        return False
    for tag in w.python.split("."):
        if tag in ("py3", f"py{py[0]}{py[1]}") and w.abi == "none":
            return True
        m = re.fullmatch(r"cp(\d)(\d+)", tag)
        if not m:
            continue
        tag_py = (int(m.group(1)), int(m.group(2)))
        if (w.abi == "abi3" and tag_py <= py) or (w.abi in (f"cp{py[0]}{py[1]}", "none") and tag_py == py):
            return True
    return False


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_wheelhouse(wheelhouse: Path, pins: dict[str, Pin]) -> list[str]:
    return verify_wheels(sorted(Path(wheelhouse).glob("*.whl")), pins)


def verify_wheels(wheels: list[Path], pins: dict[str, Pin]) -> list[str]:
    """Every wheel installs on Windows and matches a locked hash; every pin has exactly one wheel.

    Returns the problems found (empty list = good), so callers can print all of them at once.
    """
    problems = []
    seen: dict[str, str] = {}
    for whl in wheels:
        try:
            w = WheelName.parse(whl.name)
        except ValueError as e:
            problems.append(str(e))
            continue
        if not installs_on_windows(w):
            problems.append(f"{whl.name}: not a win_amd64/pure wheel for CPython {TARGET_PY[0]}.{TARGET_PY[1]}")
        pin = pins.get(w.name)
        if pin is None:
            problems.append(f"{whl.name}: not in the lock")
            continue
        if w.version != pin.version:
            problems.append(f"{whl.name}: lock pins {pin.version}")
        if sha256_file(whl) not in pin.hashes:
            problems.append(f"{whl.name}: sha256 does not match the lock")
        if w.name in seen:
            problems.append(f"{whl.name}: second wheel for {w.name} (first: {seen[w.name]})")
        seen[w.name] = whl.name
    problems += [f"{name}=={pin.version}: no wheel in the wheelhouse" for name, pin in sorted(pins.items())
                 if name not in seen]
    return problems
