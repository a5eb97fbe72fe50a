"""S3Gen: speech tokens → 24 kHz waveform (CosyVoice 2 flow + HiFT), with the reference-voice front end.

Official layout of s3gen.safetensors: `tokenizer.*` (S3 tokenizer v2), `speaker_encoder.*` (CAM++),
`flow.*` (token embedding, conformer encoder, projection, CFM estimator) and `mel2wav.*` (HiFT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .audio import Mel24k
from .campplus import CAMPPlus, CAMPPlusConfig
from .cfm import EstimatorConfig, FlowMatching
from .checkpoint import TensorInfo, shape_of
from .hift import HiFT, HiFTConfig
from .s3gen_encoder import EncoderConfig, UpsampleConformerEncoder
from .s3tokenizer import S3Tokenizer, S3TokenizerConfig

S3GEN_OPTIONAL = {"tokenizer._mel_filters", "tokenizer.window"}  # rebuilt from audio.py, absent in some files
TOKEN_MEL_RATIO = 2


@dataclass(frozen=True)
class S3GenConfig:
    vocab: int = 6561
    token_dim: int = 512
    xvector_dim: int = 192
    mel_dim: int = 80
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    hift: HiFTConfig = field(default_factory=HiFTConfig)
    tokenizer: S3TokenizerConfig = field(default_factory=S3TokenizerConfig)
    campplus: CAMPPlusConfig = field(default_factory=CAMPPlusConfig)
    cfm_steps: int = 10
    cfg_rate: float = 0.7

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo]) -> S3GenConfig:
        emb = shape_of(header, "flow.input_embedding.weight")
        spk = shape_of(header, "flow.spk_embed_affine_layer.weight")
        return cls(
            vocab=emb[0], token_dim=emb[1], xvector_dim=spk[1], mel_dim=spk[0],
            encoder=EncoderConfig.from_header(header), estimator=EstimatorConfig.from_header(header),
            hift=HiFTConfig.from_header(header), tokenizer=S3TokenizerConfig.from_header(header),
            campplus=CAMPPlusConfig.from_header(header),
            cfm_steps=2 if "flow.decoder.estimator.time_embed_mixer.weight" in header else 10,
        )


class Flow(nn.Module):
    def __init__(self, cfg: S3GenConfig):
        super().__init__()
        self.input_embedding = nn.Embedding(cfg.vocab, cfg.token_dim)
        self.spk_embed_affine_layer = nn.Linear(cfg.xvector_dim, cfg.mel_dim)
        self.encoder = UpsampleConformerEncoder(cfg.encoder)
        self.encoder_proj = nn.Linear(cfg.encoder.dim, cfg.mel_dim)
        self.decoder = FlowMatching(cfg.estimator, cfg.cfm_steps, cfg.cfg_rate)

    def encode(self, tokens: torch.Tensor, valid: torch.Tensor, xvector: torch.Tensor):
        """tokens/valid (1, N) prompt+speech, right-padded; xvector (1, 192) →
        mu (1, 80, 2N), mask (1, 1, 2N), spks (1, 80), all fp32."""
        dtype = self.input_embedding.weight.dtype
        spks = self.spk_embed_affine_layer(F.normalize(xvector.float(), dim=1).to(dtype))
        x = self.input_embedding(tokens) * valid[..., None].to(dtype)
        mu = self.encoder_proj(self.encoder(x, valid)).transpose(1, 2).float()
        mask = valid[:, :, None].expand(-1, -1, TOKEN_MEL_RATIO).reshape(valid.shape[0], 1, -1).float()
        return mu, mask, spks.float()

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor, cond: torch.Tensor, xvector: torch.Tensor,
                z: torch.Tensor) -> torch.Tensor:
        """cond (1, 80, 2N) prompt mel then zeros, z (1, 80, 2N) noise → mel (1, 80, 2N) fp32 (zero where padded)."""
        mu, mask, spks = self.encode(tokens, valid, xvector)
        return self.decoder(z, mu, mask, spks, cond)


class S3Gen(nn.Module):
    def __init__(self, cfg: S3GenConfig):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = S3Tokenizer(cfg.tokenizer)
        self.speaker_encoder = CAMPPlus(cfg.campplus)
        self.flow = Flow(cfg)
        self.mel2wav = HiFT(cfg.hift)
        self.mel24 = Mel24k(n_mels=cfg.mel_dim)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            n = 24000 // 50  # 20 ms silence, then a 20 ms raised-cosine fade-in against reference spill-over
            fade = torch.zeros(2 * n)
            fade[n:] = (torch.cos(torch.linspace(torch.pi, 0, n)) + 1) / 2
            self.register_buffer("trim_fade", fade.to(device), persistent=False)

    def embed_ref(self, wav24: torch.Tensor, wav16: torch.Tensor) -> dict[str, torch.Tensor]:
        """Reference clip (≤ 10 s at 24 kHz, and the same at 16 kHz) → S3Gen prompt: tokens, mel, x-vector."""
        mel = self.mel24(wav24[None]).transpose(1, 2)  # (1, 2T, 80)
        xvector = self.speaker_encoder(wav16)
        tokens = self.tokenizer(wav16)
        tokens = tokens[:, : mel.shape[1] // TOKEN_MEL_RATIO]
        return {"prompt_token": tokens, "prompt_feat": mel, "embedding": xvector}

    def apply_fade(self, wav: torch.Tensor) -> torch.Tensor:
        n = min(wav.shape[-1], self.trim_fade.shape[0])
        head = wav[..., :n] * self.trim_fade[:n]
        return torch.cat((head, wav[..., n:]), dim=-1)
