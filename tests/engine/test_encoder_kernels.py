"""The encoder's Triton kernels compute what the plain blocks do: the feed-forward block through the
Triton convolution (`exact_conv1d`) and the relative-position attention (`relative_attention`). Kernel runs use Triton's interpreter (TRITON_INTERPRET=1) and tracing runs use
fake tensors, each in a child process, since the interpreter is chosen when the kernels are defined
and tracing cannot see into interpreted kernels."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

triton = pytest.importorskip("triton")

ROOT = Path(__file__).parents[2]

SETUP = r"""
import json, torch
from engine.models.piper.config import PiperArch
from engine.models.piper.model import FFN, Encoder

def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()

def randomized(module):
    for p in module.parameters():
        p.data.normal_(0, 0.3)
    return module.eval()

torch.manual_seed(0)
B, C, F, T = 3, 8, 16, 160
lengths = torch.tensor([150, 9, 1], dtype=torch.int32)  # item 1 skips the tile of positions 128..159
mask = (torch.arange(T)[None] < lengths[:, None]).float()[:, None]  # (B, 1, T)
x = torch.randn(B, C, T)
report = {}
"""

INTERPRETED = SETUP + r"""
import engine.kernels.conv1d as kernels

allocate = kernels.channels_last
kernels.channels_last = lambda shape, like: allocate(shape, like).fill_(float("nan"))  # stale memory
ffn = randomized(FFN(C, F, 3))
with torch.no_grad():
    want = ffn(x, mask)
    report["fused"] = ffn.fuse(True)
    report["taps shape"] = list(ffn.taps_1.shape) == [3, F, C] and list(ffn.taps_2.shape) == [3, C, F]
    report["taps not saved"] = not any(name.startswith("taps") for name in ffn.state_dict())
    raw = torch.ops.tts_turbo.exact_conv1d(x, ffn.taps_1, ffn.conv_1.bias, lengths, 1, False, False)
    report["raw output past a length is unspecified"] = bool(raw[1, :, 128:].isnan().all())
    deep, deep_taps, deep_bias = torch.randn(B, 384, T), torch.randn(3, C, 384) * 384**-0.5, torch.randn(C)  # 18 steps of 64 channels
    report["a deep product sums in two runs"] = kernels.narrow_runs(3, 384) == 2 and kernels.narrow_runs(3, 192) == 1
    in_runs = torch.ops.tts_turbo.exact_conv1d(deep, deep_taps, deep_bias, lengths, 1, True, True)
    valid = mask.expand_as(in_runs) > 0
    plain = torch.nn.functional.conv1d(torch.relu(deep * mask), deep_taps.permute(1, 2, 0), deep_bias, padding=1)
    report["runs error"] = rel(in_runs[valid], plain[valid])
    report["runs zero past the lengths"] = bool((in_runs[~valid] == 0).all())
    got = ffn(x, mask, lengths)
    inside = mask.expand_as(got) > 0
    report["ffn"] = rel(got[inside], want[inside])
    report["ffn zero past the lengths"] = bool((got[~inside] == 0).all())
    report["ffn without lengths is plain"] = bool(torch.equal(ffn(x, mask), want))

    arch = PiperArch(n_vocab=10, hidden_channels=C, inter_channels=C, filter_channels=F, n_heads=2, n_layers=2,
        window_size=4, ffn_kernel_size=3, dp_filter_channels=C, dp_kernel_size=3, dp_n_layers=1, n_flows=1,
        flow_hidden_channels=C, flow_kernel_size=5, flow_dilation_rate=1, flow_n_layers=1, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),), upsample_rates=(2,),
        upsample_kernel_sizes=(4,), upsample_initial_channel=C, n_speakers=1, gin_channels=0)
    encoder = randomized(Encoder(arch))
    want = encoder(x, mask)
    for layer in encoder.ffn_layers:
        layer.fuse(True)
    got = encoder(x, mask)
    inside = mask.expand_as(got) > 0
    report["encoder"] = rel(got[inside], want[inside])
    report["encoder zero past the lengths"] = bool((got[~inside] == 0).all())
    for layer in encoder.ffn_layers:
        layer.fuse(False)
    report["unfused"] = all(layer.taps_1 is None and layer.taps_2 is None for layer in encoder.ffn_layers)

    from engine.models.piper.model import pointwise, use_exact_products

    class Owner(torch.nn.Module):  # a module that runs `proj` through `pointwise`
        POINTWISE = ("proj",)

        def __init__(self, c_in, c_out, bias=True):
            super().__init__()
            self.proj = torch.nn.Conv1d(c_in, c_out, 1, bias=bias)

    owner = randomized(Owner(F, C))
    conv = owner.proj
    wide = torch.randn(B, F, T)
    want = conv(wide)
    report["one product armed"] = use_exact_products(owner, True) == 1
    report["taps not saved"] = "proj.taps" not in owner.state_dict()
    report["others stay plain"] = use_exact_products(randomized(torch.nn.Conv1d(F, C, 1)), True) == 0
    got = pointwise(conv, wide, lengths)
    inside = mask.expand_as(got) > 0
    report["pointwise error"] = rel(got[inside], want[inside])
    report["pointwise zero past the lengths"] = bool((got[~inside] == 0).all())  # stale NaN memory: the skipped tile too
    report["pointwise without lengths is plain"] = bool(torch.equal(pointwise(conv, wide, None), want))
    report["narrow inputs stay plain"] = use_exact_products(randomized(Owner(C, F)), True) == 0
    report["no bias stays plain"] = use_exact_products(randomized(Owner(F, C, bias=False)), True) == 0
    report["disarmed"] = use_exact_products(owner, False) == 0 and conv.taps is None
