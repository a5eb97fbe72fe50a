"""Split long text into pieces that espeak and the model handle in bounded memory."""

from __future__ import annotations

import re
from typing import Iterator

CHUNK_CHARS = 2000
_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？])\s+|\n+")


def split_chunks(text: str, max_chars: int = CHUNK_CHARS) -> Iterator[str]:
    """Yield pieces of at most `max_chars`, cut at sentence ends, else at spaces, else hard.

    Sentence boundaries inside a piece are still found by the phonemizer; this only bounds the
    size of each phonemizer call so 100k-character input streams through in constant memory.
    """
    buf = ""
    for part in _pieces(text):
        if len(buf) + len(part) + 1 <= max_chars:
            buf = f"{buf} {part}" if buf else part
            continue
        if buf:
            yield buf
        while len(part) > max_chars:
            cut = part.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            yield part[:cut].strip()
            part = part[cut:].strip()
        buf = part
    if buf:
        yield buf


def _pieces(text: str) -> Iterator[str]:
    start = 0
    for match in _SENTENCE_END.finditer(text):
        piece = text[start : match.start()].strip()
        if piece:
            yield piece
        start = match.end()
    tail = text[start:].strip()
    if tail:
        yield tail
