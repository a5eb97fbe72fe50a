"""The chapter in text mode (espeak inside the call, as `bench` runs it) with other window sizes:
today the first sentence alone and then all the rest in one window, so stage A of the second
window waits for the whole front end. A smaller second window starts the GPU sooner and packs
a little worse. Schedules alternate within one process, rounds interleaved.

    python3 scripts/window_probe.py [--compile] [--calls 10] [--rounds 3] [--schedules "1,128;1,32,128;1,64,128"]

Each schedule lists the sentences per window; the last size repeats.
"""

from __future__ import annotations

import statistics
import time

import torch

from engine.bench import espeak_workers_up, load_text
from profiling import OPTIONS, interleaved_arguments, max_speed_wrapper


def main() -> None:
    parser = interleaved_arguments(__doc__)
    parser.add_argument("--schedules", default="1,128;1,32,128;1,64,128")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    espeak_workers_up(wrapper.model)
    runner = wrapper.model.runner
    text = load_text(args.text)
    schedules = {name: [int(n) for n in name.split(",")] for name in args.schedules.split(";")}

    def use(sizes: list[int]) -> None:
        runner.window_size = lambda number: sizes[min(number, len(sizes) - 1)]

    for sizes in schedules.values():
        use(sizes)
        for _ in range(3):
            wrapper.generate(text, OPTIONS)
    for round_ in range(args.rounds):
        for name, sizes in schedules.items():
            use(sizes)
            walls, first, waited = [], [], []
            for _ in range(args.calls):
                torch.cuda.synchronize()
                start = time.perf_counter()
                result = wrapper.generate(text, OPTIONS)
                walls.append(time.perf_counter() - start)
                first.append(result.timings.first_audio_s)
                waited.append(result.timings.total_s - result.timings.model_s)
            print(f"round {round_ + 1} windows {name:14s} median {statistics.median(walls) * 1e3:8.2f} ms  "
                  f"first audio {statistics.median(first) * 1e3:6.2f} ms  front end waited {statistics.median(waited) * 1e3:6.2f} ms  "
                  f"samples {len(result.audio)}", flush=True)


if __name__ == "__main__":
    main()
