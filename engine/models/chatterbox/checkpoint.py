"""Strict loading of the official Chatterbox safetensors into our modules.

Every key in a file is either consumed by one of our parameters or named in an explicit ignore
list; every parameter we own is fed. Shapes and dtypes come from the safetensors header, so
configs are derived before a single weight is read. Weight norm (`parametrizations.weight.
original0/1` or the legacy `weight_g/weight_v`) and BatchNorm running statistics are folded
once here, never at run time (Salimans & Kingma 2016, weight normalization).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ...errors import VoiceLoadError

_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_WN = ("parametrizations.weight.original0", "parametrizations.weight.original1")
_WN_LEGACY = ("weight_g", "weight_v")


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]


def read_header(path: str | Path) -> dict[str, TensorInfo]:
    """Names, dtypes and shapes of a safetensors file, from its JSON header only."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError) as exc:
        raise VoiceLoadError(f"{path}: not a readable safetensors file ({exc})") from exc
    return {k: TensorInfo(v["dtype"], tuple(v["shape"])) for k, v in header.items() if k != "__metadata__"}


@dataclass(frozen=True)
class Source:
    """How one of our tensors is made from official tensors (keys and their expected shapes)."""

    kind: str  # copy | cat | transpose | weight_norm | bn_scale | bn_shift
    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    eps: float = 1e-5


class WNConv1d(nn.Conv1d):
    """Conv1d trained with weight norm; the folded weight is stored, g and v are read at load."""

    def official_keys(self) -> dict[str, Source]:
        w = tuple(self.weight.shape)
        return {"weight": Source("weight_norm", _WN, ((w[0],) + (1,) * (len(w) - 1), w))}


class WNConvTranspose1d(nn.ConvTranspose1d):
    """ConvTranspose1d trained with weight norm (norm over dim 0 = input channels)."""

    def official_keys(self) -> dict[str, Source]:
        w = tuple(self.weight.shape)
        return {"weight": Source("weight_norm", _WN, ((w[0],) + (1,) * (len(w) - 1), w))}


