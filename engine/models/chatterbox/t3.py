"""T3: the text-to-speech-token language model of Chatterbox (modules only; loops live in generate.py).

A Llama decoder (Touvron et al. 2023, "LLaMA"; llama3 RoPE frequency scaling) over
`[conditioning | text | speech]` embeddings, with learned absolute position tables on top of RoPE,
a speaker/prompt/emotion conditioning encoder whose prompt branch is a Perceiver resampler
(Jaegle et al. 2021) applying one attention block twice with shared weights.
Sizes are read from the checkpoint header (`T3Config.from_header`); head size 64 is Llama's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import Source, TensorInfo, count_indexed, shape_of

START_SPEECH = 6561
STOP_SPEECH = 6562


@dataclass(frozen=True)
class BackboneConfig:
    """What every T3 variant has: the transformer's size, vocabularies, speaker input, prompt."""

    dim: int = 1024
    n_layers: int = 30
    hidden: int = 4096
    head_dim: int = 64
    text_vocab: int = 704
    speech_vocab: int = 8194
    speaker_dim: int = 256
    norm_eps: float = 1e-5
    start_speech: int = START_SPEECH
    stop_speech: int = STOP_SPEECH
    prompt_len: int = 150

    @property
    def n_heads(self) -> int:
        return self.dim // self.head_dim


@dataclass(frozen=True)
class T3Config(BackboneConfig):
    text_pos_len: int = 2050
    speech_pos_len: int = 4100
    perceiver_queries: int = 32
    perceiver_heads: int = 4
    rope_theta: float = 500000.0
    rope_factor: float = 8.0
    rope_low_freq: float = 1.0
    rope_high_freq: float = 4.0
    rope_original_len: int = 8192
    start_text: int = 255
    stop_text: int = 0

    @property
    def cond_len(self) -> int:
        return 1 + self.perceiver_queries + 1  # speaker | perceiver | emotion

    @classmethod
    def from_header(cls, header: dict[str, TensorInfo]) -> T3Config:
        dim = shape_of(header, "tfmr.norm.weight")[0]
        return cls(
            dim=dim,
            n_layers=count_indexed(header, "tfmr.layers."),
            hidden=shape_of(header, "tfmr.layers.0.mlp.gate_proj.weight")[0],
            text_vocab=shape_of(header, "text_emb.weight")[0],
            speech_vocab=shape_of(header, "speech_emb.weight")[0],
            text_pos_len=shape_of(header, "text_pos_emb.emb.weight")[0],
            speech_pos_len=shape_of(header, "speech_pos_emb.emb.weight")[0],
            speaker_dim=shape_of(header, "cond_enc.spkr_enc.weight")[1],
            perceiver_queries=shape_of(header, "cond_enc.perceiver.pre_attention_query")[1],
        )


