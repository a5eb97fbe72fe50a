"""GPU paths: CUDA parity with onnxruntime, graphs, precision, compile, batching, allocator.

Run on a CUDA machine (scripts/gpu_check.sh). Ids come from tests/data/phoneme_ids.json so the
GPU machine needs no espeak.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
from engine.bench import snr_db
from engine.config import SynthesisOptions
from engine.models.base import Segment
from engine.precision import exact_fp32

pytestmark = pytest.mark.gpu

IDS = json.loads((Path(__file__).parents[1] / "data" / "phoneme_ids.json").read_text())
NOISE_OFF = SynthesisOptions(noise_scale=0.0, noise_w=0.0, normalize=False, sentence_silence=0.0)
SEEDED = SynthesisOptions(seed=11, normalize=False)


def segments(name):
    return [Segment(s["text"], s["tokens"], s["pause_after"]) for s in IDS[name]]


@pytest.fixture(scope="module")
def joe_gpu():
    from engine import load_model

    return load_model("default", "cuda")


def run(model, cfg, name, options):
    wrapper = OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, model.device))
    segs = segments(name)
    wrapper.generate("", options, segments=segs)
    return wrapper.generate("", options, segments=segs).audio, wrapper.optimizer.get_stats()


def test_cuda_fp32_parity_with_onnxruntime(joe_gpu, joe_paths):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(joe_paths[0]), providers=["CPUExecutionProvider"])
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_tf32=False)
    report = []
    for i in range(6):
        for seg in segments(f"parity_{i}"):
            wrapper = OptimizedTTSWrapper(joe_gpu, AdvancedTTSOptimizer(cfg, "cuda"))
            ours = wrapper.generate("", NOISE_OFF, segments=[seg]).audio
            ref = session.run(None, {"input": np.array([seg.tokens]), "input_lengths": np.array([len(seg.tokens)]), "scales": np.array([0, 1, 0], dtype=np.float32)})[0].reshape(-1)
            report.append((len(seg.tokens), len(ref), len(ours), round(snr_db(ref, ours), 1)))
            assert len(ours) == len(ref)
            assert snr_db(ref, ours) >= 50
    print("\nCUDA fp32 parity (ids, ORT samples, ours, SNR dB):", *report, sep="\n  ")


@pytest.mark.parametrize(
    "flags, min_snr",
    [
        ({"enable_cuda_graphs": True}, 50),
        ({"enable_fused_kernels": True}, 50),
        ({"enable_flash_attention": True}, 50),
        ({"shape_buckets": True}, 50),
        ({"batch_preprocessing": True}, 50),
        ({"preallocate_buffers": True, "pin_memory": True}, 50),
        ({"enable_fp16": True}, 30),
        ({"enable_bf16": True}, 30),
    ],
)
def test_each_optimization_matches_eager_fp32(joe_gpu, flags, min_snr):
    base = OptimizationConfig.unoptimized()
    ref, _ = run(joe_gpu, base, "long", SEEDED)
    out, stats = run(joe_gpu, dataclasses.replace(base, **flags), "long", SEEDED)
    assert len(out) == len(ref), "optimizations must never change the audio length"
    snr = snr_db(ref, out)
    print(f"\n{flags}: SNR {snr:.1f} dB, fallbacks {stats['fallbacks']}")
    assert snr >= min_snr
    assert not stats["fallbacks"]


@pytest.mark.parametrize("flags", [{"batch_preprocessing": True}, {"batch_preprocessing": True, "enable_cuda_graphs": True}])
def test_batched_chapter_matches_sentence_by_sentence(joe_gpu, flags):
    base = OptimizationConfig.unoptimized()
    ref, _ = run(joe_gpu, base, "chapter", SEEDED)
    out, stats = run(joe_gpu, dataclasses.replace(base, **flags), "chapter", SEEDED)
    assert len(out) == len(ref)
    assert snr_db(ref, out) >= 50
    assert stats["memory"]["peak"] < 6 * 2**30, "batches stay within a consumer GPU's memory"


def test_overlapping_batches_change_no_sample(joe_gpu):
    """Stage A of a batch beside stage B of the one before (two streams, stage A's graphs per slot,
    stage B's fed by copies so that stage A may overwrite its outputs while stage B still runs)
    gives the audio of the same graphs run one stage after another."""
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), batch_preprocessing=True, enable_cuda_graphs=True, max_batch_size=8)
    wrapper = OptimizedTTSWrapper(joe_gpu, AdvancedTTSOptimizer(cfg, "cuda"))
    assert "two streams" in wrapper.optimizer.get_stats()["model"]["batch_overlap"]
    segs = segments("chapter")
    overlapped = [wrapper.generate("", SEEDED, segments=segs).audio for _ in range(3)]
    joe_gpu.runner.lanes = None
    one_stream = wrapper.generate("", SEEDED, segments=segs).audio
    for audio in overlapped:
        assert len(audio) == len(one_stream)
        assert snr_db(one_stream, audio) >= 80


def test_graphs_are_captured_and_replayed(joe_gpu):
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_cuda_graphs=True)
    _, stats = run(joe_gpu, cfg, "medium", SEEDED)
    graphs = stats["graphs"]
    assert graphs["count"] >= 2 and graphs["replays"] >= 2
    assert graphs["capture_s"] > 0 and graphs["memory_bytes"] >= 0
    assert graphs["fallbacks"] == {}


CAPTURE_FAILURE = """
import torch
from engine.graphs import GraphRunner
notes = []
runner = GraphRunner(torch.device("cuda"), warmup_iters=1, on_fallback=lambda f, r: notes.append(f))
x = torch.arange(4.0, device="cuda")
syncs = lambda t: (t * float(t.sum().item()),)  # a host sync: cannot be captured
assert torch.equal(runner.run(("k",), syncs, x)[0], x * 6)
assert runner.stats.failures and notes and runner.stats.eager_calls == 1
assert torch.equal(runner.run(("k",), syncs, x)[0], x * 6) and runner.stats.eager_calls == 2
print("fallback recorded:", runner.stats.failures)
"""


def test_chained_graphs_read_the_first_graphs_output_in_place():
    from engine.graphs import GraphRunner

    runner = GraphRunner(torch.device("cuda"), warmup_iters=1)
    x = torch.arange(8.0, device="cuda")
    first = lambda t: (t * 2,)
    second = lambda t: (t + 1,)
    for value in (x, x + 10):
        (mid,) = runner.run(("first",), first, value)
        (out,) = runner.run(("second",), second, mid)
        torch.testing.assert_close(out, value * 2 + 1)
    assert runner.graphs[("second",)].inputs[0] is runner.graphs[("first",)].outputs[0]
    assert runner.stats.replays == 2 and runner.stats.captured == 2


def test_a_graph_that_owns_its_inputs_copies_them_in_and_says_so_before_its_replay():
    from engine.graphs import GraphRunner

    runner = GraphRunner(torch.device("cuda"), warmup_iters=1)
    first = lambda t: (t * 2,)
    second = lambda t: (t + 1,)
    taken_at: list[int] = []
    for value in (torch.arange(8.0, device="cuda"), torch.arange(8.0, device="cuda") + 10):
        (mid,) = runner.run(("first",), first, value)
        (out,) = runner.run(("second",), second, mid, own_inputs=True, inputs_taken=lambda: taken_at.append(runner.stats.replays))
        mid.fill_(-1.0)  # the producer reuses its tensor: the second graph read its own copy
        torch.testing.assert_close(out, value * 2 + 1)
    assert runner.graphs[("second",)].inputs[0] is not runner.graphs[("first",)].outputs[0]
    assert taken_at == [0, 1], "once per call: after the capture, then before the replay (which counts 2)"
    assert runner.stats.replays == 2


def test_same_seed_same_audio_on_cpu_and_gpu(joe_gpu, joe_cpu):
    """Noise is a pure function of (seed, sentence, position), not of a device's generator."""
    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_tf32=False)
    gpu, _ = run(joe_gpu, cfg, "medium", SEEDED)
    cpu, _ = run(joe_cpu, cfg, "medium", SEEDED)
    assert len(gpu) == len(cpu)
    assert snr_db(cpu, gpu) >= 40


