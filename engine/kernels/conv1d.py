"""Fused 1-D convolutions for the vocoder, written in Triton.

One launch computes `epilogue(conv(prologue(x)))` for a (channels × time) tile: the prologue is the
leaky ReLU and the length mask that HiFi-GAN applies before every convolution, the epilogue the bias,
the residual add, the running sum over parallel residual blocks, a scale and an optional tanh. In
eager PyTorch each of those is its own kernel (plus cuDNN's layout transposes around half-precision
convolutions); here they act on the tile in registers and only each convolution's output is written.

A convolution tap is a (C_out × C_in) @ (C_in × T) matrix product on the tensor cores; the taps are
summed in fp32, in one loop over (tap, input-channel block) that Triton software-pipelines: the
next steps' tiles load into shared memory while the current product runs (1.2–2.5× over the taps
unrolled, run AF). The transposed convolution is computed per output phase (polyphase decomposition),
so each phase is again a sum of plain products and no zeros are multiplied.

Layout: activations are (B, C, T) tensors of any strides; the kernels allocate theirs channels-last
(see `channels_last`). Weights are pre-arranged once as (K, C_out, C_in).
Masking: `lengths[b]` counts the valid input positions of item b; positions at or past it read as
zero, which is exactly the zero padding an unpadded input would see. Outputs at or past an item's
length are left unspecified, since every consumer masks them the same way: tiles wholly past it are
skipped, so a padded batch costs what its real lengths cost (a chapter's batches are ~1.6× padded).

`exact_conv1d` is the convolution as a `torch.library.triton_op` (the encoder's feed-forward runs
inside torch.compile, which sees through it to the kernel); `conv1d` itself launches directly,
since a traceable launch costs a higher-order-op dispatch per eager call.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .device import SMALL_BATCH_ROWS, deepest, gdc_launch_dependents, gdc_wait, launch_arguments, multiprocessors, shared_memory

ACT_NONE, ACT_LEAKY = 0, 1


@triton.jit
def _tanh(x):
    e = tl.exp(2.0 * tl.minimum(tl.maximum(x, -15.0), 15.0))  # tanh(±15) is ±1 in fp32
    return 1.0 - 2.0 / (e + 1.0)


@triton.jit
def dot(a, b, EXACT: tl.constexpr):
    """fp32 operands use three TF32 products (fp32 accuracy on the tensor cores); half-precision
    operands multiply exactly and accumulate in fp32."""
    if EXACT:
        return tl.dot(a, b, input_precision="tf32x3")
    return tl.dot(a, b)


@triton.jit
def _tap_block(acc, x_base, w_tap, pos, co, ci, C_in, C_out, stride_xc, stride_xt, valid, slope, ACT: tl.constexpr, EXACT: tl.constexpr):
    """acc += W_tap[:, ci] (C_out × BLOCK_CI) @ act(x[ci, pos]); positions outside [0, valid)
    read as zero, rows ≥ C_out of W as zero."""
    pos_ok = (pos >= 0) & (pos < valid)
    x = tl.load(x_base + ci[:, None] * stride_xc + pos[None, :] * stride_xt, mask=(ci[:, None] < C_in) & pos_ok[None, :], other=0.0)
    if ACT == 1:
        x = tl.where(x >= 0, x, x * slope)
    w = tl.load(w_tap + co[:, None] * C_in + ci[None, :], mask=(co[:, None] < C_out) & (ci[None, :] < C_in), other=0.0)
    return acc + dot(w, x.to(w.dtype), EXACT)


@triton.jit
def after_predecessor(PDL: tl.constexpr):
    """Under programmatic dependent launch (`device.dependent_launch`) a kernel starts while the
    one before it still runs: wait here until that one has finished and its writes are visible,
    then let the next kernel launch (its programs wait here in turn). Before any load."""
    if PDL:
        gdc_wait()
        gdc_launch_dependents()


@triton.jit
def program_tile(len_ptr, BLOCK_CO: tl.constexpr, BLOCK_T: tl.constexpr, SPLITS: tl.constexpr = 1):
    """A same-length convolution program's tile on a (time, output channel, item × split) grid:
    its positions, its output channels, its item, and whether its first position is within the
    item's length (tiles wholly past it are skipped) with that length."""
    b = tl.program_id(2) // SPLITS
    first = tl.program_id(0) * BLOCK_T
    valid = tl.load(len_ptr + b)
    return first + tl.arange(0, BLOCK_T), tl.program_id(1) * BLOCK_CO + tl.arange(0, BLOCK_CO), b, first < valid, valid