def llama3_inv_freq(cfg: T3Config) -> torch.Tensor:
    """RoPE inverse frequencies with the llama3 long-context rescaling (applies at every length)."""
    inv = 1.0 / cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float64) / cfg.head_dim)
    low_wl = cfg.rope_original_len / cfg.rope_low_freq
    high_wl = cfg.rope_original_len / cfg.rope_high_freq
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > low_wl, inv / cfg.rope_factor, inv)
    smooth = (cfg.rope_original_len / wavelen - cfg.rope_low_freq) / (cfg.rope_high_freq - cfg.rope_low_freq)
    smoothed = (1 - smooth) * scaled / cfg.rope_factor + smooth * scaled
    medium = (wavelen >= high_wl) & (wavelen <= low_wl)
    return torch.where(medium, smoothed, scaled).float()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()  # fp32 island: the variance in bf16 loses the small channels
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.type_as(x)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class KVCache(nn.Module):
    """Static per-layer cache, (B, H, S, D); written in place by position so the decode step has fixed shapes."""

    def __init__(self, batch: int, heads: int, seq: int, head_dim: int, dtype: torch.dtype, device: torch.device):
        super().__init__()
        shape = (batch, heads, seq, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
        B = k.shape[0]  # 2 rows with CFG, 1 without
        self.k[:B].index_copy_(2, input_pos, k)
        self.v[:B].index_copy_(2, input_pos, v)


class Attention(nn.Module):
    """Llama self-attention; q/k/v are fused into one matmul at load (official keys q_proj/k_proj/v_proj)."""

    def __init__(self, cfg: T3Config):
        super().__init__()
        self.cfg = cfg
        self.wqkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.o_proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.kv_cache: KVCache | None = None

    def official_keys(self) -> dict[str, Source]:
        d = self.cfg.dim
        return {"wqkv.weight": Source("cat", ("q_proj.weight", "k_proj.weight", "v_proj.weight"), ((d, d),) * 3)}

    def forward(self, x, cos, sin, input_pos, kv_len: int, mask):
        B, T, C = x.shape
        q, k, v = self.wqkv(x).view(B, T, 3, self.cfg.n_heads, self.cfg.head_dim).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        self.kv_cache.update(input_pos, k, v)
        keys, values = self.kv_cache.k[:B, :, :kv_len], self.kv_cache.v[:B, :, :kv_len]
        if mask is None:
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
        else:  # decode: one query row over S cache rows, positions past the current one masked
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """SwiGLU feed-forward (Shazeer 2020); gate and up fused at load."""

    def __init__(self, cfg: T3Config):
        super().__init__()
        self.cfg = cfg
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.hidden, bias=False)
        self.down_proj = nn.Linear(cfg.hidden, cfg.dim, bias=False)

    def official_keys(self) -> dict[str, Source]:
        shape = (self.cfg.hidden, self.cfg.dim)
        return {"w13.weight": Source("cat", ("gate_proj.weight", "up_proj.weight"), (shape, shape))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: T3Config):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, input_pos, kv_len, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, input_pos, kv_len, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Backbone under the official `tfmr.` prefix; its `embed_tokens` is unused (ignored at load)."""

    def __init__(self, cfg: T3Config):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.build_buffers(None)

    def build_buffers(self, device) -> None:
        with torch.device("cpu"):  # also correct when built under the meta device
            n = self.cfg.text_pos_len + self.cfg.speech_pos_len + self.cfg.cond_len + 8
            freqs = torch.outer(torch.arange(n, dtype=torch.float32), llama3_inv_freq(self.cfg))
            emb = torch.cat((freqs, freqs), dim=-1)
            self.register_buffer("rope_cos", emb.cos().to(device), persistent=False)
            self.register_buffer("rope_sin", emb.sin().to(device), persistent=False)

    def forward(self, x: torch.Tensor, input_pos: torch.Tensor, kv_len: int, mask: torch.Tensor | None) -> torch.Tensor:
        cos = self.rope_cos[input_pos].to(x.dtype)  # (T, hs)
        sin = self.rope_sin[input_pos].to(x.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, input_pos, kv_len, mask)
        return self.norm(x)


class PerceiverAttention(nn.Module):
    """Pre-LN cross attention with a residual on the query (one LayerNorm for both inputs)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, xq: torch.Tensor, xkv: torch.Tensor) -> torch.Tensor:
        B, Tq, C = xq.shape
        nq, nkv = self.norm(xq), self.norm(xkv)
        q = self.to_q(nq).view(B, Tq, self.heads, -1).transpose(1, 2)
        k = self.to_k(nkv).view(B, nkv.shape[1], self.heads, -1).transpose(1, 2)
        v = self.to_v(nkv).view(B, nkv.shape[1], self.heads, -1).transpose(1, 2)
        h = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, Tq, C)
        return xq + self.proj_out(h)


class Perceiver(nn.Module):
    def __init__(self, cfg: T3Config):
        super().__init__()
        self.pre_attention_query = nn.Parameter(torch.randn(1, cfg.perceiver_queries, cfg.dim) * 0.02)
        self.attn = PerceiverAttention(cfg.dim, cfg.perceiver_heads)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q = self.pre_attention_query.expand(h.shape[0], -1, -1)
        pre = self.attn(q, h)  # queries read the prompt
        return self.attn(pre, pre)  # then attend to themselves, same weights


