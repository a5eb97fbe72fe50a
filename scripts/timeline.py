"""One Max-speed call laid out in time: the host's top-level operations next to the GPU's busy and
idle spans, so the gaps where the GPU waits for the host can be read off directly.

    python3 scripts/timeline.py [--text medium] [--compile] [--min-gap-us 5] [--min-host-us 0]

Timestamps are µs from the first event of the call; the profiler itself slows host operations a
little, so read the structure and the gaps, not the absolute host costs.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from profiling import OPTIONS, max_speed_wrapper, segments, warm


def busy_spans(kernels, min_gap: float) -> list[tuple[float, float, int]]:
    """Merge device activity into (start, end, kernel count) spans separated by ≥ min_gap µs."""
    spans: list[list[float]] = []
    for k in sorted(kernels, key=lambda e: e.time_range.start):
        if spans and k.time_range.start - spans[-1][1] < min_gap:
            spans[-1][1] = max(spans[-1][1], k.time_range.end)
            spans[-1][2] += 1
        else:
            spans.append([k.time_range.start, k.time_range.end, 1])
    return [(a, b, int(n)) for a, b, n in spans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="medium")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--min-gap-us", type=float, default=5.0, help="shorter device gaps are merged")
    parser.add_argument("--min-host-us", type=float, default=0.0, help="shorter host operations are not listed")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    text_segments = segments(args.text)
    warm(wrapper, text_segments, 5)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wrapper.generate("", OPTIONS, segments=text_segments)
        torch.cuda.synchronize()
    events = prof.events()
    host = [e for e in events if e.device_type.name == "CPU" and e.cpu_parent is None]
    device = [e for e in events if e.device_type.name == "CUDA"]
    origin = min(e.time_range.start for e in host)
    rows = [(e.time_range.start, f"host {e.time_range.elapsed_us():8.1f} µs  {e.name[:80]}") for e in host if e.time_range.elapsed_us() >= args.min_host_us]
    spans = busy_spans(device, args.min_gap_us)
    for (a, b, n), nxt in zip(spans, spans[1:] + [None]):
        rows.append((a, f"GPU  {b - a:8.1f} µs busy ({n} kernels)"))
        if nxt is not None:
            rows.append((b, f"GPU  {nxt[0] - b:8.1f} µs IDLE"))
    for t, text in sorted(rows):
        print(f"{t - origin:9.1f}  {text}")
    busy = sum(b - a for a, b, _ in spans)
    total = max(e.time_range.end for e in events) - origin
    print(f"\n{total:.0f} µs from first host op to last event; GPU busy {busy:.0f} µs in {len(spans)} spans")


if __name__ == "__main__":
    main()
