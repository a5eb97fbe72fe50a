"""Time for Chatterbox: T3 prefill / decode_one_token / decode_n_tokens, then S3Gen and HiFT per bucket.

T3 decoding follows gpt-fast: a static KV cache, one fixed-shape step per attention-length bucket
captured as a CUDA graph, and sampling entirely on device (CFG combine, repetition penalty from an
on-device "seen" mask, temperature, min-p, top-p, exponential-race multinomial). The step reads and
writes only state buffers, so a replay needs no host input; EOS is polled every `poll_every` steps.

Sampling order is the reference's: CFG → repetition penalty → temperature → min-p → top-p → sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...errors import SynthesisCancelled
from .graphs import GraphCache
from .s3gen import TOKEN_MEL_RATIO, S3Gen
from .t3 import T3
from .voice import Conditionals

ATTN_BUCKET = 256  # decode attention length granularity: cost follows the real length, few graphs
TOKEN_BUCKET = 128  # S3Gen token-count granularity (5.12 s): reusable flow graphs
FRAME_BUCKET = 256  # HiFT mel-frame granularity
SILENT_LOG_MEL = -11.5129  # log(1e-5): padding frames for HiFT read as silence


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    cfg_weight: float = 0.5
    repetition_penalty: float = 1.2
    min_p: float = 0.05
    top_p: float = 1.0
    exaggeration: float = 0.5
    max_new_tokens: int = 1000

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 <= self.min_p < 1 or not 0 < self.top_p <= 1:
            raise ValueError(f"min_p must be in [0, 1) and top_p in (0, 1], got {self.min_p}, {self.top_p}")
        if self.repetition_penalty <= 0 or self.cfg_weight < 0 or self.max_new_tokens < 1:
            raise ValueError("repetition_penalty must be > 0, cfg_weight >= 0, max_new_tokens >= 1")


def process_logits(logits: torch.Tensor, seen: torch.Tensor, knobs: torch.Tensor) -> torch.Tensor:
    """logits (rows, V) fp32, rows 2 = (cond, uncond); knobs = [cfg_w, penalty, 1/temperature, min_p, top_p].

    Returns masked, scaled logits (V,) for the conditional row.
    """
    cfg_w, penalty, inv_temp, min_p, top_p = knobs.unbind(0)
    l = logits[0]
    if logits.shape[0] == 2:
        l = l + cfg_w * (l - logits[1])
    l = torch.where(seen, torch.where(l < 0, l * penalty, l / penalty), l)  # HF repetition-penalty rule
    l = l * inv_temp
    probs = torch.softmax(l, dim=-1)
    l = l.masked_fill(probs < min_p * probs.max(), float("-inf"))
    sorted_l, order = torch.sort(l)
    remove = torch.softmax(sorted_l, dim=-1).cumsum(-1) <= 1 - top_p
    remove = torch.cat((remove[:-1], remove.new_zeros(1)))  # always keep the most likely token
    return l.masked_fill(remove.scatter(0, order, remove), float("-inf"))


def process_logits_turbo(logits: torch.Tensor, seen: torch.Tensor, knobs: torch.Tensor, top_k: int) -> torch.Tensor:
    """Turbo's order (one row, no CFG, no min-p): temperature → top-k → top-p → repetition penalty."""
    _, penalty, inv_temp, _, top_p = knobs.unbind(0)
    l = logits[0] * inv_temp
    l = l.masked_fill(l < torch.topk(l, top_k).values[-1], float("-inf"))
    sorted_l, order = torch.sort(l)
    remove = torch.softmax(sorted_l, dim=-1).cumsum(-1) <= 1 - top_p
    remove = torch.cat((remove[:-1], remove.new_zeros(1)))
    l = l.masked_fill(remove.scatter(0, order, remove), float("-inf"))
    return torch.where(seen, torch.where(l < 0, l * penalty, l / penalty), l)


def sample(l: torch.Tensor) -> torch.Tensor:
    """Multinomial draw without a host sync: argmax of p / Exp(1) (the exponential race)."""
    probs = torch.softmax(l, dim=-1)
    q = torch.empty_like(probs).exponential_(1)
    return torch.argmax(probs / q).view(1)