class CondEncoder(nn.Module):
    """Speaker (VoiceEncoder → 1 token) | speech prompt (Perceiver → 32 tokens) | exaggeration (1 token)."""

    def __init__(self, cfg: T3Config):
        super().__init__()
        self.spkr_enc = nn.Linear(cfg.speaker_dim, cfg.dim)
        self.emotion_adv_fc = nn.Linear(1, cfg.dim, bias=False)
        self.perceiver = Perceiver(cfg)

    def forward(self, speaker_emb: torch.Tensor, prompt_emb: torch.Tensor, exaggeration: torch.Tensor) -> torch.Tensor:
        spk = self.spkr_enc(speaker_emb.view(speaker_emb.shape[0], -1))[:, None]
        emo = self.emotion_adv_fc(exaggeration.view(-1, 1, 1))
        return torch.cat((spk, self.perceiver(prompt_emb), emo), dim=1)


class LearnedPositions(nn.Module):
    def __init__(self, n: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(n, dim)


class T3(nn.Module):
    """Token tables, heads, conditioning encoder and the Llama backbone (official key layout)."""

    def __init__(self, cfg: T3Config):
        super().__init__()
        self.cfg = cfg
        self.tfmr = Llama(cfg)
        self.cond_enc = CondEncoder(cfg)
        self.text_emb = nn.Embedding(cfg.text_vocab, cfg.dim)
        self.speech_emb = nn.Embedding(cfg.speech_vocab, cfg.dim)
        self.text_pos_emb = LearnedPositions(cfg.text_pos_len, cfg.dim)
        self.speech_pos_emb = LearnedPositions(cfg.speech_pos_len, cfg.dim)
        self.text_head = nn.Linear(cfg.dim, cfg.text_vocab, bias=False)
        self.speech_head = nn.Linear(cfg.dim, cfg.speech_vocab, bias=False)

    def setup_caches(self, batch: int, seq: int, dtype: torch.dtype, device: torch.device) -> int:
        """Allocate (or keep) the static KV cache; the length is rounded up to a multiple of 64."""
        seq = (seq + 63) // 64 * 64
        first = self.tfmr.layers[0].self_attn.kv_cache
        if first is not None and first.k.shape[0] >= batch and first.k.shape[2] >= seq and first.k.dtype == dtype \
                and first.k.device == device:
            return first.k.shape[2]
        for layer in self.tfmr.layers:
            layer.self_attn.kv_cache = KVCache(batch, self.cfg.n_heads, seq, self.cfg.head_dim, dtype, device)
        return seq

    def cond_embeds(self, speaker_emb: torch.Tensor, prompt_tokens: torch.Tensor, exaggeration: torch.Tensor) -> torch.Tensor:
        """(1, 34, dim): prompt tokens get speech embeddings + speech positions 0..P-1 before the Perceiver."""
        P = prompt_tokens.shape[1]
        prompt = self.speech_emb(prompt_tokens) + self.speech_pos_emb.emb.weight[:P]
        return self.cond_enc(speaker_emb.to(prompt.dtype), prompt, exaggeration.to(prompt.dtype))

    def prompt_embeds(self, cond: torch.Tensor, text_tokens: torch.Tensor, cfg_rows: int) -> torch.Tensor:
        """(rows, L, dim): [cond | text+pos | BOS+pos0 | BOS+pos0]; row 1 (CFG) has the text embeddings zeroed.

        `text_tokens` (Lt,) already carries SOT/EOT. The BOS appears twice, as in the reference loop.
        """
        Lt = text_tokens.shape[0]
        text = self.text_emb(text_tokens)[None]
        if cfg_rows == 2:
            text = torch.cat((text, torch.zeros_like(text)))
        text = text + self.text_pos_emb.emb.weight[:Lt]
        bos = self.speech_emb.weight[self.cfg.start_speech] + self.speech_pos_emb.emb.weight[0]
        bos = bos.view(1, 1, -1).expand(cfg_rows, 2, -1)
        return torch.cat((cond.expand(cfg_rows, -1, -1), text, bos), dim=1)

    def speech_step_embeds(self, token: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Embedding of generated token number `index` (0-based) at speech position index+1, (1, 1, dim)."""
        return (self.speech_emb(token) + self.speech_pos_emb.emb(index + 1)).view(1, 1, -1)
