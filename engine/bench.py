"""`tts-turbo bench`: every optimization alone and all together, side by side with piper-tts.

Honest by construction: warmup runs are excluded and reported separately (optimize/compile/
capture time), the device is synchronized inside each timed call (the audio is on the host when
it returns), timings are the median/p10/p90 of N runs, and quality is compared with eager fp32 on
the same seeded noise (sample count, SNR, log-mel distance).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .config import OptimizationConfig, SynthesisOptions
from .models.base import Segment

TEXT_NAMES = ("short", "medium", "long", "chapter")
SEED = 1234
CHAPTER_ITERS = 3
"""The chapter is long enough that 3 runs give a stable median; eager fp32 takes seconds per run."""


def load_text(name: str) -> str:
    return resources.files("engine.benchdata").joinpath(f"{name}.txt").read_text(encoding="utf-8").strip()


def parity_sentences() -> list[str]:
    """Varied sentences (short, long, punctuation, numbers) used for parity checks."""
    return [line for line in load_text("parity").splitlines() if line.strip()]


def configs(cuda: bool, triton: bool) -> dict[str, OptimizationConfig]:
    """Baseline, each optimization alone on top of it, and all on."""
    from .runtime import cpu_bf16_fast

    base = OptimizationConfig.unoptimized()
    alone = {
        "eager_fp32": base,
        "bf16": dataclasses.replace(base, enable_bf16=True),
        "sdpa": dataclasses.replace(base, enable_flash_attention=True),
        "buckets": dataclasses.replace(base, shape_buckets=True),
        "pool": dataclasses.replace(base, preallocate_buffers=True),
        "batch": dataclasses.replace(base, batch_preprocessing=True),
        "inference_mode_off": dataclasses.replace(base, use_inference_mode=False),
        "fused": dataclasses.replace(base, enable_fused_kernels=True),
    }
    if cuda:
        alone.update(
            {
                "fp16": dataclasses.replace(base, enable_fp16=True),
                "tf32": dataclasses.replace(base, enable_tf32=True),
                "cuda_graphs": dataclasses.replace(base, enable_cuda_graphs=True),
                "pinned": dataclasses.replace(base, pin_memory=True),
            }
        )
    if triton or not cuda:
        alone["compile"] = dataclasses.replace(base, enable_compile=True, shape_buckets=True)
    all_on = OptimizationConfig.max_speed(cuda=cuda, bf16_supported=cuda or cpu_bf16_fast())
    alone["all_on"] = dataclasses.replace(all_on, enable_compile=cuda and triton)
    alone["all_on_no_compile"] = dataclasses.replace(all_on, enable_compile=False)
    if cuda:
        alone["all_on_unfused"] = dataclasses.replace(all_on, enable_compile=False, enable_fused_kernels=False)
    return alone


@dataclass
class Cell:
    config: str
    text: str
    chars: int
    words: int
    segments: int
    audio_s: float = 0.0
    wall_s: list[float] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)
    front_end_s: list[float] = field(default_factory=list)
    """The text front end's own time per call, and how long the call waited for it (text mode)."""
    front_end_waited_s: list[float] = field(default_factory=list)
    peak_vram_bytes: int = 0
    steady_vram_bytes: int = 0
    setup_s: float = 0.0
    graphs: int = 0
    capture_s: float = 0.0
    compile_s: float = 0.0
    compile_by_shape: dict[str, float] = field(default_factory=dict)
    """Each stage shape's first compiled call (the setup split: run AN spent 171 of 174 s there)."""
    samples: int = 0
    ref_samples: int = 0
    snr_db: float | None = None
    logmel_dist: float | None = None
    fallbacks: list[str] = field(default_factory=list)
    sdpa_backend: str = ""
    error: str = ""

    def summary(self) -> dict[str, Any]:
        wall = sorted(self.wall_s)
        med = statistics.median(wall) if wall else float("nan")
        pct = lambda q: float(np.percentile(wall, q)) if wall else float("nan")
        return {
            "config": self.config,
            "text": self.text,
            "chars": self.chars,
            "segments": self.segments,
            "audio_s": round(self.audio_s, 3),
            "median_s": med,
            "p10_s": pct(10),
            "p90_s": pct(90),
            "rtf": med / self.audio_s if self.audio_s else None,
            "x_realtime": self.audio_s / med if med else None,
            "chars_per_s": self.chars / med if med else None,
            "words_per_s": self.words / med if med else None,
            "first_audio_s": statistics.median(self.first_audio_s) if self.first_audio_s else None,
            "front_end_s": statistics.median(self.front_end_s) if self.front_end_s else None,
            "front_end_waited_s": statistics.median(self.front_end_waited_s) if self.front_end_waited_s else None,
            "peak_vram_mb": round(self.peak_vram_bytes / 2**20, 1),
            "steady_vram_mb": round(self.steady_vram_bytes / 2**20, 1),
            "setup_s": round(self.setup_s, 3),
            "graphs": self.graphs,
            "capture_s": round(self.capture_s, 3),
            "compile_s": round(self.compile_s, 3),
            "compile_by_shape": {shape: round(seconds, 3) for shape, seconds in self.compile_by_shape.items()},
            "samples": self.samples,
            "same_length": self.samples == self.ref_samples if self.ref_samples else None,
            "snr_db": None if self.snr_db is None else round(self.snr_db, 2),
            "logmel_dist": None if self.logmel_dist is None else round(self.logmel_dist, 4),
            "sdpa_backend": self.sdpa_backend,
            "fallbacks": self.fallbacks,
            "error": self.error,
        }


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    n = min(len(reference), len(test))
    noise = np.sum((reference[:n] - test[:n]) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference[:n] ** 2) / noise))