class FrozenBatchNorm(nn.Module):
    """Inference BatchNorm as a per-channel affine map; the running stats are folded at load (Ioffe & Szegedy 2015)."""

    def __init__(self, channels: int, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.affine, self.eps = affine, eps
        self.scale = nn.Parameter(torch.ones(channels), requires_grad=False)
        self.shift = nn.Parameter(torch.zeros(channels), requires_grad=False)

    def official_keys(self) -> dict[str, Source]:
        c = (self.scale.shape[0],)
        names = ("weight", "bias", "running_mean", "running_var") if self.affine else ("running_mean", "running_var")
        shapes = (c,) * len(names)
        return {
            "scale": Source("bn_scale", names, shapes, self.eps),
            "shift": Source("bn_shift", names, shapes, self.eps),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


def bn_ignored(model: nn.Module, prefix: str = "") -> set[str]:
    """`num_batches_tracked` of every folded BatchNorm: training-only, explicitly ignored."""
    return {f"{prefix}{n}{'.' if n else ''}num_batches_tracked" for n, m in model.named_modules()
            if isinstance(m, FrozenBatchNorm)}


def official_schema(model: nn.Module, prefix: str = "") -> dict[str, Source]:
    """Our state_dict key → where it comes from in the official file."""
    schema: dict[str, Source] = {}
    for mname, module in model.named_modules():
        hook = getattr(module, "official_keys", None)
        if hook is None:
            continue
        base = f"{mname}." if mname else ""
        for local, src in hook().items():
            schema[base + local] = Source(src.kind, tuple(f"{prefix}{base}{k}" for k in src.keys), src.shapes, src.eps)
    for name, tensor in model.state_dict().items():
        if name not in schema:
            schema[name] = Source("copy", (prefix + name,), (tuple(tensor.shape),))
    return schema


def _fold(src: Source, tensors: list[torch.Tensor]) -> torch.Tensor:
    if src.kind == "copy":
        return tensors[0]
    if src.kind == "cat":
        return torch.cat(tensors, dim=0)
    if src.kind == "transpose":
        return tensors[0].t().contiguous()
    if src.kind == "weight_norm":
        g, v = (t.float() for t in tensors)
        dims = tuple(range(1, v.dim()))
        return g * v / v.norm(dim=dims, keepdim=True)
    stats = [t.float() for t in tensors]
    weight, bias, mean, var = stats if len(stats) == 4 else (torch.ones_like(stats[0]), torch.zeros_like(stats[0]), *stats)
    scale = weight / torch.sqrt(var + src.eps)
    return scale if src.kind == "bn_scale" else bias - mean * scale


def _resolve_aliases(header: dict[str, TensorInfo], schema: dict[str, Source]) -> dict[str, str]:
    """Official key → key present in the file (legacy weight-norm names accepted)."""
    alias = {}
    for src in schema.values():
        if src.kind != "weight_norm":
            continue
        for new, old in zip(src.keys, (src.keys[0][: -len(_WN[0])] + _WN_LEGACY[0], src.keys[1][: -len(_WN[1])] + _WN_LEGACY[1])):
            if new not in header and old in header:
                alias[new] = old
    return alias


def _short(keys: Iterable[str], n: int = 8) -> str:
    keys = sorted(keys)
    more = f" … and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_keys(path: Path, header: dict[str, TensorInfo], schema: dict[str, Source],
               ignore: set[str], optional: set[str] = frozenset()) -> dict[str, str]:
    """Raise VoiceLoadError naming each missing, unexpected or mis-shaped key; return the alias map."""
    alias = _resolve_aliases(header, schema)
    expected: dict[str, tuple[int, ...]] = {}
    for src in schema.values():
        expected.update(zip(src.keys, src.shapes))
    present = {alias.get(k, k) for k in expected}
    missing = [k for k in expected if alias.get(k, k) not in header and k not in optional]
    unexpected = [k for k in header if k not in present and k not in ignore and k not in optional]
    if missing:
        raise VoiceLoadError(f"{path.name}: missing keys: {_short(missing)}")
    if unexpected:
        raise VoiceLoadError(f"{path.name}: unexpected keys: {_short(unexpected)}")
    for key, shape in expected.items():
        info = header.get(alias.get(key, key))
        if info is not None and info.shape != shape:
            raise VoiceLoadError(f"{path.name}: key {alias.get(key, key)} has shape {list(info.shape)}, expected {list(shape)}")
        if info is not None and info.dtype not in _DTYPES:
            raise VoiceLoadError(f"{path.name}: key {key} has unsupported dtype {info.dtype}")
    return alias


def load_module(model: nn.Module, path: str | Path, prefix: str = "", ignore: set[str] = frozenset(),
                optional: set[str] = frozenset(), dtype: torch.dtype = torch.float32) -> None:
    """Fill `model` (possibly built on the meta device) from `path`; strict in both directions."""
    from safetensors import safe_open

    path = Path(path)
    header = read_header(path)
    schema = official_schema(model, prefix)
    alias = check_keys(path, header, schema, set(ignore) | bn_ignored(model, prefix), set(optional))
    state = {}
    with safe_open(str(path), framework="pt") as f:
        for name, src in schema.items():
            tensors = [f.get_tensor(alias.get(k, k)) for k in src.keys]
            value = _fold(src, tensors)
            state[name] = value.to(dtype) if value.is_floating_point() else value
    model.load_state_dict(state, strict=True, assign=True)
    rebuild_buffers(model, torch.device("cpu"))


def rebuild_buffers(model: nn.Module, device: torch.device) -> None:
    """Recompute derived (non-persistent) buffers after a meta-device build or a device move."""
    for module in model.modules():
        build = getattr(module, "build_buffers", None)
        if build is not None:
            build(device)


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """Construct without allocating or initialising weights (they come from the checkpoint)."""
    with torch.device("meta"):
        return factory()


def export_official(model: nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """Inverse of `load_module`: our (folded) tensors → the official key layout (tests, benchmarks, parity)."""
    out: dict[str, torch.Tensor] = {}
    state = model.state_dict()
    for name, src in official_schema(model, prefix).items():
        value = state[name].detach().float().cpu() if state[name].is_floating_point() else state[name].cpu()
        if src.kind == "copy":
            out[src.keys[0]] = value.contiguous()
        elif src.kind == "transpose":
            out[src.keys[0]] = value.t().contiguous()
        elif src.kind == "cat":
            sizes = [s[0] for s in src.shapes]
            for key, part in zip(src.keys, torch.split(value, sizes, dim=0)):
                out[key] = part.contiguous()
        elif src.kind == "weight_norm":
            norm = value.norm(dim=tuple(range(1, value.dim())), keepdim=True)
            out[src.keys[0]], out[src.keys[1]] = norm.contiguous(), value.contiguous()
        elif src.kind == "bn_scale":
            keys = dict(zip(("weight", "bias", "running_mean", "running_var")[-len(src.keys):], src.keys))
            out[keys["running_mean"]] = torch.zeros_like(value)
            out[keys["running_var"]] = torch.full_like(value, 1.0 - src.eps)
            if "weight" in keys:
                out[keys["weight"]] = value.clone()
            else:
                out[keys["running_var"]] = (1.0 / value.square() - src.eps).clamp(min=1e-4)
        elif src.kind == "bn_shift" and len(src.keys) == 4:
            out[src.keys[1]] = value.clone()
    for key in bn_ignored(model, prefix):
        out[key] = torch.tensor(0, dtype=torch.int64)
    return out


def conv_shape(header: dict[str, TensorInfo], key: str) -> tuple[int, ...]:
    """Shape of a (possibly weight-normed) conv/linear weight, whichever name the file uses."""
    for name in (key + ".weight", key + "." + _WN[1], key + ".weight_v"):
        if name in header:
            return header[name].shape
    raise VoiceLoadError(f"missing keys: {key}.weight (or its weight-norm form)")


def count_indexed(header: dict[str, TensorInfo], prefix: str) -> int:
    """Number of `prefix{N}.` blocks in the file (layers are counted, never assumed)."""
    idx = set()
    for k in header:
        if k.startswith(prefix):
            head = k[len(prefix):].split(".", 1)[0]
            if head.isdigit():
                idx.add(int(head))
    return max(idx) + 1 if idx else 0


def shape_of(header: dict[str, TensorInfo], key: str) -> tuple[int, ...]:
    if key not in header:
        raise VoiceLoadError(f"missing keys: {key}")
    return header[key].shape
