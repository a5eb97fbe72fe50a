"""`tts-turbo profile`: where the time of one synthesis goes, by device (or CPU) time."""

from __future__ import annotations

import json
from pathlib import Path


def profile_text(text: str, voice: str, device: str, preset: str, rows: int = 25, ids_file: str | None = None) -> str:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from .cli import preset_config
    from .config import SynthesisOptions
    from .models.base import Segment
    from .optimizer import AdvancedTTSOptimizer
    from .registry import load_model
    from .wrapper import OptimizedTTSWrapper

    model = load_model(voice, device)
    wrapper = OptimizedTTSWrapper(model, AdvancedTTSOptimizer(preset_config(preset, model.device), model.device))
    segments = None
    if ids_file:
        table = json.loads(Path(ids_file).read_text())
        segments = [Segment(s["text"], s["tokens"], s["pause_after"]) for s in table[text]]
    options = SynthesisOptions(seed=0)
    for _ in range(3):  # warm: plans, graphs and compiled kernels exist before profiling
        wrapper.generate(text, options, segments=segments)
    cuda = model.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        result = wrapper.generate(text, options, segments=segments)
    if cuda:
        torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    kernels = sum(e.count for e in events if e.device_type.name == "CUDA") if cuda else 0
    header = (
        f"{result.timings.audio_s:.2f} s audio in {result.timings.total_s * 1000:.2f} ms (RTF {result.timings.rtf:.6f}) "
        f"on {result.device}, config {result.config_summary}; {kernels} CUDA kernels\n"
    )
    return header + events.table(sort_by=key, row_limit=rows)
