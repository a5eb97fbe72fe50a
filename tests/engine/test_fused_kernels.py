"""The fused Triton convolutions compute the same function as PyTorch's, checked on the CPU with
Triton's interpreter (TRITON_INTERPRET=1, fp32 products) in a child process, since the interpreter
is chosen when the kernels are defined. The GPU runs of the same kernels are in test_gpu.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

ROOT = Path(__file__).parents[2]

CHECK = r"""
import json, torch, torch.nn.functional as F
from engine.kernels.conv1d import conv1d, conv_transpose1d
from engine.models.piper.config import PiperArch
from engine.models.piper.model import Generator
from engine.models.piper.fused import FusedGenerator

def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()

torch.manual_seed(0)
report = {}
B, Ci, Co, T = 2, 32, 48, 150
x = torch.randn(B, Ci, T)
lens = torch.tensor([150, 97])
mask = (torch.arange(T)[None] < lens[:, None]).float()[:, None]
for k, d in ((3, 1), (5, 3), (7, 2)):
    w, bias = torch.randn(Co, Ci, k) * 0.1, torch.randn(B, Co)
    res, acc = torch.randn(B, Co, T), torch.randn(B, Co, T)
    pad = d * (k - 1) // 2
    out = torch.full((B, Co, T), float("nan"))
    conv1d(x, w.permute(2, 0, 1).contiguous(), bias, lens, dilation=d, padding=pad, slope=0.1,
           residual=res, running_sum=acc, scale=0.5, out=out)
    want = (F.conv1d(F.leaky_relu(x, 0.1) * mask, w, None, dilation=d, padding=pad) + bias[:, :, None] + res + acc) * 0.5
    inside = (torch.arange(T)[None, None] < lens[:, None, None]).expand_as(out)
    report[f"conv k{k} d{d}"] = rel(out[inside], want[inside]) if not out[inside].isnan().any() else "unwritten"
    report[f"conv k{k} d{d}: tile past the length skipped"] = bool(out[1, :, 128:].isnan().all())  # 97 valid, tiles of 128
for stride, k in ((8, 16), (4, 8), (3, 7)):
    w, bias = torch.randn(Ci, Co, k) * 0.1, torch.randn(Co)
    got = conv_transpose1d(x, w.permute(2, 1, 0).contiguous(), bias, lens, stride=stride, padding=(k - stride) // 2, slope=0.1)
    want = F.conv_transpose1d(F.leaky_relu(x, 0.1) * mask, w, bias, stride=stride, padding=(k - stride) // 2)
    report[f"transposed s{stride} k{k} shape"] = got.shape == want.shape
    report[f"transposed s{stride} k{k}"] = max(rel(got[i, :, : n * stride], want[i, :, : n * stride]) for i, n in enumerate(lens.tolist()))
for kind, kernels, dilations in (("2", (3, 5, 7), ((1, 2), (2, 6), (3, 12))), ("1", (3, 7), ((1, 3), (1, 3)))):
    arch = PiperArch(n_vocab=10, hidden_channels=16, inter_channels=24, filter_channels=16, n_heads=2, n_layers=1,
        window_size=4, ffn_kernel_size=3, dp_filter_channels=16, dp_kernel_size=3, dp_n_layers=1, n_flows=1,
        flow_hidden_channels=16, flow_kernel_size=5, flow_dilation_rate=1, flow_n_layers=1, resblock=kind,
        resblock_kernel_sizes=kernels, resblock_dilation_sizes=dilations, upsample_rates=(4, 2),
        upsample_kernel_sizes=(8, 4), upsample_initial_channel=64, n_speakers=2, gin_channels=8)
    gen = Generator(arch).eval()
    for p in gen.parameters():
        p.data.normal_(0, 0.1)
    frames = torch.tensor([29, 17, 4])
    y_mask = (torch.arange(29)[None] < frames[:, None]).float()[:, None]
    z, g = torch.randn(3, 24, 29) * y_mask, torch.randn(3, 8, 1)
    with torch.no_grad():
        want, got = gen(z, g, y_mask)[:, 0], FusedGenerator(gen)(z, frames, g)
    report[f"generator resblock {kind}"] = max(rel(got[i, : n * 8], want[i, : n * 8]) for i, n in enumerate(frames.tolist()))
    report[f"generator resblock {kind} shape"] = list(got.shape) == list(want.shape)
print(json.dumps(report))
"""


def test_fused_convolutions_match_pytorch_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, value in report.items():
        if name.endswith(("shape", "skipped")):
            assert value is True, name
        else:
            assert isinstance(value, float) and value < 1e-5, (name, value)


def test_the_fused_wavenet_candidate_of_flow_bench_computes_the_eager_flow():
    """`scripts/flow_bench.py` times a fused WaveNet layer for the flow on the GPU; here, in the
    interpreter, its flow with the bundled voice's weights equals the eager one (two lengths)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "scripts")])}
    done = subprocess.run([sys.executable, "scripts/flow_bench.py", "--check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    error = float(done.stdout.rsplit("rel err", 1)[1])
    assert error < 1e-5, done.stdout


def test_the_fused_wavenet_candidate_builds_for_an_h100_in_half_precision():
    """Its one GPU call should time it, not find a build error: Triton's ahead-of-time build for
    sm_90 at the flow's half-precision tiles (192 channels in, 64-row halves, 128 positions)."""
    import importlib.util

    from tests.engine.test_encoder_kernels import _build

    spec = importlib.util.spec_from_file_location("flow_bench", ROOT / "scripts" / "flow_bench.py")
    flow_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow_bench)
    pointers = {name: "*fp16" for name in ("x_ptr", "w_ptr", "b_ptr", "y_ptr")} | {"len_ptr": "*i32"}
    ints = ("C_in", "H", "T", "stride_xb", "stride_xc", "stride_xt", "stride_yb", "stride_yc", "stride_yt")
    constants = dict(K=5, DIL=1, PAD=2, EXACT=False, BLOCK_CO=64, BLOCK_CI=64, BLOCK_T=128)
    built = _build(flow_bench.gated_conv_kernel, pointers, {n: "i32" for n in ints}, constants, 90, 4, 3)
    assert "cubin" in built.asm and built.metadata.shared <= 227 * 1024
