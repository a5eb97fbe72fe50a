"""WaveNet's gated dilated convolution in one Triton launch.

A WaveNet layer (van den Oord et al., 2016, arXiv:1609.03499; in VITS's flow, Kim et al., 2021,
arXiv:2106.06103) computes a = conv(x) with 2H output channels, then tanh(a[:H]) · σ(a[H:]). Eager
PyTorch writes `a` and reads it back for the gate (three more kernels, 2H channels each way). Here
one program computes both halves of the same H-channel tile from one loaded input tile and stores
only the gated product: the weights are arranged (K, 2H, C_in), and rows c and H + c are multiplied
side by side.

Masking and layout follow `conv1d`: positions at or past `lengths[b]` read as zero, outputs there
are unspecified, tiles wholly past an item's length are skipped, the output is channels-last.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .conv1d import _tanh, _time_tile, after_predecessor, channels_last, dot, program_tile
from .device import deepest, launch_arguments, shared_memory

FP32_GATED_KB = (80, 144, 208)
"""`gated_conv_kernel`'s fp32 tiles (two 64 × 64 weight tiles, 64 × 128 inputs) at 1, 2, 3
stages (Triton builds for sm_90; sm_86 needs less); half precision takes 32 KB at 3."""


@triton.jit
def gated_conv_kernel(
    x_ptr, w_ptr, b_ptr, len_ptr, y_ptr,
    C_in, H, T,
    stride_xb, stride_xc, stride_xt, stride_yb, stride_yc, stride_yt, stride_bias,
    K: tl.constexpr, DIL: tl.constexpr, PAD: tl.constexpr, EXACT: tl.constexpr,
    BLOCK_CO: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_T: tl.constexpr, PDL: tl.constexpr = False,
):
    """y[c] = tanh(conv(x)[c] + b[c]) · σ(conv(x)[H + c] + b[H + c]) for c < H; the bias is per
    item when stride_bias ≠ 0 (speaker conditioning folded in)."""
    after_predecessor(PDL)
    t, co, b, live, valid = program_tile(len_ptr, BLOCK_CO, BLOCK_T)
    if live:
        x_base = x_ptr + b * stride_xb
        acc_tanh = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        acc_gate = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        n_ci = tl.cdiv(C_in, BLOCK_CI)
        for step in range(K * n_ci):
            j = step // n_ci
            ci = (step - j * n_ci) * BLOCK_CI + tl.arange(0, BLOCK_CI)
            pos = t + (j * DIL - PAD)
            x_ok = (ci[:, None] < C_in) & ((pos >= 0) & (pos < valid))[None, :]
            x = tl.load(x_base + ci[:, None] * stride_xc + pos[None, :] * stride_xt, mask=x_ok, other=0.0)
            w_ok = (co[:, None] < H) & (ci[None, :] < C_in)
            w_tap = w_ptr + j * 2 * H * C_in + co[:, None] * C_in + ci[None, :]
            w_tanh = tl.load(w_tap, mask=w_ok, other=0.0)
            w_gate = tl.load(w_tap + H * C_in, mask=w_ok, other=0.0)
            acc_tanh = acc_tanh + dot(w_tanh, x.to(w_tanh.dtype), EXACT)
            acc_gate = acc_gate + dot(w_gate, x.to(w_gate.dtype), EXACT)
        co_ok = co < H
        bias = b_ptr + b * stride_bias + co
        acc_tanh += tl.load(bias, mask=co_ok, other=0.0).to(tl.float32)[:, None]
        acc_gate += tl.load(bias + H, mask=co_ok, other=0.0).to(tl.float32)[:, None]
        gated = _tanh(acc_tanh) * tl.sigmoid(acc_gate)
        ok = co_ok[:, None] & (t[None, :] < T)
        tl.store(y_ptr + b * stride_yb + co[:, None] * stride_yc + t[None, :] * stride_yt, gated.to(y_ptr.dtype.element_ty), mask=ok)


def gated_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, lengths: torch.Tensor, *, dilation: int, padding: int, block_t: int = 128) -> torch.Tensor:
    """Same-length gated convolution of x (B, C_in, T) with `weight` arranged (K, 2H, C_in) and
    `bias` (2H,) or per item (B, 2H) → (B, H, T), channels-last. The time tile is narrowed from
    `block_t` until there are two programs per multiprocessor: one sentence's flow (192 channels,
    ~1,000 frames) otherwise ran 24 programs on an H100's 132 multiprocessors."""
    k, two_h, c_in = weight.shape
    b, _, t = x.shape
    h = two_h // 2
    y = channels_last((b, h, t), x)
    half = weight.dtype != torch.float32
    block_co, block_ci = 64, max(16, min(64, triton.next_power_of_2(c_in)))
    block_t = _time_tile(block_t, t, triton.cdiv(h, block_co) * b, x.device)
    grid = (triton.cdiv(t, block_t), triton.cdiv(h, block_co), b)
    gated_conv_kernel[grid](
        x, weight, bias, lengths, y, c_in, h, t, *x.stride(), *y.stride(), bias.stride(0) if bias.dim() == 2 else 0,
        K=k, DIL=dilation, PAD=padding, EXACT=not half,
        BLOCK_CO=block_co, BLOCK_CI=block_ci, BLOCK_T=block_t,
        num_warps=4, num_stages=3 if half else deepest(FP32_GATED_KB, shared_memory(x.device)), **launch_arguments(x.device),
    )
    return y
