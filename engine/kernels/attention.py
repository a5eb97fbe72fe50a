"""The encoder's relative-position self-attention in one Triton launch per layer, two for one sentence.

VITS (Kim et al., arXiv:2106.06103, after Shaw et al., arXiv:1803.02155) adds to each score
q_i·k_j a learned term q_i·r_k[j-i] for |j-i| ≤ w, and to each output the band's weights times
learned values r_v[j-i]. Written with PyTorch ops that is a (T × 2T-1) product of mostly zeros,
two relayouts of (T × T) tensors, a (T × T) mask and the softmax as separate kernels. Here one
program holds a block of queries of one head: it forms the window terms q_i·r_k (one small
product) and parks them in a scratch row per query, walks the keys in blocks with an online
softmax (Milakov & Gimelshein, arXiv:1805.02867, as FlashAttention does, arXiv:2205.14135),
adding each window term to its one score with a masked gather and parking that score in its
place, and at the end adds the relative values weighted by the parked scores. Keys at or past an
item's length are left out, which is exactly what the reference's -1e4 bias does in fp32 (their
weights underflow to zero).

One sentence has too few query blocks to fill the GPU, so its keys are split into runs, each its
own program, and a second launch merges their softmax states (as flash-decoding does).

Every product runs in fp32 with three TF32 passes, whatever the input dtype, so the scores keep
fp32 accuracy: the encoder feeds the rounded durations, which cheaper precisions moved.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op, wrap_triton

from .conv1d import dot
from .device import SMALL_BATCH_ROWS, deepest, shared_memory


@triton.jit
def relative_attention_kernel(
    qkv_ptr, rel_k_ptr, rel_v_ptr, len_ptr, bias_ptr, band_ptr, part_ptr, out_ptr,
    C, T, scale,
    stride_qb, stride_qc, stride_qt, stride_ob, stride_oc, stride_ot, stride_rel,
    DK: tl.constexpr, WINDOW: tl.constexpr, SPLITS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
):
    """qkv (B, 3C, T): q, k and v stacked on channels, head h at channels h·DK of each; out (B, C, T),
    zero at or past each item's length. Program (query block, head, item·SPLITS + split) walks the
    split-th of SPLITS runs of key blocks. bias (B·SPLITS, heads, T, BLOCK_R): its q_i·r_k[o];
    band (B, heads, T, BLOCK_R): the window's scores, each written by the split that owns its key.
    With one split the program finishes the output; with more it leaves (m, l, acc) in part
    (B·SPLITS, heads, T, BLOCK_D + 2) for `merge_kernel`."""
    pid_m = tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2) // SPLITS
    split = tl.program_id(2) % SPLITS
    heads = tl.num_programs(1)
    valid = tl.load(len_ptr + b)
    i = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    d = tl.arange(0, BLOCK_D)
    r = tl.arange(0, BLOCK_R)  # window offset o = j - i + WINDOW
    d_ok = d < DK
    in_rows = (i < T)[:, None]
    first_q = pid_m * BLOCK_M
    chunk = tl.cdiv(tl.cdiv(valid, BLOCK_N), SPLITS) * BLOCK_N
    key_start = split * chunk
    key_end = tl.minimum(valid, key_start + chunk)
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    band_rows = band_ptr + ((b * heads + h) * T + i)[:, None] * BLOCK_R
    if first_q < valid:
        base = qkv_ptr + b * stride_qb
        q = tl.load(base + (h * DK + d)[None, :] * stride_qc + i[:, None] * stride_qt, mask=(i < valid)[:, None] & d_ok[None, :], other=0.0)
        q = (q.to(tl.float32) * scale).to(tl.float32)  # under torch.compile a float argument arrives as fp64
        rel_k = tl.load(rel_k_ptr + r[:, None] * stride_rel + d[None, :], mask=(r[:, None] < 2 * WINDOW + 1) & d_ok[None, :], other=0.0).to(tl.float32)
        bias_rows = bias_ptr + ((tl.program_id(2) * heads + h) * T + i)[:, None] * BLOCK_R
        tl.store(bias_rows + r[None, :], dot(q, tl.trans(rel_k), True), mask=in_rows)
        tl.debug_barrier()  # the gathers below read what other threads stored
        for start in range(key_start, key_end, BLOCK_N):
            j = start + tl.arange(0, BLOCK_N)
            k_ok = j < key_end
            k = tl.load(base + (C + h * DK + d)[:, None] * stride_qc + j[None, :] * stride_qt, mask=d_ok[:, None] & k_ok[None, :], other=0.0)
            s = dot(q, k.to(tl.float32), True)  # (BLOCK_M, BLOCK_N)
            if (start <= first_q + BLOCK_M - 1 + WINDOW) & (start + BLOCK_N - 1 >= first_q - WINDOW):  # the block meets the window
                offset = j[None, :] - i[:, None] + WINDOW
                inside = (offset >= 0) & (offset <= 2 * WINDOW) & k_ok[None, :] & in_rows
                s += tl.load(bias_rows + offset, mask=inside, other=0.0)
                tl.store(band_rows + offset, s, mask=inside)
            s = tl.where(k_ok[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            alpha = tl.exp(m_i - m_new)  # every block holds a key, so m_new is finite
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, axis=1)
            v = tl.load(base + (2 * C + h * DK + d)[None, :] * stride_qc + j[:, None] * stride_qt, mask=k_ok[:, None] & d_ok[None, :], other=0.0)
            acc = acc * alpha[:, None] + dot(p, v.to(tl.float32), True)
            m_i = m_new
    if SPLITS == 1:
        tl.debug_barrier()  # the window's scores were stored by other threads
        _finish(acc, m_i, l_i, band_rows, rel_v_ptr, out_ptr, b, h, i, d, r, valid, T, stride_ob, stride_oc, stride_ot, stride_rel, DK, WINDOW)
    else:
        part_rows = part_ptr + ((tl.program_id(2) * heads + h) * T + i)[:, None] * (BLOCK_D + 2)
        tl.store(part_rows + d[None, :], acc, mask=in_rows)
        tl.store(part_rows + BLOCK_D + tl.arange(0, 2)[None, :], tl.where(tl.arange(0, 2)[None, :] == 0, m_i[:, None], l_i[:, None]), mask=in_rows)


@triton.jit
def merge_kernel(
    rel_v_ptr, len_ptr, band_ptr, part_ptr, out_ptr,
    T, stride_ob, stride_oc, stride_ot, stride_rel,
    DK: tl.constexpr, WINDOW: tl.constexpr, SPLITS: tl.constexpr,
    BLOCK_D: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_M: tl.constexpr,
):
    """The splits' online-softmax states of one query block and head combined (Milakov &
    Gimelshein's merge of partial maxima and sums), then finished like a single program."""
    pid_m = tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2)
    heads = tl.num_programs(1)
    valid = tl.load(len_ptr + b)
    i = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    d = tl.arange(0, BLOCK_D)
    r = tl.arange(0, BLOCK_R)
    rows = i < T
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=tl.float32)
    for split in tl.static_range(SPLITS):
        state = part_ptr + (((b * SPLITS + split) * heads + h) * T + i) * (BLOCK_D + 2) + BLOCK_D
        m_i = tl.maximum(m_i, tl.load(state, mask=rows, other=float("-inf")))
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)
    for split in tl.static_range(SPLITS):
        part_rows = part_ptr + (((b * SPLITS + split) * heads + h) * T + i) * (BLOCK_D + 2)
        m_s = tl.load(part_rows + BLOCK_D, mask=rows, other=float("-inf"))
        weight = tl.where(m_s == float("-inf"), 0.0, tl.exp(m_s - m_i))
        l_i += weight * tl.load(part_rows + BLOCK_D + 1, mask=rows, other=0.0)
        acc += weight[:, None] * tl.load(part_rows[:, None] + d[None, :], mask=rows[:, None], other=0.0)
    band_rows = band_ptr + ((b * heads + h) * T + i)[:, None] * BLOCK_R
    _finish(acc, m_i, l_i, band_rows, rel_v_ptr, out_ptr, b, h, i, d, r, valid, T, stride_ob, stride_oc, stride_ot, stride_rel, DK, WINDOW)