class DecodeState:
    """Device buffers a decode step reads and writes (the graph's whole interface)."""

    def __init__(self, vocab: int, max_new: int, max_seq: int, device: torch.device):
        long = {"dtype": torch.long, "device": device}
        self.tok = torch.zeros(1, **long)
        self.n = torch.zeros(1, **long)  # tokens generated so far
        self.cache_pos = torch.zeros(1, **long)  # where the next input goes in the KV cache
        self.tokens = torch.zeros(max_new + 1, **long)
        self.seen = torch.zeros(vocab, dtype=torch.bool, device=device)
        self.done = torch.zeros(1, dtype=torch.bool, device=device)
        self.knobs = torch.zeros(5, dtype=torch.float32, device=device)
        self.positions = torch.arange(max_seq, **long)

    def snapshot(self) -> list[torch.Tensor]:
        return [t.clone() for t in (self.tok, self.n, self.cache_pos, self.seen, self.done)]

    def restore(self, snap: list[torch.Tensor]) -> None:
        for dst, src in zip((self.tok, self.n, self.cache_pos, self.seen, self.done), snap):
            dst.copy_(src)


class T3Decoder:
    """Owns T3's static cache, decode state and per-(rows, length) step graphs."""

    def __init__(self, t3: T3, device: torch.device, dtype: torch.dtype, max_seq: int, max_new: int,
                 graphs: GraphCache, poll_every: int = 16, compile_mode: str | None = None, top_k: int | None = None):
        """`top_k` selects Turbo sampling (one row, its processor order, BOS counted only for the first draw)."""
        self.t3, self.device, self.dtype = t3, device, dtype
        self.on_fallback = graphs.on_fallback
        self.max_new, self.poll_every, self.graphs = max_new, poll_every, graphs
        self.top_k = None if top_k is None else min(top_k, t3.cfg.speech_vocab)
        self.max_seq = t3.setup_caches(1 if top_k else 2, max_seq, dtype, device)
        self.state = DecodeState(t3.cfg.speech_vocab, max_new, self.max_seq, device)
        self.stop = t3.cfg.stop_speech
        self.step = self.decode_one_token
        self.attn_bucket = ATTN_BUCKET
        if compile_mode is not None:
            self.attn_bucket = 2 * ATTN_BUCKET  # each attention length is one Inductor compile: fewer, longer buckets
            # Inductor fuses the norms, RoPE and sampling; our own CUDA graph then wraps the compiled step,
            # so Inductor's cudagraph mode would be redundant.
            from ...kernels.device import compile_arguments

            mode = "max-autotune-no-cudagraphs" if compile_mode == "max-autotune" else "default"
            self.step = torch.compile(self.decode_one_token, fullgraph=True, dynamic=False, **compile_arguments(mode, device))

    def _commit(self, logits: torch.Tensor) -> None:
        st = self.state
        if self.top_k is None:
            tok = sample(process_logits(logits, st.seen, st.knobs))
        else:
            tok = sample(process_logits_turbo(logits, st.seen, st.knobs, self.top_k))
        st.tok.copy_(tok)
        st.tokens.index_copy_(0, st.n, tok)
        st.seen.scatter_(0, tok, torch.ones_like(tok, dtype=torch.bool))
        st.done.logical_or_(tok == self.stop)
        st.n.add_(1)

    def prefill(self, embeds: torch.Tensor) -> None:
        """embeds (rows, L, dim): causal pass over the prompt, fills the cache, samples token 0."""
        L = embeds.shape[1]
        st = self.state
        h = self.t3.tfmr(embeds.to(self.dtype), st.positions[:L], L, None)
        st.n.zero_()
        st.cache_pos.fill_(L)
        st.seen.zero_()
        st.seen[self.t3.cfg.start_speech] = True  # the reference counts the BOS as generated
        st.done.zero_()
        self._commit(self.t3.speech_head(h[:, -1]).float())
        if self.top_k is not None:  # Turbo penalises the BOS for the first draw only, then generated tokens
            st.seen.zero_()
            st.seen.scatter_(0, st.tok, torch.ones_like(st.tok, dtype=torch.bool))

    def decode_one_token(self, rows: int, S: int) -> None:
        """Feed the last sampled token at `cache_pos` (attention over S cache rows), sample the next."""
        st = self.state
        x = self.t3.speech_step_embeds(st.tok, st.n - 1).expand(rows, 1, -1)
        mask = (st.positions[:S] <= st.cache_pos).view(1, 1, 1, S)
        h = self.t3.tfmr(x.to(self.dtype), st.cache_pos, S, mask)
        self._commit(self.t3.speech_head(h[:, -1]).float())
        st.cache_pos.add_(1)

    def _step(self, rows: int, S: int) -> None:
        """The compiled step if it compiles; a compiler failure (raised before anything runs) falls back to eager."""
        if self.step is not self.decode_one_token:
            try:
                return self.step(rows, S)
            except Exception as exc:  # noqa: BLE001 - dynamo/inductor raise many types; all mean "not compiled"
                self.step = self.decode_one_token
                if self.on_fallback is not None:
                    self.on_fallback("compile", f"chatterbox T3 step runs uncompiled: {type(exc).__name__}: {exc}")
        return self.decode_one_token(rows, S)

    def decode_n_tokens(self, rows: int, prompt_len: int, n: int, stop_on_eos: bool,
                        cancelled: Callable[[], bool] = lambda: False) -> None:
        for i in range(n):
            S = min(-(-(prompt_len + i + 1) // self.attn_bucket) * self.attn_bucket, self.max_seq)
            self.graphs.run((rows, S), lambda rows=rows, S=S: self._step(rows, S), self.state.snapshot, self.state.restore)
            if (i + 1) % self.poll_every == 0:  # the only host syncs of the loop: EOS and cancel, every N steps
                if stop_on_eos and bool(self.state.done):
                    break
                if cancelled():
                    raise SynthesisCancelled("cancelled during T3 decoding")

    def generate(self, embeds: torch.Tensor, params: SamplingParams, stop_on_eos: bool = True,
                 cancelled: Callable[[], bool] = lambda: False) -> list[int]:
        """Prompt embeddings (rows, L, dim) → speech tokens (EOS and anything after it removed)."""
        rows, L = embeds.shape[0], embeds.shape[1]
        max_new = min(params.max_new_tokens, self.max_new, self.max_seq - L)
        if max_new < 1:
            raise ValueError(f"prompt of {L} positions leaves no room in the {self.max_seq}-position cache")
        self.state.knobs.copy_(torch.tensor(
            [params.cfg_weight, params.repetition_penalty, 1.0 / params.temperature, params.min_p, params.top_p]))
        self.prefill(embeds)
        self.decode_n_tokens(rows, L, max_new - 1, stop_on_eos, cancelled)
        n = int(self.state.n)
        tokens = self.state.tokens[:n].tolist()
        if stop_on_eos and self.stop in tokens:
            tokens = tokens[: tokens.index(self.stop)]
        return tokens


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


class S3GenRunner:
    """Token → mel → waveform with right-padding to buckets and one graph per bucket and stage."""

    def __init__(self, s3gen: S3Gen, device: torch.device, buckets: bool, graphs_enabled: bool,
                 warmup: int, on_fallback: Callable[[str, str], None] | None):
        self.s3gen, self.device, self.buckets = s3gen, device, buckets
        self.flow_graphs = GraphCache(graphs_enabled, warmup, on_fallback, "cuda_graphs.s3gen")
        self.hift_graphs = GraphCache(graphs_enabled, warmup, on_fallback, "cuda_graphs.hift")
        self.inputs: dict[tuple, dict[str, torch.Tensor]] = {}

    def _buffers(self, key: tuple, n_tok: int, n_frames: int) -> dict[str, torch.Tensor]:
        if key not in self.inputs:
            f = {"device": self.device}
            self.inputs[key] = {
                "tokens": torch.zeros(1, n_tok, dtype=torch.long, **f),
                "valid": torch.zeros(1, n_tok, dtype=torch.bool, **f),
                "cond": torch.zeros(1, 80, n_frames, **f),
                "xvector": torch.zeros(1, self.s3gen.cfg.xvector_dim, **f),
                "z": torch.zeros(1, 80, n_frames, **f),
            }
        return self.inputs[key]

    def mel(self, conds: Conditionals, speech_tokens: list[int], z: torch.Tensor | None = None,
            times: Callable[[str, float], None] | None = None) -> torch.Tensor:
        """→ mel (1, 80, 2·len(speech_tokens) − extra prompt frames) fp32, as the reference slices it."""
        prompt = conds.prompt_token.to(self.device)
        P, n = prompt.shape[1], len(speech_tokens)
        N = P + n
        Nb = _round_up(N, TOKEN_BUCKET) if self.buckets else N
        buf = self._buffers(("flow", Nb), Nb, TOKEN_MEL_RATIO * Nb)
        buf["tokens"].zero_()
        buf["tokens"][0, :P] = prompt[0]
        buf["tokens"][0, P:N] = torch.tensor(speech_tokens, dtype=torch.long).to(self.device, non_blocking=True)
        buf["valid"].copy_(torch.arange(Nb, device=self.device)[None] < N)
        feat = conds.prompt_feat.to(self.device).transpose(1, 2)  # (1, 80, F)
        F_prompt = feat.shape[2]
        buf["cond"].zero_()
        buf["cond"][:, :, :F_prompt] = feat
        buf["xvector"].copy_(conds.embedding.to(self.device))
        if z is None:
            buf["z"].normal_()
        else:
            buf["z"].zero_()
            buf["z"][:, :, : z.shape[2]] = z.to(self.device)
        flow = self.s3gen.flow
        t0 = _stamp(self.device, times)
        mu, mask, spks = self.flow_graphs.run(("encoder", Nb), lambda: flow.encode(buf["tokens"], buf["valid"], buf["xvector"]))
        t1 = _stamp(self.device, times)
        out = self.flow_graphs.run(("cfm", Nb), lambda: flow.decoder(buf["z"], mu, mask, spks, buf["cond"]))
        mel = out[:, :, F_prompt: TOKEN_MEL_RATIO * N].clone()
        t2 = _stamp(self.device, times)
        if times is not None:
            times("s3gen_encoder", t1 - t0)
            times("cfm", t2 - t1)
        return mel

    def wav(self, mel: torch.Tensor, phase: torch.Tensor | None = None, noise: torch.Tensor | None = None,
            times: Callable[[str, float], None] | None = None) -> torch.Tensor:
        """mel (1, 80, T) → waveform (T·480,) fp32 with the reference's 40 ms trim/fade at the start."""
        T = mel.shape[2]
        t0 = _stamp(self.device, times)
        if phase is not None or noise is not None or not self.buckets:
            wav = self.s3gen.mel2wav(mel, phase, noise)[0]
        else:
            Tb = _round_up(T, FRAME_BUCKET)
            buf = self._buffers(("hift", Tb), 1, Tb)["cond"]
            buf.fill_(SILENT_LOG_MEL)
            buf[:, :, :T] = mel
            wav = self.hift_graphs.run(("hift", Tb), lambda: self.s3gen.mel2wav(buf))[0]
        wav = self.s3gen.apply_fade(wav[: T * self.s3gen.cfg.hift.samples_per_frame])
        if times is not None:
            times("hift", _stamp(self.device, times) - t0)
        return wav


def _stamp(device: torch.device, times) -> float:
    """A synchronised timestamp when stage times are wanted (one sync per stage, never per token)."""
    if times is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def embeds_for(t3: T3, conds: Conditionals, text_ids: list[int], exaggeration: float, cfg_rows: int,
               device: torch.device) -> torch.Tensor:
    """T3 prompt embeddings for one chunk: conditioning tokens, text, double BOS."""
    cond = t3.cond_embeds(conds.speaker_emb.to(device), conds.t3_prompt.to(device),
                          torch.full((1, 1, 1), float(exaggeration), device=device))
    ids = torch.tensor(text_ids, dtype=torch.long).to(device)
    return t3.prompt_embeds(cond, ids, cfg_rows)
