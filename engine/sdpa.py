"""Which scaled_dot_product_attention backend runs for a given call shape.

PyTorch dispatches to the first eligible backend in its priority order; eligibility depends on
device, dtype, head dim and mask. We probe each backend alone, in that order, with the model's
real call shape, and report the first one that accepts it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_ORDER = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH")
NAMES = {"FLASH_ATTENTION": "flash", "EFFICIENT_ATTENTION": "mem-efficient", "CUDNN_ATTENTION": "cudnn", "MATH": "math"}


def probe_backend(device: torch.device, dtype: torch.dtype, heads: int, q_len: int, kv_len: int, head_dim: int, with_mask: bool) -> str | None:
    """Name of the backend PyTorch would pick for this shape, or None if SDPA cannot run at all."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    # deterministic inputs: the probe must not touch the global RNG
    q = torch.linspace(-1, 1, heads * q_len * head_dim, device=device, dtype=dtype).view(1, heads, q_len, head_dim)
    k = torch.linspace(1, -1, heads * kv_len * head_dim, device=device, dtype=dtype).view(1, heads, kv_len, head_dim)
    mask = torch.zeros(1, heads, q_len, kv_len, device=device, dtype=dtype) if with_mask else None
    for name in _ORDER:
        backend = getattr(SDPBackend, name, None)
        if backend is None:
            continue
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
            return NAMES[name]
        except RuntimeError:
            continue
    return None
