"""T3 of Chatterbox-Turbo: a GPT-2 decoder (Radford et al. 2019) over `[speaker | prompt | text | BOS]`.

Differences from the Llama T3: learned absolute positions (`wpe`) inside the backbone for every
position, pre-LN blocks with tanh-GELU, fused `c_attn` stored as GPT-2 Conv1D `[in, out]` weights
(transposed once at load), a biased speech head, no Perceiver, no exaggeration and no CFG. The
module exposes the same decode interface as `T3`, so `generate.T3Decoder` drives both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Source, TensorInfo, count_indexed, shape_of
from .t3 import BackboneConfig, KVCache

SILENCE_TOKEN = 4299  # S3 token of silence; three are appended before S3Gen, as the reference does


@dataclass(frozen=True)
class TurboConfig(BackboneConfig):
    n_layers: int = 24
    text_vocab: int = 50276
    speech_vocab: int = 6563
    prompt_len: int = 375
    positions: int = 8196

    @property
    def cond_len(self) -> int:
        return 1 + self.prompt_len

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo]) -> TurboConfig:
        return cls(
            dim=shape_of(header, "tfmr.ln_f.weight")[0],
            n_layers=count_indexed(header, "tfmr.h."),
            hidden=shape_of(header, "tfmr.h.0.mlp.c_fc.weight")[1],
            text_vocab=shape_of(header, "text_emb.weight")[0],
            speech_vocab=shape_of(header, "speech_emb.weight")[0],
            positions=shape_of(header, "tfmr.wpe.weight")[0],
            speaker_dim=shape_of(header, "cond_enc.spkr_enc.weight")[1],
        )


class Conv1D(nn.Linear):
    """GPT-2's Conv1D: the file stores the weight as [in, out]; we keep nn.Linear's [out, in]."""

    def official_keys(self) -> dict[str, Source]:
        out_f, in_f = self.weight.shape
        return {"weight": Source("transpose", ("weight",), ((in_f, out_f),))}


class GPT2Attention(nn.Module):
    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.cfg = cfg
        self.c_attn = Conv1D(cfg.dim, 3 * cfg.dim)
        self.c_proj = Conv1D(cfg.dim, cfg.dim)
        self.kv_cache: KVCache | None = None

    def forward(self, x, input_pos, kv_len: int, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.cfg.n_heads, self.cfg.head_dim).permute(2, 0, 3, 1, 4)
        self.kv_cache.update(input_pos, k, v)
        keys, values = self.kv_cache.k[:B, :, :kv_len], self.kv_cache.v[:B, :, :kv_len]
        if mask is None:
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class GPT2MLP(nn.Module):
    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.c_fc = Conv1D(cfg.dim, cfg.hidden)
        self.c_proj = Conv1D(cfg.hidden, cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class GPT2Block(nn.Module):
    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.mlp = GPT2MLP(cfg)

    def forward(self, x, input_pos, kv_len, mask):
        x = x + self.attn(self.ln_1(x), input_pos, kv_len, mask)
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """Backbone under `tfmr.`; its token table `wte` is in the file but unused (ignored at load)."""

    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.wpe = nn.Embedding(cfg.positions, cfg.dim)
        self.h = nn.ModuleList(GPT2Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)

    @property
    def layers(self) -> nn.ModuleList:
        return self.h

    def forward(self, x: torch.Tensor, input_pos: torch.Tensor, kv_len: int, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.wpe(input_pos).to(x.dtype)
        for block in self.h:
            x = block(x, input_pos, kv_len, mask)
        return self.ln_f(x)


class TurboCondEncoder(nn.Module):
    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.spkr_enc = nn.Linear(cfg.speaker_dim, cfg.dim)


class T3Turbo(nn.Module):
    """Official layout of t3_turbo_v1.safetensors (minus `tfmr.wte`)."""

    def __init__(self, cfg: TurboConfig):
        super().__init__()
        self.cfg = cfg
        self.tfmr = GPT2(cfg)
        self.cond_enc = TurboCondEncoder(cfg)
        self.text_emb = nn.Embedding(cfg.text_vocab, cfg.dim)
        self.speech_emb = nn.Embedding(cfg.speech_vocab, cfg.dim)
        self.text_head = nn.Linear(cfg.dim, cfg.text_vocab, bias=False)
        self.speech_head = nn.Linear(cfg.dim, cfg.speech_vocab, bias=True)

    def setup_caches(self, batch: int, seq: int, dtype: torch.dtype, device: torch.device) -> int:
        seq = min((seq + 63) // 64 * 64, self.cfg.positions)
        first = self.tfmr.h[0].attn.kv_cache
        if first is not None and first.k.shape[0] >= batch and first.k.shape[2] >= seq and first.k.dtype == dtype \
                and first.k.device == device:
            return first.k.shape[2]
        for block in self.tfmr.h:
            block.attn.kv_cache = KVCache(batch, self.cfg.n_heads, seq, self.cfg.head_dim, dtype, device)
        return seq

    def cond_embeds(self, speaker_emb: torch.Tensor, prompt_tokens: torch.Tensor, exaggeration: torch.Tensor) -> torch.Tensor:
        """(1, 1 + P, dim): speaker token, then the prompt's speech embeddings (no positions; exaggeration unused)."""
        prompt = self.speech_emb(prompt_tokens)
        spk = self.cond_enc.spkr_enc(speaker_emb.to(prompt.dtype).view(1, -1))[:, None]
        return torch.cat((spk, prompt), dim=1)

    def prompt_embeds(self, cond: torch.Tensor, text_tokens: torch.Tensor, cfg_rows: int) -> torch.Tensor:
        """(1, L, dim): [cond | text (GPT-2 ids, no SOT/EOT) | BOS]; positions come from `wpe` in the backbone."""
        bos = self.speech_emb.weight[self.cfg.start_speech].view(1, 1, -1)
        return torch.cat((cond, self.text_emb(text_tokens)[None], bos), dim=1)

    def speech_step_embeds(self, token: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.speech_emb(token).view(1, 1, -1)
