"""`engine.noise.gaussian` as one Triton launch: the same integer hash in native uint32 arithmetic
(wrapping multiplies, logical shifts), the same Box–Muller transform. Without it a GPU would run
the hash as ~30 elementwise kernels over the whole noise tensor, which costs more than the model
in eager mode (a chapter batch's prior noise is ~10 M values)."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..noise import GOLDEN, POSITION_BITS

BLOCK = 1024


@triton.jit
def _lowbias32(x):
    x ^= x >> 16
    x *= 0x7FEB352D
    x ^= x >> 15
    x *= 0x846CA68B
    return x ^ (x >> 16)


@triton.jit
def gaussian_kernel(out, keys, valid, scale, C, L, stride_key, stride_valid, stride_scale, POSITION_BITS: tl.constexpr, GOLDEN: tl.constexpr, BLOCK: tl.constexpr):
    b = tl.program_id(1)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    channel, position = offs // L, offs % L
    counter = ((channel << POSITION_BITS) + position).to(tl.uint32)
    key = tl.load(keys + b * stride_key).to(tl.int64).to(tl.uint32)
    first = _lowbias32(_lowbias32(counter) ^ key)
    second = _lowbias32(first + GOLDEN)
    u1 = ((first >> 9).to(tl.float32) + 0.5) * (1.0 / 8388608.0)
    u2 = (second >> 8).to(tl.float32) * (1.0 / 16777216.0)
    normal = tl.sqrt(-2.0 * tl.log(u1)) * tl.cos(6.283185307179586 * u2)
    n_valid = tl.load(valid + b * stride_valid).to(tl.int64)
    factor = tl.load(scale + b * stride_scale).to(tl.float32)
    tl.store(out + b * C * L + offs, tl.where(position < n_valid, normal * factor, 0.0), mask=offs < C * L)


@torch.library.custom_op("tts_turbo::gaussian_noise", mutates_args=())
def gaussian(keys: torch.Tensor, channels: int, length: int, valid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """`engine.noise.gaussian` on a GPU, as an operator: compiled stages call it as it is rather
    than analysing the kernel at every symbolic shape. The caller has checked `length`
    (`noise.check_length`) on the host, so no guard enters the compiled stage."""
    out = torch.empty(keys.shape[0], channels, length, dtype=torch.float32, device=keys.device)
    grid = (triton.cdiv(channels * length, BLOCK), keys.shape[0])
    gaussian_kernel[grid](
        out, keys, valid, scale, channels, length, keys.stride(0), valid.stride(0), scale.stride(0),
        POSITION_BITS=POSITION_BITS, GOLDEN=GOLDEN, BLOCK=BLOCK,
    )
    return out


@gaussian.register_fake
def _(keys: torch.Tensor, channels: int, length: int, valid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return keys.new_empty((keys.shape[0], channels, length), dtype=torch.float32)
