"""Writing audio files (WAV, FLAC, OGG/Vorbis, MP3 where libsndfile has it) atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import InputError

FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def available_formats() -> list[str]:
    """Extensions this machine's libsndfile can write."""
    import soundfile as sf

    have = sf.available_formats()
    return [ext for ext, (fmt, _) in FORMATS.items() if fmt in have]


def check_target(path: Path) -> tuple[str, str]:
    """Format and subtype for `path`, or an InputError saying why it cannot be written."""
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"unsupported output format {ext or '(none)'!r}: use one of {', '.join(FORMATS)}")
    if ext not in available_formats():
        raise InputError(f"this libsndfile cannot write {ext}; available: {', '.join(available_formats())}")
    if not path.parent.exists():
        raise InputError(f"output directory does not exist: {path.parent}")
    if path.is_dir():
        raise InputError(f"output path is a directory: {path}")
    return FORMATS[ext]


class AudioWriter:
    """Streams chunks into a temporary file and renames it on success, so a failed or cancelled
    run never leaves a partial file behind."""

    def __init__(self, path: str | os.PathLike, sample_rate: int):
        import soundfile as sf

        self.path = Path(path)
        fmt, subtype = check_target(self.path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial")
        self.file = sf.SoundFile(str(self.tmp), "w", samplerate=sample_rate, channels=1, format=fmt, subtype=subtype)
        self.frames = 0

    def write(self, audio: np.ndarray) -> None:
        self.file.write(np.asarray(audio, dtype=np.float32))
        self.frames += len(audio)

    def __enter__(self) -> "AudioWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def write_audio(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    with AudioWriter(path, sample_rate) as writer:
        writer.write(audio)
    return writer.path


def write_chunks(path: str | os.PathLike, chunks: Iterable[np.ndarray], sample_rate: int) -> int:
    with AudioWriter(path, sample_rate) as writer:
        for chunk in chunks:
            writer.write(chunk)
    return writer.frames