@triton.jit
def _finish(acc, m_i, l_i, band_rows, rel_v_ptr, out_ptr, b, h, i, d, r, valid, T, stride_ob, stride_oc, stride_ot, stride_rel, DK: tl.constexpr, WINDOW: tl.constexpr):
    """Adds the relative values weighted by the window's scores, normalises, and stores the
    queries' rows of head h: zero at or past the item's length."""
    key = i[:, None] + r[None, :] - WINDOW
    scored = (r < 2 * WINDOW + 1)[None, :] & (key >= 0) & (key < valid) & (i < valid)[:, None]
    band = tl.load(band_rows + r[None, :], mask=scored, other=float("-inf"))
    d_ok = d < DK
    rel_v = tl.load(rel_v_ptr + r[:, None] * stride_rel + d[None, :], mask=(r[:, None] < 2 * WINDOW + 1) & d_ok[None, :], other=0.0).to(tl.float32)
    m_safe = tl.where(m_i == float("-inf"), 0.0, m_i)
    acc += dot(tl.exp(band - m_safe[:, None]), rel_v, True)  # outside the window exp(-inf) = 0
    out = tl.where((i < valid)[:, None], acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None], 0.0)
    ok = (i[:, None] < T) & d_ok[None, :]
    tl.store(out_ptr + b * stride_ob + (h * DK + d)[None, :] * stride_oc + i[:, None] * stride_ot, out.to(out_ptr.dtype.element_ty), mask=ok)


