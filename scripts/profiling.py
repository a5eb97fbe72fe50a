"""What the profiling scripts share: the Max-speed wrapper on the bundled voice, and the benchmark
texts as precomputed phoneme ids (the GPU machine has no espeak)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper, load_model
from engine.config import SynthesisOptions
from engine.models.base import Segment

IDS = json.loads(Path("tests/data/phoneme_ids.json").read_text())
OPTIONS = SynthesisOptions(seed=1234)


def max_speed_wrapper(compile: bool, device: str = "cuda") -> OptimizedTTSWrapper:
    model = load_model("default", device)
    cfg = dataclasses.replace(OptimizationConfig.max_speed(cuda=device == "cuda"), enable_compile=compile)
    return OptimizedTTSWrapper(model, AdvancedTTSOptimizer(cfg, model.device))


def segments(text: str) -> list[Segment]:
    return [Segment(s["text"], s["tokens"], s["pause_after"]) for s in IDS[text]]


def warm(wrapper: OptimizedTTSWrapper, text_segments: list[Segment], calls: int) -> None:
    for _ in range(calls):
        wrapper.generate("", OPTIONS, segments=text_segments)


def interleaved_arguments(description: str) -> argparse.ArgumentParser:
    """The options of the probes that alternate variants within one process, rounds interleaved."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--text", default="chapter")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    return parser
