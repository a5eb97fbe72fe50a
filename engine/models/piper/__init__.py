"""Piper (VITS) voices run by our own PyTorch implementation, weights read from the voice .onnx."""

from ...registry import Family
from .pipeline import PiperTTS, is_piper_spec, load_piper

FAMILY = Family(
    name="piper",
    matches=is_piper_spec,
    load=load_piper,
    description="Piper VITS voices (.onnx + .onnx.json); 'default' is the bundled en_US-joe-medium",
)

__all__ = ["FAMILY", "PiperTTS", "load_piper"]
