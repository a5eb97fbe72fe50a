"""The fused convolution's tap loop unrolled (as in the engine) against one flattened loop over
(tap, input-channel block) that Triton's software pipeliner can overlap: loads of the next taps
go to shared memory while the current tap's product runs. Graph time (median of replays) per
shape, the engine's kernel first, then the flat kernel's best tiles; outputs compared bitwise.

    python3 scripts/conv_loop_bench.py [--top 4]
"""

from __future__ import annotations

import argparse
import itertools

import torch
import triton
import triton.language as tl

from engine.kernels.conv1d import ACT_LEAKY, ACT_NONE, _dot, _epilogue, _time_tile, channels_last, conv1d

from kernel_bench import graph_time


@triton.jit
def conv1d_flat_kernel(
    x_ptr, w_ptr, b_ptr, len_ptr, res_ptr, sum_ptr, y_ptr,
    C_in, C_out, T_in, T_out,
    stride_xb, stride_xc, stride_xt, stride_yb, stride_yc, stride_yt, stride_bias,
    slope, scale,
    K: tl.constexpr, DIL: tl.constexpr, PAD: tl.constexpr, ACT: tl.constexpr, EXACT: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, HAS_SUM: tl.constexpr, TANH: tl.constexpr,
    BLOCK_CO: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_T: tl.constexpr,
):
    pid_t = tl.program_id(0)
    pid_co = tl.program_id(1)
    b = tl.program_id(2)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    valid = tl.load(len_ptr + b)
    if pid_t * BLOCK_T < valid:
        x_base = x_ptr + b * stride_xb
        acc = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        n_ci = tl.cdiv(C_in, BLOCK_CI)
        for step in range(K * n_ci):
            j = step // n_ci
            ci = (step - j * n_ci) * BLOCK_CI + tl.arange(0, BLOCK_CI)
            pos = t + (j * DIL - PAD)
            pos_ok = (pos >= 0) & (pos < valid)
            x = tl.load(x_base + ci[:, None] * stride_xc + pos[None, :] * stride_xt, mask=(ci[:, None] < C_in) & pos_ok[None, :], other=0.0)
            if ACT == 1:
                x = tl.where(x >= 0, x, x * slope)
            w = tl.load(w_ptr + j * C_out * C_in + co[:, None] * C_in + ci[None, :], mask=(co[:, None] < C_out) & (ci[None, :] < C_in), other=0.0)
            acc += _dot(w, x.to(w.dtype), EXACT)
        _epilogue(acc, b_ptr + b * stride_bias, res_ptr, sum_ptr, y_ptr, b, co, t, C_out, T_out, stride_yb, stride_yc, stride_yt, scale, HAS_BIAS, HAS_RES, HAS_SUM, TANH)


def conv1d_flat(x, weight, bias, lengths, *, dilation, padding, slope, residual, block_co, block_ci, block_t, num_warps, num_stages):
    k, c_out, c_in = weight.shape
    b, _, t = x.shape
    y = torch.empty_like(residual) if residual is not None else channels_last((b, c_out, t), x)
    block_t = _time_tile(block_t, t, triton.cdiv(c_out, block_co) * b, x.device)
    grid = (triton.cdiv(t, block_t), triton.cdiv(c_out, block_co), b)
    conv1d_flat_kernel[grid](
        x, weight, bias, lengths, residual if residual is not None else y, y, y,
        c_in, c_out, t, t,
        *x.stride(), *y.stride(), 0,
        0.0 if slope is None else slope, 1.0,
        K=k, DIL=dilation, PAD=padding, ACT=ACT_NONE if slope is None else ACT_LEAKY, EXACT=weight.dtype == torch.float32,
        HAS_BIAS=True, HAS_RES=residual is not None, HAS_SUM=False, TANH=False,
        BLOCK_CO=block_co, BLOCK_CI=block_ci, BLOCK_T=block_t, num_warps=num_warps, num_stages=num_stages,
    )
    return y


SHAPES = (
    # name, batch, channels in/out, positions, k, dilation, dtype, engine kwargs
    ("voc C128 k3 d5 chapter", 16, 128, 128, 1600 * 8, 3, 5, torch.float16),
    ("voc C128 k11 d1 chapter", 16, 128, 128, 1600 * 8, 11, 1, torch.float16),
    ("voc C64 k3 d5 chapter", 16, 64, 64, 1600 * 64, 3, 5, torch.float16),
    ("voc C64 k11 d1 chapter", 16, 64, 64, 1600 * 64, 11, 1, torch.float16),
    ("voc C32 k3 d5 chapter", 16, 32, 32, 1600 * 256, 3, 5, torch.float16),
    ("voc C32 k11 d1 chapter", 16, 32, 32, 1600 * 256, 11, 1, torch.float16),
    ("voc C32 k7 d3 medium", 1, 32, 32, 960 * 256, 7, 3, torch.float16),
    ("ffn 192>768 chapter", 16, 192, 768, 256, 3, 1, torch.float32),
    ("ffn 768>192 chapter", 16, 768, 192, 256, 3, 1, torch.float32),
    ("ffn 768>192 sentence", 1, 768, 192, 416, 3, 1, torch.float32),
)


