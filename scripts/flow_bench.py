"""Stage B's two halves at a chapter batch's shape, each as one CUDA graph: the flow (reverse, in
the precision and with the GEMM-form convolutions of Max speed) eager and compiled, and the fused
Triton vocoder. Says how much of stage B the flow still is once compiled: without compile its
unfused elementwise work was 14 ms of a chapter's 40 ms of stage B (run AJ).

    python3 scripts/flow_bench.py [--rows 16] [--frames 1152]
"""

from __future__ import annotations

import argparse

import torch

from engine.models.piper.model import sequence_mask
from kernel_bench import graph_time, rel_err
from profiling import max_speed_wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1152, help="the batch's frame bucket (a chapter batch: ~1,000)")
    args = parser.parse_args()
    tts = max_speed_wrapper(False).model
    vits, decoder = tts.model, tts.runner.fused_decoder
    dtype = vits.flow.flows["0"].pre.weight.dtype
    torch.manual_seed(0)
    frames = torch.randint(int(args.frames * 0.6), args.frames + 1, (args.rows,), device="cuda")
    mask = sequence_mask(frames, args.frames).unsqueeze(1).to(dtype)
    z_p = torch.randn(args.rows, vits.arch.inter_channels, args.frames, device="cuda", dtype=dtype) * mask
    compiled = torch.compile(vits.flow.reverse, dynamic=False)
    with torch.inference_mode():
        z = vits.flow.reverse(z_p, mask, None)
        rows = [
            ("flow, eager", lambda: vits.flow.reverse(z_p, mask, None)),
            ("flow, compiled", lambda: compiled(z_p, mask, None)),
        ]
        if decoder is not None:
            rows.append(("vocoder, fused Triton", lambda: vits.vocode_fused(decoder, z, mask, frames, None)))
        print(f"{args.rows} rows × {args.frames} frames ({int(frames.sum())} valid), flow in {dtype}")
        for name, fn in rows:
            print(f"  {name:<24} {graph_time(fn):8.3f} ms", flush=True)
        print(f"  compiled flow against eager: rel err {rel_err(compiled(z_p, mask, None), z):.2e}")


if __name__ == "__main__":
    main()
