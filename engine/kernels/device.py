"""What a kernel launch needs to know of the GPU: its multiprocessors, its shared memory per block,
and how deep a software pipeline fits in it."""

from __future__ import annotations

import functools
import os

import torch

try:
    from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
except ImportError:  # Triton before 3.3 has no programmatic dependent launch
    gdc_launch_dependents = gdc_wait = None


@functools.lru_cache(maxsize=None)
def multiprocessors(device: torch.device) -> int:
    return torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1


@functools.lru_cache(maxsize=None)
def shared_memory(device: torch.device) -> int:
    """Bytes of shared memory one program may use: 227 KB on an H100, 163 KB on an A100, 99 KB on
    RTX 30/40/50 cards; 0 without a GPU."""
    props = torch.cuda.get_device_properties(device) if device.type == "cuda" else None
    return getattr(props, "shared_memory_per_block_optin", 0)


SMALL_BATCH_ROWS = 2048
"""Batch·positions below which the encoder's kernels spread a batch over more, smaller programs
(one sentence is ~500): the attention splits its keys into runs, the fp32 products take narrower
output tiles. One threshold for both, since under torch.compile's dynamic shapes every comparison
of sizes is a guard and each new guard a recompile."""


def deepest(needs_kb: tuple[int, ...], shared: int) -> int:
    """The most software-pipeline stages that fit: `needs_kb[s - 1]` is what a kernel's largest
    tiles take with s stages (from Triton builds for sm_86/sm_90/sm_120, which agree). At least 1:
    where not even one stage fits, the launch fails and the caller's fallback takes over."""
    return max((stages for stages, kb in enumerate(needs_kb, 1) if kb * 1024 <= shared), default=1)


@functools.lru_cache(maxsize=None)
def dependent_launch(device: torch.device) -> bool:
    """Whether kernels may launch before the one ahead of them on the stream has finished
    (programmatic dependent launch, sm_90 and later): the next kernel's launch latency then hides
    behind the last programs of the current one, which matters for stage B's ~65 short launches
    in a row at one sentence."""
    return gdc_wait is not None and device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


def launch_arguments(device: torch.device) -> dict[str, bool]:
    """What a stage-B kernel's launch adds for `dependent_launch`: its `PDL` switch (the wait in
    `conv1d.after_predecessor`) and Triton's launch option; nothing elsewhere."""
    return {"PDL": True, "launch_pdl": True} if dependent_launch(device) else {}


def compile_arguments(mode: str, device: torch.device) -> dict[str, object]:
    """torch.compile's arguments for `mode`. Where kernels may launch dependently (see
    `dependent_launch`) and this torch's Inductor can generate such kernels, `mode` becomes its
    options with that switched on: a sentence's compiled stage A is ~100 short Inductor kernels in
    a row. `TORCHINDUCTOR_ENABLE_PDL`, where the user set it, decides instead."""
    from torch._inductor import config, list_mode_options

    if "TORCHINDUCTOR_ENABLE_PDL" in os.environ or not hasattr(config.triton, "enable_pdl") or not dependent_launch(device):
        return {"mode": mode}
    return {"options": {**list_mode_options(mode), "triton.enable_pdl": True}}


def compiles_dependent_launches(arguments: dict[str, object]) -> bool:
    """Whether torch.compile with `arguments` (from `compile_arguments`) generates dependently
    launched kernels: our option where given, else Inductor's own setting (the user's
    `TORCHINDUCTOR_ENABLE_PDL`, or its default)."""
    from torch._inductor import config

    return bool(arguments.get("options", {}).get("triton.enable_pdl", getattr(config.triton, "enable_pdl", False)))
