"""Audio front ends of Chatterbox, in torch only (no librosa / torchaudio at run time).

Every transform keeps its window and filter bank as module buffers built at `__init__`, so the
forward passes never build host tensors (they can run inside a CUDA graph) and all of them run
in float32: mel, STFT and log are precision-sensitive.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

S3GEN_SR = 24_000
S3_SR = 16_000


def _hz_to_mel_slaney(f: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    mel = f / f_sp
    return torch.where(f >= min_log_hz, min_log_hz / f_sp + torch.log(f / min_log_hz) / logstep, mel)


def _mel_to_hz_slaney(m: torch.Tensor) -> torch.Tensor:
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m)


def slaney_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Slaney-scale, area-normalised triangular filters (the librosa default), shape (n_mels, n_fft//2+1)."""
    fmax = sr / 2 if fmax is None else fmax
    fft_freqs = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    mel_pts = torch.linspace(
        _hz_to_mel_slaney(torch.tensor(fmin, dtype=torch.float64)).item(),
        _hz_to_mel_slaney(torch.tensor(fmax, dtype=torch.float64)).item(),
        n_mels + 2,
        dtype=torch.float64,
    )
    hz_pts = _mel_to_hz_slaney(mel_pts)
    fdiff = hz_pts[1:] - hz_pts[:-1]
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0)
    enorm = 2.0 / (hz_pts[2 : n_mels + 2] - hz_pts[:n_mels])
    return (weights * enorm[:, None]).float()


class Mel24k(nn.Module):
    """S3Gen prompt mel (Matcha/CosyVoice recipe): 24 kHz, n_fft 1920, hop 480, 80 bins, log-magnitude."""

    def __init__(self, n_fft: int = 1920, hop: int = 480, n_mels: int = 80, fmax: float = 8000.0):
        super().__init__()
        self.n_fft, self.hop, self.n_mels, self.fmax = n_fft, hop, n_mels, fmax
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):
            self.register_buffer("window", torch.hann_window(self.n_fft).to(device), persistent=False)
            filters = slaney_mel_filters(S3GEN_SR, self.n_fft, self.n_mels, 0.0, self.fmax)
            self.register_buffer("filters", filters.to(device), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, N) float → log mel (B, 80, frames), frames = N // hop."""
        pad = (self.n_fft - self.hop) // 2
        y = F.pad(wav.float().unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(y, self.n_fft, self.hop, self.n_fft, self.window, center=False, return_complex=True)
        mag = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)
        return torch.log(torch.clamp(self.filters @ mag, min=1e-5))


class _Mel16k(nn.Module):
    """Hann window + Slaney mel filters at 16 kHz, rebuilt as buffers on the target device."""

    def __init__(self, n_mels: int, n_fft: int, hop: int, fmin: float = 0.0, fmax: float | None = None):
        super().__init__()
        self.n_fft, self.hop, self.n_mels, self.fmin, self.fmax = n_fft, hop, n_mels, fmin, fmax
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):
            self.register_buffer("window", torch.hann_window(self.n_fft).to(device), persistent=False)
            filters = slaney_mel_filters(S3_SR, self.n_fft, self.n_mels, self.fmin, self.fmax)
            self.register_buffer("filters", filters.to(device), persistent=False)


class LogMel16k(_Mel16k):
    """Whisper-style log-mel for the S3 tokenizer: 16 kHz, n_fft 400, hop 160, 128 bins."""

    def __init__(self, n_mels: int = 128, n_fft: int = 400, hop: int = 160):
        super().__init__(n_mels, n_fft, hop)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (B, N) → (B, n_mels, N // hop)."""
        spec = torch.stft(wav.float(), self.n_fft, self.hop, window=self.window, return_complex=True)
        power = spec[..., :-1].abs() ** 2
        log_spec = torch.clamp(self.filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(-2, -1), keepdim=True) - 8.0)
        return (log_spec + 4.0) / 4.0


