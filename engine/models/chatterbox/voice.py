"""Voice conditionals: the reference-derived tensors both T3 and S3Gen need, and how to get them.

A voice is five tensors (VoiceEncoder embedding, T3 prompt tokens, S3Gen prompt tokens + 24 kHz mel,
CAM++ x-vector). `conds.pt` stores them in the reference's dict layout and is the built-in voice;
any other reference clip is embedded once and then served from the optimizer's voice cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ...errors import VoiceLoadError
from .audio import S3_SR, S3GEN_SR, resample
from .model import Chatterbox

TOKENS_PER_SECOND = 25  # T3 prompt: the first prompt_len / 25 s of the 16 kHz reference (6 s, Turbo 15 s)
GEN_PROMPT_SECONDS = 10  # first 10 s of the 24 kHz reference → S3Gen prompt


@dataclass
class Conditionals:
    speaker_emb: torch.Tensor  # (1, 256) VoiceEncoder
    t3_prompt: torch.Tensor  # (1, P ≤ 150) S3 tokens
    prompt_token: torch.Tensor  # (1, T) S3 tokens of the S3Gen prompt
    prompt_feat: torch.Tensor  # (1, 2T, 80) 24 kHz log-mel
    embedding: torch.Tensor  # (1, 192) CAM++ x-vector

    def to(self, device: torch.device) -> Conditionals:
        return Conditionals(**{k: v.to(device) for k, v in self.tensors().items()})

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"speaker_emb": self.speaker_emb, "t3_prompt": self.t3_prompt, "prompt_token": self.prompt_token,
                "prompt_feat": self.prompt_feat, "embedding": self.embedding}

    def to_official(self, exaggeration: float = 0.5) -> dict:
        """The reference's conds.pt layout: {"t3": T3Cond fields, "gen": S3Gen ref dict}."""
        return {
            "t3": {
                "speaker_emb": self.speaker_emb, "clap_emb": None, "cond_prompt_speech_tokens": self.t3_prompt,
                "cond_prompt_speech_emb": None, "emotion_adv": torch.full((1, 1, 1), float(exaggeration)),
            },
            "gen": {
                "prompt_token": self.prompt_token,
                "prompt_token_len": torch.tensor([self.prompt_token.shape[1]]),
                "prompt_feat": self.prompt_feat, "prompt_feat_len": None, "embedding": self.embedding,
            },
        }

    @classmethod
    def from_official(cls, data: dict) -> Conditionals:
        try:
            t3, gen = data["t3"], data["gen"]
            return cls(
                speaker_emb=t3["speaker_emb"].float().view(1, -1),
                t3_prompt=torch.atleast_2d(t3["cond_prompt_speech_tokens"]).long(),
                prompt_token=torch.atleast_2d(gen["prompt_token"]).long(),
                prompt_feat=gen["prompt_feat"].float(),
                embedding=gen["embedding"].float().view(1, -1),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise VoiceLoadError(f"conds.pt does not have the Chatterbox layout: {exc}") from exc


def load_conds(path: str | Path) -> Conditionals:
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises pickle/zip/runtime errors alike
        raise VoiceLoadError(f"{path}: cannot read conds.pt ({exc})") from exc
    return Conditionals.from_official(data)


def save_conds(conds: Conditionals, path: str | Path) -> None:
    torch.save(conds.to(torch.device("cpu")).to_official(), str(path))


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Mono float32 samples and rate; soundfile when installed, else the stdlib wave reader (PCM WAV)."""
    path = Path(path)
    if not path.is_file():
        raise VoiceLoadError(f"reference audio not found: {path}")
    try:
        import soundfile

        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.mean(axis=1).copy()), int(sr)
    except ImportError:
        return _read_wav(path)
    except RuntimeError as exc:
        raise VoiceLoadError(f"{path}: unreadable audio ({exc})") from exc


def _read_wav(path: Path) -> tuple[torch.Tensor, int]:
    import wave

    import numpy as np

    try:
        with wave.open(str(path), "rb") as w:
            sr, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise VoiceLoadError(f"{path}: unreadable WAV without soundfile ({exc})") from exc
    if width != 2:
        raise VoiceLoadError(f"{path}: only 16-bit PCM WAV is readable without soundfile")
    data = np.frombuffer(raw, dtype="<i2").astype(np.float32).reshape(-1, channels).mean(axis=1) / 32768.0
    return torch.from_numpy(data), sr


@torch.inference_mode()
def embed_voice(model: Chatterbox, wav: torch.Tensor, sr: int) -> Conditionals:
    """Reference waveform → Conditionals, following the reference's crops (10 s for S3Gen, 6 s for T3)."""
    device = next(model.parameters()).device
    wav24 = resample(wav.float(), sr, S3GEN_SR)
    wav16 = resample(wav24, S3GEN_SR, S3_SR)
    if wav16.numel() < S3_SR // 2:
        raise VoiceLoadError("reference audio is shorter than 0.5 s")
    gen_ref24 = wav24[: GEN_PROMPT_SECONDS * S3GEN_SR].to(device)
    gen_ref16 = resample(gen_ref24.cpu(), S3GEN_SR, S3_SR).to(device)
    gen = model.s3gen.embed_ref(gen_ref24, gen_ref16)
    plen = model.cfg.t3.prompt_len
    t3_prompt = model.s3gen.tokenizer(wav16[: plen // TOKENS_PER_SECOND * S3_SR].to(device), max_tokens=plen)
    speaker = model.ve.embed(wav16.to(device))
    return Conditionals(speaker.float(), t3_prompt, gen["prompt_token"], gen["prompt_feat"].float(),
                        gen["embedding"].float())
