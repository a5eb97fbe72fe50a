"""Each optimization's CPU-runnable path: same audio (within tolerance), stats move, fallbacks shown."""

import dataclasses
import json
import math
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
from engine.bench import snr_db
from engine.models.base import StageTimes
from engine.buffers import BufferPool
from engine.config import SynthesisOptions
from engine.models.piper.model import RelativeAttention, inverse_rational_quadratic_spline, sequence_mask

TEXT = "First sentence is short. The second one is a little longer, with a comma. Third!"
SEEDED = SynthesisOptions(seed=3, normalize=False)


def synth(model, cfg, text=TEXT, options=SEEDED):
    optimizer = AdvancedTTSOptimizer(cfg, "cpu")
    wrapper = OptimizedTTSWrapper(model, optimizer)
    return wrapper.generate(text, options), optimizer


@pytest.fixture(scope="module")
def reference(joe_cpu):
    return synth(joe_cpu, OptimizationConfig.unoptimized())[0].audio


@pytest.mark.parametrize(
    "flags, min_snr",
    [
        ({"enable_flash_attention": True}, 50),
        ({"batch_preprocessing": True}, 50),
        ({"shape_buckets": True}, 50),
        ({"preallocate_buffers": True}, 50),
        ({"use_inference_mode": False}, 50),
        ({"enable_bf16": True}, 30),
    ],
)
def test_optimization_keeps_length_and_quality(joe_cpu, reference, flags, min_snr):
    result, optimizer = synth(joe_cpu, dataclasses.replace(OptimizationConfig.unoptimized(), **flags))
    assert len(result.audio) == len(reference)
    snr = snr_db(reference, result.audio)
    print(f"\n{flags}: SNR {snr:.1f} dB")
    assert snr >= min_snr
    assert not optimizer.get_stats()["fallbacks"]


def test_bf16_plan_keeps_fp32_islands(joe_cpu):
    _, optimizer = synth(joe_cpu, dataclasses.replace(OptimizationConfig.unoptimized(), enable_bf16=True))
    assert optimizer.get_stats()["precision"] == {"enc_p": "fp32", "dp": "fp32", "flow": "fp32", "dec": "bf16"}
    synth(joe_cpu, OptimizationConfig.unoptimized())  # back to fp32 from the reference weights
    assert all(p.dtype == torch.float32 for p in joe_cpu.model.parameters())


def test_the_exact_stage_turns_tf32_off_inside_and_restores_it_even_after_an_error():
    from engine.precision import exact_fp32

    flags = lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    before = flags()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with exact_fp32():
                assert flags() == (False, False)
                raise RuntimeError("inside")
        assert flags() == (True, True)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_gpu_only_toggles_fall_back_visibly_on_cpu(joe_cpu, reference):
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_cuda_graphs=True, pin_memory=True, enable_fp16=True)
    result, optimizer = synth(joe_cpu, cfg)
    fallbacks = " | ".join(optimizer.get_stats()["fallbacks"])
    assert "cuda_graphs: no CUDA device" in fallbacks
    assert "pin_memory: no CUDA device" in fallbacks
    assert "fp16 needs a CUDA GPU" in fallbacks
    assert len(result.audio) == len(reference)


