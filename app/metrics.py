"""Run records, the run history, and the live series the plots draw from. Qt-free.

The controller appends here from signal slots; the plots read `take_dirty()` on the display timer,
so a burst of memory samples or runs costs one redraw, not one per sample.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .ringbuffer import RingBuffer

STAGE_ORDER = (
    "phonemize", "encoder", "duration", "encoder+duration", "flow", "decoder", "flow+decoder", "copy",
    "t3", "s3gen_encoder", "cfm", "hift",
)

PALETTE = ("#4cc2ff", "#ff9f43", "#7bed9f", "#ff6b81", "#a29bfe", "#feca57", "#48dbfb", "#c8d6e5")


@dataclass
class RunRecord:
    """One finished synthesis, with its audio kept for replay and export."""

    run_id: int
    started: float
    text: str
    voice: str
    config_summary: str
    preset: str
    device: str
    audio: np.ndarray
    sample_rate: int
    timings: dict[str, Any]
    peak_vram_bytes: int = 0
    fallbacks: list[str] = field(default_factory=list)
    label: str = ""
    """'' for a normal run, 'A'/'B' for the two halves of a comparison."""

    @property
    def audio_s(self) -> float:
        return len(self.audio) / self.sample_rate if self.sample_rate else 0.0

    @property
    def rtf(self) -> float:
        return float(self.timings.get("rtf", 0.0))

    @property
    def x_realtime(self) -> float:
        value = self.timings.get("x_realtime")
        return float(value) if value else (1.0 / self.rtf if self.rtf > 0 else 0.0)

    @property
    def stages(self) -> dict[str, float]:
        return dict(self.timings.get("stages") or {})

    def text_start(self, width: int = 40) -> str:
        flat = " ".join(self.text.split())
        return flat if len(flat) <= width else flat[: width - 1] + "…"


class RunHistory:
    """The most recent runs, oldest dropped first so kept audio stays bounded."""

    def __init__(self, max_runs: int = 100) -> None:
        self._runs: deque[RunRecord] = deque(maxlen=max_runs)
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, record: RunRecord) -> None:
        self._runs.append(record)

    def get(self, run_id: int) -> RunRecord | None:
        return next((r for r in self._runs if r.run_id == run_id), None)

    def clear(self) -> None:
        self._runs.clear()

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self._runs)

    def __getitem__(self, index: int) -> RunRecord:
        return self._runs[index]


class ConfigPalette:
    """Stable colour per config summary, in order of first appearance."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def index(self, summary: str) -> int:
        return self._index.setdefault(summary, len(self._index) % len(PALETTE))

    def items(self) -> list[tuple[str, str]]:
        return [(summary, PALETTE[i]) for summary, i in self._index.items()]


class LiveMetrics:
    """Preallocated series for the live plots plus dirty flags for the display timer."""

    MEMORY_COLUMNS = ("t", "allocated", "reserved", "rss")

    def __init__(self, memory_points: int = 600, run_points: int = 500) -> None:
        self.memory = RingBuffer(memory_points, len(self.MEMORY_COLUMNS))
        self.runs = RingBuffer(run_points, 3)
        """Columns: run id, × real time, palette index."""
        self.palette = ConfigPalette()
        self.last_stages: dict[str, float] = {}
        self._t0 = time.monotonic()
        self._dirty: set[str] = set()

    def add_memory(self, t: float, sample: dict[str, int]) -> None:
        self.memory.append((t - self._t0, sample.get("allocated", 0), sample.get("reserved", 0), sample.get("rss", 0)))
        self._dirty.add("memory")

    def add_run(self, record: RunRecord) -> None:
        self.runs.append((record.run_id, record.x_realtime, self.palette.index(record.config_summary)))
        self.last_stages = ordered_stages(record.stages)
        self._dirty.update(("runs", "stages"))

    def clear_runs(self) -> None:
        self.runs.clear()
        self._dirty.add("runs")

    def take_dirty(self) -> set[str]:
        dirty, self._dirty = self._dirty, set()
        return dirty


def ordered_stages(stages: dict[str, float]) -> dict[str, float]:
    """Known stages in pipeline order first, then any the family adds."""
    known = {name: stages[name] for name in STAGE_ORDER if name in stages}
    return known | {k: v for k, v in stages.items() if k not in known}


def format_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
