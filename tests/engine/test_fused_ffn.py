"""The encoder's feed-forward block through the Triton convolution (`exact_conv1d`) computes what the
plain block does. Kernel runs use Triton's interpreter (TRITON_INTERPRET=1) and tracing runs use
fake tensors, each in a child process, since the interpreter is chosen when the kernels are defined
and tracing cannot see into interpreted kernels."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

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
    report["fused"] = ffn.fuse(True, min_rows=0)
    report["taps shape"] = list(ffn.taps_1.shape) == [3, F, C] and list(ffn.taps_2.shape) == [3, C, F]
    report["taps not saved"] = not any(name.startswith("taps") for name in ffn.state_dict())
    raw = torch.ops.tts_turbo.exact_conv1d(x, ffn.taps_1, ffn.conv_1.bias, lengths, 1, False)
    report["raw output past a length is unspecified"] = bool(raw[1, :, 128:].isnan().all())
    got = ffn(x, mask, lengths)
    inside = mask.expand_as(got) > 0
    report["ffn"] = rel(got[inside], want[inside])
    report["ffn zero past the lengths"] = bool((got[~inside] == 0).all())
    report["ffn below min_rows is plain"] = ffn.fuse(True) and bool(torch.equal(ffn(x, mask, lengths), want))

    arch = PiperArch(n_vocab=10, hidden_channels=C, inter_channels=C, filter_channels=F, n_heads=2, n_layers=2,
        window_size=4, ffn_kernel_size=3, dp_filter_channels=C, dp_kernel_size=3, dp_n_layers=1, n_flows=1,
        flow_hidden_channels=C, flow_kernel_size=5, flow_dilation_rate=1, flow_n_layers=1, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),), upsample_rates=(2,),
        upsample_kernel_sizes=(4,), upsample_initial_channel=C, n_speakers=1, gin_channels=0)
    encoder = randomized(Encoder(arch))
    want = encoder(x, mask)
    for layer in encoder.ffn_layers:
        layer.fuse(True, min_rows=0)
    got = encoder(x, mask)
    inside = mask.expand_as(got) > 0
    report["encoder"] = rel(got[inside], want[inside])
    report["encoder zero past the lengths"] = bool((got[~inside] == 0).all())
    for layer in encoder.ffn_layers:
        layer.fuse(False)
    report["unfused"] = all(layer.taps_1 is None and layer.taps_2 is None for layer in encoder.ffn_layers)
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

ffn = randomized(FFN(C, F, 3))
ffn.fuse(True, min_rows=0)
with torch.no_grad():
    try:
        torch.compile(ffn, backend=record, fullgraph=True)(x, mask, lengths)
    except Traced:
        pass
report["graphs"] = len(graphs)
report["operator calls"] = targets(graphs[0]).count("tts_turbo.exact_conv1d")
report["kernel calls after decomposition"] = sum("triton_kernel_wrapper" in t for t in targets(lowered[0]))
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


def test_fused_ffn_equals_the_plain_block_at_valid_positions_and_is_zero_past_them():
    report = _child(INTERPRETED, interpret=True)
    for name in ("ffn", "encoder"):
        assert isinstance(report[name], float) and report[name] < 1e-5, (name, report[name])
    for name, value in report.items():
        if name not in ("ffn", "encoder"):
            assert value is True, name


def test_fused_ffn_compiles_into_one_graph_that_inductor_sees_into():
    """No graph break around the operator, and AOT decomposes it into its two Triton kernel launches."""
    report = _child(TRACED, interpret=False)
    assert report == {"graphs": 1, "operator calls": 2, "kernel calls after decomposition": 2}


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


def test_a_triton_feed_forward_that_fails_gives_way_to_the_plain_one_visibly(joe_cpu):
    """The Triton feed-forward is built at the first batch that reaches its size, after warmup: if
    it cannot build or run there, that call still returns the same audio, and the fallback shows."""
    import numpy as np

    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper

    optimizer = AdvancedTTSOptimizer(OptimizationConfig.unoptimized(), joe_cpu.device)
    wrapper = OptimizedTTSWrapper(joe_cpu, optimizer)
    reference = wrapper.generate("A short test.", seed=3).audio
    layers = joe_cpu.model.enc_p.encoder.ffn_layers
    try:
        for layer in layers:
            layer.fuse(True, min_rows=0)  # on the CPU its launch fails, as a failed build would on a GPU
        audio = wrapper.generate("A short test.", seed=3).audio
        np.testing.assert_array_equal(audio, reference)
        assert all(layer.taps_1 is None for layer in layers)
        fallbacks = optimizer.get_stats()["fallbacks"]
        assert any(f.startswith("fused_kernels: the Triton feed-forward failed (RuntimeError") and f.endswith("runs on cuBLAS") for f in fallbacks), fallbacks
    finally:
        for layer in layers:
            layer.fuse(False)
