"""Where a chapter call's host time after the GPU goes: `generate` up to its last sentence against
the join after it, and each batch's cut-and-pause step (`InFlight.finish`), ids given.

    python3 scripts/host_tail_probe.py [--text chapter] [--calls 10]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from engine.models.piper import synth
from profiling import OPTIONS, max_speed_wrapper, segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="chapter")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    wrapper = max_speed_wrapper(False)
    text_segments = segments(args.text)
    finish = synth.InFlight.finish
    spent: list[float] = []

    def timed_finish(self, *args):
        if self.done is not None:
            self.done.synchronize()
        start = time.perf_counter()
        out = finish(self, *args)
        spent.append(time.perf_counter() - start)
        return out

    synth.InFlight.finish = timed_finish
    rows = []
    for call in range(args.calls + 3):
        spent.clear()
        last_chunk = [0.0]
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = wrapper.generate("", OPTIONS, segments=text_segments, on_chunk=lambda _: last_chunk.__setitem__(0, time.perf_counter()))
        joined = time.perf_counter()
        if call >= 3:
            rows.append(((last_chunk[0] - start) * 1e3, (joined - last_chunk[0]) * 1e3, sum(spent) * 1e3, spent[-1] * 1e3, len(result.audio)))
    for i, name in enumerate(("to the last sentence", "join", "finish (all batches)", "finish (last batch)")):
        print(f"{name:22s} median {statistics.median(r[i] for r in rows):7.2f} ms")
    print(f"samples {rows[-1][4]}")


if __name__ == "__main__":
    main()