# Queries and keys per step, warps per program: the fastest on an H100 for one sentence and among
# the fastest for a chapter batch (1 × 480 tokens in four runs: 32.6 µs, against 68.4 for the
# kernel before the window moved to scratch rows; 16 × 256: 75.0 against 117.1 µs;
# `scripts/sentence_kernels_probe.py`, run AR). Wider blocks or eight warps spill registers or
# leave them idle: three-pass TF32 operands take ~250 registers per thread.
BLOCK_M = 16
BLOCK_N = 32
NUM_WARPS = 4

SPLITS = 4
"""Runs of keys for batches below `SMALL_BATCH_ROWS` batch·tokens: one sentence (1 × 480) has 60
programs of one run for an H100's 132 multiprocessors, 240 of four. A fixed threshold rather than
a count worked out from the shape and the GPU, which would add guards under dynamic shapes."""

ATTENTION_KB = (32, 68, 100)
"""Shared memory at these blocks with 1, 2, 3 key/value stages in flight."""


def splits_for(rows: int) -> int:
    """Runs of keys per query block for a batch of `rows` batch·tokens (any count gives the same
    result; runs past the last key are empty)."""
    return SPLITS if rows < SMALL_BATCH_ROWS else 1


def launch(qkv: torch.Tensor, rel_k: torch.Tensor, rel_v: torch.Tensor, lengths: torch.Tensor, heads: int, scale: float, wrap=lambda kernel: kernel) -> torch.Tensor:
    """`wrap` is applied to each kernel before its launch: `wrap_triton` inside the `triton_op`."""
    b, c3, t = qkv.shape
    c = c3 // 3
    dk = c // heads
    window = (rel_k.shape[0] - 1) // 2
    rel_k, rel_v = rel_k.contiguous(), rel_v.contiguous()  # one row stride for both, unit column stride
    out = torch.empty((b, t, c), device=qkv.device, dtype=qkv.dtype).transpose(1, 2)
    block_r, block_d = max(16, triton.next_power_of_2(2 * window + 1)), triton.next_power_of_2(dk)
    blocks = triton.cdiv(t, BLOCK_M)
    splits = splits_for(b * t)
    f32 = dict(device=qkv.device, dtype=torch.float32)
    bias, band = torch.empty((b * splits, heads, t, block_r), **f32), torch.empty((b, heads, t, block_r), **f32)
    part = torch.empty((b * splits, heads, t, block_d + 2), **f32) if splits > 1 else bias  # unused with one run
    wrap(relative_attention_kernel)[(blocks, heads, b * splits)](
        qkv, rel_k, rel_v, lengths, bias, band, part, out,
        c, t, scale,
        *qkv.stride(), *out.stride(), rel_k.stride(0),
        DK=dk, WINDOW=window, SPLITS=splits,
        BLOCK_D=block_d, BLOCK_R=block_r,
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, num_warps=NUM_WARPS, num_stages=deepest(ATTENTION_KB, shared_memory(qkv.device)),
    )
    if splits > 1:
        wrap(merge_kernel)[(blocks, heads, b)](
            rel_v, lengths, band, part, out,
            t, *out.stride(), rel_v.stride(0),
            DK=dk, WINDOW=window, SPLITS=splits, BLOCK_D=block_d, BLOCK_R=block_r, BLOCK_M=BLOCK_M, num_warps=4, num_stages=1,
        )
    return out


@triton_op("tts_turbo::relative_attention", mutates_args=())
def relative_attention(qkv: torch.Tensor, rel_k: torch.Tensor, rel_v: torch.Tensor, lengths: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """Relative-position self-attention of qkv (B, 3C, T) (q, k, v stacked on channels) with the
    window embeddings rel_k, rel_v (2w+1, C/heads) (same rows as the unpadded parameters, contiguous
    rows), over the first `lengths[b]` (int32) positions of each item. q is multiplied by `scale`.
    Returns (B, C, T), zero at or past each length. Traced by torch.compile without a graph break."""
    return launch(qkv, rel_k, rel_v, lengths, heads, scale, wrap=wrap_triton)
