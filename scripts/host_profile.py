"""Where the wall time of one `generate` goes besides the GPU: per-stage device times (CUDA events)
against the wall clock, then a cProfile of the host side, for the Max speed preset.

    python3 scripts/host_profile.py [--texts medium,chapter] [--calls 20] [--compile] [--kernels 30]

`--kernels N` adds torch.profiler's top N device kernels of one call per text.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import time

from profiling import OPTIONS, max_speed_wrapper, segments, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", default="medium,chapter")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"), help="cProfile order")
    parser.add_argument("--kernels", type=int, default=0, help="rows of the device-kernel table (0: none)")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    for name in args.texts.split(","):
        text_segments = segments(name)
        calls = args.calls if name != "chapter" else max(args.calls // 4, 3)
        warm(wrapper, text_segments, 3)
        walls, stages = [], []
        for _ in range(calls):
            start = time.perf_counter()
            result = wrapper.generate("", OPTIONS, segments=text_segments)
            walls.append(time.perf_counter() - start)
            stages.append(result.timings.stages)
        wall = statistics.median(walls) * 1000
        print(f"\n== {name}: {len(text_segments)} segments, {result.duration_s:.1f} s audio, wall median {wall:.2f} ms")
        for key in stages[0]:
            print(f"   {key:<18} {statistics.median(s.get(key, 0.0) for s in stages) * 1000:8.2f} ms")
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            wrapper.generate("", OPTIONS, segments=text_segments)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats(args.sort).print_stats(40 if args.sort == "cumulative" else 22)
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:9000])
        if args.kernels:
            print(kernel_table(lambda: wrapper.generate("", OPTIONS, segments=text_segments), args.kernels))
    print("\nstats:", json.dumps({k: v for k, v in wrapper.optimizer.get_stats().items() if k in ("fused_kernels", "fallbacks", "graphs")}, default=str))


def kernel_table(call, rows: int) -> str:
    """Device kernels of one call, by total device time (graph replays included)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    total = sum(e.self_device_time_total for e in events)
    lines = [f"   {sum(e.count for e in events)} kernels, {total / 1000:.2f} ms device time"]
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:rows]:
        lines.append(f"   {e.self_device_time_total / 1000:8.3f} ms {e.count:5d}×  {e.key[:110]}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
