"""Speaker embedding for T3 conditioning: a GE2E-style 3-layer LSTM d-vector (Wan et al. 2018).

The utterance is cut into 160-frame partials (step 77 frames, the reference's rate 1.3), each is
embedded and L2-normalised, and the mean is re-normalised. Runs once per voice, fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .audio import VoiceEncoderMel, trim_silence
from .checkpoint import TensorInfo, shape_of


@dataclass(frozen=True)
class VoiceEncoderConfig:
    n_mels: int = 40
    hidden: int = 256
    layers: int = 3
    embedding: int = 256
    partial_frames: int = 160
    frame_step: int = 77  # round((16000 / 1.3) / 160)
    min_coverage: float = 0.8

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo]) -> VoiceEncoderConfig:
        return cls(
            n_mels=shape_of(header, "lstm.weight_ih_l0")[1],
            hidden=shape_of(header, "lstm.weight_hh_l0")[1],
            layers=len([k for k in header if k.startswith("lstm.weight_ih_l")]),
            embedding=shape_of(header, "proj.weight")[0],
        )


VE_IGNORED = {"similarity_weight", "similarity_bias"}  # training-only GE2E loss scale


class VoiceEncoder(nn.Module):
    def __init__(self, cfg: VoiceEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = VoiceEncoderMel(cfg.n_mels)
        self.lstm = nn.LSTM(cfg.n_mels, cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.proj = nn.Linear(cfg.hidden, cfg.embedding)

    def forward(self, partials: torch.Tensor) -> torch.Tensor:
        """partials (n, 160, 40) → L2-normalised embeddings (n, 256)."""
        _, (hidden, _) = self.lstm(partials)
        return F.normalize(F.relu(self.proj(hidden[-1])), dim=1)

    def partials(self, mel: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        n_frames = mel.shape[0]
        n_wins, rem = divmod(max(n_frames - c.partial_frames + c.frame_step, 0), c.frame_step)
        if n_wins == 0 or (rem + c.partial_frames - c.frame_step) / c.partial_frames >= c.min_coverage:
            n_wins += 1
        target = c.partial_frames + c.frame_step * (n_wins - 1)
        mel = F.pad(mel, (0, 0, 0, max(target - n_frames, 0)))[:target]
        return mel.unfold(0, c.partial_frames, c.frame_step).transpose(1, 2)

    def embed(self, wav16: torch.Tensor) -> torch.Tensor:
        """wav16 (N,) at 16 kHz → speaker embedding (1, 256)."""
        wav = trim_silence(wav16.float(), top_db=20)
        parts = self.partials(self.mel(wav if wav.numel() > 0 else wav16.float()))
        return F.normalize(self(parts).mean(0, keepdim=True), dim=1)
