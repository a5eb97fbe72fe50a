"""Strict loader: configs from header shapes, precise key errors, weight-norm / BatchNorm folding."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.errors import ModelNotAvailableError, VoiceLoadError
from engine.models.chatterbox.checkpoint import (
    FrozenBatchNorm,
    WNConv1d,
    export_official,
    load_module,
    read_header,
)
from engine.models.chatterbox.model import ChatterboxConfig, load_chatterbox
from engine.models.chatterbox.random_checkpoint import random_model, tiny_config


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_config_is_derived_from_header_shapes(tiny_ckpt):
    assert ChatterboxConfig.from_folder(tiny_ckpt) == tiny_config()
    header = read_header(tiny_ckpt / "t3_cfg.safetensors")
    assert header["tfmr.layers.0.self_attn.q_proj.weight"].dtype == "F16"
    assert header["speech_emb.weight"].shape == (8194, 128)


def test_loaded_weights_match_the_writer(tiny_ckpt):
    loaded = load_chatterbox(tiny_ckpt)
    ref = random_model(tiny_config(), seed=0)
    a, b = loaded.s3gen.state_dict(), ref.s3gen.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5, msg=k)
    torch.testing.assert_close(loaded.t3.tfmr.layers[1].self_attn.wqkv.weight,
                               ref.t3.tfmr.layers[1].self_attn.wqkv.weight, rtol=1e-3, atol=1e-3)


def _edit(path, fn):
    sd = load_file(str(path))
    fn(sd)
    save_file(sd, str(path))


def test_missing_key_is_named(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")
    _edit(d / "s3gen.safetensors", lambda sd: sd.pop("flow.encoder.encoders.0.self_attn.pos_bias_u"))
    with pytest.raises(VoiceLoadError, match=r"missing keys: flow\.encoder\.encoders\.0\.self_attn\.pos_bias_u"):
        load_chatterbox(d)


def test_extra_key_is_named(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")
    _edit(d / "t3_cfg.safetensors", lambda sd: sd.__setitem__("tfmr.layers.0.mlp.extra_proj.weight", torch.zeros(2)))
    with pytest.raises(VoiceLoadError, match=r"unexpected keys: tfmr\.layers\.0\.mlp\.extra_proj\.weight"):
        load_chatterbox(d)


def test_misshaped_key_is_named_with_both_shapes(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")
    _edit(d / "t3_cfg.safetensors", lambda sd: sd.__setitem__("tfmr.layers.1.self_attn.k_proj.weight", torch.zeros(128, 64)))
    with pytest.raises(VoiceLoadError, match=r"tfmr\.layers\.1\.self_attn\.k_proj\.weight has shape \[128, 64\], expected \[128, 128\]"):
        load_chatterbox(d)


def test_missing_file_is_model_not_available(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")
    (d / "ve.safetensors").unlink()
    with pytest.raises(ModelNotAvailableError, match="missing ve.safetensors.*models download chatterbox"):
        load_chatterbox(d)


def test_optional_and_ignored_keys(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")
    _edit(d / "s3gen.safetensors", lambda sd: sd.update({"tokenizer._mel_filters": torch.zeros(128, 201),
                                                         "tokenizer.window": torch.zeros(400)}))
    load_chatterbox(d)


def test_legacy_weight_norm_names_are_accepted(tiny_ckpt, tmp_path):
    d = _copy(tiny_ckpt, tmp_path / "c")

    def rename(sd):
        for k in [k for k in sd if k.startswith("mel2wav.conv_pre.parametrizations")]:
            new = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
            sd[new] = sd.pop(k)

    _edit(d / "s3gen.safetensors", rename)
    load_chatterbox(d)


def test_weight_norm_fold_matches_torch(tmp_path):
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(4, 6, 3))
    with torch.no_grad():
        conv.parametrizations.weight.original0.uniform_(0.5, 2.0)
    sd = {k: v.detach().contiguous() for k, v in conv.state_dict().items()}
    save_file(sd, str(tmp_path / "wn.safetensors"))
    ours = WNConv1d(4, 6, 3)
    load_module(ours, tmp_path / "wn.safetensors")
    x = torch.randn(2, 4, 10)
    torch.testing.assert_close(ours(x), conv(x))


def test_batchnorm_fold_matches_torch(tmp_path):
    bn = torch.nn.BatchNorm1d(5).eval()
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    save_file(dict(bn.state_dict()), str(tmp_path / "bn.safetensors"))
    ours = FrozenBatchNorm(5)
    load_module(ours, tmp_path / "bn.safetensors")
    x = torch.randn(3, 5, 7)
    torch.testing.assert_close(ours(x), bn(x))


def test_export_round_trip_is_exact_for_fp32():
    model = random_model(tiny_config(), seed=1)
    official = export_official(model.ve)
    assert set(official) == {f"lstm.{w}_l{i}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") for i in range(3)} | {
        "proj.weight", "proj.bias"}
