"""Text front end: normalisation, chunking, phonemes and ids. Language-aware; models never see text."""

from .normalize import MAX_TEXT_CHARS, has_speakable_text, has_visible_text, normalize_text
from .chunk import split_chunks
from .ids import IdTable

__all__ = ["normalize_text", "has_speakable_text", "has_visible_text", "split_chunks", "IdTable", "MAX_TEXT_CHARS"]
