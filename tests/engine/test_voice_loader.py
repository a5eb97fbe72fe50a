"""The .onnx loader on a tiny random multi-speaker voice exported the way Piper's exporter names
things (renamed embedding, anonymous folded flow convs, folded dp logs, shape constants)."""

import json
import math

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

from engine.config import SynthesisOptions
from engine.errors import InputError, VoiceLoadError
from engine.models.piper.config import PiperArch
from engine.models.piper.model import PiperVITS
from engine.models.piper.onnx_weights import read_voice_onnx

ARCH = PiperArch(
    n_vocab=256, hidden_channels=16, inter_channels=16, filter_channels=32, n_heads=2, n_layers=2, window_size=4,
    ffn_kernel_size=3, dp_filter_channels=16, dp_kernel_size=3, dp_n_layers=3, n_flows=2, flow_hidden_channels=16,
    flow_kernel_size=5, flow_dilation_rate=1, flow_n_layers=2, resblock="2", resblock_kernel_sizes=(3, 5),
    resblock_dilation_sizes=((1, 2), (2, 6)), upsample_rates=(4, 4), upsample_kernel_sizes=(8, 8),
    upsample_initial_channel=32, n_speakers=3, gin_channels=8,
)


def _conv_attrs(module: torch.nn.Module) -> dict:
    return {"strides": list(module.stride), "dilations": list(module.dilation), "pads": [module.padding[0]] * 2}


def export_like_piper(model: PiperVITS, path, extra_initializers=(), drop=()):
    """Write an ONNX file whose initializers and node names follow Piper's exporter."""
    inits, nodes = [], []
    anonymous = iter(range(9000, 10000))
    convs = {name: m for name, m in model.named_modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.ConvTranspose1d))}
    for key, tensor in model.state_dict().items():
        if key in drop:
            continue
        value = tensor.numpy()
        module, _, leaf = key.rpartition(".")
        name = key
        if key == "enc_p.emb.weight":
            name = "sid_alias"  # Piper exports the text embedding under another name
            nodes.append(helper.make_node("Gather", [name, "input"], ["emb"], name="/enc_p/emb/Gather"))
        elif key == "dp.flows.0.logs":
            name, value = "/dp/flows.0/Exp_output_0", np.exp(-value)
            nodes.append(helper.make_node("Mul", ["z", name], ["z2"], name="/dp/flows.0/Mul"))
        elif key.startswith("flow.") and ".enc." in key and leaf == "weight":
            name = f"onnx::Conv_{next(anonymous)}"  # weight-norm folded and renamed
        if module in convs and leaf in ("weight", "bias"):
            op = "ConvTranspose" if isinstance(convs[module], torch.nn.ConvTranspose1d) else "Conv"
            node_name = "/" + module.replace(".", "/") + f"/{op}"
            existing = next((n for n in nodes if n.name == node_name), None)
            if existing is None:
                nodes.append(helper.make_node(op, ["x", "", ""], [node_name + "_out"], name=node_name, **_conv_attrs(convs[module])))
                existing = nodes[-1]
            existing.input[1 if leaf == "weight" else 2] = name
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
    inits.append(numpy_helper.from_array(np.array(math.sqrt(16), dtype=np.float32), "/enc_p/Constant_output_0"))
    inits.extend(extra_initializers)
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", onnx.TensorProto.INT64, [1, None])], [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph), str(path))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, joe_paths):
    torch.manual_seed(0)
    model = PiperVITS(ARCH).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    folder = tmp_path_factory.mktemp("voice")
    export_like_piper(model, folder / "tiny.onnx")
    config = json.loads(joe_paths[1].read_text())
    config.update(num_speakers=3, speaker_id_map={"ann": 0, "bob": 1, "cy": 2}, dataset="tiny")
    (folder / "tiny.onnx.json").write_text(json.dumps(config))
    return model, folder / "tiny.onnx"


def test_architecture_is_derived_from_shapes_and_attributes(tiny):
    _, path = tiny
    weights = read_voice_onnx(path)
    assert weights.arch == ARCH
    assert weights.constants == ["/enc_p/Constant_output_0"]


def test_every_parameter_is_mapped_exactly(tiny):
    model, path = tiny
    state = read_voice_onnx(path).state
    expected = model.state_dict()
    assert set(state) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_multi_speaker_voice_synthesizes_per_speaker(tiny, monkeypatch, tmp_path):
    from engine import AdvancedTTSOptimizer, OptimizationConfig, OptimizedTTSWrapper, load_model

    monkeypatch.setenv("TTS_TURBO_CACHE", str(tmp_path))
    voice = load_model(str(tiny[1]), "cpu")
    assert voice.describe()["num_speakers"] == 3
    tts = OptimizedTTSWrapper(voice, AdvancedTTSOptimizer(OptimizationConfig(), "cpu"))
    options = SynthesisOptions(noise_scale=0.0, noise_w=0.0, normalize=False)
    a = tts.generate("Hello there.", options, speaker_id=0).audio
    b = tts.generate("Hello there.", options, speaker_id=2).audio
    assert len(a) > 0 and not (len(a) == len(b) and np.allclose(a, b))
    with pytest.raises(InputError, match="speaker 3 does not exist: this voice has 3 speaker"):
        tts.generate("Hello there.", options, speaker_id=3)
    again = load_model(str(tiny[1]), "cpu")
    assert again.load_info["from_cache"] is True, "second load reads the safetensors cache"


def test_missing_parameter_is_named(tiny, tmp_path):
    model, _ = tiny
    export_like_piper(model, tmp_path / "broken.onnx", drop=("dec.conv_post.weight",))
    from engine.models.piper.voice import build_model

    weights = read_voice_onnx(tmp_path / "broken.onnx")
    with pytest.raises(VoiceLoadError, match=r"missing 1 \[dec\.conv_post\.weight\]"):
        build_model(weights.state, weights.arch, "broken.onnx")


def test_unknown_tensor_is_an_error_not_ignored(tiny, tmp_path):
    model, _ = tiny
    stray = numpy_helper.from_array(np.zeros((4, 4), dtype=np.float32), "mystery_weights")
    export_like_piper(model, tmp_path / "stray.onnx", extra_initializers=[stray])
    with pytest.raises(VoiceLoadError, match="unrecognised initializer 'mystery_weights' with shape \\[4, 4\\]"):
        read_voice_onnx(tmp_path / "stray.onnx")
