"""One Triton launch per layer of the duration predictor's dilated depth-separable convolutions.

A `DDSConv` layer (VITS, arXiv:2106.06103, stochastic duration predictor) is

    y = gelu(LN1(depthwise_conv_dilated(x · mask)))
    y = gelu(LN2(W y + b))                       # 1 × 1 convolution, C × C
    x = x + y

with LayerNorm over the channels and exact (erf) GELU (Hendrycks & Gimpel, arXiv:1606.08415). Eager
PyTorch and torch.compile run it as 4–6 kernels of a few microseconds each; at a sentence's few
hundred tokens they are latency-bound, so here one kernel keeps a tile of positions in registers
for the whole layer (timings in `_launch_config`).

Each program owns all C channels of a tile of BLOCK_T positions, so both LayerNorms see whole
columns. The 1 × 1 product runs on the tensor cores with three-pass TF32 (fp32 accuracy: rounded
durations depend on it), its input channels in slices of BLOCK_C whose depthwise outputs are
recomputed from the (cached) input rather than sliced out of registers, which Triton cannot do.
LN2's statistics are two-pass over each whole column (mean, then the mean of squared deviations),
as PyTorch computes them; LN1's are two-pass within each slice and merged pairwise across slices.

Every position below T is computed, those past an item's length included, exactly as the plain
layer computes them (from the masked input), so the output is finite everywhere.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

VECTORS = ("depthwise bias", "LN1 gamma", "LN1 beta", "1 × 1 bias", "LN2 gamma", "LN2 beta")
"""The rows of a layer's (6, C) `vectors`, in order."""


@triton.jit
def _gelu(v):
    return 0.5 * v * (1.0 + tl.erf(v * 0.7071067811865476))


@triton.jit
def _column(ptr, c, C):
    """A per-channel vector at channels c (zero past C), as a column."""
    return tl.load(ptr + c, mask=c < C, other=0.0).to(tl.float32)[:, None]


