"""Where the wall time of one `generate` goes besides the GPU: per-stage device times (CUDA events)
against the wall clock, then a cProfile of the host side, for the Max speed preset.

    python3 scripts/host_profile.py [--texts medium,chapter] [--calls 20] [--compile]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import pstats
import statistics
import time
from pathlib import Path

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper, load_model
from engine.config import SynthesisOptions
from engine.models.base import Segment

IDS = json.loads(Path("tests/data/phoneme_ids.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", default="medium,chapter")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    model = load_model("default", "cuda")
    cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=True), enable_compile=args.compile)
    wrapper = OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, model.device))
    options = SynthesisOptions(seed=1234)
    for name in args.texts.split(","):
        segments = [Segment(s["text"], s["tokens"], s["pause_after"]) for s in IDS[name]]
        calls = args.calls if name != "chapter" else max(args.calls // 4, 3)
        for _ in range(3):
            wrapper.generate("", options, segments=segments)
        walls, stages = [], []
        for _ in range(calls):
            start = time.perf_counter()
            result = wrapper.generate("", options, segments=segments)
            walls.append(time.perf_counter() - start)
            stages.append(result.timings.stages)
        wall = statistics.median(walls) * 1000
        print(f"\n== {name}: {len(segments)} segments, {result.duration_s:.1f} s audio, wall median {wall:.2f} ms")
        for key in stages[0]:
            print(f"   {key:<18} {statistics.median(s.get(key, 0.0) for s in stages) * 1000:8.2f} ms")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            wrapper.generate("", options, segments=segments)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(22)
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:6000])
    print("\nstats:", json.dumps({k: v for k, v in wrapper.optimizer.get_stats().items() if k in ("fused_kernels", "fallbacks", "graphs")}, default=str))


if __name__ == "__main__":
    main()
