"""A chunk of clean text → its sentences as model ids (Piper's convention), without torch: this runs
in the espeak worker processes too (`text.workers`), which should not load torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .ids import IdTable
from .phonemize import phonemize

MAX_PHONEMES = 400
"""Longest phoneme run per segment (~30 s of speech); longer sentences are cut at word breaks,
which bounds attention memory for text without punctuation."""
SPEAKABLE_EXCLUDES = set(" .,;:!?¡¿—…-\"'()")


_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+[\"')\]]*|$)")


def sentence_texts(chunk: str, count: int) -> list[str]:
    """Best-effort sentence strings for display; espeak splits sentences but returns only phonemes."""
    parts = [p.strip() for p in _SENTENCE.findall(chunk) if p.strip()]
    return parts if len(parts) == count else [chunk] * count


@dataclass(frozen=True)
class ChunkFrontEnd:
    """A chunk of clean text → its sentences as (text, model ids): espeak's phonemes in Piper's id
    convention, sentences longer than MAX_PHONEMES cut at word breaks, unspeakable ones dropped.
    Picklable, so long texts run it in the espeak worker processes (`text.workers`); short texts
    run it here with `phonemizer=phonemize_spread`, which spreads their clauses over them."""

    voice: str
    ids: IdTable
    phonemizer: Callable[[str, str], list[list[str]]] = phonemize

    def __call__(self, chunk: str) -> list[tuple[str, list[int]]]:
        sentences = self.phonemizer(chunk, self.voice)
        out = []
        for text_part, phonemes in zip(sentence_texts(chunk, len(sentences)), sentences):
            if not any(p not in SPEAKABLE_EXCLUDES for p in phonemes):
                continue
            pieces = []
            while len(phonemes) > MAX_PHONEMES:
                cut = max((i for i, p in enumerate(phonemes[:MAX_PHONEMES]) if p == " "), default=MAX_PHONEMES)
                cut = cut if cut > MAX_PHONEMES // 2 else MAX_PHONEMES
                pieces.append(phonemes[:cut])
                phonemes = phonemes[cut:]
            pieces.append(phonemes)
            for piece in pieces:
                ids = self.ids(piece)
                if len(ids) > 3:
                    out.append((text_part if len(pieces) == 1 else "".join(piece), ids))
        return out