print(json.dumps(report))
"""

TRACED = SETUP + r"""
import logging

# without a GPU Triton cannot lower the kernel to find which arguments it writes, and says so at length
logging.getLogger("torch._dynamo").setLevel(logging.ERROR)

class Traced(Exception):
    pass

graphs, lowered = [], []

def record(gm, example_inputs):
    from torch._functorch.aot_autograd import aot_module_simplified

    graphs.append(gm)

    def lowering(aot_gm, aot_inputs):
        lowered.append(aot_gm)
        def run(*args):
            raise Traced  # the kernels need a GPU (or the interpreter, which tracing cannot see into)
        return run

    return aot_module_simplified(gm, example_inputs, fw_compiler=lowering)

def targets(gm):
    return [str(node.target) for node in gm.graph.nodes if node.op == "call_function"]

def trace(module, operator, *args):  # (graphs, the operator's calls in the first, Triton launches after AOT)
    graphs.clear(), lowered.clear()
    with torch.no_grad():
        try:
            torch.compile(module, backend=record, fullgraph=True)(*args)
        except Traced:
            pass
    return len(graphs), targets(graphs[0]).count(operator), sum("triton_kernel_wrapper" in t for t in targets(lowered[0]))

from engine.models.piper.model import RelativeAttention

ffn = randomized(FFN(C, F, 3))
ffn.fuse(True)
report["feed-forward"] = trace(ffn, "tts_turbo.exact_conv1d", x, mask, lengths)
from engine.models.piper.model import DDSConv, use_exact_products
dds = randomized(DDSConv(F, 3, 2))
use_exact_products(dds, True)
report["duration layers"] = trace(dds, "tts_turbo.exact_conv1d", torch.randn(B, F, T), mask, None, lengths)
report["depthwise convolutions traced"] = sum("conv" in t and "exact_conv1d" not in t for t in targets(graphs[0]))
attn = randomized(RelativeAttention(C, 2, 4))
attn.fuse_projections(True)
attn.use_triton(True)
report["attention"] = trace(attn, "tts_turbo.relative_attention", x, None, lengths)

import engine.kernels.attention as attention
import engine.kernels.conv1d as conv1d

