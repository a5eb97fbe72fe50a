"""The chapter with the two lanes (stage A of a batch beside stage B of the one before, two
streams) against the same captured graphs on one stream, rounds interleaved in one process.

    python3 scripts/lanes_probe.py [--text chapter] [--compile] [--calls 10] [--rounds 3]

Why: each captured stage timed alone sums to less than the call with both lanes
(`stage_bench.py`), so the lanes may slow each other more than they overlap.
"""

from __future__ import annotations

import statistics
import time

import torch

from profiling import OPTIONS, interleaved_arguments, max_speed_wrapper, segments


def main() -> None:
    parser = interleaved_arguments(__doc__)
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    runner = wrapper.model.runner
    text_segments = segments(args.text)
    lanes = runner.lanes
    modes = {"two lanes": lanes, "one stream": None}
    for mode in modes.values():
        runner.lanes = mode
        for _ in range(3):
            wrapper.generate("", OPTIONS, segments=text_segments)
    for round_ in range(args.rounds):
        for name, mode in modes.items():
            runner.lanes = mode
            walls = []
            for _ in range(args.calls):
                torch.cuda.synchronize()
                start = time.perf_counter()
                result = wrapper.generate("", OPTIONS, segments=text_segments)
                walls.append(time.perf_counter() - start)
            print(f"round {round_ + 1} {name:10s} median {statistics.median(walls) * 1e3:8.2f} ms  "
                  f"min {min(walls) * 1e3:8.2f}  samples {len(result.audio)}", flush=True)
    runner.lanes = lanes


if __name__ == "__main__":
    main()
