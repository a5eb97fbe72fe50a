"""Where the exact-duration stage (encoder + stochastic duration predictor, fp32, TF32 off) spends
its GPU time, at a single sentence's shape and at a chapter batch's: graph time of the encoder
alone and of the whole stage, compiled or not, and the kernels of one call grouped by name.

    python3 scripts/stage_a_profile.py [--compile] [--rows 25]
"""

from __future__ import annotations

import argparse

import torch

from engine.models.piper.model import use_gemm_convs
from engine.models.piper.pipeline import load_piper
from engine.precision import exact_fp32

from kernel_bench import graph_time
from profiling import kernel_table

SHAPES = ((1, 416), (16, 256))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--rows", type=int, default=25)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    model = load_piper("default", torch.device("cuda")).model.to("cuda").eval()
    use_gemm_convs(model.enc_p, True)
    use_gemm_convs(model.dp, True)
    for layer in model.enc_p.encoder.attn_layers:
        layer.fuse_projections(True)
        layer.use_sdpa = True
    for batch, tokens in SHAPES:
        torch.manual_seed(tokens)
        ids = torch.randint(1, 100, (batch, tokens), device="cuda")
        lengths = torch.full((batch,), tokens, device="cuda")
        noise = torch.randn(batch, 2, tokens, device="cuda") * 0.8
        scale = torch.ones(batch, device="cuda")

        def encoder():
            return model.encode_text(ids, lengths)

        def stage_a():
            x, m_p, logs_p, mask = model.encode_text(ids, lengths)
            return model.durations(x, mask, noise, scale, None)

        runs = {"encoder": encoder, "stage A": stage_a}
        if args.compile:
            runs = {name: torch.compile(fn, dynamic=False) for name, fn in runs.items()}
        with torch.inference_mode(), exact_fp32():
            for name, fn in runs.items():
                print(f"{batch}x{tokens} {name}{' (compiled)' if args.compile else ''}: graph {graph_time(fn):.3f} ms", flush=True)
            print(kernel_table(runs["stage A"], args.rows), flush=True)


if __name__ == "__main__":
    main()
