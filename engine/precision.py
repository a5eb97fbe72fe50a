"""Hybrid precision: half types only where measurement says the audio survives.

A model family declares, per top-level submodule, which half types it tolerates (its
`precision_policy`), from SNR measured against fp32 on real weights. The manager picks the half
type the config and the hardware allow and leaves everything else in fp32 (the fp32 islands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn

from .config import OptimizationConfig

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


@dataclass(frozen=True)
class ModulePolicy:
    """Half types a submodule tolerates, best first, with the measurement that justifies it."""

    allowed: tuple[torch.dtype, ...]
    reason: str


class exact_fp32:
    """TF32 off inside: for stages whose rounding decides the audio length (VITS durations are
    ceil'ed; TF32 shifted single frames between tokens and cost the long text 35 dB on an H100).
    A class rather than a generator: it wraps every batch's stage A, on the host path before the
    GPU starts, where a generator-based context cost ~6 µs more."""

    def __enter__(self) -> None:
        self._saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc_info) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self._saved


class PrecisionManager:
    def __init__(self, config: OptimizationConfig, device: torch.device):
        self.config = config
        self.device = device
        self.plan: dict[str, torch.dtype] = {}
        self.notes: list[str] = []

    def half_types(self) -> tuple[torch.dtype, ...]:
        """Half types this config asks for and this device can run, in order of preference."""
        wanted = []
        if self.config.enable_fp16:
            if self.device.type == "cuda":
                wanted.append(torch.float16)
            else:
                self.notes.append("fp16 needs a CUDA GPU; kept fp32 on the CPU")
        if self.config.enable_bf16:
            if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
                self.notes.append("this GPU has no bf16; kept fp32 where bf16 was asked")
            else:
                wanted.append(torch.bfloat16)
        return tuple(wanted)

    def decide(self, policy: Mapping[str, ModulePolicy]) -> dict[str, torch.dtype]:
        """Per submodule: the first half type that is both allowed and wanted, else fp32."""
        wanted = self.half_types()
        plan = {}
        for name, rule in policy.items():
            # prefer the module's own order (e.g. fp16 over bf16 for the decoder: 57 vs 39 dB)
            plan[name] = next((dt for dt in rule.allowed if dt in wanted), torch.float32)
        self.plan = plan
        return plan

    def convert_model(self, model: nn.Module, policy: Mapping[str, ModulePolicy] | None = None) -> nn.Module:
        """Cast each listed submodule to its planned dtype (others stay fp32). Idempotent."""
        if policy is not None:
            self.decide(policy)
        for name, dtype in self.plan.items():
            model.get_submodule(name).to(dtype)
        return model

    @staticmethod
    def describe(model: nn.Module) -> dict[str, str]:
        """Dtype of each top-level submodule's parameters (mixed ones are listed as such)."""
        out = {}
        for name, module in model.named_children():
            dtypes = {p.dtype for p in module.parameters()}
            out[name] = "+".join(sorted(DTYPE_NAMES.get(d, str(d)) for d in dtypes)) or "none"
        return out