@triton.jit
def _depthwise(x_base, g_base, m_base, taps_ptr, bias_ptr, c, t, C, T,
               stride_xc, stride_xt, stride_gc, stride_gt, stride_mt,
               K: tl.constexpr, DIL: tl.constexpr, HAS_G: tl.constexpr, ROWS: tl.constexpr, BLOCK_T: tl.constexpr):
    """conv((x + g) · mask)[c, t] + bias, (ROWS, BLOCK_T); rows c ≥ C are zero. Positions outside
    [0, T) read as zero: the convolution's zero padding."""
    c_ok = c < C
    acc = tl.zeros((ROWS, BLOCK_T), dtype=tl.float32)
    for j in tl.static_range(K):
        pos = t + (j - (K - 1) // 2) * DIL
        inside = (pos >= 0) & (pos < T)
        ok = c_ok[:, None] & inside[None, :]
        v = tl.load(x_base + c[:, None] * stride_xc + pos[None, :] * stride_xt, mask=ok, other=0.0).to(tl.float32)
        if HAS_G:
            v += tl.load(g_base + c[:, None] * stride_gc + pos[None, :] * stride_gt, mask=ok, other=0.0).to(tl.float32)
        m = tl.load(m_base + pos * stride_mt, mask=inside, other=0.0).to(tl.float32)
        w = tl.load(taps_ptr + c * K + j, mask=c_ok, other=0.0).to(tl.float32)
        acc += (v * m[None, :]) * w[:, None]
    return acc + _column(bias_ptr, c, C)


@triton.jit
def _depthwise_moments(x_base, g_base, m_base, taps_ptr, bias_ptr, t, C, T, eps,
                       stride_xc, stride_xt, stride_gc, stride_gt, stride_mt,
                       K: tl.constexpr, DIL: tl.constexpr, HAS_G: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr):
    """Per-position mean and 1/sqrt(var + eps) of the depthwise output over its C channels, a
    slice of BLOCK_C at a time (a whole column would not fit in registers). Each slice's moments
    are two-pass; slices merge by the pairwise update of Chan, Golub & LeVeque ("Algorithms for
    computing the sample variance", 1979), as stable as two passes over the whole column."""
    mean = tl.zeros((BLOCK_T,), dtype=tl.float32)
    m2 = tl.zeros((BLOCK_T,), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        c = c0 + tl.arange(0, BLOCK_C)
        a = _depthwise(x_base, g_base, m_base, taps_ptr, bias_ptr, c, t, C, T, stride_xc, stride_xt, stride_gc, stride_gt, stride_mt, K, DIL, HAS_G, BLOCK_C, BLOCK_T)
        seen = c0 * 1.0  # channels merged so far
        n = tl.minimum(C - c0, BLOCK_C) * 1.0  # channels in this slice
        slice_mean = tl.sum(a, axis=0) / n
        d = tl.where((c < C)[:, None], a - slice_mean[None, :], 0.0)
        delta = slice_mean - mean
        mean += delta * (n / (seen + n))
        m2 += tl.sum(d * d, axis=0) + delta * delta * (seen * n / (seen + n))
    return mean, tl.rsqrt(m2 / C + eps)


@triton.jit
def _moments(a, c_ok, C, eps):
    """Per-position mean and 1/sqrt(var + eps) over the valid channels of a (ROWS, BLOCK_T) tile."""
    mean = tl.sum(a, axis=0) / C  # rows past C are zero
    d = tl.where(c_ok[:, None], a - mean[None, :], 0.0)
    return mean, tl.rsqrt(tl.sum(d * d, axis=0) / C + eps)


@triton.jit
def dds_layer_kernel(
    x_ptr, g_ptr, m_ptr, taps_ptr, mix_ptr, vec_ptr, y_ptr,
    C, T, eps,
    stride_xb, stride_xc, stride_xt, stride_gb, stride_gc, stride_gt, stride_mb, stride_mt,
    stride_yb, stride_yc, stride_yt,
    K: tl.constexpr, DIL: tl.constexpr, HAS_G: tl.constexpr, MASK_OUTPUT: tl.constexpr,
    C_PAD: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_T: tl.constexpr,
):
    """y = x + g + gelu(LN2(mix @ gelu(LN1(depthwise((x + g) · mask))) + bias)), times the mask
    when MASK_OUTPUT; x, g and y are (B, C, T), the mask (B, 1, T), taps (C, K), mix (C, C)."""
    pid_t = tl.program_id(0)
    b = tl.program_id(1)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    x_base = x_ptr + b * stride_xb
    g_base = g_ptr + b * stride_gb
    m_base = m_ptr + b * stride_mb
    co = tl.arange(0, C_PAD)
    co_ok = co < C
    sep_bias, gamma_1, beta_1, mix_bias, gamma_2, beta_2 = vec_ptr, vec_ptr + C, vec_ptr + 2 * C, vec_ptr + 3 * C, vec_ptr + 4 * C, vec_ptr + 5 * C

    mean_1, rstd_1 = _depthwise_moments(x_base, g_base, m_base, taps_ptr, sep_bias, t, C, T, eps, stride_xc, stride_xt, stride_gc, stride_gt, stride_mt, K, DIL, HAS_G, BLOCK_C, BLOCK_T)

    z = tl.zeros((C_PAD, BLOCK_T), dtype=tl.float32)
    for c0 in range(0, C, BLOCK_C):
        ci = c0 + tl.arange(0, BLOCK_C)
        a_in = _depthwise(x_base, g_base, m_base, taps_ptr, sep_bias, ci, t, C, T, stride_xc, stride_xt, stride_gc, stride_gt, stride_mt, K, DIL, HAS_G, BLOCK_C, BLOCK_T)
        h = _gelu((a_in - mean_1[None, :]) * rstd_1[None, :] * _column(gamma_1, ci, C) + _column(beta_1, ci, C))
        w = tl.load(mix_ptr + co[:, None] * C + ci[None, :], mask=co_ok[:, None] & (ci[None, :] < C), other=0.0).to(tl.float32)
        z = tl.dot(w, h, z, input_precision="tf32x3")  # fp32 accuracy from three TF32 products
    z += _column(mix_bias, co, C)
    mean_2, rstd_2 = _moments(z, co_ok, C, eps)
    y = _gelu((z - mean_2[None, :]) * rstd_2[None, :] * _column(gamma_2, co, C) + _column(beta_2, co, C))

    t_ok = t < T
    ok = co_ok[:, None] & t_ok[None, :]
    residual = tl.load(x_base + co[:, None] * stride_xc + t[None, :] * stride_xt, mask=ok, other=0.0).to(tl.float32)
    if HAS_G:
        residual += tl.load(g_base + co[:, None] * stride_gc + t[None, :] * stride_gt, mask=ok, other=0.0).to(tl.float32)
    y = residual + y
    if MASK_OUTPUT:
        y = y * tl.load(m_base + t * stride_mt, mask=t_ok, other=0.0).to(tl.float32)[None, :]
    tl.store(y_ptr + b * stride_yb + co[:, None] * stride_yc + t[None, :] * stride_yt, y.to(y_ptr.dtype.element_ty), mask=ok)


def _launch_config(channels: int) -> tuple[int, int, int, int]:
    """(BLOCK_T, BLOCK_C, num_warps, num_stages). On an H100 (an earlier revision of this kernel,
    192 channels, one 3-layer stack in a CUDA graph) tiles of 16 positions beat 32 and 64 at every
    size: 95 against 152 µs at 1 × 416 tokens, 139 against 209 at 16 × 256, 620 against 1023 at
    32 × 600 (the plain stack: 106, 255 and 970 µs). One stage: Triton's default three would stage
    (C_PAD × 64) fp32 weight slices into 243 KB of shared memory, more than an H100 has."""
    return 16, min(64, max(16, triton.next_power_of_2(channels))), 4, 1


@triton_op("tts_turbo::dds_layer", mutates_args=())
def dds_layer(
    x: torch.Tensor,
    mask: torch.Tensor,
    g: torch.Tensor | None,
    taps: torch.Tensor,
    mix: torch.Tensor,
    vectors: torch.Tensor,
    dilation: int,
    mask_output: bool,
    eps: float,
) -> torch.Tensor:
    """One DDS layer, `x + g + gelu(LN2(mix @ gelu(LN1(depthwise((x + g) · mask)))))`, in one launch.

    x (B, C, T) and g (None, or broadcastable to x: added before the layer, as `DDSConv` adds it
    before its first) of any strides; mask (B, 1, T) float; taps (C, K) the depthwise weights (odd
    K, padding dilation · (K − 1) / 2, same length); mix (C_out, C_in) the 1 × 1 weights; vectors
    (6, C) the rows named in VECTORS. `mask_output` multiplies the result by the mask
    (the stack's last layer). Returns a new contiguous (B, C, T) tensor of x's dtype, computed in
    fp32 at every position (finite past the lengths, as the plain layer's)."""
    traced = wrap_triton(dds_layer_kernel)  # named here, where torch looks for the kernels to key its compile caches on
    b, c, t = x.shape
    k = taps.shape[1]
    y = torch.empty((b, c, t), device=x.device, dtype=x.dtype)
    gx = g.expand(b, c, t) if g is not None else x
    c_pad = max(16, triton.next_power_of_2(c))
    block_t, block_c, num_warps, num_stages = _launch_config(c)
    traced[(triton.cdiv(t, block_t), b)](
        x, gx, mask, taps.contiguous(), mix.contiguous(), vectors.contiguous(), y,
        c, t, eps,
        *x.stride(), *gx.stride(), mask.stride(0), mask.stride(2),
        *y.stride(),
        K=k, DIL=dilation, HAS_G=g is not None, MASK_OUTPUT=mask_output,
        C_PAD=c_pad, BLOCK_C=block_c, BLOCK_T=block_t, num_warps=num_warps, num_stages=num_stages,
    )
    return y