def log_mel(audio: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80) -> np.ndarray:
    """log10 mel spectrogram (HTK mel scale, triangular filters), numpy only."""
    window = np.hanning(n_fft + 1)[:-1]
    frames = 1 + max(len(audio) - n_fft, 0) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    padded = np.pad(audio, (0, max(n_fft - len(audio), 0)))
    spec = np.abs(np.fft.rfft(padded[idx] * window, axis=1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    edges = hz(np.linspace(mel(0), mel(sample_rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    filters = np.maximum(0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))
    return np.log10(np.maximum(spec @ filters.T, 1e-10))


def logmel_distance(reference: np.ndarray, test: np.ndarray, sample_rate: int) -> float:
    n = min(len(reference), len(test))
    return float(np.mean(np.abs(log_mel(reference[:n], sample_rate) - log_mel(test[:n], sample_rate))))


class Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=total, file=sys.stderr, unit="cell", dynamic_ncols=True)
            except ImportError:
                self.bar = None
        self.done, self.total, self.enabled = 0, total, enabled

    def step(self, label: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_description(label[:40])
            self.bar.update(1)
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {label}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def segments_for(model, text: str, options: SynthesisOptions, ids_table: dict[str, Any] | None, name: str) -> list[Segment]:
    """Phonemize here, or take ids prepared on a machine with espeak (`--export-ids`)."""
    if ids_table is not None:
        return [Segment(s["text"], s["tokens"], s["pause_after"]) for s in ids_table[name]]
    return model.segment(text, options)


def run_cell(model, name: str, cfg: OptimizationConfig, text_name: str, text: str, segments: list[Segment] | None, phonemize_s: float, iters: int, warmup: int, reference: np.ndarray | None) -> tuple[Cell, np.ndarray]:
    """With `segments` None each call runs the text front end itself (as an application's call
    does: for long texts beside the GPU work); else the segments were prepared elsewhere and their
    measured front-end time `phonemize_s` is added to every wall time."""
    import torch

    from . import runtime
    from .optimizer import AdvancedTTSOptimizer
    from .wrapper import OptimizedTTSWrapper

    cell = Cell(name, text_name, len(text), len(text.split()), len(segments or ()))
    options = SynthesisOptions(seed=SEED)
    cuda = model.device.type == "cuda"
    start = time.perf_counter()
    optimizer = AdvancedTTSOptimizer(cfg, model.device)
    wrapper = OptimizedTTSWrapper(model, optimizer)
    if cuda:  # what earlier configs freed stays reserved in the allocator's cache: not this one's footprint
        gc.collect()
        torch.cuda.empty_cache()
    for _ in range(warmup):
        wrapper.generate(text, options, segments=segments)
    cell.setup_s = time.perf_counter() - start
    if cuda:
        torch.cuda.reset_peak_memory_stats(model.device)
    audio = None
    for _ in range(iters):
        result = wrapper.generate(text, options, segments=segments)
        cell.wall_s.append(result.timings.total_s + phonemize_s)
        cell.first_audio_s.append(result.timings.first_audio_s + phonemize_s)
        given = segments is not None  # then the front end ran elsewhere and took `phonemize_s`
        cell.front_end_s.append(phonemize_s if given else result.timings.phonemize_s)
        cell.front_end_waited_s.append(phonemize_s if given else result.timings.total_s - result.timings.model_s)
        audio = result.audio
    cell.segments = result.segments
    stats = optimizer.get_stats()
    cell.audio_s = len(audio) / model.sample_rate
    cell.samples = len(audio)
    cell.peak_vram_bytes = runtime.memory_snapshot(model.device)["peak"]
    cell.steady_vram_bytes = runtime.memory_snapshot(model.device)["reserved"]
    cell.graphs = stats["graphs"]["count"]
    cell.capture_s = stats["graphs"]["capture_s"]
    by_shape = stats["model"].get("compile_s")
    cell.compile_by_shape = dict(by_shape) if isinstance(by_shape, dict) else {}
    cell.compile_s = sum(cell.compile_by_shape.values())
    cell.fallbacks = stats["fallbacks"]
    cell.sdpa_backend = str(stats["model"].get("sdpa_backend", ""))
    if reference is not None:
        cell.ref_samples = len(reference)
        cell.snr_db = snr_db(reference, audio)
        cell.logmel_dist = logmel_distance(reference, audio, model.sample_rate)
    optimizer.clear_caches()
    return cell, audio


def run_peer(model, text_name: str, text: str, segments: list[Segment], iters: int, phonemize_s: float) -> Cell:
    """piper-tts's inference: one onnxruntime CPU session.run per sentence, the voice's default
    scales, threads = physical cores (what `piper` does), on the same ids. The same sentence pauses
    as ours are counted in its audio length, so RTFs compare like with like."""
    import onnxruntime as ort

    from .runtime import physical_cores

    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()
    session = ort.InferenceSession(str(model.source), options, providers=["CPUExecutionProvider"])
    voice = model.config
    scales = np.array([voice.noise_scale, voice.length_scale, voice.noise_w], dtype=np.float32)
    speaker = {"sid": np.array([0], dtype=np.int64)} if model.model.arch.n_speakers > 1 else {}
    pause_samples = int(sum(round(s.pause_after * model.sample_rate) for s in segments[:-1]))
    cell = Cell("piper-tts (ORT CPU)", text_name, len(text), len(text.split()), len(segments))

    def once() -> tuple[float, float, int]:
        start = time.perf_counter()
        first, samples = 0.0, pause_samples
        for i, seg in enumerate(segments):
            ids = np.array([seg.tokens], dtype=np.int64)
            feed = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales, **speaker}
            out = session.run(None, feed)[0]
            samples += out.size
            if i == 0:
                first = time.perf_counter() - start
        return time.perf_counter() - start + phonemize_s, first + phonemize_s, samples

    once()
    for _ in range(iters):
        wall, first, samples = once()
        cell.wall_s.append(wall)
        cell.first_audio_s.append(first)
    cell.audio_s = samples / model.sample_rate
    cell.samples = samples
    return cell


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", default="short,medium,long,chapter", help=f"comma list of {', '.join(TEXT_NAMES)}")
    parser.add_argument("--text", help="benchmark this text instead")
    parser.add_argument("--file", help="benchmark the text in this file instead")
    parser.add_argument("--configs", help="comma list of config names (default: all that apply)")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--voice", default="default")
    parser.add_argument("--out", default="bench-results", help="results folder (JSON, Markdown, PNG)")
    parser.add_argument("--no-peer", action="store_true", help="skip piper-tts (onnxruntime CPU)")
    parser.add_argument("--quick", action="store_true", help="medium text, eager vs bf16 vs all-on and the peer, 3 runs")
    parser.add_argument("--ids-file", help="precomputed phoneme ids (JSON from --export-ids) for machines without espeak")
    parser.add_argument("--export-ids", help="write the texts' phoneme ids to this JSON file and exit")
    parser.add_argument("--no-progress", action="store_true")


def run_from_args(args: argparse.Namespace) -> int:
    from .registry import load_model
    from .runtime import triton_available

    model = load_model(args.voice, args.device)
    texts = _texts(args)
    ids_table = json.loads(Path(args.ids_file).read_text()) if args.ids_file else None
    if args.export_ids:
        table = {name: [dataclasses.asdict(s) for s in model.segment(text, SynthesisOptions())] for name, text in texts.items()}
        table["_phonemize_s"] = {name: median_seconds(lambda t=text: model.segment(t, SynthesisOptions())) for name, text in texts.items()}
        Path(args.export_ids).write_text(json.dumps(table))
        print(f"wrote ids for {', '.join(texts)} to {args.export_ids}")
        return 0
    cuda = model.device.type == "cuda"
    table = configs(cuda, triton_available())
    if args.quick:
        args.iters, args.warmup = min(args.iters, 3), 1
        table = {k: v for k, v in table.items() if k in ("eager_fp32", "bf16", "all_on_no_compile")}
    if args.configs:
        wanted = args.configs.split(",")
        unknown = [c for c in wanted if c not in table]
        if unknown:
            from .errors import InputError

            raise InputError(f"unknown config(s) {unknown}; known here: {', '.join(table)}")
        table = {k: table[k] for k in ["eager_fp32"] + [c for c in wanted if c != "eager_fp32"]}
    out_dir = Path(args.out)
    cells = run_matrix(model, table, texts, ids_table, args, checkpoint=lambda done: write_results(out_dir, done, model, args, complete=False))
    write_results(out_dir, cells, model, args)
    print(format_table(cells))
    print(f"\nresults: {out_dir}/bench.json, bench.md" + (", bench.png" if (out_dir / "bench.png").exists() else " (no chart: matplotlib missing)"))
    return 0


def espeak_workers_up(model) -> None:
    """Long texts are phonemized in worker processes once they are up (an application starts them
    at its first long text); time the steady state, not their start."""
    from .text import workers

    try:
        workers.start(model.config.espeak_voice).result(timeout=120)
    except Exception as exc:  # measured in-process then, as the application would run
        print(f"espeak worker processes unavailable ({exc}); phonemizing in-process", file=sys.stderr)


def median_seconds(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1, settle: Callable[[], Any] = lambda: None) -> float:
    """Median seconds of `fn` after `warmup` untimed calls; `settle()` runs untimed after each
    call (e.g. a wait for the device work the call queued)."""
    for _ in range(warmup):
        fn()
        settle()
    laps = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        laps.append(time.perf_counter() - start)
        settle()
    return statistics.median(laps)


def _texts(args) -> dict[str, str]:
    if args.text:
        return {"custom": args.text}
    if args.file:
        return {Path(args.file).stem: Path(args.file).read_text(encoding="utf-8")}
    if args.quick:
        return {"medium": load_text("medium")}
    names = [n.strip() for n in args.texts.split(",") if n.strip()]
    bad = [n for n in names if n not in TEXT_NAMES]
    if bad:
        from .errors import InputError

        raise InputError(f"unknown text(s) {bad}; choose from {', '.join(TEXT_NAMES)}")
    return {name: load_text(name) for name in names}


def run_matrix(model, table: dict[str, OptimizationConfig], texts: dict[str, str], ids_table, args, checkpoint: Callable[[list[dict[str, Any]]], None] = lambda done: None) -> list[dict[str, Any]]:
    """Every config on every text; `checkpoint` gets the cells measured so far after each one, so a
    run cut short (a time limit, Ctrl+C) still leaves its numbers behind."""
    peer = not args.no_peer and getattr(model, "family", "") == "piper"
    progress = Progress(len(texts) * (len(table) + int(peer)), not args.no_progress)
    cells = []
    for text_name, text in texts.items():
        segments = segments_for(model, text, SynthesisOptions(), ids_table, text_name)
        phon = ids_table["_phonemize_s"][text_name] if ids_table else median_seconds(lambda: model.segment(text, SynthesisOptions()))
        reference = None
        iters = min(args.iters, CHAPTER_ITERS) if text_name == "chapter" else args.iters
        in_call = ids_table is None  # phonemized here: each call runs its own front end
        if in_call and getattr(model, "family", "") == "piper":
            espeak_workers_up(model)
        for name, cfg in table.items():
            try:
                cell, audio = run_cell(model, name, cfg, text_name, text, None if in_call else segments, 0.0 if in_call else phon, iters, args.warmup, reference)
                reference = audio if name == "eager_fp32" else reference
            except Exception as exc:  # one failing config must not hide the others
                cell = Cell(name, text_name, len(text), len(text.split()), len(segments), error=f"{type(exc).__name__}: {exc}")
            cells.append(cell.summary())
            checkpoint(cells)
            progress.step(f"{text_name}/{name}")
        if peer:
            try:
                cells.append(run_peer(model, text_name, text, segments, max(iters // 2, 2), phon).summary())
            except Exception as exc:  # e.g. onnxruntime not installed: report, keep the other cells
                cells.append(Cell("piper-tts (ORT CPU)", text_name, len(text), len(text.split()), len(segments), error=f"{type(exc).__name__}: {exc}").summary())
            checkpoint(cells)
            progress.step(f"{text_name}/piper-tts")
    progress.close()
    return cells


def environment() -> dict[str, Any]:
    from . import runtime

    info = runtime.device_info()
    gpu = info["devices"][0]["name"] if info["devices"] else None
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "gpu": gpu,
        "cpu": platform.processor() or platform.machine(),
        "cores": info["physical_cores"],
        "torch": info["torch_version"],
        "cuda": info["cuda_version"],
    }


def write_results(out_dir: Path, cells: list[dict[str, Any]], model, args, complete: bool = True) -> None:
    """JSON and Markdown after every cell (`complete` False until the last); the chart once, at the end."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    payload = {"environment": env, "voice": model.describe().get("name"), "iters": args.iters, "complete": complete, "cells": cells}
    (out_dir / "bench.json").write_text(json.dumps(payload, indent=2, default=str))
    (out_dir / "bench.md").write_text(format_markdown(cells, env) + ("" if complete else "\n(partial: the run stopped before every cell was measured)\n"))
    if complete:
        chart(out_dir / "bench.png", cells)
    else:  # an earlier run's chart beside this run's partial numbers would mislead
        (out_dir / "bench.png").unlink(missing_ok=True)


COLUMNS = (
    ("config", "config", "{}"),
    ("text", "text", "{}"),
    ("audio_s", "audio s", "{:.2f}"),
    ("median_s", "median ms", "{:.2f}", 1000),
    ("p10_s", "p10 ms", "{:.2f}", 1000),
    ("p90_s", "p90 ms", "{:.2f}", 1000),
    ("rtf", "RTF", "{:.6f}"),
    ("x_realtime", "× RT", "{:,.0f}"),
    ("chars_per_s", "chars/s", "{:,.0f}"),
    ("first_audio_s", "TTFA ms", "{:.2f}", 1000),
    ("peak_vram_mb", "peak MB", "{:.0f}"),
    ("setup_s", "setup s", "{:.2f}"),
    ("graphs", "graphs", "{}"),
    ("same_length", "same len", "{}"),
    ("snr_db", "SNR dB", "{:.1f}"),
    ("logmel_dist", "log-mel", "{:.4f}"),
)


def _fmt(cell: dict[str, Any], col: tuple) -> str:
    value = cell.get(col[0])
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if len(col) > 3:
        value = value * col[3]
    try:
        return col[2].format(value)
    except (ValueError, TypeError):
        return str(value)


def format_table(cells: list[dict[str, Any]]) -> str:
    rows = [[c[1] for c in COLUMNS]] + [[_fmt(cell, c) if not cell.get("error") or c[0] in ("config", "text") else ("ERROR" if c[0] == "audio_s" else "") for c in COLUMNS] for cell in cells]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.rjust(w) if i > 1 else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) for row in rows]
    errors = [f"{c['text']}/{c['config']}: {c['error']}" for c in cells if c.get("error")]
    notes = sorted({f"{c['config']}: {f}" for c in cells for f in c.get("fallbacks") or []})
    return "\n".join(lines + ([""] + ["errors:"] + errors if errors else []) + ([""] + ["fallbacks:"] + notes if notes else []))


def format_markdown(cells: list[dict[str, Any]], env: dict[str, Any]) -> str:
    head = f"Run {env['date']} on {env['gpu'] or 'CPU only'} ({env['cores']} CPU cores), torch {env['torch']}, CUDA {env['cuda'] or '-'}.\n\n"
    header = "| " + " | ".join(c[1] for c in COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(_fmt(cell, c) if not cell.get("error") or c[0] in ("config", "text") else "error" for c in COLUMNS) + " |\n" for cell in cells)
    errors = "".join(f"\n- error {c['text']}/{c['config']}: {c['error']}" for c in cells if c.get("error"))
    notes = "".join(f"\n- {c['text']}/{c['config']}: {f}" for c in cells for f in c.get("fallbacks") or [])
    return head + header + body + (("\nErrors:" + errors + "\n") if errors else "") + (("\nFallbacks:" + notes + "\n") if notes else "")


def chart(path: Path, cells: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    texts = list(dict.fromkeys(c["text"] for c in cells))
    fig, axes = plt.subplots(len(texts), 1, figsize=(10, 2.2 + 0.32 * len(cells) / max(len(texts), 1) * len(texts)), squeeze=False)
    for ax, text in zip(axes[:, 0], texts):
        rows = [c for c in cells if c["text"] == text and c.get("x_realtime")]
        ax.barh([r["config"] for r in rows], [r["x_realtime"] for r in rows], color=["#d95f02" if "piper" in r["config"] else "#1b9e77" for r in rows])
        ax.set_xscale("log")
        ax.set_title(f"{text}: × real time (log scale, higher is faster)", fontsize=10)
        ax.invert_yaxis()
        for i, r in enumerate(rows):
            ax.text(r["x_realtime"], i, f" {r['x_realtime']:,.0f}×", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
