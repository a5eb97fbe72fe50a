"""What a model family provides so the wrapper, the optimizer and the app stay family-blind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Protocol

import torch

from ..config import SynthesisOptions

if TYPE_CHECKING:
    from ..optimizer import AdvancedTTSOptimizer


@dataclass
class Segment:
    """One unit of synthesis (a sentence) after the text front end."""

    text: str
    tokens: list[int]
    """Model input ids (Piper: phoneme ids with BOS/PAD/EOS)."""
    pause_after: float = 0.0
    """Seconds of silence to put after this segment's audio."""


@dataclass
class StageTimes:
    """Seconds per pipeline stage for one call (stages a family does not have stay 0)."""

    values: dict[str, float] = field(default_factory=dict)
    peak_bytes: int | None = None
    """The device's peak allocation for the call, where a model read it once all the call's device
    work so far was queued and still running (the read costs ~0.1 ms of host time on a GPU
    machine, hidden there); None where the wrapper must read it after the call."""

    def add(self, stage: str, seconds: float) -> None:
        self.values[stage] = self.values.get(stage, 0.0) + seconds


class TTSModel(Protocol):
    """A loaded voice of one family. Models take tensors; the text front end lives beside them."""

    family: str
    name: str
    sample_rate: int
    device: torch.device
    finishes_audio: bool
    """True when `synthesize` yields finished audio (`engine.finishing`: float32 numpy, normalised,
    volume applied, clipped, the segment's pause appended), e.g. done on the GPU per batch."""

    def segment(self, text: str, options: SynthesisOptions) -> list[Segment]:
        """Normalise, split into sentences and tokenize (no model work)."""
        ...

    def iter_segments(self, text: str, options: SynthesisOptions) -> Iterator[Segment]:
        """`segment` as it goes, for long texts: the first sentences before the whole text is done."""
        ...

    def synthesize(
        self, segments: Iterable[Segment], options: SynthesisOptions, times: StageTimes, cancelled: Callable[[], bool], joined: bool = False
    ) -> Iterator[torch.Tensor]:
        """Yield one float32 waveform (1-D, on any device; finished audio if `finishes_audio`)
        per segment, in order, taking segments only as needed (they may still be in the making:
        a `SegmentFeed`'s `ready()` says how many can be taken without waiting); stop early (between sentences or decode steps) once `cancelled()` is true.
        `joined`: the caller will join the waveforms into one array, so a model may place them
        end to end in one as it goes (`wrapper.join_audio` then copies nothing)."""
        ...

    def optimize(self, optimizer: "AdvancedTTSOptimizer") -> None:
        """Apply `optimizer.config` (precision, SDPA, graphs, compile, buffers) in place."""
        ...

    def describe(self) -> dict[str, Any]:
        """Static facts for stats and the UI: family, voice, parameters, speakers, dtypes."""
        ...
