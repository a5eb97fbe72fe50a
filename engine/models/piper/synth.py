"""Piper synthesis over time: batching, shape buckets, graphs, host syncs, copies.

Per batch: one upload of what the batch needs (ids; lengths, noise keys, settings) → stage A
(text encoder + durations) → one host read of the frame counts → stage B (length regulation,
prior, flow, HiFi-GAN, finishing) at a frame bucket → one device→host copy and a wait for it. Each
stage is a fixed-shape function of device tensors (noise is drawn inside from counter-based keys),
so it can be compiled and captured per bucket, and stage B reads stage A's tensors in place. With
CUDA graphs, stage A of the next batch runs on its own stream beside stage B of the last (`Lanes`).
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch._dynamo.exc import BackendCompilerFailed

from ...buffers import BufferPool, PinnedStaging
from ...errors import brief
from ...finishing import finish_rows_
from ...graphs import GraphRunner
from ...host_copy import copy_all
from ...noise import check_length, gaussian_fn, segment_key
from ...precision import exact_fp32
from ...runtime import memory_snapshot
from ..base import StageTimes
from .model import PiperVITS, exact_products_armed, use_exact_products

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


FIELDS = ("length", "speaker", "duration_key", "prior_key", "length_scale", "noise_w", "noise_scale", "volume", "normalize")
"""Per-row settings, uploaded beside a batch's ids (see `pack_inputs`)."""
LENGTH, SPEAKER, DURATION_KEY, PRIOR_KEY, LENGTH_SCALE, NOISE_W, NOISE_SCALE, VOLUME, NORMALIZE = range(len(FIELDS))


