"""Piper synthesis over time: batching, shape buckets, noise, graphs, host syncs, copies.

Per batch: stage A (text encoder + durations) → one host read of the frame counts → stage B
(length regulation, prior, flow, HiFi-GAN) at a frame bucket → one device→host copy and a wait for
it. Each stage is a fixed-shape function of its inputs, so it can be compiled and captured per bucket.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ...buffers import BufferPool, PinnedStaging
from ...finishing import finish_rows_
from ...graphs import GraphRunner
from ...precision import exact_fp32
from ..base import StageTimes
from .model import PiperVITS

TOKEN_BUDGET = 8192
"""Most padded tokens in one batched forward: ~18k frames, whose last decoder stage holds
32 ch × 4.7 M samples (0.6 GB per fp32 tensor), so a batch fits a consumer GPU."""


WINDOW_BATCHES = 4
"""Sentences are sorted for batching within windows of this many batches."""

BATCH_COST_TOKENS = 2048
"""What one more batch costs, in padded tokens: on an H100 the encoder and duration stage takes
2.2 ms for 1 × 416 tokens and 5.5 ms for 16 × 256, i.e. ~0.9 µs per token on top of ~1.8 ms per
batch (launches, latency-bound small kernels, the host sync)."""


@dataclass(frozen=True)
class SynthParams:
    length_scale: float
    noise_scale: float
    noise_w: float
    speaker_id: int
    seed: int
    volume: float
    normalize: bool


def bucket(n: int, quantum: int = 32, ratio: float = 1.25) -> int:
    """Smallest size ≥ n on a geometric ladder (multiples of `quantum`): few distinct shapes,
    at most ~25 % padding."""
    size = quantum
    while size < n:
        size = math.ceil(size * ratio / quantum) * quantum
    return size


def batch_bucket(n: int, limit: int) -> int:
    return min(1 << (n - 1).bit_length(), max(limit, n))


class StageClock:
    """Laps between pipeline stages: CUDA events on the GPU (no sync until `read`), else wall time."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list[tuple[str, object]] = []
        self.lap("start")

    def lap(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((name, event))
        else:
            self.marks.append((name, time.perf_counter()))

    def read(self, times: StageTimes) -> None:
        for (_, a), (name, b) in zip(self.marks, self.marks[1:]):
            seconds = a.elapsed_time(b) / 1000 if self.cuda else b - a
            times.add(name, seconds)


@dataclass
class InFlight:
    """A launched batch: its finished audio lands in `host` once `done` completes."""

    indices: list[int]
    host: torch.Tensor
    frame_counts: list[int]
    tails: list[int]
    hop: int
    clock: StageClock
    done: torch.cuda.Event | None

    def finish(self, times: StageTimes) -> dict[int, np.ndarray]:
        """Wait for the copy, record the stage laps, and cut each item to its true length with its
        pause appended. All items share one fresh allocation: many small fresh arrays cost the
        host more in page faults than the copy itself (a 10-minute chapter is 53 MB)."""
        if self.done is not None:
            self.done.synchronize()
        self.clock.read(times)
        sizes = [frames * self.hop for frames in self.frame_counts]
        block = np.empty(sum(sizes) + sum(self.tails), dtype=np.float32)
        host = self.host.numpy()
        out, start = {}, 0
        for row, (index, size, tail) in enumerate(zip(self.indices, sizes, self.tails)):
            item = block[start : start + size + tail]
            np.copyto(item[:size], host[row, :size])
            item[size:] = 0.0
            out[index] = item
            start += size + tail
        return out


class PiperRunner:
    """Owns the model's run-time state for one optimization config."""

    def __init__(self, model: PiperVITS, device: torch.device):
        self.model = model
        self.device = device
        self.buckets = False
        self.batching = False
        self.max_batch = 1
        self.inference_mode = True
        self.graphs: GraphRunner | None = None
        self.pool: BufferPool | None = None
        self.staging: PinnedStaging | None = None
        self.stage_a: Callable = self._stage_a
        self.stage_b: Callable = self._stage_b
        self.fused_decoder: Callable | None = None
        self.compiled = False
        self.compile_s: dict[str, float] = {}
        self.generator = torch.Generator(device=device)
        self._clock: StageClock | None = None

    # ---- stages (fixed shapes; safe to compile and capture) ----

    def _lap(self, name: str) -> None:
        if self._clock is not None:
            self._clock.lap(name)

    def _stage_a(self, ids, lengths, dur_noise, length_scale, sid):
        m = self.model
        x, m_p, logs_p, mask = m.encode_text(ids, lengths)
        self._lap("encoder")
        durations, frames = m.durations(x, mask, dur_noise, length_scale, m.speaker(sid))
        self._lap("duration")
        return m_p, logs_p, durations, frames

    def _stage_b(self, m_p, logs_p, durations, frames, prior_noise, sid, padded: bool = True):
        m = self.model
        g = m.speaker(sid)
        z, y_mask = m.latent(m_p, logs_p, durations, frames, prior_noise, g)
        self._lap("flow")
        if self.fused_decoder is None:
            audio = m.vocode(z, y_mask, g, padded)
        else:
            audio = m.vocode_fused(self.fused_decoder, z, y_mask, frames, g)
        self._lap("decoder")
        return (audio,)

    # ---- orchestration ----

    def plan(self, lengths: Sequence[int]) -> list[list[int]]:
        """Batches of segment indices: the first sentence alone (fast first audio), then windows
        of consecutive sentences, each sorted by length and packed under the token budget. The
        windows bound how far audio is held back for in-order streaming."""
        if not self.batching or len(lengths) <= 1:
            return [[i] for i in range(len(lengths))]
        window = WINDOW_BATCHES * self.max_batch
        batches = [[0]]
        for lo in range(1, len(lengths), window):
            batches += self._pack(sorted(range(lo, min(lo + window, len(lengths))), key=lambda i: lengths[i]), lengths)
        return batches

    def _pack(self, ascending: list[int], lengths: Sequence[int]) -> list[list[int]]:
        """Cut the length-sorted sentences into consecutive batches that minimise padded tokens plus
        BATCH_COST_TOKENS per batch (dynamic programming over the cut points), within max_batch
        rows and the token budget. Greedy filling padded a chapter 1.53×, this ~1.33×."""
        n = len(ascending)
        cost = [0.0] + [math.inf] * n
        start = [0] * (n + 1)
        for end in range(1, n + 1):
            tokens = bucket(lengths[ascending[end - 1]])  # the batch's longest sentence is its last
            for first in range(max(0, end - self.max_batch), end):
                rows = batch_bucket(end - first, self.max_batch) if self.graphs is not None else end - first
                if end - first > 1 and rows * tokens > TOKEN_BUDGET:
                    continue
                total = cost[first] + rows * tokens + BATCH_COST_TOKENS
                if total < cost[end]:
                    cost[end], start[end] = total, first
        batches, end = [], n
        while end > 0:
            batches.append(ascending[start[end] : end])
            end = start[end]
        return batches[::-1]

    def run(self, token_lists: Sequence[Sequence[int]], params: SynthParams, times: StageTimes, cancelled: Callable[[], bool] = lambda: False,
            tails: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (segment index, finished float32 host audio with `tails[index]` samples of
        silence appended) in segment order.

        From the second batch on, batch i+1 is launched before batch i's audio is handed out, so
        the GPU computes while the caller post-processes; the first batch is handed out at once
        (fast first audio)."""
        ready: dict[int, np.ndarray] = {}
        tails = tails if tails is not None else [0] * len(token_lists)
        next_index = 0

        def in_order() -> Iterator[tuple[int, np.ndarray]]:
            nonlocal next_index
            while next_index in ready:
                yield next_index, ready.pop(next_index)
                next_index += 1

        grad_mode = torch.inference_mode() if self.inference_mode else torch.no_grad()
        in_flight: InFlight | None = None
        for number, batch in enumerate(self.plan([len(t) for t in token_lists])):
            if cancelled():
                return
            with grad_mode:
                launched = self._launch_batch([token_lists[i] for i in batch], batch, params, number % 2, [tails[i] for i in batch])
            if in_flight is not None:
                ready.update(in_flight.finish(times))
            in_flight = launched
            if number == 0:
                ready.update(in_flight.finish(times))
                in_flight = None
            yield from in_order()
        if in_flight is not None:
            ready.update(in_flight.finish(times))
        yield from in_order()

    def _launch_batch(self, items, indices, params: SynthParams, slot: int, tails: list[int]) -> "InFlight":
        n = len(items)
        lengths = [len(t) for t in items]
        t_max = bucket(max(lengths)) if self.buckets else max(lengths)
        b_pad = batch_bucket(n, self.max_batch) if self.graphs is not None else n
        fine_laps = self.graphs is None and not self.compiled  # laps inside stages would break capture/compile
        self._clock = StageClock(self.device) if fine_laps else None
        clock = self._clock or StageClock(self.device)

        ids, lens = self._ids(items, b_pad, t_max)
        dur_noise = self._noise(indices, [(2, n_tok) for n_tok in lengths], (b_pad, 2, t_max), params.noise_w, params.seed, 0)
        scale = self._buffer((b_pad,), torch.float32, zero=False).fill_(params.length_scale)
        sid = self._buffer((b_pad,), torch.long, zero=False).fill_(params.speaker_id)
        borrowed = [ids, lens, dur_noise, scale, sid]
        try:  # released in stream order: later work on these buffers queues behind this batch
            host, frame_counts, done = self._forward(indices, n, b_pad, t_max, borrowed, params, clock, slot)
        finally:
            self._clock = None
            self._release(*borrowed)
        return InFlight(list(indices), host, frame_counts, tails, self.model.hop_length, clock, done)

    def _forward(self, indices, n: int, b_pad: int, t_max: int, borrowed: list[torch.Tensor], params: SynthParams, clock: StageClock, slot: int):
        """Stage A → the one length read → stage B → finishing → copy started; returns the host
        audio (valid once `done` has completed), the frame counts and the completion event."""
        ids, lens, dur_noise, scale, sid = borrowed
        with exact_fp32():
            stage_a = self._staged("A", (b_pad, t_max), self.stage_a, ids, lens, dur_noise, scale, sid)
        m_p, logs_p, durations, frames = stage_a
        if self._clock is None:  # captured/compiled: encoder and durations are one lap
            clock.lap("encoder+duration")
        frame_counts = frames[:n].tolist()  # the one host sync per batch: output length is data-dependent
        f_max = bucket(max(frame_counts)) if self.buckets else max(frame_counts)
        inter = self.model.arch.inter_channels
        prior = self._noise(indices, [(inter, f) for f in frame_counts], (b_pad, inter, f_max), params.noise_scale, params.seed, 1)
        borrowed.append(prior)
        padded = self.buckets or n > 1 or self.graphs is not None
        if not padded:  # the reference path: exact length, no masks inside the decoder
            (audio,) = self._stage_b(m_p, logs_p, durations, frames, prior, sid, padded=False)
        else:
            (audio,) = self._staged("B", (b_pad, t_max, f_max), self.stage_b, m_p, logs_p, durations, frames, prior, sid)
        if self._clock is None:
            clock.lap("flow+decoder")
        finish_rows_(audio[:n], frames[:n] * self.model.hop_length, params.volume, params.normalize)
        host = self.staging.to_host(audio[:n], slot) if self.staging is not None else audio[:n].cpu()
        clock.lap("copy")
        done = None
        if self.device.type == "cuda":  # the pinned copy is asynchronous
            done = torch.cuda.Event()
            done.record()
        return host, frame_counts, done

    def _staged(self, stage: str, shape: tuple[int, ...], fn, *inputs):
        key = (stage, *shape)
        if self.graphs is not None:
            return self.graphs.run(key, fn, *inputs)
        if self.compiled and str(key) not in self.compile_s:  # first call of a shape compiles it
            start = time.perf_counter()
            out = fn(*inputs)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_s[str(key)] = time.perf_counter() - start
            return out
        return fn(*inputs)

    def _buffer(self, shape, dtype, zero: bool = True) -> torch.Tensor:
        """`zero=False` for buffers the caller overwrites whole (one launch less each)."""
        if self.pool is not None:
            return self.pool.get_buffer(shape, dtype, zero=zero)
        return (torch.zeros if zero else torch.empty)(shape, dtype=dtype, device=self.device)

    def _release(self, *tensors: torch.Tensor) -> None:
        if self.pool is not None:
            for t in tensors:
                self.pool.return_buffer(t)

    def _ids(self, items, b_pad: int, t_max: int) -> tuple[torch.Tensor, torch.Tensor]:
        host_ids = np.zeros((b_pad, t_max), dtype=np.int64)
        host_lens = np.ones(b_pad, dtype=np.int64)  # padding rows: one PAD token
        for row, tokens in enumerate(items):
            host_ids[row, : len(tokens)] = tokens
            host_lens[row] = len(tokens)
        ids = self._buffer((b_pad, t_max), torch.long, zero=False)
        lens = self._buffer((b_pad,), torch.long, zero=False)
        ids.copy_(torch.from_numpy(host_ids))  # a few KB: pinning them per call would cost more than it saves
        lens.copy_(torch.from_numpy(host_lens))
        return ids, lens

    def _noise(self, indices, shapes, padded_shape, scale: float, seed: int, stream: int) -> torch.Tensor:
        """Per-segment Gaussian noise drawn at the segment's true shape from a generator seeded by
        (seed, segment, stream): the same seed gives the same audio whatever the batching or
        bucketing, so optimized and reference runs can be compared sample by sample."""
        out = self._buffer(padded_shape, torch.float32)
        if scale == 0:
            return out
        for row, (index, shape) in enumerate(zip(indices, shapes)):
            self.generator.manual_seed((seed * 1_000_003 + index * 2 + stream) % (2**63))
            noise = torch.randn(shape, generator=self.generator, device=self.device)  # contiguous: layout-independent draws
            torch.mul(noise, scale, out=out[row, :, : shape[1]])
        return out