def test_sdpa_attention_equals_plain_attention_with_padding():
    torch.manual_seed(0)
    attn = RelativeAttention(channels=64, n_heads=2, window_size=4)
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(3, 64, 37)
    mask = sequence_mask(torch.tensor([37, 20, 5]), 37).unsqueeze(1)
    bias = (1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4
    plain = attn(x, bias)
    attn.use_sdpa = True
    fused = attn(x, bias)
    valid = mask.bool().expand_as(plain)
    torch.testing.assert_close(fused[valid], plain[valid], rtol=1e-4, atol=1e-4)


def _reference_spline_inverse(x, w, h, d, tail=5.0, mw=1e-3, mh=1e-3, md=1e-3):
    """Boolean-indexed textbook version (Durkan et al. 2019) to check the dense one against."""
    out = x.clone()
    inside = (x >= -tail) & (x <= tail)
    xi, wi, hi, di = x[inside], w[inside], h[inside], d[inside]
    k = w.shape[-1]
    di = torch.nn.functional.pad(di, (1, 1), value=math.log(math.exp(1 - md) - 1))
    widths = mw + (1 - mw * k) * torch.softmax(wi, -1)
    cw = torch.nn.functional.pad(torch.cumsum(widths, -1), (1, 0)) * 2 * tail - tail
    cw[..., 0], cw[..., -1] = -tail, tail
    widths = cw[..., 1:] - cw[..., :-1]
    heights = mh + (1 - mh * k) * torch.softmax(hi, -1)
    ch = torch.nn.functional.pad(torch.cumsum(heights, -1), (1, 0)) * 2 * tail - tail
    ch[..., 0], ch[..., -1] = -tail, tail
    heights = ch[..., 1:] - ch[..., :-1]
    deriv = md + torch.nn.functional.softplus(di)
    loc = ch.clone()
    loc[..., -1] += 1e-6
    idx = (torch.sum(xi[..., None] >= loc, -1) - 1)[..., None]
    g = lambda t: t.gather(-1, idx)[..., 0]
    delta = heights / widths
    d0, d1 = g(deriv[..., :-1]), g(deriv[..., 1:])
    dy = xi - g(ch)
    s = d0 + d1 - 2 * g(delta)
    a = dy * s + g(heights) * (g(delta) - d0)
    b = g(heights) * d0 - dy * s
    c = -g(delta) * dy
    root = (2 * c) / (-b - torch.sqrt(b.pow(2) - 4 * a * c))
    out[inside] = root * g(widths) + g(cw)
    return out


def test_dense_spline_matches_boolean_indexed_reference():
    torch.manual_seed(1)
    x = torch.randn(2, 1, 50) * 4  # some values in the linear tails
    w, h, d = torch.randn(2, 1, 50, 10), torch.randn(2, 1, 50, 10), torch.randn(2, 1, 50, 9)
    torch.testing.assert_close(inverse_rational_quadratic_spline(x, w, h, d), _reference_spline_inverse(x, w, h, d))


@pytest.mark.parametrize("channels_last", [False, True])
def test_padded_decoder_equals_unpadded(joe_cpu, channels_last):
    from engine.models.piper.model import use_channels_last_convs

    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))  # fp32, whatever ran before
    model = joe_cpu.model
    use_channels_last_convs(model.dec, channels_last)
    torch.manual_seed(2)
    z = torch.randn(1, model.arch.inter_channels, 40)
    try:
        with torch.inference_mode():
            exact = model.vocode(z, torch.ones(1, 1, 40), None, padded=False)
            z_pad = torch.nn.functional.pad(z, (0, 24), value=3.0)  # garbage past the end must not leak
            mask = sequence_mask(torch.tensor([40]), 64).unsqueeze(1)
            padded = model.vocode(z_pad, mask, None, padded=True)[:, : exact.shape[1]]
    finally:
        use_channels_last_convs(model.dec, False)
    torch.testing.assert_close(padded, exact, rtol=1e-4, atol=1e-5)


def test_batching_is_one_forward_for_many_sentences(joe_cpu):
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True)
    optimizer = AdvancedTTSOptimizer(cfg, "cpu")
    OptimizedTTSWrapper(joe_cpu, optimizer)
    assert list(chain.from_iterable(joe_cpu.runner.windows([30, 80, 50, 20, 60]))) == [[0], [3, 2, 4, 1]]
    joe_cpu.runner.max_batch = 2  # windows of 4 × 2 sentences bound the reordering
    plan = list(chain.from_iterable(joe_cpu.runner.windows([10] + [90 - i for i in range(20)])))
    assert plan[:2] == [[0], [8, 7]] and sorted(i for b in plan for i in b) == list(range(21))
    assert all(max(b) - min(b) < 8 for b in plan[1:])


def test_without_batching_each_sentence_is_taken_when_its_turn_comes(joe_cpu):
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))
    assert not joe_cpu.runner.batching
    taken = []

    def lengths():
        for i in range(10):
            taken.append(i)
            yield 50

    batches = chain.from_iterable(joe_cpu.runner.windows(lengths()))
    assert [next(batches) for _ in range(3)] == [[0], [1], [2]] and taken == [0, 1, 2]


