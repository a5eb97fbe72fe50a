"""CUDA-graph capture per shape key with a visible fallback to eager.

A captured function reads only static input buffers and returns static outputs; the caller copies
new inputs into those buffers before `run`. All graphs of one owner share one memory pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class GraphCache:
    def __init__(self, enabled: bool, warmup_iters: int = 2, on_fallback: Callable[[str, str], None] | None = None,
                 feature: str = "cuda_graphs"):
        self.enabled = enabled and torch.cuda.is_available()
        self.warmup_iters = max(1, warmup_iters)
        self.on_fallback = on_fallback
        self.feature = feature
        self.graphs: dict[Any, tuple[torch.cuda.CUDAGraph, Any]] = {}
        self.pool = None

    def run(self, key: Any, fn: Callable[[], Any], before_capture: Callable[[], Any] | None = None,
            after_warmup: Callable[[Any], None] | None = None) -> Any:
        """Replay the graph for `key` (capturing it on first use); eager `fn()` when graphs are off or failed.

        `before_capture` returns a snapshot that `after_warmup` restores: warm-up runs execute for real
        and must not leave side effects in state buffers (the capture itself does not execute).
        """
        if not self.enabled:
            return fn()
        if key not in self.graphs:
            try:
                self.graphs[key] = self._capture(fn, before_capture, after_warmup)
            except RuntimeError as exc:
                self.enabled = False
                self.graphs.clear()
                if self.on_fallback is not None:
                    self.on_fallback(self.feature, f"capture failed, running eager: {exc}")
                return fn()
        graph, out = self.graphs[key]
        graph.replay()
        return out

    def _capture(self, fn, before_capture, after_warmup):
        snapshot = before_capture() if before_capture else None
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup_iters):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        if after_warmup is not None:
            after_warmup(snapshot)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = fn()
        return graph, out

    def clear(self) -> None:
        self.graphs.clear()
