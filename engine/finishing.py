"""What happens to a sentence's waveform before anyone hears it: peak normalisation (as piper-tts
does), volume, clipping to [-1, 1], and the sentence's trailing pause.

`finish_rows_` works in place on a padded batch where it was made (on the GPU: one pass per step
over the whole batch, before the copy to the host); `finish_wave` applies it on the host to one
waveform at a time, for families that produce one sentence at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import SynthesisOptions
from .models.base import Segment

SILENT_PEAK = 1e-8
"""Below this peak a waveform is silence: normalising it would only amplify rounding noise."""


def pause_samples(segment: Segment, sample_rate: int) -> int:
    """Samples of silence after `segment` (none after a request's last: `feed.without_final_pause`)."""
    return int(round(segment.pause_after * sample_rate))


def finish_rows_(audio: torch.Tensor, valid: torch.Tensor, volume: torch.Tensor, normalize: torch.Tensor) -> torch.Tensor:
    """audio (B, S) float32, row b valid up to `valid[b]` samples: each row scaled by `volume[b]`
    (over its peak where `normalize[b]`; the peak of the valid part only) and clipped, in place.
    Samples past `valid` may hold anything on entry (padding). Branch-free, so it runs inside
    compiled and captured stages with per-row settings as tensors."""
    inside = torch.arange(audio.shape[1], device=audio.device)[None, :] < valid[:, None]
    peak = torch.where(inside, audio.abs(), 0.0).amax(dim=1, keepdim=True)
    gain = volume[:, None].to(audio.dtype)
    gain = torch.where(normalize[:, None] & (peak > SILENT_PEAK), gain / peak, gain)
    return audio.mul_(gain).clamp_(-1.0, 1.0)


def finish_wave(wave: torch.Tensor | np.ndarray, options: SynthesisOptions, pause: int) -> np.ndarray:
    """One waveform (any device or dtype) → finished float32 host audio with `pause` samples of
    silence: copied once into the output, then finished there in place."""
    flat = wave.detach().reshape(-1) if isinstance(wave, torch.Tensor) else torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
    out = np.zeros(flat.numel() + pause, dtype=np.float32)
    head = torch.from_numpy(out)[: flat.numel()]
    head.copy_(flat)
    finish_rows_(head[None], torch.tensor([flat.numel()]), torch.tensor([options.volume]), torch.tensor([options.normalize]))
    return out
