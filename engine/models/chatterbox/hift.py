"""HiFT vocoder: neural source filter + iSTFT head (Li et al. 2023, "HiFTNet"; Kaneko et al. 2022, "iSTFTNet").

mel (80 × frames @ 50 Hz) → F0 per frame → harmonic sine source @ 24 kHz → HiFi-GAN style upsampling
(Kong et al. 2020) fused with the source's STFT → magnitude/phase → iSTFT. The sine phase is a
cumulative sum over 480 samples per frame and stays in float32, as do STFT and iSTFT; the conv stack
may run in bf16. Randomness (harmonic phases, source noise) can be injected for parity checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import (
    TensorInfo,
    WNConv1d,
    WNConvTranspose1d,
    conv_shape,
    count_indexed,
    shape_of,
)


@dataclass(frozen=True)
class HiFTConfig:
    in_channels: int = 80
    base_channels: int = 512
    upsample_kernels: tuple[int, ...] = (16, 11, 7)
    resblock_kernels: tuple[int, ...] = (3, 7, 11)
    source_kernels: tuple[int, ...] = (7, 7, 11)
    dilations: tuple[int, ...] = (1, 3, 5)
    n_fft: int = 16
    hop: int = 4
    nb_harmonics: int = 8
    f0_channels: int = 512
    f0_layers: int = 5
    sampling_rate: int = 24000
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    voiced_threshold: float = 10.0
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99

    @property
    def upsample_rates(self) -> tuple[int, ...]:
        return tuple(k // 2 for k in self.upsample_kernels)  # 16/8, 11/5, 7/3: stride = k // 2

    @property
    def samples_per_frame(self) -> int:
        return math.prod(self.upsample_rates) * self.hop

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo], prefix: str = "mel2wav.") -> HiFTConfig:
        n_up = count_indexed(header, prefix + "ups.")
        n_res = count_indexed(header, prefix + "resblocks.") // max(n_up, 1)
        pre = conv_shape(header, prefix + "conv_pre")
        f0 = conv_shape(header, prefix + "f0_predictor.condnet.0")
        return cls(
            in_channels=pre[1],
            base_channels=pre[0],
            upsample_kernels=tuple(conv_shape(header, f"{prefix}ups.{i}")[2] for i in range(n_up)),
            resblock_kernels=tuple(conv_shape(header, f"{prefix}resblocks.{j}.convs1.0")[2] for j in range(n_res)),
            source_kernels=tuple(conv_shape(header, f"{prefix}source_resblocks.{i}.convs1.0")[2] for i in range(n_up)),
            n_fft=conv_shape(header, prefix + "conv_post")[0] - 2,
            nb_harmonics=shape_of(header, prefix + "m_source.l_linear.weight")[1] - 1,
            f0_channels=f0[0],
            f0_layers=len([k for k in header if k.startswith(prefix + "f0_predictor.condnet.") and k.endswith("original1")])
            or len([k for k in header if k.startswith(prefix + "f0_predictor.condnet.") and k.endswith("weight_v")]),
        )


class Snake(nn.Module):
    """x + sin²(αx)/α with a per-channel α (Ziyin et al. 2020), linear α scale."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha[None, :, None]
        return x + (1.0 / (a + 1e-9)) * torch.sin(x * a).pow(2)


class ResBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(WNConv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(WNConv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = x + c2(a2(c1(a1(x))))
        return x


class F0Predictor(nn.Module):
    """Conv stack + linear → |F0| in Hz per mel frame."""

    def __init__(self, cfg: HiFTConfig):
        super().__init__()
        layers = []
        for i in range(cfg.f0_layers):
            layers += [WNConv1d(cfg.in_channels if i == 0 else cfg.f0_channels, cfg.f0_channels, 3, padding=1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cfg.f0_channels, 1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.condnet(mel).transpose(1, 2)).squeeze(-1).abs()


class SourceModule(nn.Module):
    """Harmonic-plus-noise excitation (Wang et al. 2019, NSF): sines at k·F0, merged by a linear + tanh."""

    def __init__(self, cfg: HiFTConfig):
        super().__init__()
        self.cfg = cfg
        self.l_linear = nn.Linear(cfg.nb_harmonics + 1, 1)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            harmonics = torch.arange(1, self.cfg.nb_harmonics + 2, dtype=torch.float32) / self.cfg.sampling_rate
            self.register_buffer("harmonics", harmonics.view(1, -1, 1).to(device), persistent=False)

    def forward(self, f0: torch.Tensor, phase: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """f0 (B, 1, N) Hz, phase (B, H+1, 1), noise (B, H+1, N) standard normal → source (B, 1, N)."""
        c = self.cfg
        theta = 2 * math.pi * (torch.cumsum(f0 * self.harmonics, dim=-1) % 1)  # fp32: phase drifts in bf16
        sines = c.nsf_alpha * torch.sin(theta + phase)
        uv = (f0 > c.voiced_threshold).float()
        amp = uv * c.nsf_sigma + (1 - uv) * c.nsf_alpha / 3
        sines = sines * uv + amp * noise
        w = self.l_linear.weight.float()
        return torch.tanh(F.linear(sines.transpose(1, 2), w, self.l_linear.bias.float())).transpose(1, 2)


class HiFT(nn.Module):
    def __init__(self, cfg: HiFTConfig):
        super().__init__()
        self.cfg = cfg
        base, rates = cfg.base_channels, cfg.upsample_rates
        self.f0_predictor = F0Predictor(cfg)
        self.m_source = SourceModule(cfg)
        self.conv_pre = WNConv1d(cfg.in_channels, base, 7, padding=3)
        self.ups = nn.ModuleList(
            WNConvTranspose1d(base >> i, base >> (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(rates, cfg.upsample_kernels))
        )
        cum = [math.prod(rates[i + 1:]) for i in range(len(rates))]  # source STFT frames per stage sample
        downs, sres = [], []
        for i, (u, k) in enumerate(zip(cum, cfg.source_kernels)):
            ch = base >> (i + 1)
            downs.append(nn.Conv1d(cfg.n_fft + 2, ch, 1) if u == 1 else nn.Conv1d(cfg.n_fft + 2, ch, 2 * u, u, padding=u // 2))
            sres.append(ResBlock(ch, k, cfg.dilations))
        self.source_downs, self.source_resblocks = nn.ModuleList(downs), nn.ModuleList(sres)
        self.resblocks = nn.ModuleList(
            ResBlock(base >> (i + 1), k, cfg.dilations) for i in range(len(rates)) for k in cfg.resblock_kernels
        )
        self.conv_post = WNConv1d(base >> len(rates), cfg.n_fft + 2, 7, padding=3)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            self.register_buffer("stft_window", torch.hann_window(self.cfg.n_fft).to(device), persistent=False)

    def source(self, mel: torch.Tensor, phase: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, 80, T) → excitation (B, 1, T·480) in fp32."""
        f0 = self.f0_predictor(mel.to(self.conv_pre.weight.dtype)).float()
        B, T = f0.shape
        f0 = f0[:, :, None].expand(B, T, self.cfg.samples_per_frame).reshape(B, 1, -1)  # nearest upsampling
        B, H, N = f0.shape[0], self.cfg.nb_harmonics + 1, f0.shape[-1]
        if phase is None:
            phase = (torch.rand(B, H, 1, device=mel.device) * 2 - 1) * math.pi
            phase[:, 0] = 0
        if noise is None:
            noise = torch.randn(B, H, N, device=mel.device)
        return self.m_source(f0, phase, noise)

    def decode(self, mel: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        spec = torch.stft(s.squeeze(1), c.n_fft, c.hop, c.n_fft, self.stft_window, return_complex=True)
        s_stft = torch.cat((spec.real, spec.imag), dim=1)
        dtype = self.conv_pre.weight.dtype
        x = self.conv_pre(mel.to(dtype))
        n_k = len(c.resblock_kernels)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, c.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](s_stft.to(dtype)))
            x = sum(self.resblocks[i * n_k + j](x) for j in range(n_k)) / n_k
        x = self.conv_post(F.leaky_relu(x)).float()  # slope 0.01 here, as trained
        half = c.n_fft // 2 + 1
        mag = torch.clamp(torch.exp(x[:, :half]), max=1e2)
        phase = torch.sin(x[:, half:])
        wav = self.istft(torch.complex(mag * torch.cos(phase), mag * torch.sin(phase)))
        return torch.clamp(wav, -c.audio_limit, c.audio_limit)

    def istft(self, spec: torch.Tensor) -> torch.Tensor:
        """torch.istft(center=True) as irfft + overlap-add (fold): no host-side window check, so it captures."""
        n_fft, hop = self.cfg.n_fft, self.cfg.hop
        frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft) * self.stft_window  # (B, frames, n_fft)
        n = frames.shape[1]
        length = (n - 1) * hop + n_fft
        y = F.fold(frames.transpose(1, 2), (1, length), (1, n_fft), stride=(1, hop)).view(frames.shape[0], -1)
        env = F.fold(self.stft_window.square()[None, :, None].expand(1, n_fft, n), (1, length), (1, n_fft),
                     stride=(1, hop)).view(1, -1)
        half = n_fft // 2
        return (y / env.clamp(min=1e-11))[:, half: length - half]

    def forward(self, mel: torch.Tensor, phase: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """mel (B, 80, T) → waveform (B, T·480) at 24 kHz."""
        return self.decode(mel, self.source(mel, phase, noise))
