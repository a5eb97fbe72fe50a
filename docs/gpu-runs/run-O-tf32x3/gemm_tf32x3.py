"""fp32-accurate matrix products on the tensor cores, for the stage whose rounding decides the audio
length (the encoder and duration predictor run fp32 with TF32 off).

Each operand is split into a TF32 part and a TF32 remainder, and three TF32 products are summed
(big·big + big·small + small·big; Henry, Tang and Heinecke, "Leveraging the bfloat16 artificial
intelligence datatype for higher-precision computations", ARITH 2019, applied to TF32 as in
CUTLASS's 3xTF32): ~fp32 accuracy at tensor-core speed. At a sentence's few hundred tokens
cuBLAS's fp32 kernels are latency-bound on a long K loop of 8-wide steps (~8 µs for 192 × 192 ×
416 on an H100); here the K loop takes 32-wide steps.

`weight @ x (+ bias)` for weight (M, K) and x (B, K, N) of any strides, registered as a custom op
so that torch.compile and CUDA graphs take it as it is.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .conv1d import _multiprocessors


@triton.jit
def gemm_tf32x3_kernel(
    w_ptr, x_ptr, b_ptr, y_ptr, M, N, K,
    stride_wm, stride_wk, stride_xb, stride_xk, stride_xn, stride_yb, stride_ym, stride_yn,
    HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    b = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        w = tl.load(w_ptr + rm[:, None] * stride_wm + rk[None, :] * stride_wk, mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0)
        x = tl.load(x_ptr + b * stride_xb + rk[:, None] * stride_xk + rn[None, :] * stride_xn, mask=(rk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc += tl.dot(w, x, input_precision="tf32x3")
    if HAS_BIAS:
        acc += tl.load(b_ptr + rm, mask=rm < M, other=0.0)[:, None]
    tl.store(y_ptr + b * stride_yb + rm[:, None] * stride_ym + rn[None, :] * stride_yn, acc, mask=(rm[:, None] < M) & (rn[None, :] < N))


def _tiles(m: int, n: int, batch: int, device: torch.device) -> tuple[int, int]:
    """Large tiles where they still give every multiprocessor a program, else smaller ones: one
    sentence's products are a few dozen tiles, a chapter batch's thousands."""
    for block_m, block_n in ((64, 128), (64, 64), (32, 64), (32, 32)):
        if triton.cdiv(m, block_m) * triton.cdiv(n, block_n) * batch >= _multiprocessors(device):
            return block_m, block_n
    return 32, 32


@torch.library.triton_op("tts_turbo::gemm_tf32x3", mutates_args=())
def gemm_tf32x3(weight: torch.Tensor, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """weight (M, K) @ x (B, K, N) + bias (M,) → (B, M, N), all float32."""
    m, k = weight.shape
    batch, _, n = x.shape
    y = torch.empty((batch, m, n), device=x.device, dtype=torch.float32)
    block_m, block_n = _tiles(m, n, batch, x.device)
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n), batch)
    torch.library.wrap_triton(gemm_tf32x3_kernel)[grid](
        weight, x, bias if bias is not None else weight, y, m, n, k,
        *weight.stride(), *x.stride(), *y.stride(),
        HAS_BIAS=bias is not None, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=32, num_warps=4, num_stages=3,
    )
    return y
