"""Phonemes → model ids with Piper's convention: BOS, PAD, then each phoneme followed by PAD, EOS."""

from __future__ import annotations

import logging
from typing import Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"


class IdTable:
    """A voice's phoneme map, prepared once: each usable phoneme's ids with the PAD after it (a
    sentence is a few hundred lookups; checking every id against `num_symbols` each time cost a
    third of the front end)."""

    def __init__(self, id_map: Mapping[str, Sequence[int]], num_symbols: int | None = None):
        pad = tuple(id_map[PAD])
        self.head = tuple(id_map[BOS]) + pad
        self.tail = tuple(id_map[EOS])
        self.ids = {p: tuple(ids) + pad for p, ids in id_map.items() if num_symbols is None or all(i < num_symbols for i in ids)}
        self.dropped: set[str] = set()

    def __call__(self, phonemes: Iterable[str]) -> list[int]:
        """Unknown phonemes (or ids past `num_symbols`, which would crash the embedding) are
        dropped with one warning per symbol and table, never an exception."""
        out = list(self.head)
        seen = self.dropped
        for phoneme in phonemes:
            mapped = self.ids.get(phoneme)
            if mapped is None:
                if phoneme not in seen:
                    seen.add(phoneme)
                    log.warning("dropping phoneme %r (U+%s): not in this voice's phoneme map", phoneme, "+".join(f"{ord(c):04X}" for c in phoneme))
                continue
            out.extend(mapped)
        out.extend(self.tail)
        return out

