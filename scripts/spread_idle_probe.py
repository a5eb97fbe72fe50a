"""A short sentence's front end as a call meets it: `phonemize_spread` of the medium text after the
calling thread has slept or spun (as it does in a CUDA wait) for a few milliseconds, the workers
idle meanwhile. Run once per engine (PYTHONPATH picks it) to compare two versions on one machine.

    python3 scripts/spread_idle_probe.py [--calls 400] [--label base]
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine.bench import load_text
from engine.text import workers
from engine.text.abbreviations import expand_paragraphs
from engine.text.normalize import normalize_text

VOICE = "en-us"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    workers.start(VOICE).result(timeout=120)
    text = next(iter(expand_paragraphs([normalize_text(load_text("medium"))])))
    for idle_ms, spin in ((0, False), (2, False), (2, True), (20, False)):
        times = []
        for i in range(args.calls + 20):
            until = time.perf_counter() + idle_ms / 1000
            if spin:
                while time.perf_counter() < until:
                    pass
            elif idle_ms:
                time.sleep(idle_ms / 1000)
            start = time.perf_counter()
            workers.phonemize_spread(text, VOICE)
            if i >= 20:
                times.append(time.perf_counter() - start)
        how = "spun" if spin else "slept"
        print(f"{args.label} after {idle_ms:2d} ms {how:5}: median {statistics.median(times) * 1e6:7.1f} µs, p90 {statistics.quantiles(times, n=10)[-1] * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