def graphs_over_lengths(module, positions):  # one item of each length, dynamic shapes
    graphs.clear()
    torch._dynamo.reset()
    dynamic = torch.compile(module, backend=record, dynamic=True)
    for count in positions:
        with torch.no_grad():
            try:
                dynamic(torch.randn(1, C, count), None, torch.full((1,), count, dtype=torch.int32))
            except Traced:
                pass
    return len(graphs)

sentences = (40, 48, 100, 200, 480, 1000, 1600, 2000)  # one sentence up to a batch just below the threshold
report["attention graphs over eight lengths"] = graphs_over_lengths(attn, sentences)
splits_for = attention.splits_for
attention.splits_for = lambda rows: 1
report["attention graphs with the keys never split"] = graphs_over_lengths(attn, sentences)
attention.splits_for = splits_for
use_exact_products(attn, True)  # q/k/v and output products: narrow tiles below the same threshold
across = (200, 1000, 2000, 2100, 3000, 4000)
report["graphs across the threshold"] = graphs_over_lengths(attn, across)
conv1d.SMALL_BATCH_ROWS = 700  # as if the products chose their tiles at another size
report["graphs with the products' threshold elsewhere"] = graphs_over_lengths(attn, across)
print(json.dumps(report))
"""


ATTENTION = r"""
import json, torch
import engine.kernels.attention as attention
from engine.kernels.attention import launch
from engine.models.piper.config import PiperArch
from engine.models.piper.model import Encoder, RelativeAttention

def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()

torch.manual_seed(0)
report = {}
# (batch, channels, heads, positions, lengths, window): positions past a 64-key block, a text
# shorter than the window, a batch with a one-token item
for B, C, H, T, lens, w in ((3, 16, 2, 150, [150, 70, 1], 4), (1, 12, 2, 5, [5], 4), (2, 32, 4, 90, [90, 3], 2)):
    attn = RelativeAttention(C, H, w).eval()
    for p in attn.parameters():
        p.data.normal_(0, 0.5)
    attn.fuse_projections(True)
    lengths = torch.tensor(lens, dtype=torch.int32)
    mask = (torch.arange(T)[None] < lengths[:, None]).float()[:, None]
    x = torch.randn(B, C, T) * mask
    bias = (1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4
    with torch.no_grad():
        want = attn(x, bias)
        report[f"T{T} on"] = attn.use_triton(True)
    inside = mask.expand_as(want) > 0
    for splits in (1, 2, 4):  # the keys in one run, or in runs merged by a second launch
        attention.splits_for = lambda *args, splits=splits: splits
        with torch.no_grad():
            got = attn(x, None, lengths)
            qkv = torch.matmul(attn.qkv_weight, x) + attn.qkv_bias[:, None]
            raw = launch(qkv, attn.emb_rel_k[0], attn.emb_rel_v[0], lengths, H, attn.k_channels**-0.5)
        report[f"T{T} {splits} splits error"] = rel(got[inside], want[inside])
        report[f"T{T} {splits} splits zero past the lengths"] = bool((raw[~mask.expand_as(raw).bool()] == 0).all())
attention.splits_for = lambda *args: 2

arch = PiperArch(n_vocab=10, hidden_channels=16, inter_channels=16, filter_channels=32, n_heads=2, n_layers=2,
    window_size=4, ffn_kernel_size=3, dp_filter_channels=16, dp_kernel_size=3, dp_n_layers=1, n_flows=1,
    flow_hidden_channels=16, flow_kernel_size=5, flow_dilation_rate=1, flow_n_layers=1, resblock="2",
    resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),), upsample_rates=(2,),
    upsample_kernel_sizes=(4,), upsample_initial_channel=16, n_speakers=1, gin_channels=0)
encoder = Encoder(arch).eval()
for p in encoder.parameters():
    p.data.normal_(0, 0.3)