def test_batches_take_sentences_only_as_needed(joe_cpu):
    """A window waits only for its own sentences, so a text front end still running is not waited for."""
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=4)
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
    taken = []

    def lengths():
        for i in range(40):
            taken.append(i)
            yield 50 + i % 7

    batches = chain.from_iterable(joe_cpu.runner.windows(lengths()))
    assert next(batches) == [0] and taken == [0]
    next(batches)
    assert len(taken) == 1 + 4 * 4  # the first window: WINDOW_BATCHES × max_batch sentences
    taken.clear()
    joe_cpu.runner.window_size = lambda number: (1, 4, 9)[min(number, 2)]  # what window_probe.py tries
    try:
        windows = [sorted(i for b in w for i in b) for w in joe_cpu.runner.windows(lengths())]
    finally:
        del joe_cpu.runner.window_size
    assert [len(w) for w in windows] == [1, 4, 9, 9, 9, 8] and sum(windows, []) == list(range(40))


def test_batches_overlap_across_windows_when_sentences_are_ready(joe_cpu, monkeypatch):
    """A window's last batch is handed out before the next window only if that window would
    wait for the front end; otherwise the next batch's stage A is launched first, as within a window."""
    from engine.models.piper import synth

    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=2)
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
    events = []
    launch, finish = synth.PiperRunner._launch_stage_a, synth.InFlight.finish
    monkeypatch.setattr(synth.PiperRunner, "_launch_stage_a", lambda self, *a: events.append("launch") or launch(self, *a))
    monkeypatch.setattr(synth.InFlight, "finish", lambda self, *a: events.append("finish") or finish(self, *a))
    items = [([1, 8, 0, 9, 0, 2]), ([1, 8, 0, 2]), ([1, 9, 0, 2]), ([1, 8, 0, 8, 0, 2])] * 3

    def drained_launches(ready: int) -> int:
        """Launches with no batch in flight: the GPU had nothing queued."""
        events.clear()
        out = list(joe_cpu.runner.run([(ids, 0) for ids in items], joe_cpu.params(SEEDED), StageTimes(), ready=lambda: ready))
        assert [i for i, _ in out] == list(range(12))
        outstanding = drained = 0
        for kind in events:
            drained += kind == "launch" and outstanding == 0
            outstanding += 1 if kind == "launch" else -1
        return drained

    assert drained_launches(ready=99) == 2  # the first sentence alone, then windows of 8 and 3 in one pipeline
    assert drained_launches(ready=0) == 3  # the front end has nothing ready: window 2 is handed out before window 3


@pytest.mark.parametrize("stop", ["close", "cancel"])
def test_a_run_left_unfinished_returns_its_buffers(joe_cpu, monkeypatch, stop):
    """Stopped between batches (the consumer gone, or cancelled) while a batch's stage A is
    queued and its stage B is not: that batch's pool buffers go back to the pool."""
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=2, preallocate_buffers=True)
    optimizer = AdvancedTTSOptimizer(cfg, "cpu")
    OptimizedTTSWrapper(joe_cpu, optimizer)
    monkeypatch.setattr(joe_cpu.runner, "defer_stage_b", True)  # the GPU's order, on the CPU
    stopped = []
    run = joe_cpu.runner.run([([1, 8, 0, 9, 0, 2], 0)] * 12, joe_cpu.params(SEEDED), StageTimes(), cancelled=lambda: bool(stopped))
    assert [next(run)[0] for _ in range(3)] == [0, 1, 2]
    assert optimizer.pool.stats.outstanding > 0, "a later batch is under way"
    if stop == "close":
        run.close()
    else:
        stopped.append(True)
        list(run)
    assert optimizer.pool.stats.outstanding == 0


def joined_in_the_gpus_order(model, monkeypatch, text):
    """`text` through batches of two: once in the CPU's order (each stage B at once), then in
    the GPU's (stage B deferred), collecting the second call's chunks."""
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=2)
    wrapper = OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, "cpu"))
    per_batch = wrapper.generate(text, SEEDED).audio
    monkeypatch.setattr(model.runner, "defer_stage_b", True)
    chunks = []
    result = wrapper.generate(text, SEEDED, on_chunk=chunks.append)
    return wrapper, per_batch, chunks, result


