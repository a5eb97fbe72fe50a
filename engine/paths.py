"""Where the engine keeps its caches (converted weights, voice embeddings, compiled kernels)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$TTS_TURBO_CACHE, else $XDG_CACHE_HOME/tts-turbo, else ~/.cache/tts-turbo."""
    explicit = os.environ.get("TTS_TURBO_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "tts-turbo"