T, lengths = 120, torch.tensor([120, 33], dtype=torch.int32)
mask = (torch.arange(T)[None] < lengths[:, None]).float()[:, None]
x = torch.randn(2, 16, T)
with torch.no_grad():
    want = encoder(x, mask)
    for attn in encoder.attn_layers:
        attn.fuse_projections(True)
        attn.use_triton(True)
    got = encoder(x, mask)
inside = mask.expand_as(got) > 0
report["encoder error"] = rel(got[inside], want[inside])
report["encoder zero past the lengths"] = bool((got[~inside] == 0).all())

from engine.models.piper.model import StochasticDurationPredictor, use_exact_products
with torch.no_grad():
    report["encoder products armed"] = use_exact_products(encoder, True) == 2 * 2  # q/k/v and output per layer
    got = encoder(x, mask)
    report["encoder with products error"] = rel(got[inside], want[inside])
    report["encoder with products zero past the lengths"] = bool((got[~inside] == 0).all())
    dp = StochasticDurationPredictor(arch).eval()
    for p in dp.parameters():
        p.data.normal_(0, 0.3)
    noise = torch.randn(2, 2, T) * mask
    want = dp.reverse(x, mask, noise, None)
    report["duration products armed"] = use_exact_products(dp, True) == 3 + 3 * 2  # pre, its layer, proj; per spline flow its layer and proj
    got = dp.reverse(x, mask, noise, None)
