"""Tile sweep for the fused vocoder convolution (fp16, k = 5): each upsampling stage's channel count
at a single sentence's length and at a chapter batch's, over channel tiles, time tiles, warps and
pipeline stages. Graph time (median of replays), best first per shape.

    python3 scripts/decoder_tiles.py [--top 8]
"""

from __future__ import annotations

import argparse
import itertools

import torch

from engine.kernels.conv1d import conv1d

from kernel_bench import graph_time

STAGES = ((128, 8), (64, 64), (32, 256))
"""(channels, samples per frame) after each of joe-medium's upsampling layers."""
SHAPES = ((1, 960), (16, 1600))
"""(batch, frames): the medium sentence, a chapter batch."""


def channel_tiles(c: int) -> list[tuple[int, int]]:
    sizes = [s for s in (32, 64, 128) if s <= c]
    return [(co, ci) for co in sizes for ci in sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    for channels, per_frame in STAGES:
        weight = torch.randn(5, channels, channels, device="cuda", dtype=torch.float16) * channels**-0.5
        bias = torch.randn(channels, device="cuda", dtype=torch.float16)
        for batch, frames in SHAPES:
            t = frames * per_frame
            x = torch.randn(batch, t, channels, device="cuda", dtype=torch.float16).transpose(1, 2)
            lengths = torch.full((batch,), t, device="cuda", dtype=torch.int32)
            ref = conv1d(x, weight, bias, lengths, dilation=2, padding=4, slope=0.1, residual=None)
            rows = []
            for blocks, block_t, warps, stages in itertools.product(channel_tiles(channels), (64, 128, 256), (4, 8), (3, 4)):
                def fn(blocks=blocks, block_t=block_t, warps=warps, stages=stages):
                    return conv1d(x, weight, bias, lengths, dilation=2, padding=4, slope=0.1, block_t=block_t, num_warps=warps, channel_blocks=blocks, num_stages=stages)
                try:
                    err = ((fn().float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                    rows.append((graph_time(fn), blocks, block_t, warps, stages, err))
                except Exception as exc:  # a tile the hardware cannot hold (shared memory)
                    rows.append((float("inf"), blocks, block_t, warps, stages, type(exc).__name__))
            default = next(r for r in rows if r[1] == (min(64, channels), min(64, channels)) and r[2:5] == (128, 4, 3))
            print(f"C={channels} {batch}x{t}: default (64-tiles, t128, w4, s3) {default[0]:.4f} ms", flush=True)
            for ms, blocks, block_t, warps, stages, err in sorted(rows, key=lambda r: r[0])[: args.top]:
                print(f"   {ms:8.4f} ms  co/ci {blocks}  t{block_t} w{warps} s{stages}  max rel diff {err}", flush=True)


if __name__ == "__main__":
    main()
