"""The chapter in text mode with N espeak worker processes: its front end alone (`segment()`) and
the whole call (Max speed without compile), one process per count, rounds interleaved so the
machine's drift falls on every count.

    python3 scripts/worker_count_probe.py [--counts 8,12,15] [--rounds 2] [--calls 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def child(count: int, calls: int) -> None:
    import torch

    from engine.bench import espeak_workers_up, load_text, median_seconds
    from engine.text import workers
    from profiling import OPTIONS, max_speed_wrapper

    workers.MAX_WORKERS = count
    wrapper = max_speed_wrapper(compile=False)
    espeak_workers_up(wrapper.model)
    text = load_text("chapter")
    segment_ms = median_seconds(lambda: wrapper.model.segment(text, OPTIONS), repeats=9) * 1e3
    for _ in range(3):
        wrapper.generate(text, OPTIONS)
    walls, waited = [], []
    for _ in range(calls):
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = wrapper.generate(text, OPTIONS)
        walls.append(time.perf_counter() - start)
        waited.append(result.timings.total_s - result.timings.model_s)
    print(f"{workers.worker_count():2d} workers: segment() {segment_ms:6.2f} ms, the call median {statistics.median(walls) * 1e3:7.2f} ms, "
          f"front end waited {statistics.median(waited) * 1e3:5.2f} ms, samples {len(result.audio)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", default="8,12,15")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.calls)
        return
    for round_ in range(args.rounds):
        for count in (int(n) for n in args.counts.split(",")):
            print(f"round {round_ + 1}: ", end="", flush=True)
            subprocess.run([sys.executable, __file__, "--child", str(count), "--calls", str(args.calls)], check=False)


if __name__ == "__main__":
    main()
