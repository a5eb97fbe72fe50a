"""`OptimizedTTSWrapper`: text in, audio out, with timings — family-blind, streaming-capable."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from . import runtime
from .config import SynthesisOptions
from .errors import DeviceOutOfMemory, InputError, SynthesisCancelled
from .feed import SegmentFeed
from .finishing import finish_wave, pause_samples
from .host_copy import copy_all
from .text.chunk import CHUNK_CHARS
from .models.base import Segment, StageTimes, TTSModel
from .optimizer import AdvancedTTSOptimizer


@dataclass
class AudioChunk:
    """One synthesized sentence, post-processed, with its trailing pause already appended."""

    audio: np.ndarray
    sample_rate: int
    index: int
    count: int
    """Sentences in the request; 0 while the text front end is still running (long texts)."""
    text: str
    elapsed_s: float
    """Seconds since the call started when this chunk was ready (first one = time to first audio)."""


FRONT_END_THREAD_CHARS = CHUNK_CHARS
"""Longer texts are segmented on their own thread while synthesis starts (`SegmentFeed`); a
shorter one is one espeak call, which nothing could overlap."""


@dataclass
class Timings:
    phonemize_s: float = 0.0
    """The text front end's own time (for long texts it runs beside synthesis)."""
    model_s: float = 0.0
    """The call's time not spent waiting for the text front end."""
    total_s: float = 0.0
    audio_s: float = 0.0
    first_audio_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def rtf(self) -> float:
        """Real-time factor: seconds of compute per second of audio (lower is faster)."""
        return self.total_s / self.audio_s if self.audio_s > 0 else float("inf")

    @property
    def x_realtime(self) -> float:
        return self.audio_s / self.total_s if self.total_s > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(rtf=self.rtf, x_realtime=self.x_realtime)
        return out


@dataclass
class SynthesisResult:
    audio: np.ndarray
    sample_rate: int
    timings: Timings
    device: str
    config_summary: str
    peak_vram_bytes: int
    segments: int

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


class OptimizedTTSWrapper:
    def __init__(self, model: TTSModel, optimizer: AdvancedTTSOptimizer | None = None):
        self.model = model
        self.optimizer = optimizer or AdvancedTTSOptimizer(device=model.device)
        if self.optimizer._model is not model:
            self.optimizer.optimize_model(model)
        self.last_timings: Timings | None = None
        self._peak = 0

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def stream(self, text: str, options: SynthesisOptions | None = None, cancel: threading.Event | None = None, segments: Sequence[Segment] | None = None, **kw: Any) -> Iterator[AudioChunk]:
        """Yield sentences as soon as each is ready; `last_timings` is filled when it finishes.

        `kw` are `SynthesisOptions` fields (speaker_id=…, length_scale=…); unknown names are
        family-specific and go to `options.extra`. `segments` skips the text front end (ids
        prepared elsewhere, e.g. on a machine without espeak).
        """
        yield from self._chunks(text, _options(options, kw), cancel, segments, joined=False)

    def _chunks(self, text: str, options: SynthesisOptions, cancel: threading.Event | None, segments: Sequence[Segment] | None, joined: bool) -> Iterator[AudioChunk]:
        """`stream`'s work; `joined`: the caller joins the chunks into one array (`generate`)."""
        start = time.perf_counter()
        times = StageTimes()
        is_cancelled = (lambda: cancel.is_set()) if cancel is not None else (lambda: False)
        if segments is not None:
            feed = SegmentFeed(lambda: segments, threaded=False)
        elif len(text) > FRONT_END_THREAD_CHARS:
            feed = SegmentFeed(lambda: self.model.iter_segments(text, options), threaded=True, cancelled=is_cancelled)
        else:
            feed = SegmentFeed(lambda: self.model.segment(text, options), threaded=False)
        timings = Timings()
        if self.model.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.model.device)
        finished = self.model.finishes_audio
        try:
            waves = _oom_explained(self.model.synthesize(feed, options, times, is_cancelled, joined), self.model.device, self.optimizer)
            for index, wave in enumerate(waves):
                if is_cancelled():
                    raise SynthesisCancelled(f"cancelled after {index} of {feed.count or len(feed.items)} sentences")
                segment = feed.items[index]
                audio = wave if finished else finish_wave(wave, options, pause_samples(segment, self.sample_rate))
                elapsed = time.perf_counter() - start
                if index == 0:
                    timings.first_audio_s = elapsed
                timings.audio_s += len(audio) / self.sample_rate
                yield AudioChunk(audio, self.sample_rate, index, feed.count, segment.text, elapsed)
        finally:
            feed.close()
        if is_cancelled():
            raise SynthesisCancelled(f"cancelled after {len(feed.items)} sentences")
        timings.total_s = time.perf_counter() - start
        timings.phonemize_s = feed.busy_s
        timings.model_s = timings.total_s - feed.waited_s
        times.add("phonemize", feed.busy_s)
        timings.stages = dict(times.values)
        self.last_timings = timings
        self._peak = times.peak_bytes if times.peak_bytes is not None else runtime.memory_snapshot(self.model.device)["peak"]

    def generate(self, text: str, options: SynthesisOptions | None = None, cancel: threading.Event | None = None, on_chunk: Callable[[AudioChunk], None] | None = None, segments: Sequence[Segment] | None = None, **kw: Any) -> SynthesisResult:
        """The whole text's audio in one array; `on_chunk` sees each sentence as it is ready. The
        result may share memory with those chunks (a model that lays the call's audio out in one
        array hands out views of it): copy a chunk before changing it in place. On a GPU a lone
        sentence's audio lies in the page-locked block it was copied to: copy it where it is kept
        long (the app's run history does). Its timings cover the whole call, the join included
        (the benchmark reads them)."""
        start = time.perf_counter()
        chunks = []
        for chunk in self._chunks(text, _options(options, kw), cancel, segments, joined=True):
            chunks.append(chunk.audio)
            if on_chunk is not None:
                on_chunk(chunk)
        audio = join_audio(chunks)
        timings = self.last_timings
        elapsed = time.perf_counter() - start
        timings.model_s += elapsed - timings.total_s
        timings.total_s = elapsed
        return SynthesisResult(
            audio=audio,
            sample_rate=self.sample_rate,
            timings=self.last_timings,
            device=_device_label(self.model.device),
            config_summary=self.optimizer.config.summary(),
            peak_vram_bytes=self._peak,
            segments=len(chunks),
        )


