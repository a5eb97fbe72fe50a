"""Stage B's two halves at a chapter batch's shape, each as one CUDA graph: the flow (reverse, in
the precision and with the GEMM-form convolutions of Max speed) eager, compiled, and fused
(`engine.models.piper.fused.FusedFlow`: gated convolutions and 1 × 1 products with their
epilogues in Triton, the channel flips folded into the weights), and the fused Triton vocoder.
Without compile the flow's unfused elementwise work was 14 ms of a chapter's 40 ms of stage B,
and the vocoder's convolutions 19 ms (run AJ).

    python3 scripts/stage_b_bench.py [--rows 16] [--frames 1152]
"""

from __future__ import annotations

import argparse

import torch

from engine.models.piper.fused import FusedFlow, FusedGenerator
from engine.models.piper.model import sequence_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1152, help="the batch's frame bucket (a chapter batch: ~1,000)")
    args = parser.parse_args()
    from kernel_bench import graph_time, rel_err
    from profiling import max_speed_wrapper

    tts = max_speed_wrapper(False).model
    vits = tts.model
    dtype = vits.flow.flows["0"].pre.weight.dtype
    torch.manual_seed(0)
    frames = torch.randint(int(args.frames * 0.6), args.frames + 1, (args.rows,), device="cuda", dtype=torch.int32)
    mask = sequence_mask(frames, args.frames).unsqueeze(1).to(dtype)
    z_p = torch.randn(args.rows, vits.arch.inter_channels, args.frames, device="cuda", dtype=dtype) * mask
    compiled = torch.compile(vits.flow.reverse, dynamic=False)
    with torch.inference_mode():
        z = vits.flow.reverse(z_p, mask, None)
        print(f"{args.rows} rows × {args.frames} frames ({int(frames.sum())} valid), flow in {dtype}")
        for name, fn in (("flow, eager", lambda: vits.flow.reverse(z_p, mask, None)), ("flow, compiled", lambda: compiled(z_p, mask, None))):
            print(f"  {name:<28} {graph_time(fn):8.3f} ms  rel err {rel_err(fn(), z):.2e}", flush=True)
        fused = FusedFlow(vits.flow)
        fn = lambda: fused(z_p, frames, None)
        print(f"  {'flow, fused':<28} {graph_time(fn):8.3f} ms  rel err {rel_err(fn(), z):.2e}", flush=True)
        decoder = FusedGenerator(vits.dec)
        print(f"  {'vocoder, fused Triton':<28} {graph_time(lambda: vits.vocode_fused(decoder, z, mask, frames, None)):8.3f} ms  {decoder.launches} launches")

if __name__ == "__main__":
    main()
