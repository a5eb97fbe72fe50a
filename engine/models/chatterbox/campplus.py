"""CAM++ speaker x-vector (Wang et al. 2023, "CAM++"): Kaldi fbank → 2-D ResNet head → densely
connected TDNN blocks with context-aware masking → statistics pooling → 192-d embedding.

Runs once per reference voice, in fp32. Every BatchNorm is folded to a per-channel affine at load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .audio import KaldiFbank
from .checkpoint import FrozenBatchNorm, TensorInfo, shape_of


@dataclass(frozen=True)
class CAMPPlusConfig:
    feat_dim: int = 80
    m_channels: int = 32
    init_channels: int = 128
    growth: int = 32
    bn_channels: int = 128
    layers: tuple[int, ...] = (12, 24, 16)
    dilations: tuple[int, ...] = (1, 2, 2)
    embedding: int = 192

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo], prefix: str = "speaker_encoder.") -> CAMPPlusConfig:
        x = prefix + "xvector."
        layers = []
        for b in range(1, 4):
            pat = re.compile(re.escape(f"{x}block{b}.tdnnd") + r"(\d+)\.")
            layers.append(max((int(m.group(1)) for k in header if (m := pat.match(k))), default=0))
        return cls(
            m_channels=shape_of(header, prefix + "head.conv1.weight")[0],
            init_channels=shape_of(header, x + "tdnn.linear.weight")[0],
            growth=shape_of(header, x + "block1.tdnnd1.cam_layer.linear_local.weight")[0],
            bn_channels=shape_of(header, x + "block1.tdnnd1.linear1.weight")[0],
            layers=tuple(layers),
            embedding=shape_of(header, x + "dense.linear.weight")[0],
        )


class BasicResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = FrozenBatchNorm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = FrozenBatchNorm(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1), bias=False), FrozenBatchNorm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class FCM(nn.Module):
    """2-D conv head over (frequency, time); frequency is strided by 8 before flattening into channels."""

    def __init__(self, cfg: CAMPPlusConfig):
        super().__init__()
        m = cfg.m_channels
        self.conv1 = nn.Conv2d(1, m, 3, padding=1, bias=False)
        self.bn1 = FrozenBatchNorm(m)
        self.layer1 = nn.Sequential(BasicResBlock(m, m, 2), BasicResBlock(m, m, 1))
        self.layer2 = nn.Sequential(BasicResBlock(m, m, 2), BasicResBlock(m, m, 1))
        self.conv2 = nn.Conv2d(m, m, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = FrozenBatchNorm(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x[:, None])))
        out = self.layer2(self.layer1(out))
        out = F.relu(self.bn2(self.conv2(out)))
        return out.flatten(1, 2)


def _bn_relu(channels: int, affine: bool = True) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("batchnorm", FrozenBatchNorm(channels, affine))
    if affine:
        seq.add_module("relu", nn.ReLU())
    return seq


class TDNNLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)
        self.nonlinear = _bn_relu(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    """Local conv gated by a sigmoid of utterance-mean + 100-frame segment-mean context."""

    def __init__(self, bn: int, cout: int, dilation: int):
        super().__init__()
        self.linear_local = nn.Conv1d(bn, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.linear1 = nn.Conv1d(bn, bn // 2, 1)
        self.linear2 = nn.Conv1d(bn // 2, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[-1]
        seg = F.avg_pool1d(x, 100, 100, ceil_mode=True).repeat_interleave(100, dim=-1)[..., :T]
        context = F.relu(self.linear1(x.mean(-1, keepdim=True) + seg))
        return self.linear_local(x) * torch.sigmoid(self.linear2(context))


class DenseTDNNLayer(nn.Module):
    def __init__(self, cin: int, cfg: CAMPPlusConfig, dilation: int):
        super().__init__()
        self.nonlinear1 = _bn_relu(cin)
        self.linear1 = nn.Conv1d(cin, cfg.bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(cfg.bn_channels)
        self.cam_layer = CAMLayer(cfg.bn_channels, cfg.growth, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class DenseBlock(nn.Module):
    def __init__(self, n: int, cin: int, cfg: CAMPPlusConfig, dilation: int):
        super().__init__()
        for i in range(n):
            self.add_module(f"tdnnd{i + 1}", DenseTDNNLayer(cin + i * cfg.growth, cfg, dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = torch.cat((x, layer(x)), dim=1)
        return x


class Transit(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.nonlinear = _bn_relu(cin)
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class Dense(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.linear = nn.Conv1d(cin, cout, 1, bias=False)
        self.nonlinear = _bn_relu(cout, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x[:, :, None])[:, :, 0])


class StatsPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x.mean(-1), x.std(-1)), dim=-1)


class CAMPPlus(nn.Module):
    def __init__(self, cfg: CAMPPlusConfig):
        super().__init__()
        self.cfg = cfg
        self.fbank = KaldiFbank(cfg.feat_dim)
        self.head = FCM(cfg)
        x = nn.Sequential()
        ch = cfg.m_channels * (cfg.feat_dim // 8)
        x.add_module("tdnn", TDNNLayer(ch, cfg.init_channels, 5, 2))
        ch = cfg.init_channels
        for i, (n, d) in enumerate(zip(cfg.layers, cfg.dilations)):
            x.add_module(f"block{i + 1}", DenseBlock(n, ch, cfg, d))
            ch += n * cfg.growth
            x.add_module(f"transit{i + 1}", Transit(ch, ch // 2))
            ch //= 2
        x.add_module("out_nonlinear", _bn_relu(ch))
        x.add_module("stats", StatsPool())
        x.add_module("dense", Dense(2 * ch, cfg.embedding))
        self.xvector = x

    def forward(self, wav16: torch.Tensor) -> torch.Tensor:
        """wav16 (N,) 16 kHz → x-vector (1, 192)."""
        feats = self.fbank(wav16)
        feats = feats - feats.mean(dim=0, keepdim=True)
        return self.xvector(self.head(feats.T[None]))