def test_a_batched_call_lays_its_audio_out_once_every_length_is_known(joe_cpu, monkeypatch):
    """In the GPU's order (stage B deferred), once the last stage B is queued the call's audio
    is laid out in one array: the sentences handed out before are copied to its head, those
    finished are moved in, the batches still running write into their places, and joining
    returns that array without a copy. The samples are those of the per-batch path."""
    text = " ".join(f"Sentence number {n} is here{', and it goes on for a good while longer than the rest' * (n == 1)}." for n in range(7))
    wrapper, per_batch, chunks, result = joined_in_the_gpus_order(joe_cpu, monkeypatch, text)
    assert len(chunks) == 7
    assert chunks[0].audio.base is not result.audio, "the first sentence was handed out before the layout"
    assert all(c.audio.base is result.audio for c in chunks[1:]), "moved in or written in place"
    np.testing.assert_array_equal(result.audio, np.concatenate([c.audio for c in chunks]))
    np.testing.assert_array_equal(result.audio, per_batch)
    streamed = list(wrapper.stream(text, SEEDED))
    assert len({id(c.audio.base) for c in streamed[1:]}) > 1, "a stream's consumer joins nothing: no layout, each batch its own block"
    np.testing.assert_array_equal(np.concatenate([c.audio for c in streamed]), per_batch)


def test_a_call_that_handed_out_most_of_its_audio_joins_it_by_copying(joe_cpu, monkeypatch):
    """Sentences of equal length go out in order as their batches finish: by the last stage B
    most of the audio is the caller's already, so none is laid out (copying it in would outlast
    that stage) and joining copies once, as without a layout."""
    _, per_batch, chunks, result = joined_in_the_gpus_order(joe_cpu, monkeypatch, " ".join(f"Sentence number {n} is here." for n in range(12)))
    assert not any(np.shares_memory(c.audio, result.audio) for c in chunks)
    np.testing.assert_array_equal(result.audio, per_batch)


