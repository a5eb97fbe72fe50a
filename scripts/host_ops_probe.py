"""What each host operation on one sentence's path costs on this machine, alone: the pieces that
`host_split.py --fine` shows between the call's start and stage A's launch (stream and event
calls, pinned views, packing, the uploads, a graph replay's launch), and the front end's pieces
(espeak per clause group, a worker's round trip).

    python3 scripts/host_ops_probe.py [--calls 2000]

Median microseconds of host time per operation, after a warmup; device work an operation queues
is waited for outside the timed region.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from typing import Callable

import torch

from engine.bench import median_seconds
from engine.models.piper import synth
from profiling import OPTIONS, max_speed_wrapper, segments, warm


def median_us(fn: Callable[[], object], calls: int, settle: Callable[[], object] = lambda: None) -> float:
    return median_seconds(fn, repeats=calls, warmup=50, settle=settle) * 1e6


def entered(context) -> None:
    with context:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--front-end", action="store_true", help="the front end's pieces alone")
    args = parser.parse_args()
    n = args.calls
    wrapper = max_speed_wrapper(False, "cuda" if torch.cuda.is_available() else "cpu")
    if args.front_end:
        return front_end(wrapper, n // 4)
    sentence = segments("medium")
    warm(wrapper, sentence, 5)
    runner = wrapper.model.runner
    device = runner.device
    stream = torch.cuda.current_stream(device)
    event = torch.cuda.Event(enable_timing=True)
    sync = torch.cuda.synchronize
    key = min((k for k in runner.graphs.graphs if k[0] == "A" and k[-1] >= len(sentence[0].tokens)), key=lambda k: k[-1])
    graph = runner.graphs.graphs[key]
    ids, fields = graph.inputs
    params = wrapper.model.params(OPTIONS)
    tokens = [sentence[0].tokens]
    host_ids = runner.staging.pinned("to_device", ids.dtype, ids.shape, 0)
    host_fields = runner.staging.pinned("to_device", fields.dtype, fields.shape, 0)
    rows: list[tuple[str, float]] = []

    def row(name: str, fn: Callable[[], object], settle: Callable[[], object] = lambda: None) -> None:
        rows.append((name, median_us(fn, n, settle)))

    with torch.inference_mode():
        row("torch.cuda.current_stream(device)", lambda: torch.cuda.current_stream(device))
        row("Event.record(stream)", lambda: event.record(stream))
        row("StageClock.restart (current_stream + record)", lambda: runner._clocks[0].restart())
        row("with torch.cuda.stream(s): pass", lambda: entered(torch.cuda.stream(stream)))
        row("with torch.inference_mode(): pass", lambda: entered(torch.inference_mode()))
        row("staging.pinned (1 × 480 int64)", lambda: runner.staging.pinned("to_device", ids.dtype, ids.shape, 0))
        row("pack_inputs (1 row)", lambda: synth.pack_inputs(tokens, [0], params, host_ids.numpy(), host_fields.numpy()))
        row("tensor.numpy()", lambda: host_ids.numpy())
        row("ids.copy_(pinned, non_blocking)", lambda: ids.copy_(host_ids, non_blocking=True), sync)
        row("fields.copy_(pinned, non_blocking)", lambda: fields.copy_(host_fields, non_blocking=True), sync)
        row("graph A replay (launch only)", graph.graph.replay, sync)
        row("reset_peak_memory_stats", lambda: torch.cuda.reset_peak_memory_stats(device))
        row("memory_stats()['allocated_bytes.all.peak']", lambda: torch.cuda.memory_stats(device)["allocated_bytes.all.peak"])
        row("max_memory_allocated", lambda: torch.cuda.max_memory_allocated(device))
        event.record(stream)
        sync()
        row("Event.synchronize (completed)", event.synchronize)
        row("Event.query (completed)", event.query)
        row("pinned 1-element tolist()", lambda: host_ids[0, :1].tolist())
        row("torch.cuda.Event()", torch.cuda.Event)
        row("the whole call (ids given)", lambda: wrapper.generate("", OPTIONS, segments=sentence))
    print(f"== host operations, median µs of {n} ({torch.cuda.get_device_name(device)})")
    for name, us in rows:
        print(f"  {us:8.2f}   {name}")
    front_end(wrapper, n // 4)


def front_end(wrapper, calls: int) -> None:
    """espeak per clause group of the medium text and a worker's round trip, where espeak is here."""
    try:
        from engine.text import phonemize as espeak
        from engine.text import workers
        from engine.bench import load_text
        from engine.text.normalize import normalize_text
        from engine.text.abbreviations import expand_paragraphs
        from engine.text.chunk import split_chunks
        voice = wrapper.model.config.espeak_voice
        espeak.phonemize("warm", voice)
    except Exception as exc:  # no espeak on this machine
        print(f"== front end: skipped ({exc})")
        return
    workers.start(voice).result(timeout=120)
    pool = workers.ready_pool()
    text = normalize_text(load_text("medium"))
    groups = espeak.clause_groups(text, len(pool.workers) + 1, workers.GROUP_CHARS)
    print(f"== front end, median µs of {calls} ({len(pool.workers)} workers)")
    print(f"  {median_us(lambda: espeak.phonemize(text, voice), calls):8.1f}   whole text here ({len(text)} characters)")
    for group in groups:
        print(f"  {median_us(lambda: espeak.clauses(group, voice), calls):8.1f}   clause group here ({len(group)} characters)")
    for clause in espeak.split_at(text, espeak.clause_cuts(text)):
        print(f"  {median_us(lambda: espeak.clauses(clause, voice), calls):8.1f}   clause here ({len(clause)} characters): {clause[:40]!r}")
    print(f"  {median_us(lambda: pool.busy.acquire() and pool.spread(len, ['x'], lambda: None), calls):8.1f}   worker round trip (len of one character)")
    print(f"  {median_us(lambda: workers.phonemize_spread(text, voice), calls):8.1f}   phonemize_spread ({len(groups)} groups)")
    model, raw = wrapper.model, load_text("medium")
    (chunk,) = split_chunks(next(iter(expand_paragraphs([text]))))
    phonemes = workers.phonemize_spread(chunk, voice)[0]
    for name, fn in (("normalize_text", lambda: normalize_text(raw)), ("expand_paragraphs", lambda: list(expand_paragraphs([text]))),
                     ("split_chunks", lambda: list(split_chunks(chunk))), (f"phonemize_spread of the chunk ({len(chunk)} characters)", lambda: workers.phonemize_spread(chunk, voice)),
                     ("ids of its phonemes", lambda: model._front_end.ids(phonemes)), ("ChunkFrontEnd (spread, ids)", lambda: model._short_front_end(chunk)),
                     ("segment() (normalise, spread, ids)", lambda: model.segment(raw, OPTIONS))):
        print(f"  {median_us(fn, calls):8.1f}   {name}")
    for pause_ms in (1, 3, 10, 30):  # between calls the workers sleep (a call's GPU work takes ~2 ms)
        pause = lambda: time.sleep(pause_ms / 1000)
        print(f"  {median_us(lambda: model.segment(raw, OPTIONS), min(calls, 300), pause):8.1f}   segment() after {pause_ms} ms idle"
              f"; phonemize_spread {median_us(lambda: workers.phonemize_spread(chunk, voice), min(calls, 300), pause):.1f}"
              f"; longest group here {median_us(lambda: espeak.clauses(groups[-1], voice), min(calls, 300), pause):.1f}")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        model.segment(raw, OPTIONS)
    profiler.disable()
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(18)
    print("\n".join(line for line in report.getvalue().splitlines() if line.strip()))

if __name__ == "__main__":
    main()
