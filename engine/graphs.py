"""CUDA graph capture and replay per shape bucket, with a visible eager fallback.

A bucket key names a fixed set of input shapes. The first calls of a key run eagerly on a side
stream (warmup: cuDNN plans, lazy inits, compile), then the function is captured once into a graph
with static input and output tensors; later calls copy into the static inputs and replay. An input
that is another graph's input or output is read in place, so chained stages pass tensors without
copies, unless the caller has the graph own its inputs (`own_inputs`): then each call copies them
in and reports when it has (`inputs_taken`), so their producer may overwrite them while this
graph still runs. Any failure to capture leaves that key eager for good and is recorded, never
raised.

Graphs of one *lane* (by default the key's first element) replay one at a time, and each graph's
outputs are consumed before the next of its lane replays; so a lane's graphs share one memory
pool and one capture stream. Different lanes may replay at the same time on different streams, so
each lane has its own pool (no graph's scratch memory can alias another lane's outputs) and its
own capture stream (cuBLAS keys its workspace by stream, and a captured product keeps the
workspace address it was captured with).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

import torch

from .errors import brief

log = logging.getLogger(__name__)


@dataclass
class CapturedGraph:
    graph: torch.cuda.CUDAGraph
    inputs: tuple[torch.Tensor, ...]
    outputs: tuple[torch.Tensor, ...]
    capture_s: float
    memory_bytes: int
    owns_inputs: bool = False
    """Captured reading copies of its inputs, not the producer's tensors in place: the producer may
    overwrite those once the copies are queued."""


@dataclass
class Lane:
    pool: Any
    capture: torch.cuda.Stream
    warmup: torch.cuda.Stream


@dataclass
class GraphStats:
    captured: int = 0
    capture_s: float = 0.0
    memory_bytes: int = 0
    replays: int = 0
    eager_calls: int = 0
    failures: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.captured,
            "capture_s": round(self.capture_s, 4),
            "memory_bytes": self.memory_bytes,
            "replays": self.replays,
            "eager_calls": self.eager_calls,
            "fallbacks": dict(self.failures),
        }


class GraphRunner:
    """Runs `fn(*inputs) -> tuple[Tensor, ...]` through one CUDA graph per key.

    Outputs of a replay are the graph's static tensors: consume or copy them before the same key
    replays again. The graphs of one lane (`lane`, default `key[0]`) share a memory pool, which is
    safe because they never run concurrently and each keeps its own inputs and outputs alive.
    """

    def __init__(self, device: torch.device, warmup_iters: int = 2, on_fallback: Callable[[str, str], None] | None = None):
        self.device = device
        self.warmup_iters = warmup_iters
        self.on_fallback = on_fallback
        self.graphs: dict[Hashable, CapturedGraph] = {}
        self.failed: set[Hashable] = set()
        self.stats = GraphStats()
        self.lanes: dict[Hashable, Lane] = {}

    def run(self, key: tuple[Hashable, ...], fn: Callable[..., Sequence[torch.Tensor]], *inputs: torch.Tensor, lane: Hashable = None,
            own_inputs: bool = False, inputs_taken: Callable[[], None] = lambda: None) -> tuple[torch.Tensor, ...]:
        """`inputs_taken()` is called on the current stream once the work queued from now on no
        longer reads `inputs`: before the replay when the graph owns its inputs, else at the end.
        Ownership is fixed when a key is captured (`own_inputs` of that first call), so a later
        call cannot release inputs that the graph still reads in place."""
        graph = self.graphs.get(key)
        if graph is None:
            captured = None if key in self.failed else self._capture(key, fn, inputs, key[0] if lane is None else lane, own_inputs)
            if captured is None:
                self.stats.eager_calls += 1
            outputs = captured.outputs if captured is not None else tuple(fn(*inputs))
            inputs_taken()
            return outputs
        for static, value in zip(graph.inputs, inputs):
            if static is not value:
                static.copy_(value, non_blocking=True)
        if graph.owns_inputs:
            inputs_taken()
        graph.graph.replay()
        self.stats.replays += 1
        if not graph.owns_inputs:
            inputs_taken()
        return graph.outputs

    def static_inputs(self, key: Hashable) -> tuple[torch.Tensor, ...] | None:
        """A captured key's input tensors, or None: a caller that fills them in place and passes
        them to `run` saves the copy."""
        graph = self.graphs.get(key)
        return graph.inputs if graph is not None else None

    def _lane(self, name: Hashable) -> Lane:
        if name not in self.lanes:
            self.lanes[name] = Lane(torch.cuda.graph_pool_handle(), torch.cuda.Stream(self.device), torch.cuda.Stream(self.device))
        return self.lanes[name]

    def _capture(self, key: tuple[Hashable, ...], fn, inputs: Sequence[torch.Tensor], lane_name: Hashable, own_inputs: bool) -> CapturedGraph | None:
        start = time.perf_counter()
        before = torch.cuda.memory_reserved(self.device)
        static_inputs = tuple(x if self._is_static(x) and not own_inputs else x.clone() for x in inputs)
        try:
            lane = self._lane(lane_name)
            lane.warmup.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(lane.warmup):
                for _ in range(max(self.warmup_iters, 1)):
                    fn(*static_inputs)
            torch.cuda.current_stream(self.device).wait_stream(lane.warmup)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=lane.pool, stream=lane.capture, capture_error_mode="thread_local"):
                outputs = tuple(fn(*static_inputs))
            graph.replay()
        except Exception as exc:  # capture is an optimization: any failure means eager for this key
            torch.cuda.synchronize(self.device)
            reason = brief(exc)
            self.failed.add(key)
            self.stats.failures[str(key)] = reason
            log.warning("CUDA graph capture failed for %s, running it eagerly: %s", key, reason)
            if self.on_fallback:
                self.on_fallback(f"cuda_graphs[{key}]", reason)
            return None
        captured = CapturedGraph(
            graph=graph,
            inputs=static_inputs,
            outputs=outputs,
            capture_s=time.perf_counter() - start,
            memory_bytes=max(torch.cuda.memory_reserved(self.device) - before, 0),
            owns_inputs=own_inputs,
        )
        self.graphs[key] = captured
        self.stats.captured += 1
        self.stats.capture_s += captured.capture_s
        self.stats.memory_bytes += captured.memory_bytes
        return captured

    def _is_static(self, x: torch.Tensor) -> bool:
        """A captured graph's inputs and outputs have fixed addresses: a graph fed by one reads it
        in place (stages chain with no copy between them)."""
        return any(x is t for captured in self.graphs.values() for t in (*captured.inputs, *captured.outputs))

    def clear(self) -> None:
        self.graphs.clear()
        self.failed.clear()
        self.stats = GraphStats()
        self.lanes.clear()
