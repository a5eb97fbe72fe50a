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
    """(phonemes, terminator, ends a sentence) per clause, as the bridge's `get_phonemes`.

    The text always ends in a space: espeak keeps a character it has read ahead in static state,
    and a text ending in ".." left its second period there, so the *next* text began with "dot"
    (in piper-tts too). With the space the phonemes of the text itself are unchanged."""
    if not text[-1:].isspace():
        text += " "
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


Clause = tuple[str, str, bool]
"""(phonemes, terminator, ends a sentence), as espeak reads one clause."""


def clauses(text: str, voice: str) -> list[Clause]:
    """espeak's clauses of `text` with `voice` set (one caller at a time)."""
    global _current_voice
    with _LOCK:
        bridge = _bridge()
        if voice != _current_voice:
            bridge.set_voice(voice)
            _current_voice = voice
        return _clauses(text)


def sentences_of(clauses: list[Clause]) -> list[list[str]]:
    """Clauses → phonemes grouped by sentence, as piper-tts joins them."""
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


def phonemize(text: str, voice: str) -> list[list[str]]:
    """Text → phonemes grouped by sentence (espeak decides the sentence ends)."""
    return sentences_of(clauses(text, voice))


_SPACE_AFTER_PUNCTUATION = re.compile(r"(?<=[,;:.!?])\s+(?=\S)")
_CLOSERS = ")]\"'’”"


def clause_cuts(text: str) -> list[int]:
    """Where espeak surely ends a clause: the positions after the spaces that follow , ; : or a
    sentence's . ! ? (then a capital letter comes next: "e.g. using" goes on), each right after a
    letter or a letter and a closing quote or bracket ("1, 2" and "(,)" are not cut). With en-us,
    phonemizing the pieces one by one gave the whole text's clauses for all 8,328 cut paragraphs
    of `scripts/clause_check.py` (benchmark texts, the standard library's docstrings, Vim's
    manual); other languages' abbreviation rules may read on after such a period, so only
    English texts are cut."""
    cuts = []
    for space in _SPACE_AFTER_PUNCTUATION.finditer(text):
        mark = space.start() - 1
        before = text[mark - 1] if mark >= 1 else ""
        if before and before in _CLOSERS:
            before = text[mark - 2] if mark >= 2 else ""
        if before.isalpha() and (text[mark] in ",;:" or text[space.end()].isupper()):
            cuts.append(space.end())
    return cuts


def clause_groups(text: str, most: int, least_chars: int) -> list[str]:
    """`text` cut at clause ends into at most `most` consecutive groups of at least about
    `least_chars` characters, the longest as short as the cuts allow (espeak's time grows with
    the characters)."""
    count = max(1, min(most, len(text) // max(least_chars, 1)))
    if count == 1:
        return [text]
    bounds = [0, *clause_cuts(text), len(text)]
    if len(bounds) == 2:
        return [text]

    def groups_within(limit: int) -> list[int] | None:
        """Greedy: the cut points of groups no longer than `limit`, or None if more than `count`."""
        ends, start = [], 0
        for previous, bound in zip(bounds[1:], bounds[2:]):
            if bound - start > limit:
                ends.append(previous)
                start = previous
        return ends if len(ends) < count else None

    low, high = max(b - a for a, b in zip(bounds, bounds[1:])), len(text)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if groups_within(middle) is not None else (middle + 1, high)
    return split_at(text, groups_within(low))


def split_at(text: str, cuts: list[int]) -> list[str]:
    """`text` cut at the given positions, each piece stripped."""
    return [text[a:b].strip() for a, b in zip([0, *cuts], [*cuts, len(text)])]


def joins_cleanly(groups: list[str], parts: list[list[Clause]]) -> bool:
    """Whether each group's clauses (but the last group's) end with the group's own punctuation,
    as the whole text's clause there did: catches a cut whose punctuation espeak read otherwise
    ("?!" as "?", a lone ":" as "colon"), not one after which espeak would have read on (that is
    `clause_cuts`' job)."""
    return all(part and part[-1][1] == group[-1] and part[-1][2] == (group[-1] in ".!?") for group, part in zip(groups[:-1], parts[:-1]))