def test_capture_failure_falls_back_to_eager_and_is_counted():
    import subprocess
    import sys

    # own process: a failed capture may leave CUDA's global RNG unusable for the rest of it
    done = subprocess.run([sys.executable, "-c", CAPTURE_FAILURE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "fallback recorded" in done.stdout


def test_steady_state_allocates_nothing_new(joe_gpu):
    cfg = OptimizationConfig.max_speed(cuda=True)
    wrapper = OptimizedTTSWrapper(joe_gpu, AdvancedTTSOptimizer(cfg, "cuda"))
    segs = segments("medium")
    for _ in range(3):
        wrapper.generate("", SEEDED, segments=segs)
    torch.cuda.synchronize()
    before = torch.cuda.memory_stats()
    for _ in range(100):
        wrapper.generate("", SEEDED, segments=segs)
    torch.cuda.synchronize()
    after = torch.cuda.memory_stats()
    for key in ("reserved_bytes.all.current", "allocated_bytes.all.current", "segment.all.current"):
        assert after[key] == before[key], key
    stats = wrapper.optimizer.get_stats()
    pool, graphs = stats["pool"], stats["graphs"]
    assert pool["outstanding"] == 0
    assert graphs["replays"] >= 200  # each call's inputs go straight into the captured graphs' own tensors
    print(f"\nallocator flat over 100 calls: reserved {after['reserved_bytes.all.current'] / 2**20:.1f} MiB, pool {pool}, graph replays {graphs['replays']}")


def test_a_sentence_alone_is_handed_out_in_its_own_pinned_array(joe_gpu):
    """Max speed copies a lone sentence's audio into a pinned array of its own and hands that out,
    with no move after the GPU: the same audio as through the batching machinery, a fresh array
    per call that later calls leave alone, and no new pinned block over many calls (each call's
    array goes back to torch's host cache once dropped)."""
    from engine.models.base import StageTimes

    cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=True), enable_compile=False)
    wrapper = OptimizedTTSWrapper(joe_gpu, AdvancedTTSOptimizer(cfg, "cuda"))
    segs = segments("medium")
    assert len(segs) == 1
    first = wrapper.generate("", SEEDED, segments=segs).audio
    kept = first.copy()
    second = wrapper.generate("", SEEDED, segments=segs).audio
    assert torch.from_numpy(first).is_pinned() and not np.shares_memory(first, second)
    assert np.array_equal(first, kept) and np.array_equal(first, second)
    (alone,) = joe_gpu.synthesize(segs, SEEDED, StageTimes())  # with its pause: the wrapper's feed drops the last one
    (through_run,) = joe_gpu.synthesize(iter(segs), SEEDED, StageTimes())
    assert np.array_equal(through_run, alone) and np.array_equal(alone[: len(first)], first) and not alone[len(first) :].any()
    del first, second
    before = torch.cuda.host_memory_stats()["num_host_alloc"]
    for _ in range(50):
        wrapper.generate("", SEEDED, segments=segs)
    assert torch.cuda.host_memory_stats()["num_host_alloc"] == before


