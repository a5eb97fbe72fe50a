"""S3 speech tokenizer v2 (CosyVoice 2): 16 kHz audio → 25 Hz tokens from a 3^8 FSQ codebook.

Whisper-style log-mel (Radford et al. 2022) → two stride-2 convs → transformer blocks with RoPE
(Su et al. 2021) and an FSMN memory branch (Zhang et al. 2018) → finite scalar quantisation
(Mentzer et al. 2023) to 8 ternary digits. Keys live under `tokenizer.` in s3gen.safetensors; the
mel filters and window are rebuilt here (the official loader marks them ignorable).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .audio import LogMel16k
from .checkpoint import TensorInfo, count_indexed, shape_of


@dataclass(frozen=True)
class S3TokenizerConfig:
    n_mels: int = 128
    dim: int = 1280
    n_layers: int = 6
    head_dim: int = 64
    fsmn_kernel: int = 31
    rope_len: int = 2048

    @property
    def heads(self) -> int:
        return self.dim // self.head_dim

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo], prefix: str = "tokenizer.") -> S3TokenizerConfig:
        conv1 = shape_of(header, prefix + "encoder.conv1.weight")
        return cls(
            n_mels=conv1[1],
            dim=conv1[0],
            n_layers=count_indexed(header, prefix + "encoder.blocks."),
            fsmn_kernel=shape_of(header, prefix + "encoder.blocks.0.attn.fsmn_block.weight")[2],
        )


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class FSMNAttention(nn.Module):
    def __init__(self, cfg: S3TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.query = nn.Linear(cfg.dim, cfg.dim)
        self.key = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.value = nn.Linear(cfg.dim, cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.dim)
        self.fsmn_block = nn.Conv1d(cfg.dim, cfg.dim, cfg.fsmn_kernel, groups=cfg.dim, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        H = self.cfg.heads
        q = _rotate(self.query(x).view(B, T, H, -1), cos, sin).transpose(1, 2)
        k = _rotate(self.key(x).view(B, T, H, -1), cos, sin).transpose(1, 2)
        v = self.value(x)
        pad = (self.cfg.fsmn_kernel - 1) // 2
        memory = self.fsmn_block(F.pad(v.transpose(1, 2), (pad, self.cfg.fsmn_kernel - 1 - pad))).transpose(1, 2) + v
        y = F.scaled_dot_product_attention(q, k, v.view(B, T, H, -1).transpose(1, 2))
        return self.out(y.transpose(1, 2).reshape(B, T, C)) + memory


class AttentionBlock(nn.Module):
    def __init__(self, cfg: S3TokenizerConfig):
        super().__init__()
        self.attn = FSMNAttention(cfg)
        self.attn_ln = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, 4 * cfg.dim), nn.GELU(), nn.Linear(4 * cfg.dim, cfg.dim))
        self.mlp_ln = nn.LayerNorm(cfg.dim)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_ln(x), cos, sin)
        return x + self.mlp(self.mlp_ln(x))


class AudioEncoder(nn.Module):
    def __init__(self, cfg: S3TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv1d(cfg.n_mels, cfg.dim, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(cfg.dim, cfg.dim, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList(AttentionBlock(cfg) for _ in range(cfg.n_layers))
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            d = self.cfg.head_dim
            freqs = 1.0 / 10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32)[: d // 2] / d)
            angles = torch.outer(torch.arange(self.cfg.rope_len, dtype=torch.float32), freqs)
            angles = torch.cat((angles, angles), dim=-1)
            self.register_buffer("rope_cos", angles.cos().to(device), persistent=False)
            self.register_buffer("rope_sin", angles.sin().to(device), persistent=False)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (1, n_mels, T) → hidden (1, ceil(T/4), dim); one clip, so no padding masks."""
        x = F.gelu(self.conv1(mel))
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        T = x.shape[1]
        cos, sin = self.rope_cos[:T, None], self.rope_sin[:T, None]
        for block in self.blocks:
            x = block(x, cos, sin)
        return x


class FSQCodebook(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.project_down = nn.Linear(dim, 8)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            self.register_buffer("powers", (3 ** torch.arange(8, dtype=torch.float32)).to(device), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = torch.tanh(self.project_down(h).float()) * 0.9990000128746033
        return ((z.round() + 1) * self.powers).sum(-1).long()


class S3Tokenizer(nn.Module):
    """Official layout: `encoder.*` and `quantizer._codebook.project_down`."""

    def __init__(self, cfg: S3TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = LogMel16k(cfg.n_mels)
        self.encoder = AudioEncoder(cfg)
        self.quantizer = nn.Module()
        self.quantizer._codebook = FSQCodebook(cfg.dim)

    def forward(self, wav16: torch.Tensor, max_tokens: int | None = None) -> torch.Tensor:
        """wav16 (N,) 16 kHz, one unpadded clip → tokens (1, n) at 25 Hz (4 mel frames per token)."""
        mel = self.mel(wav16.float()[None])
        if max_tokens is not None:
            mel = mel[..., : 4 * max_tokens]
        return self.quantizer._codebook(self.encoder(mel))
