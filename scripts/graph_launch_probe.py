"""What a CUDA graph's launch costs on this machine, and whether launching one stage as a chain of
smaller graphs lets the GPU start while the host still launches the rest.

    python3 scripts/graph_launch_probe.py [--kernels 600] [--pieces 1,2,4,8,16]

A chain of small elementwise kernels (the size of stage A's at one sentence) is captured as
`pieces` graphs in one memory pool; from an idle GPU each way is timed: the host's launch calls
and replay to completion (medians of 50; `stage_bench.launch_and_latency`).
"""

from __future__ import annotations

import argparse

import torch

from stage_bench import launch_and_latency


def capture_chain(x: torch.Tensor, kernels: int, pieces: int) -> list[torch.cuda.CUDAGraph]:
    pool = torch.cuda.graph_pool_handle()
    stream = torch.cuda.Stream()
    graphs = []
    per_piece = kernels // pieces
    for _ in range(pieces):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool, stream=stream):
            for _ in range(per_piece):
                x.mul_(1.0001).add_(1e-4)
        graphs.append(graph)
    return graphs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernels", type=int, default=600)
    parser.add_argument("--pieces", default="1,2,4,8,16")
    parser.add_argument("--size", type=int, default=192 * 480)
    args = parser.parse_args()
    x = torch.zeros(args.size, device="cuda")
    for _ in range(3):
        x.mul_(1.0001).add_(1e-4)
    torch.cuda.synchronize()
    print(f"{2 * (args.kernels // 2)} kernels of {args.size} floats ({torch.cuda.get_device_name()}, torch {torch.__version__})")
    for pieces in (int(p) for p in args.pieces.split(",")):
        graphs = capture_chain(x, args.kernels // 2, pieces)
        launch_and_latency(graphs, 5)
        launch, total = launch_and_latency(graphs, 50)
        print(f"  {pieces:3d} graph(s): host launch {launch:.3f} ms, launch to completion {total:.3f} ms")


if __name__ == "__main__":
    main()