@triton.jit
def conv1d_kernel(
    x_ptr, w_ptr, b_ptr, len_ptr, res_ptr, sum_ptr, y_ptr,
    C_in, C_out, T_in, T_out,
    stride_xb, stride_xc, stride_xt, stride_yb, stride_yc, stride_yt, stride_bias, stride_ys,
    slope, scale,
    K: tl.constexpr, DIL: tl.constexpr, PAD: tl.constexpr, ACT: tl.constexpr, EXACT: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, HAS_SUM: tl.constexpr, TANH: tl.constexpr, ZERO_PAST: tl.constexpr,
    BLOCK_CO: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_T: tl.constexpr, SPLITS: tl.constexpr, PDL: tl.constexpr = False,
):
    """y = act_out(scale · (conv(act(x · mask)) + bias + res + sum)); res/sum/y share y's strides;
    the bias is per item when stride_bias ≠ 0 (speaker conditioning folded in). Outputs at or past
    an item's length are zero with ZERO_PAST, else left unwritten (tiles wholly past it skipped).
    With SPLITS > 1 the (tap, channel block) steps are cut into SPLITS runs, each program sums one
    run and stores it at y + run · stride_ys (a partial sum; the caller adds them up)."""
    after_predecessor(PDL)
    t, co, b, live, valid = program_tile(len_ptr, BLOCK_CO, BLOCK_T, SPLITS)
    if live:
        x_base = x_ptr + b * stride_xb
        acc = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        n_ci = tl.cdiv(C_in, BLOCK_CI)
        if SPLITS == 1:
            first, last, out_ptr = 0, K * n_ci, y_ptr
        else:
            run = tl.program_id(2) % SPLITS
            per_run = tl.cdiv(K * n_ci, SPLITS)
            first, last, out_ptr = run * per_run, tl.minimum(K * n_ci, (run + 1) * per_run), y_ptr + run * stride_ys
        for step in range(first, last):  # one loop over (tap, channel block): the pipeliner prefetches across taps
            j = step // n_ci
            ci = (step - j * n_ci) * BLOCK_CI + tl.arange(0, BLOCK_CI)
            acc = _tap_block(acc, x_base, w_ptr + j * C_out * C_in, t + (j * DIL - PAD), co, ci, C_in, C_out, stride_xc, stride_xt, valid, slope, ACT, EXACT)
        _epilogue(acc, b_ptr + b * stride_bias, res_ptr, sum_ptr, out_ptr, b, co, t, C_out, T_out, stride_yb, stride_yc, stride_yt, scale,
                  HAS_BIAS, HAS_RES, HAS_SUM, TANH, valid, ZERO_PAST)
    elif ZERO_PAST:
        _epilogue(tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32), b_ptr, res_ptr, sum_ptr, y_ptr, b, co, t, C_out, T_out, stride_yb, stride_yc, stride_yt, 1.0,
                  False, False, False, False, valid, False)