def test_stage_times_leave_out_the_consumer(joe_cpu, monkeypatch):
    """Stage B of a batch starts after later batches' stage A and the caller's handling of
    earlier audio: its laps start at stage B, so none of that is counted as flow or decoder.
    (The stage clock reads a fake clock that only the consumer advances.)"""
    import types

    from engine.models.piper import synth

    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=2)
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
    monkeypatch.setattr(joe_cpu.runner, "defer_stage_b", True)
    now = [0.0]
    monkeypatch.setattr(synth, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    times = StageTimes()
    for _ in joe_cpu.runner.run([([1, 8, 0, 9, 0, 2], 0)] * 9, joe_cpu.params(SEEDED), times):
        now[0] += 100.0  # a slow consumer
    assert {"encoder", "duration", "flow", "decoder"} <= set(times.values)
    assert sum(times.values.values()) == 0.0


@pytest.mark.parametrize("gpu_busy", [True, False])
def test_a_batch_reads_the_peak_allocation_only_while_the_gpu_still_works(monkeypatch, gpu_busy):
    """The read costs ~0.1 ms of host time on a GPU machine: before the wait it hides behind the
    GPU's work; once the GPU is done it would not, so the wrapper reads after the call instead.
    Either way each item is its audio and then a silent pause, whatever the host buffer holds
    past the audio (the array is zeroed before the wait while the GPU works, its pauses after)."""
    from engine.models.piper import synth

    class Copy:  # the batch's copy-out event
        def query(self):
            return not gpu_busy

        def synchronize(self):
            pass

    monkeypatch.setattr(synth, "memory_snapshot", lambda device: {"peak": 123})
    host = torch.stack([torch.full((12,), 1.0), torch.full((12,), 2.0)])  # past each item's audio: stale samples
    batch = synth.InFlight([0, 1], host, [2, 1], [1, 3], 4, synth.StageClock(torch.device("cpu")), Copy())
    times = StageTimes(peak_bytes=7)  # an earlier batch's read
    audio = batch.finish(times)
    assert times.peak_bytes == (123 if gpu_busy else None)
    assert audio[0].tolist() == [1.0] * 8 + [0.0]
    assert audio[1].tolist() == [2.0] * 4 + [0.0] * 3


@pytest.mark.parametrize("laid_out", [False, True])
def test_an_item_copied_to_its_own_array_is_handed_out_as_it_is(monkeypatch, laid_out):
    """A batch of one row on the GPU is copied into a pinned array sized for its pause: that
    array is the audio handed out (no move after the GPU), its pause zeroed whatever it held;
    where the call's audio is laid out, it is copied into its place like any other item."""
    from engine.models.piper import synth

    class Copy:
        def query(self):
            return False

        def synchronize(self):
            pass

    monkeypatch.setattr(synth, "memory_snapshot", lambda device: {"peak": 1})
    host = torch.tensor([[1.0, 2.0, 3.0, 4.0, 9.0, 9.0]])  # 2 frames of hop 2, then a pause of 2 holding stale samples
    batch = synth.InFlight([0], host, [2], [2], 2, synth.StageClock(torch.device("cpu")), Copy(), handed_out=True)
    layout = synth.Joined([6]) if laid_out else None
    if laid_out:
        layout.audio[:] = 0.0  # as `Joined.ahead` leaves the places of batches in flight
    audio = batch.finish(StageTimes(), layout)[0]
    assert audio.tolist() == [1.0, 2.0, 3.0, 4.0, 0.0, 0.0]
    assert np.shares_memory(audio, host.numpy()) is not laid_out
    if laid_out:
        assert np.shares_memory(audio, layout.audio)


def test_without_page_locked_memory_a_batch_of_one_goes_through_the_staging_buffer(joe_cpu, monkeypatch):
    """A batch of one row on the GPU gets a pinned array of its own; where none can be had, its
    audio is copied through the staging buffer like a larger batch's, the call goes on, and the
    fallback is reported."""
    from engine.buffers import PinnedStaging

    audio = torch.arange(12.0).reshape(1, 12)

    class OnTheGpu:  # stage B's output as `_audio_to_host` sees it
        is_cuda = True
        dtype = torch.float32

        def __getitem__(self, index):
            return audio[index]

    empty = torch.empty

    def no_page_locked_memory(*args, pin_memory=False, **kwargs):
        if pin_memory:
            raise RuntimeError("CUDA error: out of memory")
        return empty(*args, **kwargs)

    runner = joe_cpu.runner
    reported = []
    monkeypatch.setattr(runner, "staging", PinnedStaging())
    monkeypatch.setattr(runner, "on_fallback", lambda feature, reason: reported.append((feature, reason)))
    monkeypatch.setattr(torch, "empty", no_page_locked_memory)
    host, handed_out = runner._audio_to_host(OnTheGpu(), [3], [2], slot=0)
    assert not handed_out and torch.equal(host, audio)
    assert reported == [("pin_memory", "no page-locked array for a sentence's own audio (RuntimeError: CUDA error: out of memory); it is moved out of the staging buffer")]


def test_a_sentence_alone_goes_straight_through_with_the_same_audio(joe_cpu, monkeypatch):
    """A request of one sentence (its count known before synthesis: the wrapper's front end has
    finished) skips the batching machinery (`PiperRunner.run_one`): same audio, pause and stage
    laps as through `run`, which a request whose count is not known yet still takes."""
    from engine.models.base import Segment

    segment = Segment("One sentence.", [1, 8, 0, 9, 0, 5, 0, 2], 0.2)
    pause = round(0.2 * joe_cpu.sample_rate)
    for cfg in (OptimizationConfig.unoptimized(), OptimizationConfig.max_speed(cuda=False)):
        OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
        runner = joe_cpu.runner
        paths = []
        monkeypatch.setattr(runner, "run_one", lambda *a, _f=runner.run_one: (paths.append("one"), _f(*a))[1])
        monkeypatch.setattr(runner, "run", lambda *a, _f=runner.run, **kw: (paths.append("run"), _f(*a, **kw))[1])
        laps = []
        audio = []
        for segments in ([segment], iter([segment])):
            times = StageTimes()
            (wave,) = joe_cpu.synthesize(segments, SEEDED, times)
            audio.append(wave)
            laps.append(set(times.values))
        assert paths == ["one", "run"]
        assert np.array_equal(audio[0], audio[1])
        assert len(audio[0]) > pause and not audio[0][-pause:].any()
        assert laps[0] == laps[1] and "decoder" in laps[0]
        monkeypatch.undo()


def test_batches_are_cut_to_save_padding_within_the_limits(joe_cpu):
    """A real chapter's sentences: every one planned once, no batch over max_batch rows or the
    token budget, and far less padding than filling batches greedily (1.53× there)."""
    from engine.models.piper.synth import TOKEN_BUDGET, bucket

    chapter = json.loads((Path(__file__).parents[1] / "data" / "phoneme_ids.json").read_text())["chapter"]
    lengths = [len(s["tokens"]) for s in chapter]
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=32)
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
    plan = list(chain.from_iterable(joe_cpu.runner.windows(lengths)))
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    padded = [len(b) * bucket(max(lengths[i] for i in b)) for b in plan]
    assert all(len(b) <= 32 for b in plan) and all(p <= TOKEN_BUDGET for p in padded)
    assert sum(padded) < 1.35 * sum(lengths)


