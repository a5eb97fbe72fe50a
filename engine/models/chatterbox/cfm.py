"""S3Gen mel decoder: conditional flow matching (Lipman et al. 2023) with a 1-D U-Net estimator.

The estimator is the Matcha-TTS / CosyVoice U-Net (Mehta et al. 2024; Du et al. 2024): causal
ResNet blocks with LayerNorm + Mish and bidirectional transformer blocks. Sampling is Euler over a
cosine time schedule with classifier-free guidance (Ho & Salimans 2022) batched as 2 rows per step.
The whole solver has fixed shapes per length bucket, so one CUDA graph covers all steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import TensorInfo, count_indexed, shape_of


@dataclass(frozen=True)
class EstimatorConfig:
    in_channels: int = 320
    out_channels: int = 80
    channels: int = 256
    time_dim: int = 1024
    heads: int = 8
    head_dim: int = 64
    n_blocks: int = 4
    n_mid: int = 12
    meanflow: bool = False  # Turbo: the velocity also sees the step's end time r (mean flow)

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo], prefix: str = "flow.decoder.estimator.") -> EstimatorConfig:
        conv = shape_of(header, prefix + "down_blocks.0.0.block1.block.0.weight")
        return cls(
            in_channels=conv[1],
            out_channels=shape_of(header, prefix + "final_proj.weight")[0],
            channels=conv[0],
            time_dim=shape_of(header, prefix + "time_mlp.linear_1.weight")[0],
            heads=shape_of(header, prefix + "down_blocks.0.1.0.attn1.to_q.weight")[0] // 64,
            n_blocks=count_indexed(header, prefix + "down_blocks.0.1."),
            n_mid=count_indexed(header, prefix + "mid_blocks."),
            meanflow=prefix + "time_embed_mixer.weight" in header,
        )


class CausalConv1d(nn.Conv1d):
    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(cin, cout, k)
        self.left = k - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a (B, C, T) tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class CausalBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(CausalConv1d(cin, cout, 3), nn.Identity(), ChannelLayerNorm(cout), nn.Identity(), nn.Mish())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.block(x * mask) * mask


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, time_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(time_dim, cout))
        self.block1, self.block2 = CausalBlock(cin, cout), CausalBlock(cout, cout)
        self.res_conv = nn.Conv1d(cin, cout, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.mlp(t)[:, :, None]
        return self.block2(h, mask) + self.res_conv(x * mask)


class SelfAttention(nn.Module):
    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        inner = cfg.heads * cfg.head_dim
        self.heads = cfg.heads
        self.to_q = nn.Linear(cfg.channels, inner, bias=False)
        self.to_k = nn.Linear(cfg.channels, inner, bias=False)
        self.to_v = nn.Linear(cfg.channels, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, cfg.channels)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = (f(x).view(B, T, self.heads, -1).transpose(1, 2) for f in (self.to_q, self.to_k, self.to_v))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.to_out[0](y.transpose(1, 2).reshape(B, T, -1))


class GELUProj(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = nn.Linear(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.proj(x))


class TransformerBlock(nn.Module):
    """Pre-LN self-attention + GELU FFN (diffusers BasicTransformerBlock layout, no cross-attention)."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        c = cfg.channels
        self.norm1 = nn.LayerNorm(c)
        self.attn1 = SelfAttention(cfg)
        self.norm3 = nn.LayerNorm(c)
        self.ff = nn.Module()
        self.ff.net = nn.ModuleList([GELUProj(c, 4 * c), nn.Identity(), nn.Linear(4 * c, c)])

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), bias)
        h = self.norm3(x)
        return x + self.ff.net[2](self.ff.net[0](h))


