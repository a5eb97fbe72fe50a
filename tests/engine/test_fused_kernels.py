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


FLOW_CHECK = r"""
import json, sys, torch
from engine.models.piper.config import PiperArch
from engine.models.piper.model import ResidualCouplingBlock, sequence_mask
from engine.kernels import conv1d, wavenet
from engine.models.piper import fused as fused_module
from engine.models.piper.fused import FusedFlow

def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()

def compare(flow, frames, g, channels):
    torch.manual_seed(1)
    mask = sequence_mask(frames, int(frames.max()) + 5).unsqueeze(1)  # five frames of padding past the longest
    z = torch.randn(len(frames), channels, mask.shape[2]) * mask
    fused, calls = FusedFlow(flow), []
    for name in ("conv1d", "gated_conv"):  # count the Triton launches
        original = getattr(fused_module, name)
        setattr(fused_module, name, lambda *a, original=original, **k: calls.append(1) or original(*a, **k))
    with torch.inference_mode():
        want, got = flow.reverse(z, mask, g), fused(z, frames, g)
    fused_module.conv1d, fused_module.gated_conv = conv1d.conv1d, wavenet.gated_conv
    return {"error": rel(got, want), "zero past the lengths": bool((got[mask.expand_as(got) == 0] == 0).all()),
            "launches as counted": len(calls) + 2 == fused.launches}  # and the copy in, the selection out

report = {}
if sys.argv[1] == "joe":
    from engine import load_model
    vits = load_model("default", "cpu").model
    report["joe"] = compare(vits.flow, torch.tensor([40, 27]), None, vits.arch.inter_channels)
    conv1d.multiprocessors = lambda device: 64  # as on a GPU: every tile narrowed to 32 positions for want of programs
    report["joe, narrow time tiles"] = compare(vits.flow, torch.tensor([40, 27]), None, vits.arch.inter_channels)
else:
    arch = PiperArch(n_vocab=10, hidden_channels=16, inter_channels=24, filter_channels=16, n_heads=2, n_layers=1,
        window_size=4, ffn_kernel_size=3, dp_filter_channels=16, dp_kernel_size=3, dp_n_layers=1, n_flows=3,
        flow_hidden_channels=32, flow_kernel_size=5, flow_dilation_rate=2, flow_n_layers=3, resblock="2",
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),), upsample_rates=(4,),
        upsample_kernel_sizes=(8,), upsample_initial_channel=16, n_speakers=2, gin_channels=8)
    flow = ResidualCouplingBlock(arch).eval()
    for p in flow.parameters():
        p.data.normal_(0, 0.1)
    report["three couplings, speaker-conditioned"] = compare(flow, torch.tensor([33, 20, 3]), torch.randn(3, 8, 1), 24)
print(json.dumps(report))
"""


@pytest.mark.parametrize("flow", ["joe", "random"])
def test_the_fused_flow_computes_the_eager_flow_under_the_interpreter(flow):
    """The bundled voice's flow (four couplings, no speaker) and a random one with an odd number of
    couplings (so the buffer ends reversed) and speaker conditioning: equal to the eager flow at
    every valid frame, zero past each item's length, with padding past the longest item, in as many
    launches as its statistics say (two per WaveNet layer, two more per coupling)."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FLOW_CHECK, flow], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, result in json.loads(done.stdout.strip().splitlines()[-1]).items():
        assert result["error"] < 1e-5, (name, result)
        assert result["zero past the lengths"], name
        assert result["launches as counted"], name


PAIR_CHECK = r"""
import json, torch
from conv_pair_bench import conv_pair
from engine.models.piper.model import ResBlock

torch.manual_seed(0)
report = {}
C, T = 32, 300
lens = torch.tensor([300, 97, 3])
mask = (torch.arange(T)[None] < lens[:, None]).float()[:, None]
x = torch.randn(3, C, T) * mask
for kind, k, dilations in (("2", 7, (3, 12)), ("2", 3, (1, 2)), ("1", 11, (5,))):
    block = ResBlock(C, k, dilations, kind).eval()
    for p in block.parameters():
        p.data.normal_(0, 0.05)
    a, b = (block.convs[0], block.convs[1]) if kind == "2" else (block.convs1[0], block.convs2[0])
    spec = lambda c: (c.weight.permute(2, 0, 1).contiguous(), c.bias, c.dilation[0])
    earlier = torch.randn(3, C, T)
    with torch.no_grad():
        want = block(x, mask) + earlier
        got = conv_pair(x, spec(a), spec(b), lens, slope=0.1, first_residual=kind == "2", running_sum=earlier.clone())
    report[f"type {kind} k{k} d{dilations}"] = max(((got[i, :, :n] - want[i, :, :n]).norm() / want[i, :, :n].norm()).item() for i, n in enumerate(lens.tolist()))
print(json.dumps(report))
"""


def test_the_conv_pair_candidate_computes_two_residual_steps_under_the_interpreter():
    """`scripts/conv_pair_bench.py`'s one-launch pair of convolutions (measured slower on the GPU,
    not in the engine) equals the eager residual block, halo included: tiles of 256 positions
    with a halo of 36 (k = 7, dilation 12) cover three items of different lengths."""
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "scripts")])}
    done = subprocess.run([sys.executable, "-c", PAIR_CHECK], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, error in json.loads(done.stdout.strip().splitlines()[-1]).items():
        assert error < 1e-5, (name, error)
