"""S3Gen token encoder: the CosyVoice 2 upsampling conformer (Du et al. 2024, "CosyVoice 2").

6 conformer layers at 25 Hz → nearest ×2 + causal conv → 4 conformer layers at 50 Hz. Attention is
Transformer-XL relative-position attention (Dai et al. 2019) in the ESPnet form; masks are padding
only, so right-padding a token sequence to a bucket leaves every valid frame unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import TensorInfo, count_indexed, shape_of


@dataclass(frozen=True)
class EncoderConfig:
    dim: int = 512
    heads: int = 8
    ffn: int = 2048
    n_layers: int = 6
    n_up_layers: int = 4
    pre_lookahead: int = 3
    up_stride: int = 2
    max_len: int = 5000

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo], prefix: str = "flow.encoder.") -> EncoderConfig:
        return cls(
            dim=shape_of(header, prefix + "embed.out.0.weight")[0],
            heads=shape_of(header, prefix + "encoders.0.self_attn.pos_bias_u")[0],
            ffn=shape_of(header, prefix + "encoders.0.feed_forward.w_1.weight")[0],
            n_layers=count_indexed(header, prefix + "encoders."),
            n_up_layers=count_indexed(header, prefix + "up_encoders."),
            pre_lookahead=shape_of(header, prefix + "pre_lookahead_layer.conv1.weight")[2] - 1,
        )


class RelPositionalEncoding(nn.Module):
    """ESPnet sinusoid table over relative offsets +(L-1)…−(L-1); the input is scaled by √d."""

    def __init__(self, dim: int, max_len: int):
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            pos = torch.arange(self.max_len, dtype=torch.float32)[:, None]
            div = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32) * -(math.log(10000.0) / self.dim))
            pe_pos = torch.zeros(self.max_len, self.dim)
            pe_neg = torch.zeros(self.max_len, self.dim)
            pe_pos[:, 0::2], pe_pos[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
            pe_neg[:, 0::2], pe_neg[:, 1::2] = torch.sin(-pos * div), torch.cos(-pos * div)
            pe = torch.cat([torch.flip(pe_pos, [0]), pe_neg[1:]], dim=0)[None]
            self.register_buffer("pe", pe.to(device), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = x.shape[1]
        c = self.pe.shape[1] // 2
        return x * math.sqrt(self.dim), self.pe[:, c - T + 1 : c + T].to(x.dtype)


class LinearEmbed(nn.Module):
    """Linear + LayerNorm input layer (no subsampling), then relative positions."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.out = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.LayerNorm(cfg.dim, eps=1e-5))
        self.pos_enc = RelPositionalEncoding(cfg.dim, cfg.max_len)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pos_enc(self.out(x))


class RelPositionAttention(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        d = cfg.dim
        self.h, self.d_k = cfg.heads, d // cfg.heads
        self.linear_q, self.linear_k, self.linear_v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.linear_out = nn.Linear(d, d)
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(self.h, self.d_k))

    def forward(self, x: torch.Tensor, key_bias: torch.Tensor, pos_emb: torch.Tensor, shift_idx: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q = self.linear_q(x).view(B, T, self.h, self.d_k)
        k = self.linear_k(x).view(B, T, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(B, T, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(1, -1, self.h, self.d_k).transpose(1, 2)  # (1, h, 2T-1, d_k)
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        bd = torch.matmul(q_v, p.transpose(-2, -1))  # (B, h, T, 2T-1)
        bd = torch.gather(bd, -1, shift_idx.expand(B, self.h, T, T))  # rel_shift: offset i-j
        bias = bd / math.sqrt(self.d_k) + key_bias
        y = F.scaled_dot_product_attention(q_u, k, v, attn_mask=bias)
        return self.linear_out(y.transpose(1, 2).reshape(B, T, C))


class FeedForward(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(cfg.dim, cfg.ffn), nn.Linear(cfg.ffn, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-LN (eps 1e-12) attention + FFN; this configuration has no macaron FFN and no conv module."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.self_attn = RelPositionAttention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.norm_mha = nn.LayerNorm(cfg.dim, eps=1e-12)
        self.norm_ff = nn.LayerNorm(cfg.dim, eps=1e-12)

    def forward(self, x, key_bias, pos_emb, shift_idx):
        x = x + self.self_attn(self.norm_mha(x), key_bias, pos_emb, shift_idx)
        return x + self.feed_forward(self.norm_ff(x))


class PreLookahead(nn.Module):
    """Conv over the next `n` tokens (right pad) then a causal conv, residual."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.n = cfg.pre_lookahead
        self.conv1 = nn.Conv1d(cfg.dim, cfg.dim, cfg.pre_lookahead + 1)
        self.conv2 = nn.Conv1d(cfg.dim, cfg.dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(F.pad(x.transpose(1, 2), (0, self.n))))
        h = self.conv2(F.pad(h, (2, 0)))
        return x + h.transpose(1, 2)


class Upsample(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.stride = cfg.up_stride
        self.conv = nn.Conv1d(cfg.dim, cfg.dim, 2 * cfg.up_stride + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(x.transpose(1, 2), scale_factor=float(self.stride), mode="nearest")
        return self.conv(F.pad(h, (2 * self.stride, 0))).transpose(1, 2)


def _shift_index(T: int, device) -> torch.Tensor:
    i = torch.arange(T, device=device)
    return ((T - 1) - i[:, None] + i[None, :]).view(1, 1, T, T)


def _key_bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(valid.shape, dtype=dtype, device=valid.device).masked_fill(~valid, float("-inf"))[:, None, None]


class UpsampleConformerEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = LinearEmbed(cfg)
        self.pre_lookahead_layer = PreLookahead(cfg)
        self.encoders = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.n_layers))
        self.up_layer = Upsample(cfg)
        self.up_embed = LinearEmbed(cfg)
        self.up_encoders = nn.ModuleList(ConformerLayer(cfg) for _ in range(cfg.n_up_layers))
        self.after_norm = nn.LayerNorm(cfg.dim, eps=1e-5)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, T, dim) token embeddings (zero where padded), valid (B, T) bool → (B, 2T, dim)."""
        T = x.shape[1]
        x, pos = self.embed(x)
        x = self.pre_lookahead_layer(x * valid[..., None].to(x.dtype))  # look-ahead must see zeros past the end
        bias, idx = _key_bias(valid, x.dtype), _shift_index(T, x.device)
        for layer in self.encoders:
            x = layer(x, bias, pos, idx)
        x = self.up_layer(x)
        valid2 = valid[:, :, None].expand(-1, -1, self.cfg.up_stride).reshape(valid.shape[0], -1)
        x, pos = self.up_embed(x)
        bias, idx = _key_bias(valid2, x.dtype), _shift_index(x.shape[1], x.device)
        for layer in self.up_encoders:
            x = layer(x, bias, pos, idx)
        return self.after_norm(x)