@pytest.mark.parametrize("max_batch", [2, 12, 32])
@pytest.mark.parametrize("graphs", [False, True])
def test_batch_plans_match_the_search_over_every_size(joe_cpu, max_batch, graphs):
    """`_pack` tries per cut only the largest size of each padded row count; its plans cost what
    the search over every size costs, and are the same plans (ties go to the larger batch)."""
    from engine.models.piper.synth import BATCH_COST_TOKENS, TOKEN_BUDGET, batch_bucket, bucket

    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, max_batch_size=max_batch)
    OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(cfg, "cpu"))
    runner = joe_cpu.runner
    runner.graphs = object() if graphs else None

    def every_size(ascending, lengths):
        n = len(ascending)
        cost, start = [0.0] + [math.inf] * n, [0] * (n + 1)
        for end in range(1, n + 1):
            tokens = bucket(lengths[ascending[end - 1]])
            for first in range(max(0, end - max_batch), end):
                rows = batch_bucket(end - first, max_batch) if graphs else end - first
                total = cost[first] + rows * tokens + BATCH_COST_TOKENS
                if (end - first == 1 or rows * tokens <= TOKEN_BUDGET) and total < cost[end]:
                    cost[end], start[end] = total, first
        cuts, end = [], n
        while end > 0:
            cuts.append(ascending[start[end] : end])
            end = start[end]
        return cuts[::-1]

    rng = np.random.default_rng(max_batch)
    try:
        for n in (1, 5, 40, 130):
            lengths = [int(x) for x in rng.integers(8, 900, n)]
            ascending = sorted(range(n), key=lengths.__getitem__)
            assert runner._pack(ascending, lengths) == every_size(ascending, lengths)
    finally:
        runner.graphs = None


def test_stream_yields_first_sentence_before_the_rest(joe_cpu):
    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), "cpu"))
    stream = wrapper.stream("One. Two two. Three three three. " * 4, SEEDED)
    first = next(stream)
    assert first.index == 0 and first.count == 12
    rest = list(stream)
    assert [c.index for c in rest] == list(range(1, 12))
    assert first.elapsed_s < rest[-1].elapsed_s
    assert wrapper.last_timings.first_audio_s == pytest.approx(first.elapsed_s)


def test_buffer_pool_reuses_by_size():
    pool = BufferPool("cpu")
    a = pool.get_buffer((4, 8))
    pool.return_buffer(a)
    b = pool.get_buffer((8, 4))  # same size, other shape: reused
    c = pool.get_buffer((3,), torch.long)
    assert b.data_ptr() == a.data_ptr() and b.shape == (8, 4)
    assert pool.stats.as_dict() == {"hits": 1, "misses": 2, "bytes": 4 * 8 * 4 + 3 * 8, "outstanding": 2}
    pool.return_buffer(b)
    pool.return_buffer(c)
    pool.clear()
    assert pool.stats.bytes == 0


def test_optimizer_buffer_api_and_clear_caches():
    optimizer = AdvancedTTSOptimizer(OptimizationConfig(), "cpu")
    buf = optimizer.get_buffer((16,), torch.float32)
    optimizer.return_buffer(buf)
    assert optimizer.get_stats()["pool"]["misses"] == 1
    optimizer.clear_caches()
    assert optimizer.get_stats()["pool"] == {"hits": 0, "misses": 0, "bytes": 0, "outstanding": 0}


