"""Unicode and whitespace normalisation before phonemization."""

from __future__ import annotations

import re
import unicodedata

from ..errors import InputError

MAX_TEXT_CHARS = 5_000_000
"""Hard ceiling on one request (about 3 days of speech); longer input is refused, not truncated."""

_OTHER_SPACES = frozenset("\t\f\v\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))))
_SPACES = re.compile(f"[ {''.join(sorted(_OTHER_SPACES))}]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _CleanTable(dict):
    """`_clean_char` as a `str.translate` table, each character classified once on first sight:
    one C-speed pass instead of a Python call per character (a sentence is ~10× faster, and a
    chapter with a single non-ASCII dash no longer falls back to the slow path)."""

    def __missing__(self, code: int) -> int | str:
        cleaned = _clean_char(chr(code))
        self[code] = code if cleaned == chr(code) else cleaned
        return self[code]


_CLEAN = _CleanTable()


def normalize_text(text: str) -> str:
    """NFC, control and format characters removed, whitespace collapsed (paragraph breaks kept)."""
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text is {len(text):,} characters; the limit for one request is {MAX_TEXT_CHARS:,}")
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    # A long text is normalised before its first sentence can be phonemized, so each pass runs
    # only if it has work: most texts have nothing to clean and single spaces between words
    # (a chapter: 0.73 → 0.19 ms on the CI machine).
    chars = set(text)
    if any(_CLEAN[ord(ch)] != ord(ch) for ch in chars):
        text = text.translate(_CLEAN)
        chars = set(text)
    text = _BLANK_LINES.sub("\n\n", text)
    if "  " in text or not chars.isdisjoint(_OTHER_SPACES):
        text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _clean_char(ch: str) -> str:
    if ch in "\n\t":
        return ch
    category = unicodedata.category(ch)
    if category == "Cc":
        return " "
    if category in ("Cf", "Cs", "Co", "Cn", "So", "Sk"):  # format chars, emoji and pictographs
        return " " if category == "So" else ""
    return ch


def has_visible_text(text: str) -> bool:
    """Anything but whitespace and control/format characters."""
    return any(not ch.isspace() and unicodedata.category(ch)[0] != "C" for ch in text)


def has_speakable_text(text: str) -> bool:
    """At least one letter or digit: punctuation, symbols and emoji alone are not speech."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
