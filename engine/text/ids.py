"""Phonemes → model ids with Piper's convention: BOS, PAD, then each phoneme followed by PAD, EOS."""

from __future__ import annotations

import logging
from typing import Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

BOS, EOS, PAD = "^", "$", "_"


def phonemes_to_ids(
    phonemes: Iterable[str],
    id_map: Mapping[str, Sequence[int]],
    num_symbols: int | None = None,
    dropped: set[str] | None = None,
) -> list[int]:
    """Unknown phonemes (or ids past `num_symbols`, which would crash the embedding) are dropped
    with one warning per symbol, never an exception."""
    pad = list(id_map[PAD])
    ids = list(id_map[BOS]) + pad
    seen = dropped if dropped is not None else set()
    for phoneme in phonemes:
        mapped = id_map.get(phoneme)
        if mapped is None or (num_symbols is not None and any(i >= num_symbols for i in mapped)):
            if phoneme not in seen:
                seen.add(phoneme)
                log.warning("dropping phoneme %r (U+%s): not in this voice's phoneme map", phoneme, "+".join(f"{ord(c):04X}" for c in phoneme))
            continue
        ids.extend(mapped)
        ids.extend(pad)
    ids.extend(id_map[EOS])
    return ids
