"""Numerical parity of our Chatterbox against the reference package on shared random weights.

Not part of CI: it needs `chatterbox-tts` (which pins torch 2.6, transformers, diffusers, librosa…),
so run it in a separate environment where `import chatterbox` works, from the repository root:

    python3 tools/chatterbox_parity.py --out parity.json [--device cuda]

It writes one random full-size checkpoint in the official file format with our exporter, loads it
into both implementations (the reference with `strict=True`, which also proves key compatibility),
feeds identical inputs and identical noise, and reports relative errors
(‖ours − ref‖ / ‖ref‖ and max |ours − ref|) for:
  * T3 speech logits of the whole CFG prompt (both rows) and one cached decode step,
  * S3Gen mel (flow encoder + 10-step CFM with CFG) with the initial noise injected,
  * HiFT waveform with the harmonic phases and source noise injected,
  * the voice front end: 24 kHz prompt mel, S3 tokens (match rate), CAM++ x-vector, VoiceEncoder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.models.chatterbox.model import load_chatterbox
from engine.models.chatterbox.random_checkpoint import (
    full_config,
    random_conds,
    random_model,
    write_checkpoint,
)


def rel(ours: torch.Tensor, ref: torch.Tensor) -> dict:
    ours, ref = ours.detach().double().cpu(), ref.detach().double().cpu()
    return {"rel_l2": float((ours - ref).norm() / ref.norm().clamp(min=1e-30)),
            "max_abs": float((ours - ref).abs().max()), "shape": list(ref.shape)}


def load_reference(folder: Path, device: torch.device):
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from safetensors.torch import load_file

    t3 = T3()
    t3.load_state_dict({k: v.float() for k, v in load_file(str(folder / "t3_cfg.safetensors")).items()}, strict=True)
    s3 = S3Gen()
    missing, unexpected = s3.load_state_dict(load_file(str(folder / "s3gen.safetensors")), strict=False)
    ve = VoiceEncoder()
    ve.load_state_dict(load_file(str(folder / "ve.safetensors")), strict=True)
    return (t3.to(device).eval(), s3.to(device).eval(), ve.to(device).eval(),
            {"s3gen_missing": list(missing), "s3gen_unexpected": list(unexpected)})


def t3_parity(ours, ref_t3, conds, device) -> dict:
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    text = torch.tensor([[255] + list(range(20, 60)) + [0]], device=device).repeat(2, 1)
    cond = T3Cond(speaker_emb=conds.speaker_emb.to(device), cond_prompt_speech_tokens=conds.t3_prompt.to(device),
                  emotion_adv=torch.full((1, 1, 1), 0.5, device=device))
    bos = torch.full((2, 1), 6561, device=device, dtype=torch.long)
    embeds, _ = ref_t3.prepare_input_embeds(t3_cond=cond, text_tokens=text, speech_tokens=bos, cfg_weight=0.5)
    bos_embed = ref_t3.speech_emb(bos[:1]) + ref_t3.speech_pos_emb.get_fixed_embedding(0)
    embeds = torch.cat([embeds, bos_embed.expand(2, -1, -1)], dim=1)  # the reference loop's second BOS
    ref_h = ref_t3.tfmr(inputs_embeds=embeds, use_cache=False).last_hidden_state
    ref_logits = ref_t3.speech_head(ref_h)

    t3 = ours.t3
    our_cond = t3.cond_embeds(conds.speaker_emb.to(device), conds.t3_prompt.to(device), torch.full((1, 1, 1), 0.5, device=device))
    our_embeds = t3.prompt_embeds(our_cond, text[0], 2)
    L = our_embeds.shape[1]
    t3.setup_caches(2, L + 64, torch.float32, device)
    h = t3.tfmr(our_embeds, torch.arange(L, device=device), L, None)
    out = {"prompt_embeds": rel(our_embeds, embeds), "logits_all_positions": rel(t3.speech_head(h), ref_logits)}
    tok = torch.tensor([1234], device=device)
    x = t3.speech_step_embeds(tok, torch.tensor([0], device=device)).expand(2, 1, -1)
    S = (L + 64) // 64 * 64
    mask = (torch.arange(S, device=device) <= L).view(1, 1, 1, S)
    step = t3.speech_head(t3.tfmr(x, torch.tensor([L], device=device), S, mask)[:, -1])
    ref_x = ref_t3.speech_emb(tok[None]) + ref_t3.speech_pos_emb.get_fixed_embedding(1)
    ref_step = ref_t3.speech_head(ref_t3.tfmr(inputs_embeds=torch.cat([embeds, ref_x.expand(2, -1, -1)], 1)).last_hidden_state[:, -1])
    out["decode_step_logits"] = rel(step, ref_step)
    return out


def s3gen_parity(ours, ref_s3, conds, device) -> dict:
    gen = {"prompt_token": conds.prompt_token.to(device), "prompt_token_len": torch.tensor([conds.prompt_token.shape[1]], device=device),
           "prompt_feat": conds.prompt_feat.to(device), "prompt_feat_len": None, "embedding": conds.embedding.to(device)}
    speech = torch.randint(0, 6561, (1, 120), generator=torch.Generator().manual_seed(1)).to(device)
    N = conds.prompt_token.shape[1] + speech.shape[1]
    torch.manual_seed(1234)
    ref_mel, _ = ref_s3.flow.inference(token=speech, token_len=torch.tensor([speech.shape[1]], device=device),
                                       finalize=True, **gen)
    torch.manual_seed(1234)
    z = torch.randn(1, 80, 2 * N, device=device)  # = the reference's randn_like(mu): same seed, shape, order
    valid = torch.ones(1, N, dtype=torch.bool, device=device)
    tokens = torch.cat([conds.prompt_token.to(device), speech], dim=1)
    F_prompt = conds.prompt_feat.shape[1]
    cond = torch.zeros(1, 80, 2 * N, device=device)
    cond[:, :, :F_prompt] = conds.prompt_feat.to(device).transpose(1, 2)
    mel = ours.s3gen.flow(tokens, valid, cond, conds.embedding.to(device), z)[:, :, F_prompt:]
    out = {"mel": rel(mel, ref_mel)}

    torch.manual_seed(99)
    ref_wav, _ = ref_s3.mel2wav.inference(speech_feat=ref_mel, cache_source=torch.zeros(1, 1, 0, device=device))
    torch.manual_seed(99)
    phase = (-math.pi + 2 * math.pi * torch.rand(1, 9, 1)).to(device)  # Uniform(-π, π).sample draws on the CPU
    phase[:, 0] = 0
    noise = torch.randn(1, 9, ref_mel.shape[2] * 480, device=device)
    wav = ours.s3gen.mel2wav(ref_mel, phase, noise)
    out["hift_wav"] = rel(wav, ref_wav)
    return out


def frontend_parity(ours, ref_s3, ref_ve, device) -> dict:
    import librosa
    from chatterbox.models.s3gen.utils.mel import mel_spectrogram

    sr = 24000
    t = torch.arange(4 * sr) / sr
    wav24 = (0.3 * torch.sin(2 * math.pi * 170 * t) * (1 + 0.4 * torch.sin(2 * math.pi * 2.5 * t))).float()
    wav16 = torch.from_numpy(librosa.resample(wav24.numpy(), orig_sr=sr, target_sr=16000)).float()
    out = {"prompt_mel": rel(ours.s3gen.mel24(wav24[None].to(device)), mel_spectrogram(wav24[None].to(device)))}
    ref_tok, _ = ref_s3.tokenizer.forward([wav16.to(device)])
    tok = ours.s3gen.tokenizer(wav16.to(device))
    n = min(tok.shape[1], ref_tok.shape[1])
    out["s3_tokens"] = {"match_rate": float((tok[:, :n] == ref_tok[:, :n]).float().mean()), "len": [tok.shape[1], ref_tok.shape[1]]}
    out["xvector"] = rel(ours.s3gen.speaker_encoder(wav16.to(device)), ref_s3.speaker_encoder.inference(wav16[None].to(device)))
    ref_emb = torch.from_numpy(ref_ve.embeds_from_wavs([wav16.numpy()], sample_rate=16000)).mean(0, keepdim=True)
    out["voice_encoder"] = rel(ours.ve.embed(wav16.to(device)), ref_emb)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Chatterbox parity vs the reference package")
    ap.add_argument("--out", type=Path, default=Path("chatterbox_parity.json"))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        folder = write_checkpoint(Path(tmp), full_config(), model=random_model(full_config(), seed=0))
        ours = load_chatterbox(folder).to(device)
        ref_t3, ref_s3, ref_ve, keys = load_reference(folder, device)
        conds = random_conds(full_config(), prompt_tokens=100, seed=3)
        report = {"keys": keys, "t3": t3_parity(ours, ref_t3, conds, device),
                  "s3gen": s3gen_parity(ours, ref_s3, conds, device),
                  "frontend": frontend_parity(ours, ref_s3, ref_ve, device)}
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