@pytest.mark.parametrize("text", ["medium", "chapter"])
def test_the_reported_peak_is_the_calls_allocator_peak(joe_gpu, text):
    """Read while the GPU still runs the last batch (`StageTimes.peak_bytes`), it equals the
    allocator's peak read after the call: nothing is allocated once the last batch is queued."""
    cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=True), enable_compile=False)
    wrapper = OptimizedTTSWrapper(joe_gpu, AdvancedTTSOptimizer(cfg, "cuda"))
    segs = segments(text)
    wrapper.generate("", SEEDED, segments=segs)
    result = wrapper.generate("", SEEDED, segments=segs)
    assert result.peak_vram_bytes == torch.cuda.max_memory_allocated() > 0


def test_compile_matches_eager(joe_gpu):
    pytest.importorskip("triton")
    base = OptimizationConfig.unoptimized()
    ref, _ = run(joe_gpu, base, "medium", SEEDED)
    out, stats = run(joe_gpu, dataclasses.replace(base, enable_compile=True, enable_cuda_graphs=True), "medium", SEEDED)
    assert len(out) == len(ref)
    assert snr_db(ref, out) >= 50, stats["fallbacks"]


def test_max_speed_compiled_keeps_every_kernel_and_matches_eager(joe_gpu):
    """All on and compiled, as the benchmark's medium bar runs: the encoder's Triton kernels stay
    in (a traced launch one argument short once made them give way, run AY) and the audio keeps
    eager fp32's length."""
    pytest.importorskip("triton")
    ref, _ = run(joe_gpu, OptimizationConfig.unoptimized(), "medium", SEEDED)
    out, stats = run(joe_gpu, dataclasses.replace(OptimizationConfig.max_speed(cuda=True), enable_compile=True), "medium", SEEDED)
    print(f"\nMax speed compiled: SNR {snr_db(ref, out):.1f} dB, fallbacks {stats['fallbacks']}")
    assert not stats["fallbacks"]
    assert len(out) == len(ref)
    assert snr_db(ref, out) >= 30


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float16, 5e-3)])
def test_fused_decoder_matches_the_eager_decoder(joe_gpu, dtype, tolerance):
    pytest.importorskip("triton")
    from engine.models.piper.fused import FusedGenerator

    joe_gpu.ensure_on_device()
    reference = joe_gpu.model.dec.float()
    decoder = type(reference)(joe_gpu.model.arch).to("cuda", dtype)
    decoder.load_state_dict(reference.state_dict())
    torch.manual_seed(5)
    frames = torch.tensor([400, 257, 31], device="cuda")
    mask = (torch.arange(400, device="cuda")[None] < frames[:, None]).to(dtype)[:, None]
    z = torch.randn(3, joe_gpu.model.arch.inter_channels, 400, device="cuda", dtype=dtype) * mask
    with torch.inference_mode(), exact_fp32():
        want = reference(z.float(), None, mask.float())[:, 0]
        got = FusedGenerator(decoder)(z, frames, None)
    assert got.shape == want.shape and got.dtype == torch.float32
    for i, n in enumerate(frames.tolist()):
        a, b = got[i, : n * 256].double(), want[i, : n * 256].double()
        err = ((a - b).norm() / b.norm()).item()
        print(f"\nfused decoder {dtype}, item {i} ({n} frames): relative error {err:.2e}")
        assert torch.isfinite(a).all() and err < tolerance


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_fused_flow_matches_the_eager_flow_eager_and_captured(joe_gpu, dtype):
    """The Triton flow against the fp32 flow: as close as the eager flow in the same precision
    (fp32 within 1e-5), also replayed from a CUDA graph, and zero past each item's length."""
    pytest.importorskip("triton")
    from engine.models.piper.fused import FusedFlow
    from engine.models.piper.model import ResidualCouplingBlock

    joe_gpu.ensure_on_device()
    reference = joe_gpu.model.flow.float()
    flow = ResidualCouplingBlock(joe_gpu.model.arch).to("cuda", dtype).eval()
    flow.load_state_dict(reference.state_dict())
    torch.manual_seed(6)
    frames = torch.tensor([700, 431, 12], device="cuda")
    mask = (torch.arange(720, device="cuda")[None] < frames[:, None]).float()[:, None]
    z = torch.randn(3, joe_gpu.model.arch.inter_channels, 720, device="cuda") * mask
    fused = FusedFlow(flow)
    with torch.inference_mode(), exact_fp32():
        want = reference.reverse(z, mask, None)
        same_precision = flow.reverse(z.to(dtype), mask.to(dtype), None).double()
        got = fused(z.to(dtype), frames, None)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = fused(z.to(dtype), frames, None)
        graph.replay()
    eager_err = ((same_precision - want.double()).norm() / want.double().norm()).item()
    for name, out in (("eager", got), ("captured", captured)):
        err = ((out.double() - want.double()).norm() / want.double().norm()).item()
        print(f"\nfused flow {dtype}, {name}: relative error {err:.2e} (eager flow in {dtype}: {eager_err:.2e})")
        assert out.dtype == dtype and err < max(1e-5, 2 * eager_err)
        assert (out.float()[mask.expand_as(out) == 0] == 0).all()