def pack_inputs(items: Sequence[Sequence[int]], indices: Sequence[int], params: SynthParams, ids: np.ndarray, fields: np.ndarray) -> None:
    """A batch's whole input written into two host arrays: `ids` (rows, T) int64, padded with 0
    (padding rows hold one PAD token), and `fields` (rows, len(FIELDS)) float64, every integer
    there below 2**53 and so exact."""
    ids[:] = 0
    fields[:] = 0.0
    fields[:, LENGTH] = 1
    fields[:, SPEAKER] = params.speaker_id
    fields[:, LENGTH_SCALE] = params.length_scale
    fields[:, NOISE_W] = params.noise_w
    fields[:, NOISE_SCALE] = params.noise_scale
    fields[:, VOLUME] = params.volume
    fields[:, NORMALIZE] = params.normalize
    for row, (index, tokens) in enumerate(zip(indices, items)):
        ids[row, : len(tokens)] = tokens
        fields[row, LENGTH] = len(tokens)
        fields[row, DURATION_KEY] = segment_key(params.seed, index, 0)
        fields[row, PRIOR_KEY] = segment_key(params.seed, index, 1)


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
    """Laps between pipeline stages: CUDA events on the GPU (no sync until `read`), else wall time.
    One clock serves batch after batch (`restart`) and keeps its events: constructing and
    recording fresh ones cost ~20 µs of host time per lap, the first of them while the GPU waits."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.events: list[torch.cuda.Event] = []
        self.names: list[str] = []
        self.stamps: list[float] = []
        self.stream: torch.cuda.Stream | None = None

    def restart(self) -> "StageClock":
        self.names.clear()
        self.stamps.clear()
        self.stream = torch.cuda.current_stream(self.device) if self.cuda else None
        self.lap("start")
        return self

    def lap(self, name: str | None, stream: torch.cuda.Stream | None = None) -> None:
        """Marks `stream` (default: the one current at `restart`; stages may run on others). A
        lap named None only starts the next one: the time before it (other batches' work, the
        caller's) belongs to no stage."""
        if self.cuda:
            if len(self.names) == len(self.events):
                self.events.append(torch.cuda.Event(enable_timing=True))
            self.events[len(self.names)].record(stream or self.stream)
        else:
            self.stamps.append(time.perf_counter())
        self.names.append(name)

    def read(self, times: StageTimes) -> None:
        for i, name in enumerate(self.names[1:]):
            if name is None:
                continue
            seconds = self.events[i].elapsed_time(self.events[i + 1]) / 1000 if self.cuda else self.stamps[i + 1] - self.stamps[i]
            times.add(name, seconds)


class Lanes:
    """Two CUDA streams, so that stage A of one batch runs while stage B of the batch before it
    still does: stage A is a chain of small latency-bound kernels that leaves most of the GPU idle,
    stage B's convolutions fill it, and the host's one length read waits for stage A alone.

    Needs the fixed tensors of captured graphs, one set per slot: stage A of a batch overwrites the
    tensors of the batch two before (same slot), so it first waits until that batch's stage B has
    taken them (`released`): copied into its own graph's inputs, ahead of its replay. Waiting for
    the whole stage B instead left each lane idle ~40 % of a chapter (run AF's timeline: stage A
    of batch i+1 waited for stage B of batch i-1, stage B of batch i+1 for that stage A). Stage A
    gets the higher priority: its short kernels go first whenever the convolutions free a
    multiprocessor."""

    def __init__(self, device: torch.device):
        self.a = torch.cuda.Stream(device, priority=-1)
        self.b = torch.cuda.Stream(device)
        self.released = [torch.cuda.Event(), torch.cuda.Event()]
        self.busy = False

    def join(self, stream: torch.cuda.Stream) -> None:
        """Both lanes wait for `stream`'s work so far."""
        self.a.wait_stream(stream)
        self.b.wait_stream(stream)
        self.busy = True

    def settle(self, stream: torch.cuda.Stream) -> None:
        """`stream` waits for both lanes' work so far."""
        stream.wait_stream(self.a)
        stream.wait_stream(self.b)
        self.busy = False

    def stage(self, name: str, slot: int, captured: bool, after: torch.cuda.Event | None = None) -> torch.cuda.StreamContext:
        """The stream stage `name` of the slot's batch runs on: stage A of a batch whose graph
        exists beside the other lane; anything else on lane B, behind `after` (its own stage A:
        lane A may already hold the next batch's) or else behind all of lane A's work."""
        if name == "A" and captured:
            self.a.wait_event(self.released[slot])
            return torch.cuda.stream(self.a)
        if after is not None:
            self.b.wait_event(after)
        else:
            self.b.wait_stream(self.a)
        return torch.cuda.stream(self.b)

    def release(self, slot: int) -> None:
        """Where the slot's stage B has taken its stage-A tensors (on lane B): free from there."""
        self.released[slot].record(self.b)


@dataclass
class Started:
    """A batch whose stage A is launched: its frame counts can be read once `counted` has
    completed (they are copied to `host_frames`), without waiting for later work."""

    rows: int
    indices: list[int]
    tails: list[int]
    slot: int
    shape: tuple[int, ...]
    captured: bool
    inputs: tuple[torch.Tensor, torch.Tensor]
    outputs: tuple[torch.Tensor, ...]
    host_frames: torch.Tensor | None
    counted: torch.cuda.Event | None
    clock: StageClock


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
    handed_out: bool = False
    """`host` (1, samples + pause) is the batch's one item in the pinned array it is handed out in
    (see `PiperRunner._audio_to_host`)."""

    def finish(self, times: StageTimes, layout: "Joined | None" = None) -> dict[int, np.ndarray]:
        """Wait for the copy, record the stage laps, and cut each item to its true length with its
        pause appended: into its place in `layout` when the call's audio is laid out, else into one
        fresh allocation shared by the batch (many small fresh arrays cost the host more in page
        faults than the copy itself; a 10-minute chapter is 53 MB), or, for an item copied to its
        own pinned array (`handed_out`), that array itself. While the GPU still works, the fresh
        allocation is zeroed, so that its page faults are not paid after the GPU (≤ 0.02 ms for
        one sentence, run AU), and the peak allocation so far is read (`StageTimes.peak_bytes`):
        a batch's device memory is all allocated by the time its work is queued, and the last
        batch is finished after every launch, so its read is the call's."""
        sizes = self.sizes()
        own = self.handed_out and layout is None
        block = np.empty(sum(sizes), dtype=np.float32) if layout is None and not own else None
        busy = self.done is not None and not self.done.query()
        host = self.host.numpy()
        if own:
            host[0, sizes[0] - self.tails[0] :] = 0.0  # the pause: the copy writes the samples before it
        elif busy and block is not None:
            block.fill(0.0)  # its pages faulted in and its pauses zeroed while the GPU works
        if self.done is not None:
            times.peak_bytes = memory_snapshot(self.clock.device)["peak"] if busy else None
            self.done.synchronize()
        self.clock.read(times)
        if own:
            return {self.indices[0]: host[0]}
        zeroed = busy or layout is not None  # `Joined.ahead` zeroed the places of batches in flight
        out, jobs, start = {}, [], 0
        for row, (index, size, tail) in enumerate(zip(self.indices, sizes, self.tails)):
            item = block[start : start + size] if layout is None else layout.place(index)
            audio = size - tail
            jobs.append((item[:audio], host[row, :audio]))
            if not zeroed:
                jobs.append((item[audio:], 0.0))
            out[index] = item
            start += size
        copy_all(jobs)
        return out

    def sizes(self) -> list[int]:
        """Each item's samples with its pause."""
        return [frames * self.hop + tail for frames, tail in zip(self.frame_counts, self.tails)]


class Joined:
    """The call's audio in one array, each sentence where it sits when joined, laid out once every
    sentence's length is known: while the GPU runs the last stage B, the audio already finished
    moves into it, so the batches after that write straight into their places and joining them
    (`wrapper.join_audio`) copies nothing. On a chapter the join was 5 ms of host time after the
    GPU had finished (run AM)."""

    def __init__(self, sizes: Sequence[int]):
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.audio = np.empty(int(self.offsets[-1]), dtype=np.float32)

    def place(self, index: int) -> np.ndarray:
        return self.audio[self.offsets[index] : self.offsets[index + 1]]

    @classmethod
    def ahead(cls, count: int, handed: Sequence[np.ndarray], done: dict[int, np.ndarray], in_flight: Sequence["InFlight"]) -> "Joined | None":
        """Lay out all sentences: those handed out (copied in; the caller keeps its own arrays),
        those finished (moved in: `done` then holds the placed views) and those still in flight
        (their places touched now, so that their page faults are not paid after the GPU). None
        when more audio was handed out already than is left (a text of several windows): copying
        it in would outlast the last stage B, and `join_audio` would then compare it again."""
        sizes = [len(a) for a in handed] + [0] * (count - len(handed))
        for index, audio in done.items():
            sizes[index] = len(audio)
        for batch in in_flight:
            for index, size in zip(batch.indices, batch.sizes()):
                sizes[index] = size
        early = sum(sizes[: len(handed)])
        if early > sum(sizes) - early:
            return None
        layout = cls(sizes)
        jobs: list[tuple[np.ndarray, np.ndarray | float]] = [(layout.place(i), audio) for i, audio in enumerate(handed)]
        for index, audio in done.items():
            jobs.append((layout.place(index), audio))
            done[index] = layout.place(index)
        jobs += [(layout.place(index), 0.0) for batch in in_flight for index in batch.indices]
        copy_all(jobs)
        return layout


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
        self.lanes: Lanes | None = None
        self.pool: BufferPool | None = None
        self.staging: PinnedStaging | None = None
        self.stage_a: Callable = self._stage_a
        self.stage_b: Callable = self._stage_b
        self.fused_decoder: Callable | None = None
        self.fused_flow: Callable | None = None
        self.compiled = False
        self.compile_s: dict[tuple, float] = {}
        """Seconds of each (stage, *shape)'s first compiled call."""
        self.on_fallback: Callable[[str, str], None] | None = None
        self.on_stat: Callable[[str, Any], None] | None = None
        self.stats_without_encoder_kernels: dict[str, str] = {}
        """What the statistics say once the encoder's Triton kernels have given way (`_drop_encoder_kernels`)."""
        self._clock: StageClock | None = None
        self._clocks = tuple(StageClock(device) for _ in range(3))  # a batch's clock is read two launches later
        self.noise = gaussian_fn(device)
        self.defer_stage_b = device.type == "cuda"
        """Queue the next batch's stage A before this one's stage B. On the CPU nothing runs beside
        the host, so stage B follows at once (and audio is handed out a batch sooner)."""

    @property
    def _fine_laps(self) -> bool:
        """Laps inside the stages (encoder, duration, flow, decoder): only when running eagerly,
        since they would break graph capture and compilation."""
        return self.graphs is None and not self.compiled

    # ---- stages (fixed shapes; safe to compile and capture) ----

    def _lap(self, name: str) -> None:
        if self._clock is not None:
            self._clock.lap(name)

    def _stage_a(self, ids, fields):
        """ids (B, T) and fields (B, len(FIELDS)) from `pack_inputs` → prior statistics,
        durations and frame counts."""
        m = self.model
        lengths = fields[:, LENGTH].long()
        x, m_p, logs_p, mask = m.encode_text(ids, lengths)
        self._lap("encoder")
        noise = self.noise(fields[:, DURATION_KEY], 2, ids.shape[1], lengths, fields[:, NOISE_W])
        durations, frames = m.durations(x, mask, noise, fields[:, LENGTH_SCALE].float(), m.speaker(fields[:, SPEAKER].long()))
        self._lap("duration")
        return m_p, logs_p, durations, frames

    def _stage_b(self, m_p, logs_p, durations, frames, fields, n_frames: int, padded: bool = True):
        """Stage A's outputs → finished audio (B, n_frames · hop): normalised, scaled and clipped
        per row, valid up to frames · hop."""
        m = self.model
        g = m.speaker(fields[:, SPEAKER].long())
        prior = self.noise(fields[:, PRIOR_KEY], m.arch.inter_channels, n_frames, frames, fields[:, NOISE_SCALE])
        z, y_mask = m.latent(m_p, logs_p, durations, frames, prior, g, self.fused_flow)
        self._lap("flow")
        if self.fused_decoder is None:
            audio = m.vocode(z, y_mask, g, padded)
        else:
            audio = m.vocode_fused(self.fused_decoder, z, y_mask, frames, g)
        finish_rows_(audio, frames * m.hop_length, fields[:, VOLUME], fields[:, NORMALIZE] > 0)
        self._lap("decoder")
        return (audio,)

    # ---- orchestration ----

    def windows(self, lengths: Iterable[int]) -> Iterator[list[list[int]]]:
        """Batches of segment indices per window, taking lengths only as needed: the first
        sentence alone (fast first audio), then windows of WINDOW_BATCHES · max_batch
        consecutive sentences, each sorted by length and packed under the token budget. A window
        needs only its own sentences, so a text front end still running (`SegmentFeed`) works
        ahead while earlier windows synthesize; windows also bound how far audio is held back for
        in-order streaming. (Smaller first windows would start the GPU sooner but padded a chapter
        1.37 → 1.56×; windows sized by what the front end had ready varied the batch shapes, so
        graphs were captured inside timed calls: 115 → 180 ms on the chapter.) Without batching,
        one sentence at a time."""
        source = iter(lengths)
        known: list[int] = []
        number = 0
        while window := list(islice(source, self.window_size(number))):
            first = len(known)
            known.extend(window)
            indices = range(first, len(known))
            yield self._pack(sorted(indices, key=known.__getitem__), known) if self.batching else [[i] for i in indices]
            number += 1

    def window_size(self, number: int) -> int:
        """Sentences in window `number` (see `windows`; `scripts/window_probe.py` tries others)."""
        return WINDOW_BATCHES * self.max_batch if self.batching and number > 0 else 1

    def _pack(self, ascending: list[int], lengths: Sequence[int]) -> list[list[int]]:
        """Cut the length-sorted sentences into consecutive batches that minimise padded tokens plus
        BATCH_COST_TOKENS per batch (dynamic programming over the cut points), within max_batch
        rows and the token budget. Greedy filling padded a chapter 1.53×, this ~1.33×.

        It runs while the GPU waits for the window, so only batch sizes that can win are tried:
        the least cost of covering the first k sentences grows with k (dropping the longest
        sentence never costs more), so of the sizes padded to the same rows the largest is best.
        That is ~6 sizes per cut instead of max_batch (1.7 → 0.32 ms for a chapter on the CI
        machine), with the same plan."""
        n = len(ascending)
        if n == 1:  # a call's first window, and every single-sentence call: nothing to search (~14 µs before stage A)
            return [ascending]
        rows_of = [0] + [batch_bucket(size, self.max_batch) if self.graphs is not None else size for size in range(1, self.max_batch + 1)]
        tops = [size for size in range(self.max_batch, 0, -1) if size == self.max_batch or rows_of[size] != rows_of[size + 1]]
        cost = [0.0] + [math.inf] * n
        start = [0] * (n + 1)
        for end in range(1, n + 1):
            tokens = bucket(lengths[ascending[end - 1]])  # the batch's longest sentence is its last
            largest = min(self.max_batch, end)
            for size in (largest, *(top for top in tops if top < largest)):
                rows = rows_of[size]
                if size > 1 and rows * tokens > TOKEN_BUDGET:
                    continue
                total = cost[end - size] + rows * tokens + BATCH_COST_TOKENS
                if total < cost[end]:
                    cost[end], start[end] = total, end - size
        batches, end = [], n
        while end > 0:
            batches.append(ascending[start[end] : end])
            end = start[end]
        return batches[::-1]

    def run(self, items: Iterable[tuple[Sequence[int], int]], params: SynthParams, times: StageTimes,
            cancelled: Callable[[], bool] = lambda: False, ready: Callable[[], int] | None = None,
            joined: bool = False) -> Iterator[tuple[int, np.ndarray]]:
        """`items`: (token ids, samples of silence to append) per segment, taken as batches need
        them; `ready()`, if given, says how many can be taken without waiting (see `windows`).
        Yield (segment index, finished float32 host audio with its silence) in order.

        From the second batch on (with `defer_stage_b`), stage A of batch i+1 is queued before
        stage B of batch i, and batch i-1's audio is copied out and handed over only after both:
        the host's copying never stands between one stage B and the next stage A. The first batch
        is handed out at once (fast first audio). A window's last batch is handed out before the
        next window waits for the front end; when those sentences are there, batches go on
        overlapping. With `joined` (the caller joins the audio into one array), the audio is laid
        out in one array once every length is known (`Joined`)."""
        done: dict[int, np.ndarray] = {}
        tokens: list[Sequence[int]] = []
        tails: list[int] = []
        next_index = 0
        handed: list[np.ndarray] = []  # until the layout is known: what `Joined` copies in
        layout: Joined | None = None

        def lengths() -> Iterator[int]:
            for ids, tail in items:
                tokens.append(ids)
                tails.append(tail)
                yield len(ids)

        def in_order() -> Iterator[tuple[int, np.ndarray]]:
            nonlocal next_index
            while next_index in done:
                audio = done.pop(next_index)
                if joined and layout is None:
                    handed.append(audio)
                yield next_index, audio
                next_index += 1

        grad_mode = torch.inference_mode() if self.inference_mode else torch.no_grad()
        lanes, caller = self.lanes, None
        self._settle_unfinished()
        overlap = False
        started: Started | None = None  # stage A launched, stage B not yet
        in_flight: InFlight | None = None  # stage B launched, audio not yet handed out
        number = 0

        def second_stage(batch: Started, last: bool = False) -> None:
            """The batch's stage B; the batch before it is handed out meanwhile. After the last
            stage B is queued every length is known: the call's audio is laid out (`Joined`)."""
            nonlocal in_flight, layout
            with grad_mode:
                launched = self._launch_stage_b(batch, overlap)
            if last and joined:
                layout = Joined.ahead(len(tokens), handed, done, [f for f in (in_flight, launched) if f is not None])
                handed.clear()
            if in_flight is not None:
                done.update(in_flight.finish(times, layout))
            in_flight = launched

        def drain(last: bool = False) -> Iterator[tuple[int, np.ndarray]]:
            nonlocal started, in_flight
            if started is not None:
                batch, started = started, None
                second_stage(batch, last)
            if in_flight is not None:
                done.update(in_flight.finish(times, layout))
                in_flight = None
            yield from in_order()

        next_window = WINDOW_BATCHES * self.max_batch if self.batching else 1
        try:
            for window in self.windows(lengths()):
                for batch in window:
                    if cancelled():
                        return
                    if number == 1 and lanes is not None:  # from the second batch on, batches overlap
                        caller = torch.cuda.current_stream(self.device)
                        lanes.join(caller)
                        overlap = True
                    with grad_mode:  # stage A of this batch is queued before the last one's stage B
                        following = self._launch_stage_a([tokens[i] for i in batch], batch, [tails[i] for i in batch], params, number, overlap)
                    previous, started = started, following
                    if previous is not None:
                        second_stage(previous)
                    if not self.defer_stage_b:
                        started = None
                        second_stage(following)
                    number += 1
                    if number == 1:  # the first sentence goes straight through: fast first audio
                        yield from drain()
                    yield from in_order()
                if ready is None or ready() < next_window:  # hand out what is done before waiting for the front end
                    yield from drain()
            yield from drain(last=True)
        finally:
            if started is not None:  # left unfinished (cancelled, closed, failed): its upload must not be overwritten
                if started.counted is not None:
                    started.counted.synchronize()
                if not started.captured:
                    self._release(*started.inputs)
            if overlap:  # later work of the caller (re-optimizing, freeing) comes after ours
                lanes.settle(caller)

    def run_one(self, tokens: Sequence[int], tail: int, params: SynthParams, times: StageTimes) -> np.ndarray:
        """A text of one sentence: its finished audio with `tail` samples of silence appended.

        `run` does the same for it through its first batch, but its windows, in-order hand-out,
        lanes and generators cost a sentence ~0.2–0.3 ms of host time, most of it before the GPU
        starts: run AY timed the call 0.29 ms slower than two bare graph replays. Here the host
        launches stage A straight after the front end, reads the frame count, launches stage B
        and waits for the copy."""
        with torch.inference_mode() if self.inference_mode else torch.no_grad():
            self._settle_unfinished()
            started = self._launch_stage_a([tokens], [0], [tail], params, 0, overlap=False)
            in_flight = self._launch_stage_b(started, overlap=False)
        return in_flight.finish(times)[0]

    def _settle_unfinished(self) -> None:
        """After a run left unfinished (cancelled, closed, failed), its work on the lanes comes first."""
        if self.lanes is not None and self.lanes.busy:
            self.lanes.settle(torch.cuda.current_stream(self.device))

    def _launch_stage_a(self, items, indices, tails: list[int], params: SynthParams, number: int, overlap: bool) -> Started:
        """Upload → stage A → its frame counts copied to the host (not waited for)."""
        slot = number % 2
        n = len(items)
        longest = max(len(t) for t in items)
        t_max = bucket(longest) if self.buckets else longest
        b_pad = batch_bucket(n, self.max_batch) if self.graphs is not None else n
        # a graph set per slot: this stage A is queued before the last batch's stage B reads its own
        shape = (slot, b_pad, t_max) if self.graphs is not None else (b_pad, t_max)
        captured = self.graphs.static_inputs(("A", *shape)) if self.graphs is not None else None
        ids = fields = None
        try:
            with self._lane("A", slot, overlap, captured is not None):
                clock = self._clocks[number % 3].restart()
                self._clock = clock if self._fine_laps else None
                ids, fields = captured or (self._buffer((b_pad, t_max), torch.long, zero=False), self._buffer((b_pad, len(FIELDS)), torch.float64, zero=False))
                self._upload(items, indices, params, ids, fields, slot)
                with exact_fp32():
                    outputs = self._staged("A", shape, ids, fields)
                if self._clock is None:  # captured/compiled: encoder and durations are one lap
                    clock.lap("encoder+duration")
                host_frames, counted = self._frames_to_host(outputs[3][:n], slot)
        except BaseException:
            if not captured and ids is not None:
                self._release(ids, fields)
            raise
        finally:
            self._clock = None
        return Started(n, list(indices), tails, slot, shape, captured is not None, (ids, fields), outputs, host_frames, counted, clock)

    def _launch_stage_b(self, batch: Started, overlap: bool) -> InFlight:
        """The one length read → stage B → copy started. Returns the batch in flight: host audio
        valid once its `done` event has completed."""
        n, slot = batch.rows, batch.slot
        m_p, logs_p, durations, frames = batch.outputs
        ids, fields = batch.inputs
        try:  # pool buffers are released in stream order: later work on them queues behind this batch
            if batch.counted is not None:  # stage A may have run on another stream: wait for it alone
                batch.counted.synchronize()
            # the one host read per batch: output length is data-dependent
            frame_counts = (batch.host_frames if batch.host_frames is not None else frames[:n]).tolist()
            f_max = bucket(max(frame_counts)) if self.buckets else max(frame_counts)
            check_length(f_max)
            clock = batch.clock
            self._clock = clock if self._fine_laps else None
            lane_b = self.lanes.b if overlap else None
            own_inputs = lane_b is not None and self.graphs is not None  # graphs shared by both slots, fed by copies
            taken: list[bool] = []

            def inputs_taken() -> None:
                if lane_b is not None and not taken:
                    self.lanes.release(slot)
                    taken.append(True)

            with self._lane("B", slot, overlap, after=batch.counted):
                clock.lap(None, lane_b)  # stage B's laps start here, not where stage A's ended
                if not (self.buckets or n > 1 or self.graphs is not None):  # the reference path: exact length, no masks inside the decoder
                    (audio,) = self._stage_b(m_p, logs_p, durations, frames, fields, n_frames=f_max, padded=False)
                else:
                    shape = (*batch.shape[1:], f_max) if own_inputs else (*batch.shape, f_max)  # a shared graph's key has no slot
                    (audio,) = self._staged("B", shape, m_p, logs_p, durations, frames, fields, n_frames=f_max, own_inputs=own_inputs, inputs_taken=inputs_taken)
                inputs_taken()
                if not self._fine_laps:
                    clock.lap("flow+decoder", lane_b)
                host, handed_out = self._audio_to_host(audio, frame_counts, batch.tails, slot)
                clock.lap("copy", lane_b)
                done = None
                if self.device.type == "cuda":  # the pinned copy is asynchronous
                    done = torch.cuda.Event()
                    done.record()
        finally:
            self._clock = None
            if not batch.captured:
                self._release(ids, fields)
        return InFlight(batch.indices, host, frame_counts, batch.tails, self.model.hop_length, clock, done, handed_out)

    def _audio_to_host(self, audio: torch.Tensor, frame_counts: list[int], tails: list[int], slot: int) -> tuple[torch.Tensor, bool]:
        """Start the batch's audio copy to the host: (host tensor, whether it is the item's own).

        A batch of one row on the GPU (a sentence alone, a text's first) is copied into a pinned
        array of its own, sized for its pause, from torch's caching host allocator: that array is
        handed out as it is, where moving it out of the reused staging buffer cost 0.08 ms after
        the GPU had finished (run AU). The array returns to the allocator's cache once the caller
        drops it; audio a caller keeps stays page-locked (`AdvancedTTSOptimizer.clear_caches`
        gives cached blocks back). Larger batches go through the staging buffers and are cut
        into one fresh array per batch by `InFlight.finish`."""
        rows = len(frame_counts)
        if self.staging is None or not audio.is_cuda:
            return audio[:rows].cpu(), False
        if rows > 1 or audio.dtype != torch.float32:
            return self.staging.to_host(audio[:rows], slot), False
        samples = frame_counts[0] * self.model.hop_length
        try:
            host = torch.empty(samples + tails[0], dtype=torch.float32, pin_memory=True)
        except RuntimeError as exc:  # no page-locked memory to be had: the staging buffer, allocated at warmup, still is
            if self.on_fallback is not None:
                self.on_fallback("pin_memory", f"no page-locked array for a sentence's own audio ({brief(exc)}); it is moved out of the staging buffer")
            return self.staging.to_host(audio[:rows], slot), False
        host[:samples].copy_(audio[0, :samples], non_blocking=True)
        return host[None], True

    def _frames_to_host(self, frames: torch.Tensor, slot: int) -> tuple[torch.Tensor | None, torch.cuda.Event | None]:
        """On a GPU, an event after stage A on its stream, and with pinned staging the frame
        counts already copied to the host behind it; on the CPU (None, None)."""
        if not frames.is_cuda:
            return None, None
        host = None
        if self.staging is not None:
            host = self.staging.pinned("frames", frames.dtype, frames.shape, slot)
            host.copy_(frames, non_blocking=True)
        counted = torch.cuda.Event()
        counted.record()
        return host, counted

    def _lane(self, stage: str, slot: int, overlap: bool, captured: bool = False, after: torch.cuda.Event | None = None):
        """The stream a stage runs on while batches overlap (see `Lanes`); else the caller's."""
        return self.lanes.stage(stage, slot, captured, after) if overlap else nullcontext()

    def _staged(self, stage: str, shape: tuple[int, ...], *inputs, own_inputs: bool = False, inputs_taken: Callable[[], None] = lambda: None, **options):
        """Stage "A" or "B" on `inputs` (graph, compiled or eager, as configured); see
        `GraphRunner.run` for `own_inputs` and `inputs_taken`. A shape that fails to compile after
        warmup turns compilation off, visibly, and runs eagerly; a stage A that fails with the
        encoder's Triton kernels in it runs again without them, visibly."""
        try:
            return self._run_stage(stage, shape, *inputs, own_inputs=own_inputs, inputs_taken=inputs_taken, **options)
        except BackendCompilerFailed as exc:
            if not self.compiled:
                raise
            cause = getattr(exc, "inner_exception", None) or exc
            self.stop_compiling(f"failed while compiling stage {stage} at {shape} ({brief(cause)}); running eagerly")
        except Exception as exc:
            if stage != "A" or isinstance(exc, torch.OutOfMemoryError) or not self._drop_encoder_kernels(exc):
                raise
        return self._staged(stage, shape, *inputs, own_inputs=own_inputs, inputs_taken=inputs_taken, **options)

    def _drop_encoder_kernels(self, exc: BaseException) -> bool:
        """The encoder's Triton kernels (attention, feed-forward, products) run from the first
        call, and build anew for a batch size that takes other tiles. If one fails, the plain
        attention and feed-forward take over, graphs are recaptured, and the fallback is reported.
        False when none is in use."""
        encoder = self.model.enc_p.encoder
        ffns = [ffn for ffn in encoder.ffn_layers if ffn.taps_1 is not None]
        attention = [attn for attn in encoder.attn_layers if attn.use_kernel]
        products = exact_products_armed(self.model)
        if not ffns and not attention and not products:
            return False
        for part in (self.model.enc_p, self.model.dp):
            use_exact_products(part, False)
        for ffn in ffns:
            ffn.fuse(False)
        for attn in attention:
            attn.use_triton(False)
        self._drop_graphs()
        if self.on_fallback is not None:
            self.on_fallback("fused_kernels", f"the encoder's Triton kernels failed ({brief(exc)}); its attention, feed-forward and products run on SDPA and cuBLAS")
        if self.on_stat is not None:
            for key, value in self.stats_without_encoder_kernels.items():
                self.on_stat(key, value)
        return True

    def _run_stage(self, stage: str, shape: tuple[int, ...], *inputs, own_inputs: bool, inputs_taken: Callable[[], None], **options):
        fn = partial(self.stage_a if stage == "A" else self.stage_b, **options)
        key = (stage, *shape)
        compiles = self.compiled and key not in self.compile_s  # the first call of a shape compiles it
        start = time.perf_counter()
        if self.graphs is not None:
            # with lanes, stage A of one slot runs while stage B reads the other slot's A outputs:
            # a graph lane (memory pool, capture stream) per slot for A, one for B
            lane = key[:2] if stage == "A" and self.lanes is not None else stage
            out = self.graphs.run(key, fn, *inputs, lane=lane, own_inputs=own_inputs, inputs_taken=inputs_taken)
        else:
            out = fn(*inputs)
        if compiles:
            self._record_compile(key, start)
        return out

    def _record_compile(self, key: tuple, start: float) -> None:
        """Seconds of a shape's first compiled call (with graphs: its warmup, which compiles, and
        capture), reported as they accrue: buckets first met after warmup compile then too."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.compile_s[key] = time.perf_counter() - start
        if self.on_stat is not None:
            self.on_stat("compile_s", self.compile_stat())

    def compile_stat(self) -> dict[str, float]:
        return {str(key): seconds for key, seconds in self.compile_s.items()}

    def stop_compiling(self, reason: str) -> None:
        """Back to the eager stages (graphs are recaptured around them), reported as a fallback."""
        self.stage_a, self.stage_b, self.compiled = self._stage_a, self._stage_b, False
        self._drop_graphs()
        if self.on_fallback is not None:
            self.on_fallback("compile", reason)
        if self.on_stat is not None:
            self.on_stat("compile_launch", None)  # nothing compiled runs any more

    def _drop_graphs(self) -> None:
        """Forget the captured graphs (they are recaptured around the new stages) once the GPU is
        done with the work already queued from them (a batch may still be in flight)."""
        if self.graphs is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.graphs.clear()

    def _buffer(self, shape, dtype, zero: bool = True) -> torch.Tensor:
        """`zero=False` for buffers the caller overwrites whole (one launch less each)."""
        if self.pool is not None:
            return self.pool.get_buffer(shape, dtype, zero=zero)
        return (torch.zeros if zero else torch.empty)(shape, dtype=dtype, device=self.device)

    def _release(self, *tensors: torch.Tensor) -> None:
        if self.pool is not None:
            for t in tensors:
                self.pool.return_buffer(t)

    def _upload(self, items, indices, params: SynthParams, ids: torch.Tensor, fields: torch.Tensor, slot: int) -> None:
        """The batch's inputs into `ids` and `fields` (pool buffers, or a captured graph's own
        inputs): on a GPU packed straight into pinned memory and copied asynchronously."""
        if self.staging is not None and ids.is_cuda:
            host_ids = self.staging.pinned("to_device", ids.dtype, ids.shape, slot)
            host_fields = self.staging.pinned("to_device", fields.dtype, fields.shape, slot)
        else:
            host_ids, host_fields = torch.empty(ids.shape, dtype=ids.dtype), torch.empty(fields.shape, dtype=fields.dtype)
        pack_inputs(items, indices, params, host_ids.numpy(), host_fields.numpy())
        ids.copy_(host_ids, non_blocking=True)
        fields.copy_(host_fields, non_blocking=True)
