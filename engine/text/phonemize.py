"""espeak-ng phonemes through the piper-tts package's bridge (the same phonemes Piper was trained on).

Clause handling follows piper-tts's `phonemize_espeak`: language-switch flags such as "(en)" are
dropped, each clause keeps its punctuation (a space after , : ;), phonemes are split into NFD code
points, and espeak's end-of-sentence flag closes a sentence. The voice is set only when it changes:
`set_voice` costs ~0.1 ms, an eighth of phonemizing a sentence. This assumes nothing else in the
process sets espeak's voice (piper-tts's own phonemizer would; the engine never calls it).

Clauses are read one espeak call at a time through ctypes where the bridge exports espeak's
functions (Linux, macOS): ctypes lets go of the GIL during each call, while the bridge's
`get_phonemes` holds it for a whole text — 25 ms for a chapter, during which a synthesis thread
could not even read a finished batch. Same calls, same flags, same phonemes (tested).
"""

from __future__ import annotations

import ctypes
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

_LOCK = threading.Lock()  # espeak-ng keeps global state: one caller at a time
_FLAGS = re.compile(r"\([^)]+\)")
_current_voice: str | None = None


@lru_cache(maxsize=1)
def _bridge():
    try:
        import piper
        from piper import espeakbridge
    except ImportError as exc:
        raise InputError("phonemization needs the 'piper-tts' package (pip install piper-tts)") from exc
    espeakbridge.initialize(str(Path(piper.__file__).parent / "espeak-ng-data"))
    return espeakbridge


CHARS_AUTO, PHONEMES_IPA = 0, 0x02  # espeak-ng speak_lib.h: text encoding detected, IPA output
CLAUSE_TYPE_SENTENCE = 0x00080000
TERMINATORS = {  # espeak-ng's clause codes (pause | intonation | type) → the punctuation piper-tts keeps
    40 | 0x0000 | 0x00080000: ".",
    20 | 0x1000 | 0x00040000: ",",
    40 | 0x2000 | 0x00080000: "?",
    45 | 0x3000 | 0x00080000: "!",
    30 | 0x0000 | 0x00040000: ":",
    30 | 0x1000 | 0x00040000: ";",
}


@lru_cache(maxsize=1)
def _clause_call():
    """espeak_TextToPhonemesWithTerminator from the bridge's own library (one espeak state), or None
    where it is not exported (Windows builds): then the bridge's `get_phonemes`."""
    try:
        fn = ctypes.CDLL(_bridge().__file__).espeak_TextToPhonemesWithTerminator
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_char_p
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    return fn


def releases_gil() -> bool:
    """Whether clauses are read through ctypes here (else one GIL-holding bridge call per text)."""
    with _LOCK:
        return _clause_call() is not None


def _clauses(text: str) -> list[tuple[str, str, bool]]:
    """(phonemes, terminator, ends a sentence) per clause, as the bridge's `get_phonemes`."""
    call = _clause_call()
    if call is None:
        return _bridge().get_phonemes(text)
    if "\0" in text:
        raise ValueError("embedded null character")  # as the bridge: espeak would stop there
    buffer = ctypes.create_string_buffer(text.encode("utf-8"))
    position = ctypes.c_void_p(ctypes.addressof(buffer))  # espeak advances it, NULL at the end
    code = ctypes.c_int()
    clauses = []
    while position.value is not None:
        before, code.value = position.value, 0
        phonemes = call(ctypes.byref(position), CHARS_AUTO, PHONEMES_IPA, ctypes.byref(code))
        if position.value == before:  # no progress: never loop forever on a misbehaving espeak
            break
        kind = code.value & 0x000FFFFF
        clauses.append(((phonemes or b"").decode("utf-8"), TERMINATORS.get(kind, ""), kind & CLAUSE_TYPE_SENTENCE == CLAUSE_TYPE_SENTENCE))
    return clauses


def phonemize(text: str, voice: str) -> list[list[str]]:
    """Text → phonemes grouped by sentence (espeak decides the sentence ends)."""
    global _current_voice
    with _LOCK:
        bridge = _bridge()
        if voice != _current_voice:
            bridge.set_voice(voice)
            _current_voice = voice
        clauses = _clauses(text)
    sentences: list[list[str]] = []
    current: list[str] = []
    for phonemes, terminator, end_of_sentence in clauses:
        clause = _FLAGS.sub("", phonemes) + terminator + (" " if terminator in (",", ":", ";") else "")
        current.extend(unicodedata.normalize("NFD", clause))
        if end_of_sentence:
            sentences.append(current)
            current = []
    if current:  # text without a final terminator
        sentences.append(current)
    return sentences
