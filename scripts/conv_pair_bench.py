"""Candidate, not in the engine: two chained convolutions of a HiFi-GAN residual block in one
Triton launch, timed against the engine's two `conv1d` launches at a chapter batch's shapes.

A residual step runs convolution A on x and convolution B on A's output, each on the leaky ReLU of
its masked input (HiFi-GAN, Kong et al., 2020, arXiv:2010.05646). As two launches, A's output goes
to memory and back; at the vocoder's 32- and 64-channel stages (256× and 64× the frame rate) those
full-rate passes are much of the vocoder's time. Here one program computes A for a tile of BLOCK_T
positions from x, keeps it in a per-program scratch tile (L2-resident), and computes B from it for
the tile's central positions: B's reach (its halo) is recomputed by the neighbouring tile instead
of read back from memory. The grid is persistent (a few programs per multiprocessor looping over
tiles), so the scratch stays a few MB whatever the input length.

Shapes of step: type "1" (HiFi-GAN V1) x ← x + B(act(A(act(x)))); type "2", two consecutive
steps x ← x + A(act(x)), x ← x + B(act(x)) (`first_residual`). Masking, epilogue and layout
follow `engine.kernels.conv1d`.

Run AK (H100, 2026-12-07): inside the whole fused vocoder at 16 × 1152 frames it made the vocoder
slower, 5.56 → 7.12 ms (23 → 17 launches), so the engine does not use it. `main` times each
residual block of the two stages alone, paired and unpaired, over grid sizes, warps and tiles.

    python3 scripts/conv_pair_bench.py [--rows 16] [--frames 1152]
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from engine.kernels.conv1d import _epilogue, _tap_block, conv1d
from engine.kernels.device import multiprocessors

PAIR_MAX_CHANNELS = 64
"""One program holds every channel of A's tile: at 32 and 64 channels that is 8–16 K values."""
PROGRAMS_PER_SM = 4
"""Default of `conv_pair`'s persistent grid (swept by `main`)."""
LEAKY = tl.constexpr(1)
"""`conv1d`'s ACT_LEAKY, as a constant the kernel can read."""


@triton.jit
def conv_pair_kernel(
    x_ptr, wa_ptr, ba_ptr, wb_ptr, bb_ptr, len_ptr, sum_ptr, y_ptr, scratch_ptr,
    C, T, n_time_tiles, n_tiles,
    stride_xb, stride_xc, stride_xt,
    slope, scale,
    KA: tl.constexpr, DA: tl.constexpr, KB: tl.constexpr, DB: tl.constexpr,
    A_RESIDUAL: tl.constexpr, HAS_SUM: tl.constexpr, EXACT: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr,
):
    """y = scale · (B(act(a)) + b_B + residual + sum), a = A(act(x)) + b_A (+ x if A_RESIDUAL);
    the residual is a (A_RESIDUAL) or x. y, sum and x share strides; scratch holds one
    (BLOCK_T, BLOCK_C) tile per program."""
    HALO: tl.constexpr = DB * (KB - 1) // 2
    STEP: tl.constexpr = BLOCK_T - 2 * HALO
    PAD_A: tl.constexpr = DA * (KA - 1) // 2
    channels = tl.arange(0, BLOCK_C)
    local = tl.arange(0, BLOCK_T)
    scratch = scratch_ptr + tl.program_id(0) * (BLOCK_T * BLOCK_C)
    tile_of_a = scratch + local[None, :] * BLOCK_C + channels[:, None]
    central = (local >= HALO) & (local < BLOCK_T - HALO)
    for tile in range(tl.program_id(0), n_tiles, tl.num_programs(0)):
        b = tile // n_time_tiles
        first = (tile - b * n_time_tiles) * STEP - HALO
        valid = tl.load(len_ptr + b)
        if first + HALO < valid:  # tiles wholly past the length are skipped, as in conv1d
            x_base = x_ptr + b * stride_xb
            pos = first + local
            acc = tl.zeros((BLOCK_C, BLOCK_T), dtype=tl.float32)
            for j in range(KA):
                acc = _tap_block(acc, x_base, wa_ptr + j * C * C, pos + (j * DA - PAD_A), channels, channels, C, C,
                                 stride_xc, stride_xt, valid, slope, LEAKY, EXACT)
            acc += tl.load(ba_ptr + channels, mask=channels < C, other=0.0).to(tl.float32)[:, None]
            if A_RESIDUAL:
                at_pos = (channels[:, None] < C) & ((pos >= 0) & (pos < T))[None, :]
                acc += tl.load(x_base + channels[:, None] * stride_xc + pos[None, :] * stride_xt, mask=at_pos, other=0.0).to(tl.float32)
            inside = (pos >= 0) & (pos < valid)  # B's input is zero past the length, as the padded model's
            a = tl.where(inside[None, :], acc, 0.0).to(y_ptr.dtype.element_ty)
            tl.store(tile_of_a, a)
            tl.debug_barrier()  # the whole tile of a is written before any thread reads its neighbours'
            acc = tl.zeros((BLOCK_C, BLOCK_T), dtype=tl.float32)
            for j in range(KB):
                acc = _tap_block(acc, scratch, wb_ptr + j * C * C, local + (j * DB - HALO), channels, channels, C, C,
                                 1, BLOCK_C, BLOCK_T, slope, LEAKY, EXACT)
            if A_RESIDUAL:
                acc += a.to(tl.float32)
            stored = tl.where(central, pos, -1)  # the halo's outputs belong to the neighbouring tiles
            _epilogue(acc, bb_ptr, x_ptr, sum_ptr, y_ptr, b, channels, stored, C, T, stride_xb, stride_xc, stride_xt,
                      scale, True, not A_RESIDUAL, HAS_SUM, False)
            tl.debug_barrier()  # every read of the scratch is done before the next tile overwrites it