@triton.jit
def _epilogue(acc, b_ptr, res_ptr, sum_ptr, y_ptr, b, co, t, C_out, T_out, stride_yb, stride_yc, stride_yt, scale,
              HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, HAS_SUM: tl.constexpr, TANH: tl.constexpr, valid=0, ZERO_PAST: tl.constexpr = False):
    """Stores act_out(scale · (acc + bias + res + sum)) at positions [0, T_out); with ZERO_PAST,
    zero at positions at or past `valid`."""
    co_ok = co < C_out
    ok = co_ok[:, None] & (t[None, :] >= 0) & (t[None, :] < T_out)
    offs = b * stride_yb + co[:, None] * stride_yc + t[None, :] * stride_yt
    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=co_ok, other=0.0).to(tl.float32)[:, None]
    if HAS_RES:
        acc += tl.load(res_ptr + offs, mask=ok, other=0.0).to(tl.float32)
    if HAS_SUM:
        acc += tl.load(sum_ptr + offs, mask=ok, other=0.0).to(tl.float32)
    acc = acc * scale
    if TANH:
        acc = _tanh(acc)
    if ZERO_PAST:
        acc = tl.where(t[None, :] < valid, acc, 0.0)
    tl.store(y_ptr + offs, acc.to(y_ptr.dtype.element_ty), mask=ok)