def _oom_explained(waves: Iterator[Any], device: torch.device, optimizer: AdvancedTTSOptimizer) -> Iterator[Any]:
    """Turn a CUDA out-of-memory error into advice, after releasing what the allocator caches."""
    try:
        yield from waves
    except torch.cuda.OutOfMemoryError as exc:
        free = total = 0
        if device.type == "cuda":
            torch.cuda.empty_cache()
            free, total = torch.cuda.mem_get_info(device)
        cfg = optimizer.config
        batching = f"lower max_batch_size (now {cfg.max_batch_size}) or turn off batching, " if cfg.batch_preprocessing else ""
        raise DeviceOutOfMemory(
            f"the GPU ran out of memory ({free / 2**30:.1f} of {total / 2**30:.1f} GiB free now); "
            f"{batching}close other GPU programs, or use the CPU"
        ) from exc


def _options(options: SynthesisOptions | None, kw: dict[str, Any]) -> SynthesisOptions:
    options = options or SynthesisOptions()
    if not kw:
        return options
    names = {f.name for f in dataclasses.fields(SynthesisOptions)}
    known = {k: v for k, v in kw.items() if k in names}
    extra = {**options.extra, **{k: v for k, v in kw.items() if k not in names}}
    try:
        return dataclasses.replace(options, **known, extra=extra)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc)) from exc


def join_audio(chunks: Sequence[np.ndarray]) -> np.ndarray:
    """The sentences' audio as one array (the chunks are the caller's to give away). A chapter is
    ~50 MB, and where it is not laid out already its copy runs after the GPU has finished, so
    long outputs are copied by a few threads."""
    if len(chunks) == 1:  # already one fresh array of our own
        return chunks[0]
    laid_out = _laid_out(chunks) if chunks else None
    if laid_out is not None:
        return laid_out
    out = np.empty(sum(len(c) for c in chunks), dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in chunks])]).astype(np.int64)
    copy_all([(out[offsets[i] : offsets[i + 1]], chunk) for i, chunk in enumerate(chunks)])
    return out


def _laid_out(chunks: Sequence[np.ndarray]) -> np.ndarray | None:
    """The array the chunks already lie in end to end, if they do: the Piper runner lays a call's
    audio out in one array once every length is known (`synth.Joined`), and copies the sentences
    it handed out before that to the array's head, where they are checked here."""
    whole = chunks[-1].base
    if not isinstance(whole, np.ndarray) or whole.ndim != 1 or whole.dtype != np.float32 or not whole.flags.c_contiguous or not whole.flags.writeable:
        return None
    start, offset = whole.__array_interface__["data"][0], 0
    for chunk in chunks:
        end = offset + len(chunk)
        if chunk.dtype != whole.dtype or chunk.ndim != 1:
            return None
        if chunk.base is whole:
            if chunk.__array_interface__["data"][0] != start + offset * whole.itemsize or chunk.strides != whole.strides:
                return None
        elif end > len(whole) or not np.array_equal(chunk.view(np.uint32), whole[offset:end].view(np.uint32)):  # bit for bit: -0.0 too
            return None
        offset = end
    return whole if offset == len(whole) else None


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return "cpu"