def test_voice_embedding_cache_keys_on_content(tmp_path, monkeypatch):
    monkeypatch.setenv("TTS_TURBO_CACHE", str(tmp_path / "cache"))
    calls = []

    def embed(path):
        calls.append(path.name)
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8).astype(np.float32)
        return {"mean": torch.tensor([data.mean()]), "len": torch.tensor([len(data)])}

    a = tmp_path / "a.wav"
    a.write_bytes(b"\x01\x02\x03\x04")
    copy = tmp_path / "renamed.wav"
    copy.write_bytes(a.read_bytes())
    optimizer = AdvancedTTSOptimizer(OptimizationConfig(), "cpu", voice_cache_size=2)
    first = optimizer.get_voice_embedding(a, embed, "tiny")
    assert optimizer.get_voice_embedding(copy, embed, "tiny")["mean"].item() == first["mean"].item()
    assert calls == ["a.wav"]
    optimizer.get_voice_embedding(a, embed, "other-model")
    assert calls == ["a.wav", "a.wav"], "the model is part of the key"
    a.write_bytes(b"\x09\x09")
    assert optimizer.get_voice_embedding(a, embed, "tiny")["len"].item() == 2
    assert len(optimizer.voice_cache) == 2, "LRU-bounded"
    fresh = AdvancedTTSOptimizer(OptimizationConfig(), "cpu")
    fresh.get_voice_embedding(copy, embed, "tiny")
    assert calls == ["a.wav", "a.wav", "a.wav"], "persisted entries are read back from disk"
    assert fresh.get_stats()["voice_cache"]["hits"] == 1


def test_stats_report_threads_precision_and_memory(joe_cpu):
    _, optimizer = synth(joe_cpu, dataclasses.replace(OptimizationConfig(), num_threads=1))
    stats = optimizer.get_stats()
    assert stats["threads"] == 1
    assert set(stats["precision"]) == {"enc_p", "dp", "flow", "dec"}
    assert stats["memory"] == {"allocated": 0, "reserved": 0, "peak": 0}
    assert stats["summary"] == "fp32 eager"
    from engine.runtime import apply_threads

    apply_threads(0)


def test_config_validation_errors_are_specific():
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        OptimizationConfig(compile_mode="fastest")
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        OptimizationConfig(num_threads=-1)


def test_a_shape_that_fails_to_compile_falls_back_to_eager_visibly(joe_cpu):
    """Compilation happens per new shape, after warmup too: a failure there (an inductor assertion
    on one batch shape, seen on an H100) must cost that call nothing but speed, and say so."""
    from torch._dynamo.exc import BackendCompilerFailed

    opt = AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device)
    wrapper = OptimizedTTSWrapper(joe_cpu, opt)
    reference = wrapper.generate("A short test.", seed=3).audio
    runner = joe_cpu.runner

    def fails_to_compile(*args, **kwargs):
        raise BackendCompilerFailed(fails_to_compile, AssertionError("inductor assertion"), None)

    runner.stage_a, runner.compiled = fails_to_compile, True
    opt.set_stat("compile_launch", "plain launches")
    audio = wrapper.generate("A short test.", seed=3).audio
    np.testing.assert_array_equal(audio, reference)
    assert not runner.compiled and runner.stage_a == runner._stage_a
    assert any(f.startswith("compile: failed while compiling stage A") and "inductor assertion" in f for f in opt.get_stats()["fallbacks"])
    assert opt.get_stats()["model"]["compile_launch"] is None  # the panel's torch.compile line goes


def test_out_of_memory_becomes_advice(joe_cpu, monkeypatch):
    from engine.errors import DeviceOutOfMemory

    wrapper = OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig(batch_preprocessing=True), "cpu"))

    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield

    monkeypatch.setattr(joe_cpu, "synthesize", exhausted)
    with pytest.raises(DeviceOutOfMemory, match="lower max_batch_size"):
        wrapper.generate("Hello.")


def test_buffer_pool_refuses_a_double_return():
    pool = BufferPool("cpu")
    buf = pool.get_buffer((8,))
    pool.return_buffer(buf)
    with pytest.raises(ValueError, match="returned twice"):
        pool.return_buffer(buf)


