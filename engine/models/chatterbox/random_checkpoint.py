"""Random-weight checkpoints in the official file format (tests, benchmarks, parity runs).

Writes `t3_cfg.safetensors` (fp16, like the official file), `s3gen.safetensors` and
`ve.safetensors` (fp32) — or the Turbo set (`t3_turbo_v1.safetensors`, `s3gen_meanflow.safetensors`,
GPT-2 `vocab.json` / `merges.txt` / `added_tokens.json`) — with the official key names — weight norm as `parametrizations.weight.
original0/1`, BatchNorm as weight/bias/running stats — plus a `tokenizers` tokenizer.json and a
conds.pt in the reference's dict layout. Sizes come from a `ChatterboxConfig`, so CI uses tiny ones.
"""

from __future__ import annotations

import string
from dataclasses import replace
from pathlib import Path

import torch

from .campplus import CAMPPlusConfig
from .cfm import EstimatorConfig
from .checkpoint import export_official, rebuild_buffers
from .hift import HiFTConfig
from .model import (
    CONDS_FILE,
    S3GEN_FILE,
    T3_FILE,
    TOKENIZER_FILE,
    TURBO_S3GEN_FILE,
    TURBO_T3_FILE,
    VE_FILE,
    Chatterbox,
    ChatterboxConfig,
)
from .s3gen import S3GenConfig
from .s3gen_encoder import EncoderConfig
from .s3tokenizer import S3TokenizerConfig
from .t3 import T3Config
from .t3_turbo import TurboConfig
from .voice import Conditionals, save_conds
from .voice_encoder import VoiceEncoderConfig

SPECIALS = ["[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]"]


def full_config() -> ChatterboxConfig:
    """The official sizes (T3 Llama 30×1024, S3Gen as shipped, VoiceEncoder 3×256)."""
    return ChatterboxConfig(t3=T3Config(), s3gen=S3GenConfig(), ve=VoiceEncoderConfig())


def tiny_config() -> ChatterboxConfig:
    """Same structure, a few layers and narrow widths: loads and synthesises in seconds on a CPU."""
    enc = EncoderConfig(dim=64, heads=2, ffn=128, n_layers=1, n_up_layers=1)
    est = EstimatorConfig(channels=64, time_dim=128, heads=2, n_blocks=1, n_mid=1)
    hift = HiFTConfig(base_channels=32, f0_channels=32, f0_layers=2)
    tok = S3TokenizerConfig(dim=128, n_layers=1)
    camp = CAMPPlusConfig(m_channels=8, init_channels=32, growth=8, bn_channels=16, layers=(2, 1, 1))
    s3 = S3GenConfig(token_dim=64, encoder=enc, estimator=est, hift=hift, tokenizer=tok, campplus=camp)
    t3 = T3Config(dim=128, n_layers=2, hidden=256, perceiver_queries=8, text_pos_len=512, speech_pos_len=1200)
    return ChatterboxConfig(t3=t3, s3gen=s3, ve=VoiceEncoderConfig(hidden=32))


def full_turbo_config() -> ChatterboxConfig:
    """Chatterbox-Turbo sizes: GPT-2 medium T3, mean-flow S3Gen (2 steps, no CFG)."""
    return ChatterboxConfig(t3=TurboConfig(), s3gen=S3GenConfig(estimator=EstimatorConfig(meanflow=True), cfm_steps=2),
                            ve=VoiceEncoderConfig())


def tiny_turbo_config() -> ChatterboxConfig:
    base = tiny_config()
    s3 = replace(base.s3gen, estimator=replace(base.s3gen.estimator, meanflow=True), cfm_steps=2)
    t3 = TurboConfig(dim=128, n_layers=2, hidden=256, text_vocab=len(TURBO_TAGS) + 256, positions=2048)
    return ChatterboxConfig(t3=t3, s3gen=s3, ve=base.ve)


TURBO_TAGS = ["[laugh]", "[chuckle]", "[cough]"]


