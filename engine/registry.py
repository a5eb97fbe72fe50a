"""Model registry: a spec (voice path, bundled name or family name) → a loaded `TTSModel`.

Families register a `matches(spec)` predicate and a `load(spec, device)` function, so a new family
plugs in here without touching the wrapper, the CLI or the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .errors import InputError
from .models.base import TTSModel


@dataclass(frozen=True)
class Family:
    name: str
    matches: Callable[[str], bool]
    load: Callable[[str, torch.device], TTSModel]
    description: str


_FAMILIES: list[Family] = []

DEFAULT_VOICE = "en_US-joe-medium"


def register(family: Family) -> None:
    _FAMILIES[:] = [f for f in _FAMILIES if f.name != family.name] + [family]


def families() -> list[Family]:
    _ensure_builtin()
    return list(_FAMILIES)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' → CUDA when usable, else CPU. Asking for CUDA without it is a clear error."""
    name = str(device or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                "CUDA was requested but this torch build cannot use a GPU "
                f"(torch {torch.__version__}, CUDA {torch.version.cuda}); run 'tts-turbo doctor'"
            )
        try:
            dev = torch.device(name)
        except RuntimeError as exc:
            raise InputError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise InputError(f"there is no GPU cuda:{index}; this machine has {torch.cuda.device_count()} (cuda:0…)")
        return torch.device("cuda", index)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")


def load_model(spec: str | Path | None = None, device: str | torch.device | None = "auto") -> TTSModel:
    """Load a voice: None/'default' → the bundled joe voice, a .onnx path → Piper, 'chatterbox' → Chatterbox."""
    _ensure_builtin()
    text = str(spec) if spec is not None else "default"
    dev = resolve_device(device)
    for family in _FAMILIES:
        if family.matches(text):
            return family.load(text, dev)
    raise InputError(
        f"no model family recognises {text!r}: give a Piper .onnx voice, 'default', or 'chatterbox'"
    )


def _ensure_builtin() -> None:
    if _FAMILIES:
        return
    from .models.piper import FAMILY as piper_family

    register(piper_family)
    try:
        from .models.chatterbox import FAMILY as chatterbox_family
    except ImportError:
        return
    register(chatterbox_family)