class TimestepMLP(nn.Module):
    def __init__(self, cin: int, dim: int):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(cin, dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


def _stage(cfg: EstimatorConfig, cin: int, tail: bool) -> nn.ModuleList:
    parts = [ResnetBlock(cin, cfg.channels, cfg.time_dim), nn.ModuleList(TransformerBlock(cfg) for _ in range(cfg.n_blocks))]
    if tail:
        parts.append(CausalConv1d(cfg.channels, cfg.channels, 3))
    return nn.ModuleList(parts)


class Estimator(nn.Module):
    """Velocity field v(x, t | mu, spks, cond): one down stage, `n_mid` mid stages, one up stage with a skip."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.cfg = cfg
        self.time_mlp = TimestepMLP(cfg.in_channels, cfg.time_dim)
        self.down_blocks = nn.ModuleList([_stage(cfg, cfg.in_channels, True)])
        self.mid_blocks = nn.ModuleList(_stage(cfg, cfg.channels, False) for _ in range(cfg.n_mid))
        self.up_blocks = nn.ModuleList([_stage(cfg, 2 * cfg.channels, True)])
        self.final_block = CausalBlock(cfg.channels, cfg.channels)
        self.final_proj = nn.Conv1d(cfg.channels, cfg.out_channels, 1)
        if cfg.meanflow:
            self.time_embed_mixer = nn.Linear(2 * cfg.time_dim, cfg.time_dim, bias=False)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            half = self.cfg.in_channels // 2
            freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(10000) / (half - 1)))
            self.register_buffer("time_freqs", freqs.to(device), persistent=False)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        emb = 1000.0 * t.float()[:, None] * self.time_freqs[None]
        return torch.cat((emb.sin(), emb.cos()), dim=-1)

    @staticmethod
    def _transformers(blocks, x, mask, bias):
        h = x.transpose(1, 2)
        for block in blocks:
            h = block(h, bias)
        return h.transpose(1, 2)

    def forward(self, x, mask, mu, t, spks, cond, r=None):
        """x, mu, cond (B, 80, T); mask (B, 1, T); t, r (B,); spks (B, 80) → velocity (B, 80, T)."""
        temb = self.time_mlp(self.time_embedding(t).to(x.dtype))
        if self.cfg.meanflow:
            remb = self.time_mlp(self.time_embedding(r).to(x.dtype))
            temb = self.time_embed_mixer(torch.cat((temb, remb), dim=1))
        x = torch.cat((x, mu, spks[:, :, None].expand(-1, -1, x.shape[-1]), cond), dim=1)
        bias = torch.zeros_like(mask).masked_fill(mask == 0, -1.0e10)[:, None]  # (B, 1, 1, T) over keys
        resnet, blocks, down = self.down_blocks[0]
        x = self._transformers(blocks, resnet(x, mask, temb), mask, bias)
        skip = x
        x = down(x * mask)
        for resnet, blocks in self.mid_blocks:
            x = self._transformers(blocks, resnet(x, mask, temb), mask, bias)
        resnet, blocks, up = self.up_blocks[0]
        x = self._transformers(blocks, resnet(torch.cat((x, skip), dim=1), mask, temb), mask, bias)
        x = up(x * mask)
        x = self.final_block(x, mask)
        return self.final_proj(x * mask) * mask


class FlowMatching(nn.Module):
    """Euler solver, `n_steps` on t = 1 − cos(πs/2), CFG rate 0.7 as a batch of 2 per step.

    Mean-flow checkpoints (Turbo; Geng et al. 2025, "Mean Flows") take 2 steps on a linear
    schedule without CFG. Static shapes per bucket: the loop is unrolled at capture, the schedule is a buffer.
    """

    def __init__(self, cfg: EstimatorConfig, n_steps: int = 10, cfg_rate: float = 0.7):
        super().__init__()
        self.estimator = Estimator(cfg)
        self.meanflow = cfg.meanflow
        self.n_steps, self.cfg_rate = n_steps, cfg_rate
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            s = torch.linspace(0, 1, self.n_steps + 1, dtype=torch.float32)
            t_span = s if self.meanflow else 1 - torch.cos(s * 0.5 * math.pi)
            self.register_buffer("t_span", t_span.to(device), persistent=False)

    def forward(self, z: torch.Tensor, mu: torch.Tensor, mask: torch.Tensor, spks: torch.Tensor,
                cond: torch.Tensor) -> torch.Tensor:
        """z, mu, cond (1, 80, T) fp32; mask (1, 1, T); spks (1, 80) → mel (1, 80, T) fp32."""
        dtype = self.estimator.final_proj.weight.dtype
        if self.meanflow:
            return self._mean_flow(z, mu.to(dtype), mask.to(dtype), spks.to(dtype), cond.to(dtype))
        mu_in = torch.cat((mu, torch.zeros_like(mu))).to(dtype)
        cond_in = torch.cat((cond, torch.zeros_like(cond))).to(dtype)
        spks_in = torch.cat((spks, torch.zeros_like(spks))).to(dtype)
        mask_in = torch.cat((mask, mask)).to(dtype)
        x = z.float()
        for k in range(self.n_steps):
            t, dt = self.t_span[k], self.t_span[k + 1] - self.t_span[k]
            x_in = torch.cat((x, x)).to(dtype)
            v = self.estimator(x_in, mask_in, mu_in, t.expand(2), spks_in, cond_in).float()
            v_cond, v_uncond = v.chunk(2)
            x = x + dt * ((1.0 + self.cfg_rate) * v_cond - self.cfg_rate * v_uncond)
        return x

    def _mean_flow(self, z, mu, mask, spks, cond):
        x = z.float()
        for k in range(self.n_steps):
            t, r = self.t_span[k].view(1), self.t_span[k + 1].view(1)
            v = self.estimator(x.to(mu.dtype), mask, mu, t, spks, cond, r).float()
            x = x + (r - t) * v
        return x