def conv_pair(
    x: torch.Tensor,
    first: tuple[torch.Tensor, torch.Tensor, int],
    second: tuple[torch.Tensor, torch.Tensor, int],
    lengths: torch.Tensor,
    *,
    slope: float,
    first_residual: bool,
    running_sum: torch.Tensor | None = None,
    scale: float = 1.0,
    out: torch.Tensor | None = None,
    block_t: int = 256,
    programs_per_sm: int = PROGRAMS_PER_SM,
    num_warps: int | None = None,
) -> torch.Tensor:
    """B(act(A(act(x)))) + residual for x (B, C, T), C ≤ PAIR_MAX_CHANNELS; `first` and `second`
    are (weight (K, C, C), bias (C,), dilation), same-length padding. `first_residual` makes
    A a residual step too (type "2"); otherwise B's residual is x (type "1"). `out` may alias
    `running_sum`; both need x's strides."""
    (wa, ba, da), (wb, bb, db) = first, second
    ka, c, _ = wa.shape
    kb = wb.shape[0]
    batch, _, t = x.shape
    y = torch.empty_like(x) if out is None else out
    for other in (y, running_sum):
        if other is not None and other.stride() != x.stride():
            raise ValueError("out and running_sum must have x's strides")
    halo = db * (kb - 1) // 2
    while block_t - 2 * halo < block_t // 4:  # a wide halo: widen the tile so most of it is output
        block_t *= 2
    block_c = max(16, triton.next_power_of_2(c))
    n_time_tiles = triton.cdiv(t, block_t - 2 * halo)
    n_tiles = n_time_tiles * batch
    programs = min(n_tiles, programs_per_sm * multiprocessors(x.device))
    scratch = torch.empty((programs, block_t, block_c), device=x.device, dtype=x.dtype)
    conv_pair_kernel[(programs,)](
        x, wa, ba, wb, bb, lengths, running_sum if running_sum is not None else y, y, scratch,
        c, t, n_time_tiles, n_tiles, *x.stride(), slope, scale,
        KA=ka, DA=da, KB=kb, DB=db, A_RESIDUAL=first_residual, HAS_SUM=running_sum is not None,
        EXACT=wa.dtype == torch.float32, BLOCK_C=block_c, BLOCK_T=block_t, num_warps=num_warps or (4 if block_c * block_t <= 8192 else 8),
    )
    return y


def unpaired(x, first, second, lengths, *, slope, first_residual):
    """The same step as the engine runs it: two `conv1d` launches."""
    (wa, ba, da), (wb, bb, db) = first, second
    pad = lambda w, d: d * (w.shape[0] - 1) // 2
    a = conv1d(x, wa, ba, lengths, dilation=da, padding=pad(wa, da), slope=slope, residual=x if first_residual else None)
    return conv1d(a, wb, bb, lengths, dilation=db, padding=pad(wb, db), slope=slope, residual=a if first_residual else x)


def main() -> None:
    import argparse

    from kernel_bench import graph_time, rel_err
    from profiling import max_speed_wrapper

    from engine.kernels.conv1d import channels_last

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1152)
    args = parser.parse_args()
    vits = max_speed_wrapper(False).model.model
    dec, arch = vits.dec, vits.arch
    torch.manual_seed(0)
    frames = torch.randint(int(args.frames * 0.6), args.frames + 1, (args.rows,), device="cuda", dtype=torch.int32)
    spec = lambda c: (c.weight.detach().permute(2, 0, 1).contiguous(), c.bias.detach(), c.dilation[0])
    rate = 1
    for stage, up in enumerate(arch.upsample_rates):
        rate *= up
        blocks = dec.resblocks[stage * dec.num_kernels : (stage + 1) * dec.num_kernels]
        channels = blocks[0].convs[0].out_channels if blocks[0].kind == "2" else blocks[0].convs1[0].out_channels
        if channels > PAIR_MAX_CHANNELS:
            continue
        lengths = frames * rate
        x = channels_last((args.rows, channels, args.frames * rate), dec.conv_pre.weight).normal_()
        print(f"stage {stage}: {channels} channels × {args.frames * rate} positions × {args.rows} rows, {dec.conv_pre.weight.dtype}")
        with torch.inference_mode():
            for block in blocks:
                pairs = [(block.convs[0], block.convs[1], True)] if block.kind == "2" else [(a, b, False) for a, b in zip(block.convs1, block.convs2)]
                for first, second, residual in pairs:
                    step = dict(slope=0.1, first_residual=residual)
                    a, b = spec(first), spec(second)
                    reference = unpaired(x, a, b, lengths, **step)
                    name = f"k{first.kernel_size[0]} d{first.dilation[0]},{second.dilation[0]}"
                    print(f"  {name:<12} two launches {graph_time(lambda: unpaired(x, a, b, lengths, **step)):7.3f} ms")
                    for programs in (4, 8, 16):
                        for block_t, warps in ((128, 4), (256, 4), (256, 8), (512, 8)):
                            fn = lambda: conv_pair(x, a, b, lengths, block_t=block_t, programs_per_sm=programs, num_warps=warps, **step)
                            valid = torch.cat([fn()[i, :, :n] for i, n in enumerate(lengths.tolist())], 1)
                            want = torch.cat([reference[i, :, :n] for i, n in enumerate(lengths.tolist())], 1)
                            print(f"  {name:<12} pair {programs:2d}/SM t{block_t} w{warps} {graph_time(fn):7.3f} ms  rel err {rel_err(valid, want):.1e}", flush=True)


if __name__ == "__main__":
    main()
