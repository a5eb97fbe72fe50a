"""Text front end: normalisation, chunking, phonemes and ids. Language-aware; models never see text."""

from .normalize import normalize_text, MAX_TEXT_CHARS
from .chunk import split_chunks
from .ids import phonemes_to_ids

__all__ = ["normalize_text", "split_chunks", "phonemes_to_ids", "MAX_TEXT_CHARS"]
