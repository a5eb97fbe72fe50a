"""espeak-ng phonemes through the piper-tts package's bridge (the same phonemes Piper was trained on)."""

from __future__ import annotations

import threading
from functools import lru_cache

from ..errors import InputError

_LOCK = threading.Lock()  # espeak-ng keeps global state: one caller at a time


@lru_cache(maxsize=1)
def _phonemizer():
    try:
        from piper.phonemize_espeak import EspeakPhonemizer
    except ImportError as exc:
        raise InputError("phonemization needs the 'piper-tts' package (pip install piper-tts)") from exc
    return EspeakPhonemizer()


def phonemize(text: str, voice: str) -> list[list[str]]:
    """Text → phonemes grouped by sentence (espeak decides the sentence ends)."""
    with _LOCK:
        return _phonemizer().phonemize(voice, text)
