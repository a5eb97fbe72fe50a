"""Read a Piper voice `.onnx` into a state dict for `PiperVITS`, and derive its architecture.

The exporter renames some tensors, so names alone are not enough. We index, for every initializer,
the nodes that consume it and at which input slot, then map:
  a. names that already carry a module path (`enc_p.`, `dec.`, `flow.`, `dp.`, `emb_g.`) → themselves;
  b. the single consumer is an embedding `Gather` at input 0 → that module's `.weight`
     (Piper exports `enc_p.emb.weight` as `sid` on single-speaker voices);
  c. the single consumer is a `Conv`/`ConvTranspose` at input 1/2 → the node's module path +
     `.weight`/`.bias` (weight-normed flow convs are exported folded as `onnx::Conv_NNNN`);
  d. constant-folded `/dp/flows.0/Exp_output_0` = exp(-logs) → `dp.flows.0.logs = -ln(value)`;
  e. everything else must be a shape/scalar constant (≤ 8 elements, consumed only by shape ops);
     it is counted as such, and anything larger is an error.
Anonymous `onnx::Conv_N` numbers are never keyed on: they differ per export.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import VoiceLoadError
from .config import PiperArch

MODULE_PREFIXES = ("enc_p.", "dec.", "flow.", "dp.", "emb_g.")
FOLDED_LOGS = re.compile(r"^/dp/(post_)?flows\.(\d+)/Exp_output_0$")
CONSTANT_MAX_ELEMENTS = 8


@dataclass
class OnnxWeights:
    state: dict[str, torch.Tensor]
    arch: PiperArch
    constants: list[str]
    """Initializers accounted for as shape/scalar constants of the exported graph."""


def read_voice_onnx(path: Path) -> OnnxWeights:
    graph = _load_graph(path)
    inits = {init.name: init for init in graph.initializer}
    consumers: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    attrs: dict[str, dict[str, list[int]]] = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name in inits:
                consumers[name].append((node.op_type, node.name, slot))
        if node.op_type in ("Conv", "ConvTranspose"):
            attrs[_module_path(node.name)] = {a.name: list(a.ints) for a in node.attribute}

    from onnx import numpy_helper

    state: dict[str, torch.Tensor] = {}
    constants: list[str] = []
    for name, init in inits.items():
        array = numpy_helper.to_array(init)
        key, value = _map_initializer(name, array, consumers[name])
        if key is None:
            constants.append(name)
            continue
        if key in state:
            raise VoiceLoadError(f"{path.name}: two initializers map to parameter {key!r} (second: {name!r})")
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
    arch = derive_arch(state, attrs, path.name)
    return OnnxWeights(state=state, arch=arch, constants=constants)


def _load_graph(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.exists():
        raise VoiceLoadError(f"voice file not found: {path}")
    if path.stat().st_size == 0:
        raise VoiceLoadError(f"voice file is empty (0 bytes): {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise VoiceLoadError(f"voice file {path} is not a readable ONNX model (truncated or corrupt?): {exc}") from exc
    if not model.graph.initializer:
        raise VoiceLoadError(f"voice file {path} holds no weights (truncated or not a Piper voice)")
    return model.graph


def _module_path(node_name: str) -> str:
    """'/flow/flows.6/enc/in_layers.0/Conv' → 'flow.flows.6.enc.in_layers.0'."""
    return ".".join(part for part in node_name.split("/")[:-1] if part)


def _map_initializer(name: str, array: np.ndarray, uses: list[tuple[str, str, int]]):
    if name.startswith(MODULE_PREFIXES):
        return name, array
    folded = FOLDED_LOGS.match(name)
    if folded:
        prefix = "dp.post_flows" if folded.group(1) else "dp.flows"
        return f"{prefix}.{folded.group(2)}.logs", -np.log(array)
    if len(uses) == 1:
        op, node, slot = uses[0]
        if op == "Gather" and slot == 0 and node.endswith("/Gather"):
            return _module_path(node) + ".weight", array
        if op in ("Conv", "ConvTranspose") and slot in (1, 2):
            return _module_path(node) + (".weight" if slot == 1 else ".bias"), array
    if array.size <= CONSTANT_MAX_ELEMENTS:
        return None, array
    where = ", ".join(f"{op} {node}[{slot}]" for op, node, slot in uses) or "no consumer"
    raise VoiceLoadError(f"unrecognised initializer {name!r} with shape {list(array.shape)} (used by {where})")


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    return len({m.group(1) for key in state if (m := regex.match(key))})


def _shape(state: dict[str, torch.Tensor], key: str, source: str) -> torch.Size:
    if key not in state:
        raise VoiceLoadError(f"{source}: missing parameter {key!r}; this does not look like a Piper VITS voice")
    return state[key].shape


def derive_arch(state: dict[str, torch.Tensor], attrs: dict[str, dict[str, list[int]]], source: str) -> PiperArch:
    """Every hyperparameter from tensor shapes or conv attributes of the graph."""
    s = lambda key: _shape(state, key, source)
    n_vocab, hidden = s("enc_p.emb.weight")
    rel = s("enc_p.encoder.attn_layers.0.emb_rel_k")
    ffn = s("enc_p.encoder.ffn_layers.0.conv_1.weight")
    dp_sep = s("dp.convs.convs_sep.0.weight")
    flow_in = s("flow.flows.0.enc.in_layers.0.weight")
    flow_layers = _count(state, r"flow\.flows\.0\.enc\.in_layers\.(\d+)\.weight")
    n_ups = _count(state, r"dec\.ups\.(\d+)\.weight")
    n_res = _count(state, r"dec\.resblocks\.(\d+)\.")
    if n_ups == 0 or n_res % n_ups:
        raise VoiceLoadError(f"{source}: decoder has {n_ups} upsampling layers and {n_res} resblocks")
    per_stage = n_res // n_ups
    kind = "1" if any(k.startswith("dec.resblocks.0.convs1.") for k in state) else "2"
    conv_list = "convs1" if kind == "1" else "convs"
    kernels, dilations = [], []
    for j in range(per_stage):
        n_convs = _count(state, rf"dec\.resblocks\.{j}\.{conv_list}\.(\d+)\.weight")
        kernels.append(int(s(f"dec.resblocks.{j}.{conv_list}.0.weight")[2]))
        dilations.append(tuple(_attr(attrs, f"dec.resblocks.{j}.{conv_list}.{m}", "dilations", source) for m in range(n_convs)))
    gin = int(state["emb_g.weight"].shape[1]) if "emb_g.weight" in state else 0
    return PiperArch(
        n_vocab=int(n_vocab),
        hidden_channels=int(hidden),
        inter_channels=int(s("enc_p.proj.weight")[0]) // 2,
        filter_channels=int(ffn[0]),
        n_heads=int(hidden) // int(rel[2]),
        n_layers=_count(state, r"enc_p\.encoder\.attn_layers\.(\d+)\.conv_q\.weight"),
        window_size=(int(rel[1]) - 1) // 2,
        ffn_kernel_size=int(ffn[2]),
        dp_filter_channels=int(s("dp.pre.weight")[0]),
        dp_kernel_size=int(dp_sep[2]),
        dp_n_layers=_count(state, r"dp\.convs\.convs_sep\.(\d+)\.weight"),
        n_flows=_count(state, r"flow\.flows\.(\d+)\.pre\.weight"),
        flow_hidden_channels=int(s("flow.flows.0.pre.weight")[0]),
        flow_kernel_size=int(flow_in[2]),
        flow_dilation_rate=_attr(attrs, "flow.flows.0.enc.in_layers.1", "dilations", source) if flow_layers > 1 else 1,
        flow_n_layers=flow_layers,
        resblock=kind,
        resblock_kernel_sizes=tuple(kernels),
        resblock_dilation_sizes=tuple(dilations),
        upsample_rates=tuple(_attr(attrs, f"dec.ups.{i}", "strides", source) for i in range(n_ups)),
        upsample_kernel_sizes=tuple(int(s(f"dec.ups.{i}.weight")[2]) for i in range(n_ups)),
        upsample_initial_channel=int(s("dec.conv_pre.weight")[0]),
        n_speakers=int(state["emb_g.weight"].shape[0]) if gin else 1,
        gin_channels=gin,
    )


def _attr(attrs: dict[str, dict[str, list[int]]], module: str, name: str, source: str) -> int:
    try:
        return int(attrs[module][name][0])
    except (KeyError, IndexError) as exc:
        raise VoiceLoadError(f"{source}: no {name} attribute on the conv node of {module}") from exc
