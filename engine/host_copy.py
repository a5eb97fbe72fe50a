"""Large host-memory copies split over a few threads: numpy releases the GIL while it copies,
and a chapter's audio (~50 MB) written into fresh memory is bound by page faults and memory
bandwidth, not by one core (1.7× faster with two threads on the 2-core CI machine)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

THREADS = max(1, min(8, os.cpu_count() or 1))
PARALLEL_SAMPLES = 1 << 20
"""Fewer samples in all are copied on the calling thread: handing off costs more than the copy."""
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def copy_all(jobs: Sequence[tuple[np.ndarray, np.ndarray | float]]) -> None:
    """`destination[...] = source` for every (destination, source) pair, in parallel when there
    is much to copy; pairs are dealt to the threads largest first, each to the least loaded."""
    global _pool
    total = sum(dst.size for dst, _ in jobs)
    threads = min(THREADS, len(jobs)) if total >= PARALLEL_SAMPLES else 1
    groups: list[list[tuple[np.ndarray, np.ndarray | float]]] = [[] for _ in range(threads)]
    loads = [0] * threads
    for job in sorted(jobs, key=lambda j: -j[0].size):
        least = loads.index(min(loads))
        groups[least].append(job)
        loads[least] += job[0].size

    def copy(group: list[tuple[np.ndarray, np.ndarray | float]]) -> None:
        for dst, src in group:
            dst[...] = src

    if threads <= 1:
        copy([job for group in groups for job in group])
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="tts-copy")
    list(_pool.map(copy, groups))
