"""Counter-based Gaussian noise: the value at (row key, channel, position) is a pure function of the
three, so noise is drawn inside compiled and captured stages with no generator state, and the
same seed gives the same sample at any padding, bucketing or batching, on any device.

Bits: the lowbias32 integer hash (C. Wellons, "Prospecting for Hash Functions", 2018), in int64
lanes with 16-bit partial products so no operation overflows on any backend. Deviates: the
Box–Muller transform (Box & Muller, Ann. Math. Statist. 29(2), 1958) of two uniforms. On a GPU
with Triton the same function runs as one kernel (`kernels/noise.py`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .runtime import triton_available

POSITION_BITS = 17
"""Positions per channel: 131,072 frames (25 min of audio) per segment."""
MASK32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9
"""Offset between the two hashes drawn per value (2³² / φ)."""


def _mul32(x: torch.Tensor, constant: int) -> torch.Tensor:
    """x · constant mod 2³² for x in [0, 2³²): two partial products below 2⁴⁹, never overflowing."""
    low = x * (constant & 0xFFFF)
    high = ((x * (constant >> 16)) & 0xFFFF) << 16
    return (low + high) & MASK32


def _mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32: a bijection on [0, 2³²) with near-ideal avalanche."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def segment_key(seed: int, segment: int, stream: int) -> int:
    """The 32-bit key of one segment's noise stream (stream 0: durations, 1: the prior)."""
    x = (seed * 1_000_003 + segment * 2 + stream) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF  # splitmix64 finaliser
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (x ^ (x >> 31)) & MASK32


def gaussian(keys: torch.Tensor, channels: int, length: int, valid: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, channels, length) float32 standard normal noise × scale[b], zero at positions ≥ valid[b].

    keys, valid, scale: (B,) tensors of any dtype (keys and valid hold integers)."""
    check_length(length)
    device = keys.device
    position = torch.arange(length, device=device)
    counter = (torch.arange(channels, device=device)[:, None] << POSITION_BITS) + position  # (C, L)
    first = _mix(_mix(counter) ^ keys.long()[:, None, None])  # (B, C, L)
    second = _mix((first + GOLDEN) & MASK32)
    u1 = ((first >> 9).float() + 0.5) * 2.0**-23  # exact, in (0, 1): the logarithm stays finite
    u2 = (second >> 8).float() * 2.0**-24
    normal = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    inside = position[None, :] < valid.long()[:, None]
    return torch.where(inside[:, None, :], normal * scale.float()[:, None, None], 0.0)


def check_length(length: int) -> None:
    """Noise positions past 2**POSITION_BITS would repeat the next channel's values."""
    if length > 1 << POSITION_BITS:
        raise ValueError(f"noise for {length} frames: at most {1 << POSITION_BITS} per segment")


def gaussian_fn(device: torch.device) -> Callable[..., torch.Tensor]:
    """`gaussian` as fast as the device runs it: one Triton kernel on a GPU (chosen once, outside
    the compiled stages, which then trace straight into the kernel)."""
    if device.type == "cuda" and triton_available():
        from .kernels.noise import gaussian as kernel

        return kernel
    return gaussian
