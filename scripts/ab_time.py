"""Wall time of `generate` for the engine on PYTHONPATH: Max speed, the medians of many calls
per text after warm-up, the text front end inside each call (espeak must be importable) or,
with --ids, the ids given. `gpu_check.sh ab` runs it for two engines, rounds interleaved.

    python3 scripts/ab_time.py [--texts medium,chapter] [--calls 15] [--ids] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine.bench import load_text
from engine.text import workers
from profiling import OPTIONS, max_speed_wrapper, segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", default="medium,chapter")
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--ids", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    workers.start(wrapper.model.config.espeak_voice).result(timeout=120)
    for name in args.texts.split(","):
        text = load_text(name)
        given = {"segments": segments(name)} if args.ids else {}
        for _ in range(3):
            wrapper.generate(text, OPTIONS, **given)
        walls, first = [], []
        for _ in range(args.calls):
            start = time.perf_counter()
            result = wrapper.generate(text, OPTIONS, **given)
            walls.append(time.perf_counter() - start)
            first.append(result.timings.first_audio_s)
        q = statistics.quantiles(walls, n=10)
        print(f"{args.label} {name:8s} median {statistics.median(walls) * 1e3:8.2f} ms  p10 {q[0] * 1e3:8.2f}  p90 {q[-1] * 1e3:8.2f}  "
              f"first audio {statistics.median(first) * 1e3:6.2f} ms  samples {len(result.audio)}", flush=True)


if __name__ == "__main__":
    main()