def gpt2_tokenizer_files(folder: Path) -> None:
    """A byte-level BPE with the 256 byte symbols and no merges, plus a few added tags (ids after the vocab)."""
    import json

    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    (folder / "vocab.json").write_text(json.dumps({ch: i for i, ch in enumerate(alphabet)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    added = {tag: len(alphabet) + i for i, tag in enumerate(TURBO_TAGS)}
    (folder / "added_tokens.json").write_text(json.dumps(added), encoding="utf-8")


def tokenizer_json(vocab_size: int = 704) -> str:
    """A grapheme vocabulary with the official specials ([START] = 255, [STOP] = 0), as a tokenizers file."""
    from tokenizers import AddedToken, Tokenizer
    from tokenizers.models import BPE

    symbols = SPECIALS + list(string.ascii_letters + string.digits + string.punctuation)
    vocab: dict[str, int] = {}
    for s in symbols:
        if len(vocab) == 255:
            vocab["[START]"] = 255
        vocab.setdefault(s, len(vocab))
    if "[START]" not in vocab:
        while len(vocab) < 255:
            vocab[f"[X{len(vocab)}]"] = len(vocab)
        vocab["[START]"] = 255
    while len(vocab) < vocab_size:
        vocab[f"[X{len(vocab)}]"] = len(vocab)
    tok = Tokenizer(BPE(vocab, [], unk_token="[UNK]"))
    tok.add_special_tokens([AddedToken(s, special=True) for s in SPECIALS + ["[START]"]])
    return tok.to_str()


def random_conds(cfg: ChatterboxConfig, prompt_tokens: int = 50, seed: int = 0) -> Conditionals:
    g = torch.Generator().manual_seed(seed)
    spk = torch.randn(1, cfg.ve.embedding, generator=g)
    return Conditionals(
        speaker_emb=spk / spk.norm(),
        t3_prompt=torch.randint(0, 6561, (1, cfg.t3.prompt_len), generator=g),
        prompt_token=torch.randint(0, 6561, (1, prompt_tokens), generator=g),
        prompt_feat=torch.randn(1, 2 * prompt_tokens, cfg.s3gen.mel_dim, generator=g) - 5.0,
        embedding=torch.randn(1, cfg.s3gen.xvector_dim, generator=g),
    )


def random_model(cfg: ChatterboxConfig, seed: int = 0, device: str | torch.device = "cpu") -> Chatterbox:
    """Our modules with torch's default init (stable activations), then a few tensors made non-trivial."""
    torch.manual_seed(seed)
    with torch.device(device):
        model = Chatterbox(cfg).eval().requires_grad_(False)
    rebuild_buffers(model, torch.device(device))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("alpha", "pos_bias_u", "pos_bias_v")):
                p.uniform_(0.5, 1.5) if name.endswith("alpha") else p.normal_(0, 0.02)
            elif name.endswith(("scale",)):
                p.uniform_(0.8, 1.2)
    return model


def write_checkpoint(folder: str | Path, cfg: ChatterboxConfig | None = None, seed: int = 0,
                     model: Chatterbox | None = None) -> Path:
    """Write all five official files for `model` (random if None) into `folder`."""
    from safetensors.torch import save_file

    cfg = cfg or (model.cfg if model is not None else tiny_config())
    model = model or random_model(cfg, seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    t3 = export_official(model.t3)
    if cfg.turbo:
        t3["tfmr.wte.weight"] = torch.zeros(cfg.t3.text_vocab, cfg.t3.dim)
        save_file(t3, str(folder / TURBO_T3_FILE))
        save_file(export_official(model.s3gen), str(folder / TURBO_S3GEN_FILE))
        gpt2_tokenizer_files(folder)
    else:
        t3["tfmr.embed_tokens.weight"] = torch.zeros(8, cfg.t3.dim)
        save_file({k: v.half() if v.is_floating_point() else v for k, v in t3.items()}, str(folder / T3_FILE))
        save_file(export_official(model.s3gen), str(folder / S3GEN_FILE))
        (folder / TOKENIZER_FILE).write_text(tokenizer_json(cfg.t3.text_vocab), encoding="utf-8")
    ve = export_official(model.ve)
    ve["similarity_weight"], ve["similarity_bias"] = torch.tensor([10.0]), torch.tensor([-5.0])
    save_file(ve, str(folder / VE_FILE))
    save_conds(random_conds(cfg, seed=seed), folder / CONDS_FILE)
    return folder