inside = mask.expand_as(got) > 0
report["duration predictor error"] = rel(got[inside], want[inside])
print(json.dumps(report))
"""


def _child(script: str, interpret: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_fused_ffn_and_products_equal_the_plain_ones_at_valid_positions_and_are_zero_past_them():
    report = _child(INTERPRETED, interpret=True)
    errors = ("ffn", "encoder", "pointwise error", "runs error")
    for name in errors:
        assert isinstance(report[name], float) and report[name] < 1e-5, (name, report[name])
    for name, value in report.items():
        if name not in errors:
            assert value is True, name


def test_encoder_kernels_compile_into_one_graph_that_inductor_sees_into():
    """No graph break around the operators, and AOT decomposes them into their Triton kernel
    launches: two for the feed-forward, two for one sentence's attention (key runs and their
    merge), one per 1 × 1 product of the duration predictor's layers. Under dynamic shapes the
    attention's key runs add no recompile over one sentence's lengths, and the products' narrow
    tiles none beyond theirs (one at another threshold would)."""
    report = _child(TRACED, interpret=False)
    graphs = report.pop("attention graphs over eight lengths"), report.pop("attention graphs with the keys never split")
    across = report.pop("graphs across the threshold"), report.pop("graphs with the products' threshold elsewhere")
    assert report == {"feed-forward": [1, 2, 2], "attention": [1, 1, 2], "duration layers": [1, 2, 2], "depthwise convolutions traced": 0}
    assert graphs[0] == graphs[1], graphs
    assert across[0] < across[1], across


def test_a_traced_product_launch_names_every_kernel_parameter_and_no_launch_option():
    """Inductor passes a traced kernel exactly the arguments it is given, filling in no defaults: a
    launch that left `PDL` to its default was one argument short on the GPU ("launcher() missing
    1 required positional argument: '_grid_2'") and the encoder's kernels gave way (run AY)."""
    from engine.kernels import conv1d

    launches = []

    class Recording:
        def __getitem__(self, grid):
            return lambda *args, **kwargs: launches.append((args, kwargs))

    x, lengths = torch.randn(1, 8, 40), torch.tensor([40], dtype=torch.int32)
    conv1d.conv1d(x, torch.randn(3, 16, 8), torch.randn(16), lengths, padding=1, launcher=Recording())
    conv1d.conv1d(x, torch.randn(3, 16, 8), None, lengths, padding=1, splits=2, launcher=Recording())
    assert len(launches) == 2
    for args, kwargs in launches:
        named = [*conv1d.conv1d_kernel.arg_names[: len(args)], *kwargs]
        assert sorted(set(named) - {"num_warps", "num_stages"}) == sorted(conv1d.conv1d_kernel.arg_names)
        assert kwargs["PDL"] is False


def test_the_attention_and_the_products_change_launch_shape_at_one_size():
    """Under torch.compile's dynamic shapes a size comparison is a guard and a new guard a
    recompile: the attention's key runs and the products' narrow tiles change at the same size."""
    from engine.kernels import attention
    from engine.kernels.device import SMALL_BATCH_ROWS

    assert attention.splits_for(SMALL_BATCH_ROWS - 1) == attention.SPLITS > 1
    assert attention.splits_for(SMALL_BATCH_ROWS) == 1


@pytest.mark.parametrize("dilation", [1, 3, 9])
def test_depthwise_taps_equal_the_depthwise_convolution(dilation):
    """What compiled stage A runs for the duration predictor's dilated depthwise convolutions (so
    that Inductor fuses them into the layer norm after them): the convolution, at fp32 rounding."""
    import torch
    from torch import nn

    from engine.models.piper.model import depthwise_taps

    torch.manual_seed(dilation)
    conv = nn.Conv1d(24, 24, 3, groups=24, dilation=dilation, padding=dilation)
    x = torch.randn(2, 24, 40)
    with torch.no_grad():
        want, got = conv(x), depthwise_taps(conv, x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-6


def test_even_kernels_do_not_fuse():
    from engine.models.piper.model import FFN

    ffn = FFN(8, 16, 4)  # asymmetric padding (2, 1), which the same-length kernel cannot express
    assert ffn.fuse(True) is False and ffn.taps_1 is None


def test_fused_kernels_on_cpu_leave_the_feed_forward_plain(joe_cpu):
    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper

    layers = joe_cpu.model.enc_p.encoder.ffn_layers
    try:
        for layer in layers:
            layer.fuse(True)  # as a GPU optimization would have left them
        optimizer = AdvancedTTSOptimizer(dataclasses.replace(OptimizationConfig.unoptimized(), enable_fused_kernels=True), "cpu")
        OptimizedTTSWrapper(joe_cpu, optimizer).generate("One short sentence.")
        assert all(layer.taps_1 is None and layer.taps_2 is None for layer in layers)
        assert "feed-forward" not in optimizer.get_stats()["model"]["fused_kernels"]
    finally:
        for layer in layers:
            layer.fuse(False)


def test_encoder_triton_kernels_that_fail_give_way_to_the_plain_ones_visibly(joe_cpu):
    """The encoder's Triton kernels are built at the first call (and anew for a batch size that
    takes other tiles): if any cannot build or run there, that call still returns the same audio,
    and the fallback shows."""
    import numpy as np

    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
    from engine.models.piper.model import exact_products_armed, use_exact_products

    optimizer = AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device)
    wrapper = OptimizedTTSWrapper(joe_cpu, optimizer)
    reference = wrapper.generate("A short test.", seed=3).audio
    model = joe_cpu.model
    encoder = model.enc_p.encoder
    try:
        for ffn in encoder.ffn_layers:
            ffn.fuse(True)  # on the CPU their launches fail, as a failed build would on a GPU
        for attn in encoder.attn_layers:
            attn.fuse_projections(True)
            assert attn.use_triton(True)
        assert use_exact_products(model.enc_p, True) == 13 and use_exact_products(model.dp, True) == 17
        audio = wrapper.generate("A short test.", seed=3).audio
        np.testing.assert_allclose(audio, reference, atol=1e-6)
        assert all(ffn.taps_1 is None for ffn in encoder.ffn_layers)
        assert not any(attn.use_kernel for attn in encoder.attn_layers)
        assert not exact_products_armed(model)
        fallbacks = optimizer.get_stats()["fallbacks"]
        assert any(f.startswith("fused_kernels: the encoder's Triton kernels failed (RuntimeError") and f.endswith("run on SDPA and cuBLAS") for f in fallbacks), fallbacks
    finally:
        for ffn in encoder.ffn_layers:
            ffn.fuse(False)
        for attn in encoder.attn_layers:
            attn.use_triton(False)
            attn.fuse_projections(False)


def test_triton_attention_equals_the_plain_relative_attention_and_is_zero_past_the_lengths():
    """Scores with the relative keys inside the window, keys past a length left out, relative values
    from the window's weights: the reference's function at fp32 rounding, in the interpreter."""
    report = _child(ATTENTION, interpret=True)
    errors = {name: value for name, value in report.items() if name.endswith("error")}
    assert len(errors) == 12 and all(value < 1e-5 for value in errors.values()), errors
    for name, value in report.items():
        if name not in errors:
            assert value is True, name


def test_triton_attention_needs_the_fused_projection():
    from engine.models.piper.model import RelativeAttention

    attn = RelativeAttention(16, 2, 4)
    assert attn.use_triton(True) is False and not attn.use_kernel
    attn.fuse_projections(True)
    assert attn.use_triton(True) is True and attn.use_kernel


def _build(kernel, pointer_types: dict, scalars: dict, constants: dict, capability: int, warps: int, stages: int):
    """Triton's ahead-of-time build for a CUDA card: no GPU needed, the same front end, passes and ptxas."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = pointer_types | scalars | {name: "constexpr" for name in constants}
    return triton.compile(ASTSource(fn=kernel, signature=signature, constexprs=constants),
                          target=GPUTarget("cuda", capability, 32), options={"num_warps": warps, "num_stages": stages})


def _engine_kernels(shared: int):
    """(name, kernel, pointer types, scalar types, constants, warps, stages) for the largest tiles
    each kernel runs with, at the stages the engine picks for `shared` bytes. Float arguments typed
    fp64, as Inductor passes them."""
    from engine.kernels import attention, conv1d, wavenet
    from engine.kernels.device import deepest

    for dtype in ("fp32", "fp16"):
        half = dtype == "fp16"
        co, ci, warps = (128, 64, 8) if half else (64, 64, 4)
        pointers = {name: f"*{dtype}" for name in ("x_ptr", "w_ptr", "b_ptr", "res_ptr", "sum_ptr", "y_ptr")} | {"len_ptr": "*i32"}
        ints = ("C_in", "C_out", "T_in", "T_out", "stride_xb", "stride_xc", "stride_xt", "stride_yb", "stride_yc", "stride_yt")
        constants = dict(K=3, DIL=1, PAD=1, ACT=1, EXACT=not half, HAS_BIAS=True, HAS_RES=True, HAS_SUM=True, TANH=False, ZERO_PAST=not half, BLOCK_CO=co, BLOCK_CI=ci, BLOCK_T=128, SPLITS=1, PDL=False)
        stages = 3 if half else deepest(conv1d.FP32_CONV_KB, shared)
        scalars = {n: "i32" for n in (*ints, "stride_bias", "stride_ys")} | {"slope": "fp64", "scale": "fp64"}
        yield f"conv {dtype}", conv1d.conv1d_kernel, pointers, scalars, constants, warps, stages
        if not half:  # one sentence's tiles (`exact_conv1d` below SMALL_BATCH_ROWS)
            narrow = constants | dict(BLOCK_CO=conv1d.NARROW_TILES[0], BLOCK_CI=conv1d.NARROW_TILES[1], BLOCK_T=64)
            yield "conv fp32 narrow", conv1d.conv1d_kernel, pointers, scalars, narrow, 4, deepest(conv1d.FP32_NARROW_KB, shared)
            runs = narrow | dict(HAS_BIAS=False, HAS_RES=False, HAS_SUM=False, ZERO_PAST=False, SPLITS=3)
            yield "conv fp32 narrow, 3 runs", conv1d.conv1d_kernel, pointers, scalars, runs, 4, deepest(conv1d.FP32_NARROW_KB, shared)
        pointers = {name: f"*{dtype}" for name in ("x_ptr", "w_ptr", "b_ptr", "y_ptr")} | {"len_ptr": "*i32"}
        constants = dict(K=16, STRIDE=8, PAD=4, ACT=1, EXACT=not half, BLOCK_CO=64, BLOCK_CI=64, BLOCK_Q=64, PDL=False)
        stages = 3 if half else deepest(conv1d.FP32_TRANSPOSED_KB, shared)
        yield f"transposed {dtype}", conv1d.conv_transpose1d_kernel, pointers, {n: "i32" for n in ints} | {"slope": "fp64"}, constants, 4, stages
        ints = ("C_in", "H", "T", "stride_xb", "stride_xc", "stride_xt", "stride_yb", "stride_yc", "stride_yt", "stride_bias")
        constants = dict(K=5, DIL=1, PAD=2, EXACT=not half, BLOCK_CO=64, BLOCK_CI=64, BLOCK_T=128, PDL=False)
        stages = 3 if half else deepest(wavenet.FP32_GATED_KB, shared)
        yield f"gated {dtype}", wavenet.gated_conv_kernel, pointers, {n: "i32" for n in ints}, constants, 4, stages
        yield f"gated {dtype}, one sentence's time tiles", wavenet.gated_conv_kernel, pointers, {n: "i32" for n in ints}, constants | dict(BLOCK_T=32), 4, stages
    pointers = {name: "*fp32" for name in ("qkv_ptr", "rel_k_ptr", "rel_v_ptr", "len_ptr", "bias_ptr", "band_ptr", "part_ptr", "out_ptr")} | {"len_ptr": "*i32"}
    ints = ("C", "T", "stride_qb", "stride_qc", "stride_qt", "stride_ob", "stride_oc", "stride_ot", "stride_rel")
    for splits in (1, attention.SPLITS):
        constants = {"DK": 96, "WINDOW": 4, "SPLITS": splits, "BLOCK_D": 128, "BLOCK_R": 16, "BLOCK_M": attention.BLOCK_M, "BLOCK_N": attention.BLOCK_N}
        yield f"attention, {splits} splits", attention.relative_attention_kernel, pointers, {n: "i32" for n in ints} | {"scale": "fp64"}, constants, attention.NUM_WARPS, deepest(attention.ATTENTION_KB, shared)
    pointers = {name: "*fp32" for name in ("rel_v_ptr", "band_ptr", "part_ptr", "out_ptr")} | {"len_ptr": "*i32"}
    ints = ("T", "stride_ob", "stride_oc", "stride_ot", "stride_rel")
    constants = {"DK": 96, "WINDOW": 4, "SPLITS": attention.SPLITS, "BLOCK_D": 128, "BLOCK_R": 16, "BLOCK_M": attention.BLOCK_M}
    yield "attention merge", attention.merge_kernel, pointers, {n: "i32" for n in ints}, constants, 4, 1  # as `launch` builds it


@pytest.mark.parametrize("capability, shared_kb", [(90, 227), (86, 99), (120, 99)])
def test_each_triton_kernel_builds_for_each_card_within_its_shared_memory(capability, shared_kb):
    """An H100, an RTX 30 and an RTX 50 card: every kernel builds with float arguments typed fp64 (as
    Inductor passes them; the attention once failed there on the GPU only, "Both operands must be
    same dtype"), and its largest tiles, at the pipeline depth the engine picks for the card, fit
    the card's shared memory (three stages of fp32 tiles need 176 KB, which RTX cards lack)."""
    shared = shared_kb * 1024
    for name, kernel, pointers, scalars, constants, warps, stages in _engine_kernels(shared):
        built = _build(kernel, pointers, scalars, constants, capability, warps, stages)
        assert "cubin" in built.asm, name
        assert built.metadata.shared <= shared, (name, stages, built.metadata.shared)


@pytest.mark.parametrize("capability", [90, 120])
def test_stage_b_kernels_build_for_dependent_launch_on_hopper_and_blackwell(capability):
    """With PDL on (`device.dependent_launch`) the vocoder's and the flow's kernels wait for the
    kernel before them first of all, then let the next one launch."""
    shared = 99 * 1024
    for name, kernel, pointers, scalars, constants, warps, stages in _engine_kernels(shared):
        if name.startswith(("conv fp16", "transposed fp16", "gated fp16")):
            built = _build(kernel, pointers, scalars, constants | {"PDL": True}, capability, warps, stages)
            ptx = built.asm["ptx"]
            assert ptx.index("griddepcontrol.wait") < ptx.index("griddepcontrol.launch_dependents") < ptx.index("ld.global"), name


@pytest.mark.parametrize("capability, user_setting, dependent", [((9, 0), None, True), ((12, 0), None, True), ((8, 9), None, False), ((9, 0), "0", False), ((9, 0), "1", False)])
def test_compiled_kernels_launch_dependently_on_hopper_and_later_unless_the_user_says(monkeypatch, capability, user_setting, dependent):
    """On sm_90 and later Inductor's kernels are generated for programmatic dependent launch, the
    compile mode's own options kept; on older cards, or where the user set TORCHINDUCTOR_ENABLE_PDL
    either way, torch.compile gets the mode alone. The stat then says what Inductor will do."""
    from torch._inductor import config, list_mode_options

    from engine.kernels import device

    if not hasattr(config.triton, "enable_pdl"):
        pytest.skip("this torch's Inductor cannot generate dependently launched kernels")
    monkeypatch.delenv("TORCHINDUCTOR_ENABLE_PDL", raising=False)
    if user_setting is not None:
        monkeypatch.setenv("TORCHINDUCTOR_ENABLE_PDL", user_setting)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    device.dependent_launch.cache_clear()
    try:
        for mode in ("default", "max-autotune-no-cudagraphs"):
            arguments = device.compile_arguments(mode, torch.device("cuda", 0))
            if dependent:
                assert arguments == {"options": {**list_mode_options(mode), "triton.enable_pdl": True}}
            else:
                assert arguments == {"mode": mode}
        assert device.compile_arguments("default", torch.device("cpu")) == {"mode": "default"}
        monkeypatch.setattr(config.triton, "enable_pdl", user_setting == "1")  # as Inductor reads the variable at import
        said = device.compiles_dependent_launches(device.compile_arguments("default", torch.device("cuda", 0)))
        assert said == (dependent or user_setting == "1")  # the stat follows the user's setting too
    finally:
        device.dependent_launch.cache_clear()


def test_once_the_encoder_kernels_give_way_the_statistics_say_what_runs(joe_cpu):
    """Set up as on a GPU (Triton attention with SDPA chosen), then failing at the first call: the
    attention statistic names the SDPA backend again and the fused-kernel line drops the encoder."""
    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper
    from engine.models.piper.optimize import _apply_fused_kernels

    cfg = dataclasses.replace(OptimizationConfig.unoptimized(), enable_flash_attention=True, enable_fused_kernels=True)
    optimizer = AdvancedTTSOptimizer(cfg, joe_cpu.device)
    wrapper = OptimizedTTSWrapper(joe_cpu, optimizer)
    sdpa_backend = optimizer.get_stats()["model"]["sdpa_backend"]
    try:
        _apply_fused_kernels(joe_cpu, optimizer, cuda=True)
        joe_cpu.runner.fused_decoder = joe_cpu.runner.fused_flow = None  # the Triton flow and vocoder are not what this test is about
        assert optimizer.get_stats()["model"]["sdpa_backend"].startswith("Triton")
        wrapper.generate("A short test.", seed=3)
        stats = optimizer.get_stats()
        assert stats["model"]["sdpa_backend"] == sdpa_backend
        assert "encoder" not in stats["model"]["fused_kernels"].split(";")[0]
        assert stats["model"]["fused_kernels"].endswith("the encoder's Triton kernels failed (see fallbacks)")
        assert any(f.startswith("fused_kernels: the encoder's Triton kernels failed") for f in stats["fallbacks"])
    finally:
        OptimizedTTSWrapper(joe_cpu, AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device))