def test_fused_kernels_on_cpu_run_the_vocoder_channels_last_and_say_triton_needs_a_gpu(joe_cpu, reference):
    from engine.models.piper.model import ChannelsLastConv1d, ChannelsLastConvTranspose1d, GemmConv1d

    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_fused_kernels=True)
    result, optimizer = synth(joe_cpu, cfg)
    stats = optimizer.get_stats()
    assert any("fused_kernels: no CUDA device: the Triton vocoder needs a GPU" in f for f in stats["fallbacks"])
    assert not any(isinstance(m, GemmConv1d) for m in joe_cpu.model.modules())  # measured slower on the CPU
    convs = [m for m in joe_cpu.model.dec.modules() if isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d)]
    assert all(isinstance(m, ChannelsLastConv1d | ChannelsLastConvTranspose1d) for m in convs)
    assert stats["model"]["fused_kernels"] == f"q/k/v as one, the vocoder's {len(convs)} convolutions channels-last"
    attention = joe_cpu.model.enc_p.encoder.attn_layers
    assert all(layer.qkv_weight is not None and layer.qkv_weight.shape == (3 * 192, 192) for layer in attention)
    assert "qkv_weight" not in "".join(joe_cpu.model.state_dict())  # derived, never saved
    assert len(result.audio) == len(reference) and snr_db(reference, result.audio) >= 50
    synth(joe_cpu, OptimizationConfig.unoptimized())  # toggling off restores PyTorch's forms
    assert not any(isinstance(m, ChannelsLastConv1d | ChannelsLastConvTranspose1d) for m in joe_cpu.model.modules())
    assert not joe_cpu.model.dec.channels_last
    assert all(layer.qkv_weight is None for layer in attention)


def test_gemm_convolutions_equal_pytorchs():
    """The GPU's matrix-product form of a convolution (checked here on the CPU): same function."""
    from engine.models.piper.model import GemmConv1d

    torch.manual_seed(0)
    conv = torch.nn.Conv1d(16, 24, 5, dilation=2, padding=4)
    x = torch.randn(2, 16, 50)
    want = conv(x)
    conv.__class__ = GemmConv1d
    torch.testing.assert_close(conv(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("owns", [False, True])
def test_a_graph_releases_its_inputs_as_it_was_captured_whatever_a_later_call_asks(owns):
    """A graph captured reading its inputs in place must not say they are free before its replay,
    even if a later call of the same key asks for owned inputs (and vice versa, owned copies free
    them at once)."""
    from engine.graphs import CapturedGraph, GraphRunner

    order: list[str] = []

    class Replay:
        def replay(self):
            order.append("replay")

    runner = GraphRunner(torch.device("cpu"))
    static = torch.zeros(4)
    runner.graphs[("B", 4)] = CapturedGraph(Replay(), (static,), (static,), 0.0, 0, owns_inputs=owns)
    runner.run(("B", 4), lambda x: (x,), torch.ones(4), own_inputs=not owns, inputs_taken=lambda: order.append("taken"))
    assert order == (["taken", "replay"] if owns else ["replay", "taken"])
    assert torch.equal(static, torch.ones(4))  # copied into the graph's input either way


def test_each_shape_first_run_compiled_reports_its_compile_time(joe_cpu):
    """`compile_s` gains one entry per stage and shape the first time it runs compiled, also for
    shapes first met after warmup (with CUDA graphs they compile inside the graph warmup, where
    the statistic stayed empty before); a shape met again adds nothing."""
    import ast

    optimizer = AdvancedTTSOptimizer(dataclasses.replace(OptimizationConfig.unoptimized(), shape_buckets=True), "cpu")
    wrapper = OptimizedTTSWrapper(joe_cpu, optimizer)
    joe_cpu.runner.compiled = True  # the eager stages stand in for compiled ones: the bookkeeping is under test
    try:
        wrapper.generate("A short test.", seed=1)
        short = optimizer.get_stats()["model"]["compile_s"]
        assert sorted(ast.literal_eval(key)[0] for key in short) == ["A", "B"]
        assert all(seconds > 0 for seconds in short.values())
        wrapper.generate("A short test.", seed=1)
        assert optimizer.get_stats()["model"]["compile_s"] == short
        wrapper.generate("A much longer sentence, whose tokens and frames fall into larger shape buckets than the short one.", seed=1)
        longer = optimizer.get_stats()["model"]["compile_s"]
        assert short.items() < longer.items()
        assert {ast.literal_eval(key)[0] for key in longer.keys() - short.keys()} == {"A", "B"}
    finally:
        joe_cpu.runner.compiled = False
