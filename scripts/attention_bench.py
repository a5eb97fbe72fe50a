"""One encoder attention layer (joe: 192 channels, 2 heads, window 4, fp32) at a sentence's shape and
a chapter batch's: the plain attention, SDPA with the relative terms around it (what stage A ran
before), each also compiled, against the Triton kernel (`kernels.attention`) at a few query blocks
(`BLOCK_M`) and pipeline depths.
Graph time (median of replays) and relative error against float64 at valid positions.

    python3 scripts/attention_bench.py
"""

from __future__ import annotations

import copy

import torch

import engine.kernels.attention as kernel
from engine.models.piper.model import RelativeAttention
from engine.precision import exact_fp32

from kernel_bench import graph_time, rel_err

SHAPES = ((1, 416), (16, 256))


def main() -> None:
    torch.manual_seed(0)
    attn = RelativeAttention(192, 2, 4).cuda().eval()
    for p in attn.parameters():
        p.data.normal_(0, 0.2)
    reference = copy.deepcopy(attn).double()
    attn.fuse_projections(True)
    sdpa = copy.deepcopy(attn)
    sdpa.use_sdpa = True
    fused = copy.deepcopy(attn)
    fused.use_triton(True)
    for batch, tokens in SHAPES:
        lengths = torch.randint(tokens // 2, tokens + 1, (batch,), device="cuda", dtype=torch.int32)
        lengths[0] = tokens
        mask = (torch.arange(tokens, device="cuda")[None] < lengths[:, None]).float()[:, None]
        x = torch.randn(batch, 192, tokens, device="cuda") * mask
        inside = mask.expand(batch, 192, tokens) > 0

        def biased(layer):
            return lambda: layer(x, (1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4)

        with torch.inference_mode(), exact_fp32():
            ref = reference(x.double(), ((1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4).double())
            rows = [("plain", biased(attn)), ("sdpa", biased(sdpa)),
                    ("plain compiled", biased(torch.compile(attn))), ("sdpa compiled", biased(torch.compile(sdpa)))]
            for block, stages in ((16, 1), (16, 2), (16, 3), (32, 2), (64, 1)):
                rows.append((f"triton q{block} s{stages}", lambda block=block, stages=stages: configured(block, stages, lambda: fused(x, None, lengths))))
            for name, fn in rows:
                print(f"{batch}x{tokens} {name:<16} {graph_time(fn):8.4f} ms  rel err {rel_err(fn()[inside], ref[inside]):.2e}", flush=True)


def configured(block: int, stages: int, fn):
    """fn() with the kernel's query block and pipeline depth set (host-side: fine inside a capture)."""
    saved = kernel.BLOCK_M, kernel.deepest
    kernel.BLOCK_M, kernel.deepest = block, lambda needs, shared: stages
    try:
        return fn()
    finally:
        kernel.BLOCK_M, kernel.deepest = saved


if __name__ == "__main__":
    main()
