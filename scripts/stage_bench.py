"""Each captured stage of a Max-speed call timed alone, against the call: how much of the call the
two lanes' work would take if they overlapped perfectly, and which lane bounds it.

    python3 scripts/stage_bench.py [--text chapter] [--compile] [--replays 20] [--kernels 30]

With `--kernels N`, each stage's graphs are replayed once more under the profiler and their
kernels grouped by name, summed over the call's batches: the N largest per stage.

One call is run with the graph runner recording which captured graph each batch replays; then
each of those graphs is replayed alone (CUDA events around `--replays` replays, median of five
such runs). Stage A of a batch is its encoder and durations, stage B its flow, vocoder and
finishing. The first sentence runs alone; after it, two stages in sequence over n batches take at
least max(ΣA + the last B, the first A + ΣB) (the flow-shop bound, S. M. Johnson, 1954), if the
lanes shared the GPU without slowing each other. The call's own median is printed beside that.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Sequence

import torch

from profiling import OPTIONS, kernel_table, max_speed_wrapper, replayed_keys, segments


def replay_ms(graph: torch.cuda.CUDAGraph, replays: int) -> float:
    laps = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(replays):
            graph.replay()
        end.record()
        end.synchronize()
        laps.append(start.elapsed_time(end) / replays)
    return statistics.median(laps)


def launch_and_latency(graphs: Sequence[torch.cuda.CUDAGraph], repeats: int = 20) -> tuple[float, float]:
    """From an idle GPU: host time of the graphs' `replay()` calls (the GPU cannot start a graph
    before its launch returns) and replay to completion, both medians in ms."""
    launches, latencies = [], []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for graph in graphs:
            graph.replay()
        launched = time.perf_counter()
        torch.cuda.synchronize()
        launches.append(launched - start)
        latencies.append(time.perf_counter() - start)
    return statistics.median(launches) * 1e3, statistics.median(latencies) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="chapter")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument("--kernels", type=int, default=0, help="print each stage's N largest kernels")
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    text_segments = segments(args.text)
    for _ in range(3):
        wrapper.generate("", OPTIONS, segments=text_segments)
    graphs = wrapper.model.runner.graphs
    if graphs is None:
        raise SystemExit("no CUDA graphs in this configuration")
    walls = []
    for _ in range(10):
        torch.cuda.synchronize()
        start = time.perf_counter()
        wrapper.generate("", OPTIONS, segments=text_segments)
        walls.append(time.perf_counter() - start)
    order = replayed_keys(wrapper, text_segments)
    torch.cuda.synchronize()
    cost = {key: replay_ms(graphs.graphs[key].graph, args.replays) for key in dict.fromkeys(order) if key in graphs.graphs}
    idle = {key: launch_and_latency([graphs.graphs[key].graph]) for key in cost}
    eager = [key for key in order if key not in cost]
    print(f"{args.text}, Max speed{' compiled' if args.compile else ' without compile'}: {len(order)} stage runs, "
          f"{len(cost)} graphs timed alone ({args.replays} replays, median of 5)")
    for key in order:
        print(f"  {str(key):32s} {cost[key]:7.3f} ms back to back; from idle: launch {idle[key][0]:.3f} ms, "
              f"to completion {idle[key][1]:.3f} ms" if key in cost else f"  {str(key):32s}  eager (not captured)")
    a = [cost[k] for k in order if k in cost and k[0] == "A"]
    b = [cost[k] for k in order if k in cost and k[0] == "B"]
    if not a or len(a) != len(b):
        raise SystemExit("some stages ran eagerly: no bound")
    # the first sentence runs alone (fast first audio); the rest is a two-stage flow shop, whose
    # makespan in a given order is at least max(ΣA + last B, first A + ΣB)
    rest = max(sum(a[1:]) + b[-1], a[1] + sum(b[1:])) if len(a) > 1 else 0.0
    bound = a[0] + b[0] + rest
    print(f"\nΣ stage A {sum(a):.2f} ms over {len(a)} batches, Σ stage B {sum(b):.2f} ms over {len(b)}; "
          f"one after the other {sum(a) + sum(b):.2f} ms, lanes overlapped at best {bound:.2f} ms")
    print(f"the call: median {statistics.median(walls) * 1e3:.2f} ms of 10 (ids given, no front end)"
          + (f"; {len(eager)} stage runs were not captured" if eager else ""))
    for stage in ("A", "B") if args.kernels else ():
        print(f"\nstage {stage}, one replay of each of its graphs in the call:")
        stage_graphs = [graphs.graphs[k].graph for k in order if k in cost and k[0] == stage]
        print(kernel_table(lambda: [graph.replay() for graph in stage_graphs], args.kernels))


if __name__ == "__main__":
    main()
