"""Paths to the bundled resources (icons, stylesheet, sample texts).

In a checkout they live in the repository's resources/ folder; a wheel ships that folder inside
the package as app/_resources/ (pyproject's package-dir), which wins when present.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).resolve().parent / "_resources"
RESOURCES = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[1] / "resources"


def resource_path(*parts: str) -> Path:
    return RESOURCES.joinpath(*parts)


def sample_texts() -> dict[str, str]:
    """Title (file name after its order prefix) → text, for the editor's sample picker."""
    folder = resource_path("samples")
    return {
        p.stem.partition("_")[2].replace("_", " ").capitalize(): p.read_text(encoding="utf-8").strip()
        for p in sorted(folder.glob("*.txt"))
    }
