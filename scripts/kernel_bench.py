"""Stage-level GPU timings for Piper: the HiFi-GAN decoder eager (cuDNN) vs fused Triton at a few
tile sizes, and the encoder/duration and flow stages with cuDNN vs GEMM-form convolutions.

Each variant is captured into a CUDA graph and timed over many replays with CUDA events (median),
after warm-up; accuracy is ‖out − ref‖/‖ref‖ against the fp32 eager stage on the same inputs.

    python3 scripts/kernel_bench.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from engine.models.piper.fused import FusedGenerator
from engine.models.piper.model import use_gemm_convs
from engine.models.piper.pipeline import load_piper
from engine.precision import exact_fp32

REPLAYS = 50
DECODER_SHAPES = ((1, 960), (16, 1600))
"""(batch, frames): the medium sentence (~11 s), a chapter batch."""
TILES = ((64, 2), (128, 4), (128, 8), (256, 8))
"""(time tile, warps) of the fused convolutions."""


def graph_time(fn, calls: int = 1) -> float:
    """Median ms of REPLAYS graph replays of fn (warmed up, captured once), per call of fn when
    the graph holds `calls` of them back to back (as inside a stage's graph: no launch gap)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    times = []
    for _ in range(REPLAYS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref.double()).norm() / ref.double().norm()).item()


def decoder_rows(model) -> list[dict]:
    rows = []
    dec32 = model.dec
    dec16 = type(dec32)(model.arch).to("cuda").half()
    dec16.load_state_dict(dec32.state_dict())
    for batch, frames in DECODER_SHAPES:
        torch.manual_seed(batch * 7919 + frames)
        lengths = torch.randint(frames * 3 // 4, frames + 1, (batch,), device="cuda")
        lengths[0] = frames
        mask = (torch.arange(frames, device="cuda")[None] < lengths[:, None]).float()[:, None]
        z = torch.randn(batch, model.arch.inter_channels, frames, device="cuda") * mask
        with torch.inference_mode():
            ref = dec32(z, None, mask)[:, 0]
            variants = {"eager fp16": lambda: dec16(z.half(), None, mask.half())}
            for block_t, warps in TILES:
                fused = FusedGenerator(dec16, block_t=block_t, num_warps=warps)
                variants[f"fused fp16 t{block_t} w{warps}"] = lambda f=fused: f(z.half(), lengths, None)
            for name, fn in variants.items():
                out = fn()
                out = out[:, 0] if out.dim() == 3 else out
                valid = torch.cat([out[i, : lengths[i] * 256].float() for i in range(batch)])
                want = torch.cat([ref[i, : lengths[i] * 256] for i in range(batch)])
                rows.append({"stage": "decoder", "shape": f"{batch}x{frames}", "variant": name, "ms": graph_time(fn), "rel_err": rel_err(valid, want)})
                print(rows[-1], flush=True)
    return rows


def front_rows(model) -> list[dict]:
    """Encoder + durations (fp32, TF32 off) and the flow (fp32 / fp16), cuDNN vs GEMM convs."""
    rows = []
    for batch, tokens in ((1, 416), (16, 256)):
        torch.manual_seed(tokens)
        ids = torch.randint(1, 100, (batch, tokens), device="cuda")
        lengths = torch.full((batch,), tokens, device="cuda")
        noise = torch.randn(batch, 2, tokens, device="cuda") * 0.8
        scale = torch.ones(batch, device="cuda")
        with torch.inference_mode(), exact_fp32():
            outs = {}
            for variant, gemm, qkv in (("cudnn", False, False), ("gemm", True, False), ("gemm+qkv", True, True)):
                use_gemm_convs(model.enc_p, gemm)
                use_gemm_convs(model.dp, gemm)
                for layer in model.enc_p.encoder.attn_layers:
                    layer.fuse_projections(qkv)

                def stage_a():
                    x, m_p, logs_p, mask = model.encode_text(ids, lengths)
                    return model.durations(x, mask, noise, scale, None)

                outs[variant] = stage_a()[0]
                rows.append({"stage": "encoder+durations fp32", "shape": f"{batch}x{tokens}", "variant": variant, "ms": graph_time(stage_a),
                             "rel_err": rel_err(outs[variant], outs["cudnn"]), "durations_equal": bool(torch.equal(outs[variant], outs["cudnn"]))})
                print(rows[-1], flush=True)
    for dtype in (torch.float32, torch.float16):
        model.flow.to(dtype)
        for batch, frames in ((1, 960), (16, 1600)):
            z = torch.randn(batch, model.arch.inter_channels, frames, device="cuda", dtype=dtype)
            mask = torch.ones(batch, 1, frames, device="cuda", dtype=dtype)
            with torch.inference_mode():
                ref = None
                for gemm in (False, True):
                    use_gemm_convs(model.flow, gemm)
                    out = model.flow.reverse(z, mask, None)
                    ref = out if ref is None else ref
                    name = "gemm" if gemm else "cudnn"
                    rows.append({"stage": f"flow {str(dtype)[6:]}", "shape": f"{batch}x{frames}", "variant": name, "ms": graph_time(lambda: model.flow.reverse(z, mask, None)), "rel_err": rel_err(out, ref)})
                    print(rows[-1], flush=True)
        use_gemm_convs(model.flow, False)
    model.flow.float()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="kernel-bench.json")
    parser.add_argument("--front", action="store_true", help="also time the encoder/duration and flow stages")
    parser.add_argument("--front-only", action="store_true", help="only the encoder/duration and flow stages")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # fp32 references are fp32
    model = load_piper("default", torch.device("cuda")).model.to("cuda").eval()
    rows = ([] if args.front_only else decoder_rows(model)) + (front_rows(model) if args.front or args.front_only else [])
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=1)
    print(f"\n{'stage':<26}{'shape':<10}{'variant':<22}{'ms':>9}{'rel err':>11}")
    for r in rows:
        same = {True: "  durations equal", False: "  DURATIONS DIFFER"}.get(r.get("durations_equal"), "")
        print(f"{r['stage']:<26}{r['shape']:<10}{r['variant']:<22}{r['ms']:>9.3f}{r['rel_err']:>11.2e}{same}")


if __name__ == "__main__":
    main()
