"""Where one call's wall time goes on the host, without a profiler: perf_counter marks at the
runner's seams (batch launch, each stage's graph/compiled call, the wait for the audio, the
wrapper), median over many calls. The gaps between marks are host work or waits for the GPU.

    python3 scripts/host_split.py [--text medium] [--compile] [--calls 50]

Works on any checkout of the engine (PYTHONPATH picks it), so two versions can be compared on one
machine in one run.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections import defaultdict

import torch

from engine import OptimizedTTSWrapper, runtime
from engine import wrapper as wrapper_module
from engine.buffers import BufferPool, PinnedStaging
from engine.graphs import GraphRunner
from engine.models.piper import synth
from profiling import OPTIONS, max_speed_wrapper, segments, warm
MARKS: list[tuple[str, float]] = []


def marked(owner, name: str, label=lambda args: "") -> None:
    """Mark entry and exit of `owner.name` (a class or a module attribute), where it exists."""
    original = getattr(owner, name, None)
    if original is None:
        return

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        tag = f"{name}{label(args)}"
        MARKS.append((f"{tag}>", time.perf_counter()))
        try:
            return original(*args, **kwargs)
        finally:
            MARKS.append((f"{tag}<", time.perf_counter()))

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="medium")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--fine", action="store_true", help="also mark the helpers inside each seam")
    parser.add_argument("--finer", action="store_true", help="with --fine: also every seam before stage A's launch")
    args = parser.parse_args()
    marked(OptimizedTTSWrapper, "generate")
    marked(synth.PiperRunner, "_launch_stage_a")
    marked(synth.PiperRunner, "_launch_stage_b")
    marked(synth.InFlight, "finish")
    marked(GraphRunner, "run", lambda a: f"[{a[1][0]}]")
    if args.fine:
        for owner, name in ((synth, "pack_inputs"), (PinnedStaging, "pinned"), (PinnedStaging, "to_host"), (BufferPool, "get_buffer"),
                            (synth.StageClock, "lap"), (wrapper_module, "join_audio"), (runtime, "memory_snapshot"), (torch.cuda, "reset_peak_memory_stats")):
            marked(owner, name)
    if args.finer:  # every seam between the call's start and stage A's launch
        from engine.feed import SegmentFeed
        from engine.models.piper.pipeline import PiperTTS
        for owner, name in ((synth.StageClock, "restart"), (GraphRunner, "static_inputs"), (synth.PiperRunner, "_upload"),
                            (synth.PiperRunner, "_frames_to_host"), (synth.PiperRunner, "_staged"),
                            (PiperTTS, "params"), (SegmentFeed, "__init__"), (synth.InFlight, "sizes"),
                            (synth, "copy_all")):
            marked(owner, name)
    wrapper = max_speed_wrapper(args.compile, args.device)
    text_segments = segments(args.text)
    warm(wrapper, text_segments, 5)
    per_call: list[dict[str, float]] = []
    order: dict[str, int] = {}
    for _ in range(args.calls):
        MARKS.clear()
        wrapper.generate("", OPTIONS, segments=text_segments)
        spans: dict[str, float] = defaultdict(float)
        for (a, ta), (b, tb) in zip(MARKS, MARKS[1:]):
            spans[f"{a} → {b}"] += (tb - ta) * 1e3
            order.setdefault(f"{a} → {b}", len(order))
        spans["total"] = (MARKS[-1][1] - MARKS[0][1]) * 1e3
        per_call.append(spans)
    order["total"] = len(order)
    print(f"== {args.text}, compile={args.compile}: median over {args.calls} calls (ms; summed over batches)")
    for key in sorted(order, key=order.get):
        values = [c.get(key, 0.0) for c in per_call]
        print(f"  {statistics.median(values):8.3f}   {key}")


if __name__ == "__main__":
    main()
