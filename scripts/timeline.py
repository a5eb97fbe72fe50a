"""One Max-speed call laid out in time: the host's top-level operations next to the GPU's busy and
idle spans, so the gaps where the GPU waits for the host can be read off directly.

    python3 scripts/timeline.py [--text medium] [--compile] [--front-end] [--lanes] [--one-stream] [--min-gap-us 5] [--min-host-us 0]

Timestamps are µs from the first event of the call; the profiler itself slows host operations a
little, so read the structure and the gaps, not the absolute host costs.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile

import torch
from torch.profiler import ProfilerActivity, profile

from profiling import OPTIONS, max_speed_wrapper, segments

from engine.bench import espeak_workers_up, load_text


def busy_spans(kernels, min_gap: float) -> list[tuple[float, float, int]]:
    """Merge device activity into (start, end, kernel count) spans separated by ≥ min_gap µs."""
    return busy_spans_of([(k.time_range.start, k.time_range.end) for k in kernels], min_gap)


def busy_spans_of(intervals, min_gap: float) -> list[tuple[float, float, int]]:
    spans: list[list[float]] = []
    for start, end in sorted(intervals):
        if spans and start - spans[-1][1] < min_gap:
            spans[-1][1] = max(spans[-1][1], end)
            spans[-1][2] += 1
        else:
            spans.append([start, end, 1])
    return [(a, b, int(n)) for a, b, n in spans]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="medium")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--min-gap-us", type=float, default=5.0, help="shorter device gaps are merged")
    parser.add_argument("--min-host-us", type=float, default=0.0, help="shorter host operations are not listed")
    parser.add_argument("--lanes", action="store_true", help="also list each stream's busy spans")
    parser.add_argument("--one-stream", action="store_true", help="the captured stages on one stream, no lanes")
    parser.add_argument("--front-end", action="store_true", help="phonemize in the call, as the application and `bench` do (needs espeak)")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    if args.one_stream:
        wrapper.model.runner.lanes = None
    if args.front_end:
        text, text_segments = load_text(args.text), None
        espeak_workers_up(wrapper.model)
    else:
        text, text_segments = "", segments(args.text)
    for _ in range(5):
        wrapper.generate(text, OPTIONS, segments=text_segments)
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wrapper.generate(text, OPTIONS, segments=text_segments)
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
    print_streams(prof, args.min_gap_us if args.lanes else None)


def print_streams(prof, span_gap_us: float | None) -> None:
    """Per CUDA stream: kernels, their summed time and the union of their busy spans (a stream
    busy through the call's GPU span is the critical chain), and with `span_gap_us` the stream's
    busy spans themselves (gaps shorter than that merged), to read the stages' order across streams."""
    with tempfile.NamedTemporaryFile(suffix=".json") as trace:
        prof.export_chrome_trace(trace.name)
        kernels = [e for e in json.load(open(trace.name))["traceEvents"] if e.get("cat") == "kernel"]
    per_stream = collections.defaultdict(list)
    by_name = collections.defaultdict(collections.Counter)
    launches = collections.defaultdict(collections.Counter)
    for k in kernels:
        stream = k["args"].get("stream", k.get("tid"))
        per_stream[stream].append((k["ts"], k["ts"] + k["dur"]))
        by_name[stream][k["name"][:220]] += k["dur"]
        launches[stream][k["name"][:220]] += 1
    for stream, spans in sorted(per_stream.items(), key=lambda kv: str(kv[0])):
        spans.sort()
        union, end = 0.0, float("-inf")
        for a, b in spans:
            union += max(0.0, b - max(a, end))
            end = max(end, b)
        origin = min(s[0][0] for s in per_stream.values())
        print(f"stream {stream}: {len(spans)} kernels, {sum(b - a for a, b in spans):.0f} µs summed, busy {union:.0f} µs "
              f"from {spans[0][0] - origin:.0f} to {end - origin:.0f} µs")
        if span_gap_us is not None:
            merged = busy_spans_of(spans, span_gap_us)
            print("   " + "  ".join(f"[{a - origin:.0f}–{b - origin:.0f}: {n}]" for a, b, n in merged))
            for name, us in by_name[stream].most_common(20):
                print(f"   {us:9.0f} µs {launches[stream][name]:5d}×  {name}")


if __name__ == "__main__":
    main()
