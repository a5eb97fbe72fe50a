"""What the profiling scripts share: the Max-speed wrapper on the bundled voice, and the benchmark
texts as precomputed phoneme ids (the GPU machine has no espeak)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper, load_model
from engine.config import SynthesisOptions
from engine.models.base import Segment

IDS = json.loads(Path("tests/data/phoneme_ids.json").read_text())
OPTIONS = SynthesisOptions(seed=1234)


def max_speed_wrapper(compile: bool, device: str = "cuda") -> OptimizedTTSWrapper:
    model = load_model("default", device)
    cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=device == "cuda"), enable_compile=compile)
    return OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, model.device))


def segments(text: str) -> list[Segment]:
    return [Segment(s["text"], s["tokens"], s["pause_after"]) for s in IDS[text]]


def warm(wrapper: OptimizedTTSWrapper, text_segments: list[Segment], calls: int) -> None:
    for _ in range(calls):
        wrapper.generate("", OPTIONS, segments=text_segments)


def replayed_keys(wrapper: OptimizedTTSWrapper, text_segments: list[Segment]) -> list[tuple]:
    """The graph keys one call runs, in order (each stage of each batch)."""
    graphs = wrapper.model.runner.graphs
    order: list[tuple] = []
    run = graphs.run
    graphs.run = lambda key, *a, **kw: (order.append(key), run(key, *a, **kw))[1]
    try:
        wrapper.generate("", OPTIONS, segments=text_segments)
    finally:
        del graphs.run
    return order


def interleaved_arguments(description: str) -> argparse.ArgumentParser:
    """The options of the probes that alternate variants within one process, rounds interleaved."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--text", default="chapter")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def kernel_table(run: Callable[[], object], rows: int) -> str:
    """The GPU kernels of one `run()` (after one unprofiled run), grouped by name: count and
    device time, the `rows` largest."""
    run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            totals[event.name][0] += 1
            totals[event.name][1] += event.device_time_total / 1000
    count, total = sum(n for n, _ in totals.values()), sum(ms for _, ms in totals.values())
    lines = [f"   {count} kernels, {total:.3f} ms device time"]
    for name, (n, ms) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:rows]:
        lines.append(f"   {ms:8.3f} ms {n:5d}×  {name[:160]}")
    return "\n".join(lines)