def engine_tiles(c_out, c_in, dtype):
    from engine.kernels.conv1d import _blocks
    return _blocks(c_out, c_in, wide=dtype != torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--top", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, for a correctness check (TRITON_INTERPRET=1)")
    args = parser.parse_args()
    device = "cpu" if args.quick else "cuda"
    torch.manual_seed(0)
    summary = []
    for name, batch, c_in, c_out, t, k, dil, dtype in SHAPES:
        if args.quick:
            t = min(t, 300)
        pad = dil * (k - 1) // 2
        weight = torch.randn(k, c_out, c_in, device=device, dtype=dtype) * (c_in * k) ** -0.5
        bias = torch.randn(c_out, device=device, dtype=dtype)
        x = torch.randn(batch, t, c_in, device=device, dtype=dtype).transpose(1, 2)
        lengths = torch.full((batch,), t, device=device, dtype=torch.int32)
        lengths[0] = t - t // 3
        residual = channels_last((batch, c_out, t), x).copy_(torch.randn(batch, c_out, t)) if c_in == c_out else None
        exact = dtype == torch.float32
        block_t_engine, warps_engine = (64, 4) if exact else (128, 4)
        slope = 0.0 if exact else 0.1

        def engine(x=x, weight=weight, bias=bias, lengths=lengths, dil=dil, pad=pad, slope=slope, residual=residual):
            return conv1d(x, weight, bias, lengths, dilation=dil, padding=pad, slope=slope, residual=residual, block_t=block_t_engine, num_warps=warps_engine)

        ref = engine()
        keep = torch.arange(t, device=device)[None, None, :] < lengths[:, None, None]
        tiles = engine_tiles(c_out, c_in, dtype)
        if exact:
            combos = [(tl_, bt, 4, s) for tl_, bt, s in itertools.product(((64, 32), (64, 64), (128, 32)), (32, 64, 128), (2, 3, 4))]
            combos += [(tl_, 128, 8, s) for tl_, s in itertools.product(((64, 64), (128, 32)), (3, 4))]
        else:
            combos = [(tiles, bt, w, s) for bt, w, s in itertools.product((64, 128, 256), (4, 8), (2, 3, 4))]
        if args.quick:
            combos = combos[:2]
        rows = []
        for (bco, bci), bt, w, s in combos:
            def flat(bco=bco, bci=bci, bt=bt, w=w, s=s, x=x, weight=weight, bias=bias, lengths=lengths, dil=dil, pad=pad, slope=slope, residual=residual):
                return conv1d_flat(x, weight, bias, lengths, dilation=dil, padding=pad, slope=slope, residual=residual, block_co=bco, block_ci=bci, block_t=bt, num_warps=w, num_stages=s)
            try:
                out = flat()
                diff = torch.where(keep, (out.float() - ref.float()).abs(), 0.0).max().item()
                ms = float("nan") if args.quick else graph_time(flat)
                rows.append((ms, (bco, bci), bt, w, s, diff))
            except Exception as exc:  # a tile the chip cannot hold
                rows.append((float("inf"), (bco, bci), bt, w, s, type(exc).__name__))
        base = float("nan") if args.quick else graph_time(engine)
        print(f"{name}: engine {base:.4f} ms (tiles {tiles}, t{block_t_engine} w{warps_engine})", flush=True)
        ranked = sorted(rows, key=lambda r: r[0])
        for ms, tiles_, bt, w, s, diff in ranked[: args.top]:
            print(f"   flat {ms:8.4f} ms  {tiles_} t{bt} w{w} s{s}  max abs diff {diff}", flush=True)
        summary.append((name, base, ranked[0]))
    print("\nsummary (engine → best flat)")
    for name, base, (ms, tiles_, bt, w, s, diff) in summary:
        print(f"{name:26s} {base:8.4f} → {ms:8.4f} ms ({base / ms if ms else float('nan'):.2f}×)  {tiles_} t{bt} w{w} s{s}  diff {diff}")


if __name__ == "__main__":
    main()
