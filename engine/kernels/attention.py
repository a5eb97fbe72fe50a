"""The encoder's relative-position self-attention in one Triton launch per layer.

VITS (Kim et al., arXiv:2106.06103, after Shaw et al., arXiv:1803.02155) adds to each score
q_i·k_j a learned term q_i·r_k[j-i] for |j-i| ≤ w, and to each output the band's weights times
learned values r_v[j-i]. Written with PyTorch ops that is a (T × 2T-1) product of mostly zeros,
two relayouts of (T × T) tensors, a (T × T) mask and the softmax as separate kernels. Here one
program holds a block of queries of one head: it forms the band terms q_i·r_k (one small
product), walks the keys in blocks with an online softmax (Milakov & Gimelshein,
arXiv:1805.02867, as FlashAttention does, arXiv:2205.14135), and adds the relative values from
the band's scores at the end. Keys at or past an item's length are left out, which is exactly
what the reference's -1e4 bias does in fp32 (their weights underflow to zero).

Every product runs in fp32 with three TF32 passes, whatever the input dtype, so the scores keep
fp32 accuracy: the encoder feeds the rounded durations, which cheaper precisions moved.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .conv1d import dot
from .device import deepest, shared_memory


@triton.jit
def relative_attention_kernel(
    qkv_ptr, rel_k_ptr, rel_v_ptr, len_ptr, out_ptr,
    C, T, scale,
    stride_qb, stride_qc, stride_qt, stride_ob, stride_oc, stride_ot, stride_rel,
    DK: tl.constexpr, WINDOW: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """qkv (B, 3C, T): q, k and v stacked on channels, head h at channels h·DK of each; out (B, C, T),
    zero at or past each item's length."""
    pid_m = tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2)
    valid = tl.load(len_ptr + b)
    i = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    d = tl.arange(0, BLOCK_D)
    r = tl.arange(0, BLOCK_R)  # band offset j - i + WINDOW
    d_ok = d < DK
    out = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    if pid_m * BLOCK_M < valid:
        base = qkv_ptr + b * stride_qb
        q_rows = i < valid
        q = tl.load(base + (h * DK + d)[None, :] * stride_qc + i[:, None] * stride_qt, mask=q_rows[:, None] & d_ok[None, :], other=0.0)
        q = (q.to(tl.float32) * scale).to(tl.float32)  # under torch.compile a float argument arrives as fp64
        r_ok = r[:, None] < 2 * WINDOW + 1
        rel_k = tl.load(rel_k_ptr + r[:, None] * stride_rel + d[None, :], mask=r_ok & d_ok[None, :], other=0.0).to(tl.float32)
        band_k = dot(q, tl.trans(rel_k), True)  # (BLOCK_M, BLOCK_R): q_i·r_k[o - WINDOW]
        m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
        l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
        acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
        band = tl.full((BLOCK_M, BLOCK_R), float("-inf"), dtype=tl.float32)  # the scores inside the window
        first_q = pid_m * BLOCK_M
        for start in range(0, valid, BLOCK_N):
            j = start + tl.arange(0, BLOCK_N)
            k_ok = j < valid
            k = tl.load(base + (C + h * DK + d)[:, None] * stride_qc + j[None, :] * stride_qt, mask=d_ok[:, None] & k_ok[None, :], other=0.0)
            s = dot(q, k.to(tl.float32), True)  # (BLOCK_M, BLOCK_N)
            offset = j[None, :] - i[:, None] + WINDOW
            if (start <= first_q + BLOCK_M - 1 + WINDOW) & (start + BLOCK_N - 1 >= first_q - WINDOW):  # the block meets the band
                for o in tl.static_range(2 * WINDOW + 1):
                    s += tl.where(offset == o, tl.sum(tl.where(r[None, :] == o, band_k, 0.0), axis=1)[:, None], 0.0)
                for o in tl.static_range(2 * WINDOW + 1):
                    hit = (offset == o) & k_ok[None, :]
                    found = tl.max(hit.to(tl.int32), axis=1) > 0
                    score = tl.sum(tl.where(hit, s, 0.0), axis=1)
                    band = tl.where((r[None, :] == o) & found[:, None], score[:, None], band)
            s = tl.where(k_ok[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, axis=1)
            v = tl.load(base + (2 * C + h * DK + d)[None, :] * stride_qc + j[:, None] * stride_qt, mask=k_ok[:, None] & d_ok[None, :], other=0.0)
            acc = acc * alpha[:, None] + dot(p, v.to(tl.float32), True)
            m_i = m_new
        rel_v = tl.load(rel_v_ptr + r[:, None] * stride_rel + d[None, :], mask=r_ok & d_ok[None, :], other=0.0).to(tl.float32)
        acc += dot(tl.exp(band - m_i[:, None]), rel_v, True)  # outside the window exp(-inf) = 0
        out = tl.where(q_rows[:, None], acc / l_i[:, None], 0.0)
    ok = (i[:, None] < T) & d_ok[None, :]
    tl.store(out_ptr + b * stride_ob + (h * DK + d)[None, :] * stride_oc + i[:, None] * stride_ot, out.to(out_ptr.dtype.element_ty), mask=ok)


BLOCK_M = 16
"""Queries per program: fastest on an H100 for one sentence (1 × 416 tokens: 0.090 ms per layer
with its projections, 0.121 at 32, 0.187 at 64) and as fast as any for a chapter batch (16 × 256:
0.210, 0.214, 0.221 ms; `scripts/attention_bench.py`, 2026-12-07)."""


ATTENTION_KB = (48, 120, 184)
"""Shared memory at BLOCK_M = 16 with 1, 2, 3 key/value stages in flight."""


def launch(qkv: torch.Tensor, rel_k: torch.Tensor, rel_v: torch.Tensor, lengths: torch.Tensor, heads: int, scale: float, launcher=None) -> torch.Tensor:
    b, c3, t = qkv.shape
    c = c3 // 3
    dk = c // heads
    window = (rel_k.shape[0] - 1) // 2
    rel_k, rel_v = rel_k.contiguous(), rel_v.contiguous()  # one row stride for both, unit column stride
    out = torch.empty((b, t, c), device=qkv.device, dtype=qkv.dtype).transpose(1, 2)
    grid = (triton.cdiv(t, BLOCK_M), heads, b)
    (relative_attention_kernel if launcher is None else launcher)[grid](
        qkv, rel_k, rel_v, lengths, out,
        c, t, scale,
        *qkv.stride(), *out.stride(), rel_k.stride(0),
        DK=dk, WINDOW=window,
        BLOCK_D=triton.next_power_of_2(dk), BLOCK_R=max(16, triton.next_power_of_2(2 * window + 1)),
        BLOCK_M=BLOCK_M, BLOCK_N=64, num_warps=4, num_stages=deepest(ATTENTION_KB, shared_memory(qkv.device)),
    )
    return out


@triton_op("tts_turbo::relative_attention", mutates_args=())
def relative_attention(qkv: torch.Tensor, rel_k: torch.Tensor, rel_v: torch.Tensor, lengths: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """Relative-position self-attention of qkv (B, 3C, T) (q, k, v stacked on channels) with the
    window embeddings rel_k, rel_v (2w+1, C/heads) (same rows as the unpadded parameters, contiguous
    rows), over the first `lengths[b]` (int32) positions of each item. q is multiplied by `scale`.
    Returns (B, C, T), zero at or past each length. Traced by torch.compile without a graph break."""
    return launch(qkv, rel_k, rel_v, lengths, heads, scale, launcher=wrap_triton(relative_attention_kernel))
