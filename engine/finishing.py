"""What happens to a sentence's waveform before anyone hears it: peak normalisation (as piper-tts
does), volume, clipping to [-1, 1], and the sentence's trailing pause.

Two forms of the same function: `finish_rows_` works in place on a padded batch where it was made
(on the GPU: one pass per step over the whole batch, before the copy to the host), `finish_wave`
on one waveform at a time on the host, for families that produce one sentence at a time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .config import SynthesisOptions
from .models.base import Segment

SILENT_PEAK = 1e-8
"""Below this peak a waveform is silence: normalising it would only amplify rounding noise."""


def pause_samples(segments: Sequence[Segment], index: int, sample_rate: int) -> int:
    """Silence after segment `index`: its pause, none after the last one."""
    return int(round(segments[index].pause_after * sample_rate)) if index < len(segments) - 1 else 0


def finish_rows_(audio: torch.Tensor, valid: torch.Tensor, volume: float, normalize: bool) -> torch.Tensor:
    """audio (B, S) float32, row b valid up to `valid[b]` samples: each row scaled by volume
    (over its peak when normalising; the peak of the valid part only) and clipped, in place.
    Samples past `valid` may hold anything on entry (padding)."""
    gain = torch.full((audio.shape[0], 1), volume, dtype=audio.dtype, device=audio.device)
    if normalize:
        inside = torch.arange(audio.shape[1], device=audio.device)[None, :] < valid[:, None]
        peak = torch.where(inside, audio.abs(), 0.0).amax(dim=1, keepdim=True)
        gain = torch.where(peak > SILENT_PEAK, gain / peak, gain)
    return audio.mul_(gain).clamp_(-1.0, 1.0)


def finish_wave(wave: torch.Tensor | np.ndarray, options: SynthesisOptions, pause: int) -> np.ndarray:
    """One waveform (any device) → finished float32 host audio with `pause` samples of silence.
    One output allocation and in-place passes: a long sentence is millions of samples."""
    audio = wave.detach().float().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, dtype=np.float32)
    audio = audio.astype(np.float32, copy=False).reshape(-1)
    gain = options.volume
    if options.normalize and audio.size:
        peak = max(float(audio.max()), -float(audio.min()))
        if peak > SILENT_PEAK:
            gain /= peak
    out = np.empty(audio.size + pause, dtype=np.float32)
    head = out[: audio.size]
    np.multiply(audio, np.float32(gain), out=head)
    np.clip(head, -1.0, 1.0, out=head)
    out[audio.size :] = 0.0
    return out