class VoiceEncoderMel(_Mel16k):
    """Linear-amplitude power mel for the voice encoder: 16 kHz, n_fft 400, hop 160, 40 bins, centred STFT."""

    def __init__(self, n_mels: int = 40, n_fft: int = 400, hop: int = 160):
        super().__init__(n_mels, n_fft, hop, 0.0, 8000.0)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (N,) → (frames, n_mels), frames = 1 + N // hop."""
        spec = torch.stft(wav.float(), self.n_fft, self.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)
        return (self.filters @ spec.abs().square()).T


def _kaldi_mel(m: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(m / 700.0)


class KaldiFbank(nn.Module):
    """Kaldi `compute-fbank` defaults (25/10 ms, povey window, pre-emphasis 0.97, 80 bins, log power).

    Matches torchaudio.compliance.kaldi.fbank with dither 0, as CAMPPlus was trained on.
    """

    def __init__(self, n_mels: int = 80, sr: int = S3_SR, frame_ms: float = 25.0, shift_ms: float = 10.0):
        super().__init__()
        self.win = int(sr * frame_ms / 1000)
        self.shift = int(sr * shift_ms / 1000)
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.n_mels, self.sr = n_mels, sr
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):
            window, banks = self._tables(self.n_mels, self.sr)
        self.register_buffer("window", window.to(device), persistent=False)
        self.register_buffer("banks", banks.to(device), persistent=False)

    def _tables(self, n_mels: int, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.hann_window(self.win, periodic=False, dtype=torch.float64).pow(0.85).float()
        n_bins = self.n_fft // 2
        bin_width = sr / self.n_fft
        low, high = _kaldi_mel(torch.tensor(20.0)), _kaldi_mel(torch.tensor(sr / 2))
        delta = (high - low) / (n_mels + 1)
        left = low + torch.arange(n_mels) * delta
        center, right = left + delta, left + 2 * delta
        mel = _kaldi_mel(bin_width * torch.arange(n_bins, dtype=torch.float32))[None]
        up = (mel - left[:, None]) / (center - left)[:, None]
        down = (right[:, None] - mel) / (right - center)[:, None]
        banks = torch.clamp(torch.minimum(up, down), min=0)
        return window, F.pad(banks, (0, 1))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """wav (N,) in [-1, 1] → (frames, n_mels) log filter-bank energies."""
        frames = wav.float().unfold(0, self.win, self.shift)
        frames = frames - frames.mean(dim=1, keepdim=True)
        prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
        frames = (frames - 0.97 * prev) * self.window
        power = torch.fft.rfft(frames, n=self.n_fft).abs().square()
        return torch.log(torch.clamp(power @ self.banks.T, min=torch.finfo(torch.float32).eps))


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, rolloff: float = 0.99, zeros: int = 6) -> torch.Tensor:
    """Band-limited polyphase resampling of a 1-D signal (Hann-windowed sinc, Kaiser-free)."""
    if orig_sr == new_sr:
        return wav
    g = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // g, new_sr // g
    base = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None] / orig
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None] / new + idx) * base
    t = t.clamp(-zeros, zeros)
    window = torch.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    kernel = (sinc * window * base / orig).to(wav.dtype)
    n = wav.shape[-1]
    x = F.pad(wav.reshape(1, 1, n), (width, width + orig))
    y = F.conv1d(x, kernel[:, None], stride=orig)
    return y[0].T.reshape(-1)[: math.ceil(new * n / orig)]


def trim_silence(wav: torch.Tensor, top_db: float = 20.0, frame: int = 2048, hop: int = 512) -> torch.Tensor:
    """Cut leading/trailing frames quieter than `top_db` below the loudest frame (librosa.effects.trim rule)."""
    if wav.numel() < frame:
        return wav
    padded = F.pad(wav[None, None], (frame // 2, frame // 2), mode="constant")[0, 0]
    rms = padded.unfold(0, frame, hop).square().mean(dim=1).sqrt()
    db = 20 * torch.log10(torch.clamp(rms, min=1e-10) / torch.clamp(rms.max(), min=1e-10))
    loud = torch.nonzero(db > -top_db).flatten()
    if loud.numel() == 0:
        return wav[:0]
    start = int(loud[0]) * hop
    end = min(wav.numel(), (int(loud[-1]) + 1) * hop)
    return wav[start:end]
