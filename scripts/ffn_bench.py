"""The encoder's feed-forward convolutions (k = 3, 192 → 768 → 192, fp32) at a sentence's shape and a
chapter batch's: cuBLAS on the unfolded input (what stage A runs) against the fused Triton
convolution with three-pass TF32 products at a few tile sizes. Graph time (median of replays) and
relative error against a float64 reference.

    python3 scripts/ffn_bench.py
"""

from __future__ import annotations

import torch

from engine.kernels.conv1d import conv1d
from engine.models.piper.model import GemmConv1d
from engine.precision import exact_fp32

from kernel_bench import graph_time, rel_err

SHAPES = ((1, 416), (16, 256))
CONVS = ((192, 768), (768, 192))
TILES = ((64, 4), (128, 4), (128, 8), (256, 8))


def main() -> None:
    torch.manual_seed(0)
    for c_in, c_out in CONVS:
        conv = GemmConv1d(c_in, c_out, 3, padding=1).cuda()
        taps = conv.weight.detach().permute(2, 0, 1).contiguous()
        for batch, tokens in SHAPES:
            x = torch.randn(batch, c_in, tokens, device="cuda")
            lengths = torch.full((batch,), tokens, device="cuda", dtype=torch.int32)
            with torch.inference_mode(), exact_fp32():
                ref = torch.nn.functional.conv1d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
                rows = [("cuBLAS (unfold)", lambda: conv(x))]
                rows += [(f"triton tf32x3 t{bt} w{w}", lambda bt=bt, w=w: conv1d(x, taps, conv.bias, lengths, padding=1, block_t=bt, num_warps=w)) for bt, w in TILES]
                for name, fn in rows:
                    print(f"{c_in}->{c_out} {batch}x{tokens} {name:<24} {graph_time(fn):8.4f} ms  rel err {rel_err(fn(), ref):.2e}", flush=True)


if __name__ == "__main__":
    main()
