"""English text front end of Chatterbox: punctuation normalisation, sentence chunks and token ids.

`tokenizer.json` is a Hugging Face `tokenizers` file (grapheme/BPE vocabulary); spaces are spelled
`[SPACE]` before encoding, and ids are wrapped in `[START]` … `[STOP]` (255 … 0 in the official vocab).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import InputError, VoiceLoadError

SOT, EOT, SPACE, UNK = "[START]", "[STOP]", "[SPACE]", "[UNK]"
MAX_CHUNK_CHARS = 300  # ≈ 25 s of speech: stays inside the 1000-token (40 s) limit of one call

_REPLACEMENTS = (
    ("...", ", "), ("…", ", "), (":", ","), (" - ", ", "), (";", ", "), ("—", "-"), ("–", "-"),
    (" ,", ","), ("“", '"'), ("”", '"'), ("‘", "'"), ("’", "'"),
)
_TURBO_KEEPS = ("...", " - ", ";")  # Turbo was trained with these left in place
_ENDERS = (".", "!", "?", "-", ",")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")


def punc_norm(text: str, turbo: bool = False) -> str:
    """The reference's cleanup: capitalise, collapse spaces, map rare punctuation, end with punctuation."""
    if not text:
        return "You need to add some text for me to talk."
    if text[0].islower():
        text = text[0].upper() + text[1:]
    text = " ".join(text.split())
    for old, new in _REPLACEMENTS:
        if not (turbo and old in _TURBO_KEEPS):
            text = text.replace(old, new)
    text = text.rstrip(" ")
    return text if text.endswith(_ENDERS) else text + "."


def split_sentences(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Sentence-aligned chunks of at most `max_chars` (a longer sentence is cut at commas, then words)."""
    chunks: list[str] = []
    current = ""
    for sentence in (s.strip() for s in _SENTENCE.split(" ".join(text.split()))):
        for piece in _cut(sentence, max_chars):
            if current and len(current) + 1 + len(piece) > max_chars:
                chunks.append(current)
                current = piece
            else:
                current = f"{current} {piece}".strip()
    if current:
        chunks.append(current)
    return chunks


def _cut(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence] if sentence else []
    parts, current = [], ""
    for word in re.split(r"(?<=,)\s+|\s+", sentence):
        if current and len(current) + 1 + len(word) > max_chars:
            parts.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return parts + ([current] if current else [])


class EnTokenizer:
    def __init__(self, path: str | Path):
        from tokenizers import Tokenizer

        try:
            self.tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises its own exception types
            raise VoiceLoadError(f"{path}: not a readable tokenizer.json ({exc})") from exc
        vocab = self.tok.get_vocab()
        for special in (SOT, EOT):
            if special not in vocab:
                raise VoiceLoadError(f"{path}: tokenizer vocabulary lacks {special}")
        self.sot, self.eot = vocab[SOT], vocab[EOT]

    def encode(self, text: str) -> list[int]:
        """Text (already normalised) → ids with SOT first and EOT last."""
        if not text.strip():
            raise InputError("empty text")
        ids = self.tok.encode(text.replace(" ", SPACE)).ids
        return [self.sot, *ids, self.eot]


class GPT2Tokenizer:
    """Turbo's GPT-2 byte-level BPE (`vocab.json`, `merges.txt`) plus `added_tokens.json` tags such as [laugh]."""

    def __init__(self, folder: str | Path):
        import json

        from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
        from tokenizers.models import BPE

        folder = Path(folder)
        try:
            self.tok = Tokenizer(BPE.from_file(str(folder / "vocab.json"), str(folder / "merges.txt")))
        except Exception as exc:
            raise VoiceLoadError(f"{folder}: unreadable GPT-2 vocab.json / merges.txt ({exc})") from exc
        self.tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        self.tok.decoder = decoders.ByteLevel()
        added = folder / "added_tokens.json"
        if added.is_file():
            table = json.loads(added.read_text(encoding="utf-8"))
            for text, idx in sorted(table.items(), key=lambda kv: kv[1]):
                self.tok.add_tokens([AddedToken(text, normalized=False)])
                if self.tok.token_to_id(text) != idx:
                    raise VoiceLoadError(f"{added}: token {text!r} should have id {idx}, got {self.tok.token_to_id(text)}")

    def encode(self, text: str) -> list[int]:
        if not text.strip():
            raise InputError("empty text")
        return self.tok.encode(text).ids
