"""Piper voice configuration: the `.onnx.json` (text + inference defaults) and the architecture,
which is derived from tensor shapes and conv attributes, never typed in per voice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ...errors import VoiceLoadError


@dataclass(frozen=True)
class PiperArch:
    """VITS hyperparameters needed at inference."""

    n_vocab: int
    hidden_channels: int
    inter_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    window_size: int
    ffn_kernel_size: int
    dp_filter_channels: int
    dp_kernel_size: int
    dp_n_layers: int
    n_flows: int
    flow_hidden_channels: int
    flow_kernel_size: int
    flow_dilation_rate: int
    flow_n_layers: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    n_speakers: int = 1
    gin_channels: int = 0


@dataclass(frozen=True)
class VoiceConfig:
    """What the voice's `.onnx.json` says that matters at run time."""

    sample_rate: int
    espeak_voice: str
    phoneme_type: str
    phoneme_id_map: Mapping[str, tuple[int, ...]]
    num_symbols: int
    num_speakers: int
    speaker_id_map: Mapping[str, int]
    noise_scale: float
    length_scale: float
    noise_w: float
    name: str
    language: str
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "VoiceConfig":
        if not path.is_file():
            raise VoiceLoadError(f"voice config not found: {path} (a Piper voice needs its .onnx.json beside the .onnx)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VoiceLoadError(f"voice config {path} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | str = "<dict>") -> "VoiceConfig":
        try:
            id_map = {str(k): tuple(int(i) for i in v) for k, v in data["phoneme_id_map"].items()}
            sample_rate = int(data["audio"]["sample_rate"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VoiceLoadError(f"voice config {path} lacks a required field ({exc}); is it a Piper .onnx.json?") from exc
        for symbol in ("^", "$", "_"):
            if symbol not in id_map:
                raise VoiceLoadError(f"voice config {path}: phoneme_id_map has no {symbol!r} (BOS/EOS/PAD)")
        inference = data.get("inference", {})
        language = data.get("language", {})
        return cls(
            sample_rate=sample_rate,
            espeak_voice=str(data.get("espeak", {}).get("voice", "en-us")),
            phoneme_type=str(data.get("phoneme_type", "espeak")),
            phoneme_id_map=id_map,
            num_symbols=int(data.get("num_symbols", max(max(v) for v in id_map.values()) + 1)),
            num_speakers=int(data.get("num_speakers", 1)),
            speaker_id_map={str(k): int(v) for k, v in data.get("speaker_id_map", {}).items()},
            noise_scale=float(inference.get("noise_scale", 0.667)),
            length_scale=float(inference.get("length_scale", 1.0)),
            noise_w=float(inference.get("noise_w", 0.8)),
            name=str(data.get("dataset", Path(str(path)).name.split(".")[0])),
            language=str(language.get("code", "")) if isinstance(language, dict) else str(language),
            raw=data,
        )
