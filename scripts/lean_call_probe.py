"""How much of one sentence's call is the engine's orchestration: the Max-speed call (ids given)
against the least host work that replays the same two captured graphs.

    python3 scripts/lean_call_probe.py [--text medium] [--compile] [--calls 300] [--rounds 3]

The lean loop does only what the device work needs: pack the inputs into pinned memory, two
uploads, stage A's graph, the frame count's copy and wait, stage B's graph, the audio's copy into
a pinned array of its own with room for its pause, and the wait (as the engine hands a lone
sentence's audio out since run AZ; before, both moved the audio into a fresh array after the GPU).
Everything else the call does (feed, stage clock, events, statistics, the wrapper) is the
difference. Rounds alternate the two in one process. The lean loop's audio is checked against the
call's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from engine.models.piper.synth import FIELDS, pack_inputs
from profiling import OPTIONS, max_speed_wrapper, replayed_keys, segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--text", default="medium")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    wrapper = max_speed_wrapper(args.compile)
    text_segments = segments(args.text)
    if len(text_segments) != 1:
        raise SystemExit(f"{args.text} is {len(text_segments)} sentences: the lean loop replays one")
    for _ in range(3):
        reference = wrapper.generate("", OPTIONS, segments=text_segments).audio
    runner, model = wrapper.model.runner, wrapper.model
    key_a, key_b = replayed_keys(wrapper, text_segments)
    graph_a, graph_b = runner.graphs.graphs[key_a], runner.graphs.graphs[key_b]
    ids, fields = graph_a.inputs
    frames = graph_a.outputs[3][:1]
    audio_out = graph_b.outputs[0][:1]
    params = model.params(OPTIONS)
    tokens = [text_segments[0].tokens]
    tail = 0  # the call's silence after the sentence: set from the reference below
    host_ids = torch.empty(ids.shape, dtype=ids.dtype, pin_memory=True)
    host_fields = torch.empty(fields.shape, dtype=fields.dtype, pin_memory=True)
    host_frames = torch.empty(frames.shape, dtype=frames.dtype, pin_memory=True)
    counted, copied = torch.cuda.Event(), torch.cuda.Event()
    hop = model.model.hop_length
    print(f"graphs {key_a} and {key_b}; {len(FIELDS)} fields per row; fallbacks: {wrapper.optimizer.get_stats()['fallbacks']}")

    @torch.inference_mode()  # the graphs' static tensors were made under it, as the runner makes them
    def lean() -> np.ndarray:
        pack_inputs(tokens, [0], params, host_ids.numpy(), host_fields.numpy())
        ids.copy_(host_ids, non_blocking=True)
        fields.copy_(host_fields, non_blocking=True)
        graph_a.graph.replay()
        host_frames.copy_(frames, non_blocking=True)
        counted.record()
        counted.synchronize()
        samples = int(host_frames[0]) * hop
        if samples > audio_out.shape[1]:
            raise SystemExit("the frame bucket changed: the lean loop replays one stage B graph")
        graph_b.graph.replay()
        out = torch.empty(samples + tail, dtype=torch.float32, pin_memory=True)
        out[:samples].copy_(audio_out[0, :samples], non_blocking=True)
        copied.record()
        audio = out.numpy()
        audio[samples:] = 0.0
        copied.synchronize()
        return audio

    def call() -> np.ndarray:
        return wrapper.generate("", OPTIONS, segments=text_segments).audio

    tail = len(reference) - len(lean())
    same = lean()
    print(f"lean audio: {len(same)} samples against the call's {len(reference)}; max |difference| "
          f"{float(np.abs(same[: len(reference)] - reference[: len(same)]).max()) if len(same) == len(reference) else float('nan'):.3g}")
    for round_number in range(1, args.rounds + 1):
        for name, fn in (("call", call), ("lean", lean)):
            for _ in range(10):
                fn()
            laps = []
            for _ in range(args.calls):
                start = time.perf_counter()
                fn()
                laps.append(time.perf_counter() - start)
            laps.sort()
            print(f"round {round_number} {name}: median {statistics.median(laps) * 1e3:.3f} ms, "
                  f"p10 {laps[len(laps) // 10] * 1e3:.3f}, p90 {laps[len(laps) * 9 // 10] * 1e3:.3f} ({args.calls} calls)")


if __name__ == "__main__":
    main()
