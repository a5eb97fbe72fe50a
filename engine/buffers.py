"""Reusable memory: a device buffer pool keyed by size and pinned host staging for copies.

The pool serves the per-call device tensors (each batch's packed inputs) so that steady-state
synthesis asks the allocator for nothing; pinned host memory lets the one upload per batch and the
audio copy back run asynchronously.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass

import torch


@dataclass
class PoolStats:
    hits: int = 0
    misses: int = 0
    bytes: int = 0
    outstanding: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses, "bytes": self.bytes, "outstanding": self.outstanding}


class BufferPool:
    """Tensors grouped by (device, dtype, numel); `get_buffer` hands out a view of the right shape."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self._free: dict[tuple, list[torch.Tensor]] = defaultdict(list)
        self._lent: set[int] = set()  # data pointers handed out and not yet returned
        self._lock = threading.Lock()
        self.stats = PoolStats()

    def get_buffer(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float32, zero: bool = False) -> torch.Tensor:
        numel = math.prod(shape)
        key = (dtype, numel)
        with self._lock:
            free = self._free.get(key)
            if free:
                flat = free.pop()
                self.stats.hits += 1
            else:
                flat = torch.empty(numel, dtype=dtype, device=self.device)
                self.stats.misses += 1
                self.stats.bytes += flat.numel() * flat.element_size()
            self.stats.outstanding += 1
            self._lent.add(flat.data_ptr())
        buf = flat.view(tuple(shape))
        return buf.zero_() if zero else buf

    def return_buffer(self, buf: torch.Tensor) -> None:
        base = buf._base if buf._base is not None else buf
        if base.device != self.device:
            raise ValueError(f"buffer on {base.device} returned to the pool of {self.device}")
        with self._lock:
            if base.data_ptr() not in self._lent:
                raise ValueError("buffer returned twice, or not from this pool")
            self._lent.discard(base.data_ptr())
            self._free[(base.dtype, base.numel())].append(base)
            self.stats.outstanding -= 1

    def clear(self) -> None:
        with self._lock:
            self._free.clear()
            self._lent.clear()
            self.stats = PoolStats()


class PinnedStaging:
    """Growing pinned host buffers per (direction, dtype, slot) for asynchronous copies both ways.
    Two slots let one batch's copies run while the host fills or reads the other's."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype, int], torch.Tensor] = {}

    def pinned(self, direction: str, dtype: torch.dtype, shape: torch.Size | tuple[int, ...], slot: int) -> torch.Tensor:
        """A pinned host tensor of `shape` for copies in `direction` ("to_host" / "to_device"),
        reused per slot: refill it only after the copy that last used the slot has run."""
        numel = math.prod(shape)
        buf = self._buffers.get((direction, dtype, slot))
        if buf is None or buf.numel() < numel:
            buf = torch.empty(max(numel, 1 << 16), dtype=dtype, pin_memory=True)
            self._buffers[(direction, dtype, slot)] = buf
        return buf[:numel].view(tuple(shape))

    def to_host(self, tensor: torch.Tensor, slot: int = 0) -> torch.Tensor:
        """Starts the copy and returns a host view, valid after the device synchronizes and only
        until the next `to_host` call with the same slot (the buffer is reused)."""
        if tensor.device.type != "cuda":
            return tensor
        host = self.pinned("to_host", tensor.dtype, tensor.shape, slot)
        host.copy_(tensor, non_blocking=True)
        return host

    @property
    def bytes(self) -> int:
        return sum(b.numel() * b.element_size() for b in self._buffers.values())

    def clear(self) -> None:
        self._buffers.clear()