@triton.jit
def conv_transpose1d_kernel(
    x_ptr, w_ptr, b_ptr, len_ptr, y_ptr,
    C_in, C_out, T_in, T_out,
    stride_xb, stride_xc, stride_xt, stride_yb, stride_yc, stride_yt,
    slope,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, ACT: tl.constexpr, EXACT: tl.constexpr,
    BLOCK_CO: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_Q: tl.constexpr, PDL: tl.constexpr = False,
):
    """Output t = q·STRIDE + r − PAD takes taps j = r + m·STRIDE from inputs s = q − m; each
    program computes one phase r of a tile of q (phases run in parallel across the grid)."""
    after_predecessor(PDL)
    pid = tl.program_id(0)
    r = pid % STRIDE
    pid_co = tl.program_id(1)
    b = tl.program_id(2)
    q0 = (pid // STRIDE) * BLOCK_Q
    q = q0 + tl.arange(0, BLOCK_Q)
    co = pid_co * BLOCK_CO + tl.arange(0, BLOCK_CO)
    valid = tl.load(len_ptr + b)
    if q0 * STRIDE + (r - PAD) < valid * STRIDE:  # the output is valid up to length · STRIDE
        x_base = x_ptr + b * stride_xb
        acc = tl.zeros((BLOCK_CO, BLOCK_Q), dtype=tl.float32)
        n_ci = tl.cdiv(C_in, BLOCK_CI)
        for step in range((K + STRIDE - 1) // STRIDE * n_ci):
            m = step // n_ci
            ci = (step - m * n_ci) * BLOCK_CI + tl.arange(0, BLOCK_CI)
            j = r + m * STRIDE
            rows = tl.where(j < K, C_out, 0)  # a phase with fewer taps: this tap's weights read as zero
            acc = _tap_block(acc, x_base, w_ptr + j * C_out * C_in, q - m, co, ci, C_in, rows, stride_xc, stride_xt, valid, slope, ACT, EXACT)
        t = q * STRIDE + (r - PAD)
        _epilogue(acc, b_ptr, b_ptr, b_ptr, y_ptr, b, co, t, C_out, T_out, stride_yb, stride_yc, stride_yt, 1.0, True, False, False, False)


def channels_last(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """A (..., C, T) tensor stored as (..., T, C): a tap's shift moves whole rows of channels, so
    tile loads stay aligned and vectorised whatever the dilation, and phase-strided stores of the
    transposed convolution write whole rows."""
    *lead, c, t = shape
    step, lead_strides = c * t, []
    for size in reversed(lead):
        lead_strides.insert(0, step)
        step *= size
    return torch.empty_strided(shape, (*lead_strides, 1, c), device=like.device, dtype=like.dtype)


def _tiles(c_out: int, c_in: int, half: bool) -> tuple[int, int, int]:
    """(C_out tile, C_in step, warps). Tensor-core products need every side ≥ 16. Half precision
    (the vocoder): at joe-medium's 128, 64 and 32 channels 128 × 64 with 8 warps, 64 × 32 and
    32 × 32 with 4 were fastest on an H100 at a chapter batch (run AF, `scripts/decoder_tiles.py`);
    fp32 (three-pass TF32, the encoder's feed-forward) 64 × 64 with 4."""
    if half:
        co = max(16, min(128, triton.next_power_of_2(c_out)))
        return co, max(16, min(64 if c_in >= 128 else 32, triton.next_power_of_2(c_in))), 8 if co >= 128 else 4
    return max(16, min(64, triton.next_power_of_2(c_out))), max(16, min(64, triton.next_power_of_2(c_in))), 4


FP32_CONV_KB = (80, 128, 176)
"""`conv1d_kernel`'s fp32 tiles (64 × 64 weights, 128 positions) at 1, 2, 3 stages; half-precision
tiles take ≤ 64 KB at 3."""
FP32_NARROW_KB = (40, 64, 88)
"""The same with `exact_conv1d`'s narrow tiles (32 × 64 weights, ≤ 64 positions): three stages fit
every card."""
NARROW_TILES = (32, 64)
"""`exact_conv1d`'s (C_out, C_in) tiles below `SMALL_BATCH_ROWS`. At one sentence (1 × 480, joe's
192 channels) 64-channel tiles leave most multiprocessors idle and lose to cuBLAS; 32 × 64 beat it
for all four of an encoder layer's products (run AS), and with the time tiles and runs chosen in
`exact_conv1d` an encoder layer's products take 55 µs against cuBLAS's 113 on an H100
(`scripts/sentence_kernels_probe.py`, ten launches back to back, run AT)."""
FP32_TRANSPOSED_KB = (48, 80, 112)
"""`conv_transpose1d_kernel`'s fp32 tiles (64 × 64, 64 positions); half precision ≤ 16 KB."""


def _time_tile(largest: int, positions: int, other_programs: int, device: torch.device, per_sm: int = 2) -> int:
    """Largest time tile (≤ `largest`, ≥ 32) that still gives `per_sm` programs per multiprocessor:
    short inputs (the first upsampling stages of one sentence) otherwise leave most SMs idle."""
    tile = largest
    while tile > 32 and triton.cdiv(positions, tile) * other_programs < per_sm * multiprocessors(device):
        tile //= 2
    return tile


def conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    lengths: torch.Tensor,
    *,
    dilation: int = 1,
    padding: int = 0,
    slope: float | None = None,
    residual: torch.Tensor | None = None,
    running_sum: torch.Tensor | None = None,
    scale: float = 1.0,
    tanh: bool = False,
    out: torch.Tensor | None = None,
    block_t: int = 128,
    num_warps: int | None = None,
    channel_blocks: tuple[int, int] | None = None,
    num_stages: int | None = None,
    zero_past: bool = False,
    splits: int = 1,
    fill: int = 2,
    launcher=None,
) -> torch.Tensor:
    """Same-length (stride 1) conv of x (B, C_in, T) with `weight` arranged (K, C_out, C_in).
    `slope` enables a leaky ReLU on the (masked) input. `bias` is (C_out,) or per item (B, C_out).
    `out` may alias `running_sum` (each element is read and written by the same program).
    `channel_blocks` (C_out, C_in tile) and `num_warps` override the defaults of `_tiles`.
    `launcher` is launched in place of `conv1d_kernel`: its `wrap_triton` form, inside a `triton_op`.
    `num_stages` defaults to 3, fewer where the default fp32 tiles would not fit the card's shared
    memory (`FP32_CONV_KB`); a caller choosing other fp32 tiles (`channel_blocks`, a wider `block_t`)
    should choose the depth with them. `zero_past` writes zeros at and past each length instead of
    leaving them unspecified. `splits` > 1 cuts the sum over (tap, input channel block) into that
    many runs on separate programs and returns their partial sums, (splits, B, C_out, T): no bias,
    residual, sum, scale, tanh or zeroing past the lengths then (the caller adds the runs up).
    The time tile is narrowed from `block_t` until there are `fill` programs per multiprocessor."""
    k, c_out, c_in = weight.shape
    b, _, t = x.shape
    t_out = t + 2 * padding - dilation * (k - 1)
    if splits > 1:
        if bias is not None or residual is not None or running_sum is not None or scale != 1.0 or tanh or zero_past or out is not None:
            raise ValueError("split sums take no bias, residual, running_sum, scale, tanh, zero_past or out")
        runs = channels_last((splits, b, c_out, t_out), x)
        out = runs[0]
    if out is None:
        out = torch.empty_like(residual) if residual is not None else channels_last((b, c_out, t_out), x)
    y = out
    for other in (residual, running_sum):
        if other is not None and other.stride() != y.stride():
            raise ValueError("residual and running_sum must have the output's strides")
    half = weight.dtype != torch.float32
    block_co, block_ci, warps = _tiles(c_out, c_in, half)
    if num_stages is None:
        num_stages = 3 if half else deepest(FP32_CONV_KB, shared_memory(x.device))
    if channel_blocks is not None:
        block_co, block_ci = channel_blocks
    block_t = _time_tile(block_t, t_out, triton.cdiv(c_out, block_co) * b * splits, x.device, fill)
    grid = (triton.cdiv(t_out, block_t), triton.cdiv(c_out, block_co), b * splits)
    target = runs if splits > 1 else y  # the split sums' whole buffer: the kernel writes all of it
    (conv1d_kernel if launcher is None else launcher)[grid](
        x, weight, bias if bias is not None else weight, lengths,
        residual if residual is not None else target, running_sum if running_sum is not None else target, target,
        c_in, c_out, t, t_out,
        *x.stride(), *y.stride(), bias.stride(0) if bias is not None and bias.dim() == 2 else 0, runs.stride(0) if splits > 1 else 0,
        0.0 if slope is None else slope, scale,
        K=k, DIL=dilation, PAD=padding, ACT=ACT_NONE if slope is None else ACT_LEAKY, EXACT=weight.dtype == torch.float32,
        HAS_BIAS=bias is not None, HAS_RES=residual is not None, HAS_SUM=running_sum is not None, TANH=tanh, ZERO_PAST=zero_past,
        BLOCK_CO=block_co, BLOCK_CI=block_ci, BLOCK_T=block_t, SPLITS=splits, num_warps=num_warps or warps, num_stages=num_stages,
        **(launch_arguments(x.device) if launcher is None else TRACED_LAUNCH),
    )
    return runs if splits > 1 else y


@triton_op("tts_turbo::exact_conv1d", mutates_args=())
def exact_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, lengths: torch.Tensor, padding: int, relu: bool, zero_past: bool) -> torch.Tensor:
    """`conv1d` as an operator that torch.compile traces without a graph break: same-length conv
    of x (B, C_in, T) with `weight` (K, C_out, C_in) and `bias` (C_out,); inputs at or past
    `lengths[b]` (int32) read as zero and `relu` applies to the masked input. fp32 operands keep
    fp32 accuracy (three-pass TF32). Returns a new (B, C_out, T) tensor that is zero at or past
    each length with `zero_past`, else unspecified there (possibly NaN: select, never multiply).
    Tiles of 128 positions measured fastest for the encoder's feed-forward on an H100 (run AF).
    Batches below `SMALL_BATCH_ROWS` take `NARROW_TILES` with the widest time tile (≤ 64) that
    still gives every multiprocessor a program (two per multiprocessor meant 32 positions, 1.3×
    slower for one sentence's q/k/v and first feed-forward convolution, run AT), and deep
    products sum in runs (`RUN_STEPS`)."""
    traced = wrap_triton(conv1d_kernel)  # named here, where torch looks for the kernels to key its compile caches on
    slope = 0.0 if relu else None
    if x.shape[0] * x.shape[2] >= SMALL_BATCH_ROWS:
        return conv1d(x, weight, bias, lengths, padding=padding, slope=slope, zero_past=zero_past, launcher=traced)
    narrow = dict(block_t=64, channel_blocks=NARROW_TILES, fill=1, num_stages=deepest(FP32_NARROW_KB, shared_memory(x.device)), launcher=traced)
    runs = narrow_runs(weight.shape[0], weight.shape[2])
    if runs == 1:
        return conv1d(x, weight, bias, lengths, padding=padding, slope=slope, zero_past=zero_past, **narrow)
    parts = conv1d(x, weight, None, lengths, padding=padding, slope=slope, splits=runs, **narrow)
    y = functools.reduce(torch.add, parts.unbind(0)) + bias[:, None]
    return torch.where(torch.arange(y.shape[2], device=y.device) < lengths[:, None, None], y, 0.0) if zero_past else y


TRACED_LAUNCH = {"PDL": False}
"""What a traced launch (`exact_conv1d`, under torch.compile) adds: Inductor passes a traced kernel
exactly the arguments given, filling in no defaults, so every parameter is named; and it takes no
launch options. Without `PDL` the launch was one argument short on the GPU ("launcher() missing
1 required positional argument: '_grid_2'"), and the encoder's kernels gave way (run AY)."""


RUN_STEPS = 9
"""Below `SMALL_BATCH_ROWS` a product's sum over (tap, input channel block) steps is cut into runs
of at least this many steps, each on its own programs, added up after the launch (under
torch.compile the adds fuse into the consumer's kernel: the residual and layer norm). At one
sentence only the feed-forward's second convolution (768 → 192 channels, kernel 3: 36 steps) has
enough: 4 runs, 37 → 20 µs on an H100 (`scripts/sentence_kernels_probe.py`, run AT)."""


def narrow_runs(k: int, c_in: int) -> int:
    """Runs of a narrow product's sum (see `RUN_STEPS`) for kernel size `k` and `c_in` input channels."""
    return max(1, k * triton.cdiv(c_in, NARROW_TILES[1]) // RUN_STEPS)


def conv_transpose1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    lengths: torch.Tensor,
    *,
    stride: int,
    padding: int,
    slope: float | None = None,
    block_q: int = 64,
) -> torch.Tensor:
    """ConvTranspose1d of x (B, C_in, T) with `weight` arranged (K, C_out, C_in)."""
    k, c_out, c_in = weight.shape
    b, _, t = x.shape
    t_out = (t - 1) * stride - 2 * padding + k
    y = channels_last((b, c_out, t_out), x)
    block_co, block_ci = _tiles(c_out, c_in, half=False)[:2]  # the wide tiles were not measured here
    stages = 3 if weight.dtype != torch.float32 else deepest(FP32_TRANSPOSED_KB, shared_memory(x.device))
    q_max = (t_out - 1 + padding) // stride + 1
    block_q = _time_tile(block_q, q_max, stride * triton.cdiv(c_out, block_co) * b, x.device)
    grid = (triton.cdiv(q_max, block_q) * stride, triton.cdiv(c_out, block_co), b)
    conv_transpose1d_kernel[grid](
        x, weight, bias, lengths, y,
        c_in, c_out, t, t_out,
        *x.stride(), *y.stride(),
        0.0 if slope is None else slope,
        K=k, STRIDE=stride, PAD=padding, ACT=ACT_NONE if slope is None else ACT_LEAKY, EXACT=weight.dtype == torch.float32,
        BLOCK_CO=block_co, BLOCK_CI=block_ci, BLOCK_Q=block_q, num_stages=stages, **launch_arguments(x.device),
    )
    return y