def eager_compiled_captured(module, *args) -> dict[str, torch.Tensor]:
    """module(*args) run eagerly, compiled into one graph, and replayed from a CUDA graph."""
    eager = module(*args)
    compiled = torch.compile(module, fullgraph=True)(*args)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = module(*args)
    graph.replay()
    return {"eager": eager, "compiled": compiled, "captured": captured}


@pytest.mark.parametrize("batch, positions", [(1, 416), (16, 256)])
def test_fused_feed_forward_matches_the_plain_block_eager_compiled_and_captured(batch, positions):
    """One sentence (narrow tiles) and a chapter batch through `exact_conv1d`: fp32-accurate at
    valid positions and zero past them, whether eager, compiled (one graph) or in a CUDA graph."""
    pytest.importorskip("triton")
    import copy

    from engine.models.piper.model import FFN

    torch.manual_seed(7)
    ffn = FFN(192, 768, 3).cuda().eval()
    reference = copy.deepcopy(ffn).double()
    assert ffn.fuse(True)
    lengths = torch.randint(positions // 2, positions + 1, (batch,), device="cuda", dtype=torch.int32)
    mask = (torch.arange(positions, device="cuda")[None] < lengths[:, None]).float()[:, None]
    x = torch.randn(batch, 192, positions, device="cuda")
    with torch.inference_mode(), exact_fp32():
        want = reference(x.double(), mask.double())
        runs = eager_compiled_captured(ffn, x, mask, lengths)
    inside = mask.expand_as(want) > 0
    for name, got in runs.items():
        err = ((got[inside].double() - want[inside]).norm() / want[inside].norm()).item()
        print(f"\nfused feed-forward, {name}: relative error {err:.2e}")
        assert err < 1e-5 and (got[~inside] == 0).all(), name


@pytest.mark.parametrize("batch, positions", [(1, 416), (16, 256)])
def test_triton_attention_matches_the_plain_one_eager_compiled_and_captured(batch, positions):
    """One sentence and a chapter batch through `relative_attention` (joe's 192 channels, 2 heads,
    window 4): fp32-accurate against the plain attention in float64 at valid positions, zero past
    them, whether eager, compiled (one graph) or in a CUDA graph."""
    pytest.importorskip("triton")
    import copy

    from engine.models.piper.model import RelativeAttention

    torch.manual_seed(5)
    attn = RelativeAttention(192, 2, 4).cuda().eval()
    for p in attn.parameters():
        p.data.normal_(0, 0.2)
    reference = copy.deepcopy(attn).double()
    attn.fuse_projections(True)
    assert attn.use_triton(True)
    lengths = torch.randint(positions // 3, positions + 1, (batch,), device="cuda", dtype=torch.int32)
    lengths[0] = positions
    mask = (torch.arange(positions, device="cuda")[None] < lengths[:, None]).float()[:, None]
    x = torch.randn(batch, 192, positions, device="cuda") * mask
    bias = (1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4
    with torch.inference_mode(), exact_fp32():
        want = reference(x.double(), bias.double())
        runs = eager_compiled_captured(attn, x, None, lengths)
    inside = mask.expand_as(want) > 0
    for name, got in runs.items():
        err = ((got[inside].double() - want[inside]).norm() / want[inside].norm()).item()
        print(f"\nTriton attention {batch}x{positions}, {name}: relative error {err:.2e}")
        assert err < 1e-5, name


def test_triton_attention_keeps_every_duration(joe_gpu):
    """Fused kernels with SDPA chosen run the encoder's attention in Triton: the long text and the
    chapter keep eager fp32's sample count, one sentence and batched."""
    base = OptimizationConfig.unoptimized()
    cfg = dataclasses.replace(base, enable_fused_kernels=True, enable_flash_attention=True)
    for name, flags in (("long", {}), ("chapter", {"batch_preprocessing": True})):
        ref, _ = run(joe_gpu, dataclasses.replace(base, **flags), name, SEEDED)
        out, stats = run(joe_gpu, dataclasses.replace(cfg, **flags), name, SEEDED)
        assert stats["model"]["sdpa_backend"].startswith("Triton relative-position flash attention")
        assert len(out) == len(ref), name
        print(f"\nTriton attention, {name}: SNR {snr_db(ref, out):.1f} dB")
        assert snr_db(ref, out) >= 50


@pytest.mark.parametrize("batch, positions", [(1, 416), (16, 256)])
def test_exact_products_are_fp32_accurate_eager_compiled_and_captured(joe_gpu, batch, positions):
    """Stage A of one sentence (narrow tiles) and of a chapter batch with the encoder's and
    duration predictor's 1 × 1 products in Triton (`use_exact_products`): against float64, the
    log-durations and prior means are as accurate as with cuBLAS's fp32 products, and the rounded
    durations the same as float64's but for a rare token at a rounding edge, eager, compiled and
    captured."""
    pytest.importorskip("triton")
    import copy

    from engine.models.piper.model import use_exact_products

    joe_gpu.ensure_on_device()  # the weights move with the first synthesis, which run alone this test is
    model = copy.deepcopy(joe_gpu.model).eval()  # as earlier tests' optimizers left it: every kernel off here
    for ffn in model.enc_p.encoder.ffn_layers:
        ffn.fuse(False)
    for attn in model.enc_p.encoder.attn_layers:
        attn.use_triton(False)
        attn.fuse_projections(True)
    use_exact_products(model.enc_p, False), use_exact_products(model.dp, False)
    plain = copy.deepcopy(model)
    reference = copy.deepcopy(model).double()
    assert use_exact_products(model.enc_p, True) == 13 and use_exact_products(model.dp, True) == 17
    torch.manual_seed(3)
    ids = torch.randint(1, model.arch.n_vocab, (batch, positions), device="cuda")
    lengths = torch.randint(positions // 2, positions + 1, (batch,), device="cuda")
    lengths[0] = positions
    noise = torch.randn(batch, 2, positions, device="cuda") * 0.8

    def stage_a(m, dtype=torch.float32):
        def run(ids, lengths):
            x, m_p, _, mask = m.encode_text(ids, lengths)
            logw = m.dp.reverse(x, mask, (noise * mask).to(dtype), None)
            return torch.cat([m_p, logw], dim=1)
        return run

    with torch.inference_mode(), exact_fp32():
        want = stage_a(reference, torch.float64)(ids, lengths)
        cublas = stage_a(plain)(ids, lengths)
        runs = eager_compiled_captured(stage_a(model), ids, lengths)
    inside = (torch.arange(positions, device="cuda")[None] < lengths[:, None])[:, None].expand_as(want)

    def error(got):
        return ((got[inside].double() - want[inside]).norm() / want[inside].norm()).item()

    def frames(out):
        return torch.ceil(torch.exp(out[:, -1].double()))[inside[:, -1]]

    baseline = error(cublas)
    for name, got in runs.items():
        moved = int((frames(got) != frames(want)).sum())
        print(f"\nexact products, {name}: relative error {error(got):.2e} (cuBLAS fp32 {baseline:.2e}), {moved} of {int(inside[:, -1].sum())} durations off float64's")
        assert error(got) <= 2 * baseline + 1e-7, name
        assert moved <= 1, name
