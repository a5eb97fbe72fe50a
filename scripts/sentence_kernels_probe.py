"""Stage A's two largest costs at one sentence (1 × 480 tokens, joe's 192 channels), swept:
the relative attention kernel at several launch shapes, against another revision's kernel
(`--baseline` path to its `attention.py`), and the fp32 products (cuBLAS, TF32 off) against
`exact_conv1d` at small tiles. The attention's rows: query block, key block, warps and runs of
keys merged by a second launch (splits). Graph time per launch (median of replays), registers and
spills of each Triton build, and error against the first row.

    python3 scripts/sentence_kernels_probe.py [--baseline .carry/attention_old.py] [--only attention|products]
"""

from __future__ import annotations

import argparse
import itertools
import types

import torch
import torch.nn.functional as F
import triton

import engine.kernels.attention as attention
from engine.kernels import conv1d
from engine.precision import exact_fp32

from kernel_bench import graph_time, rel_err

SHAPES = ((1, 480), (16, 256))


def load(path: str):
    """The kernel module at `path`, beside ours in `engine.kernels`, without registering its
    `triton_op` a second time."""
    source = open(path).read().split("@triton_op")[0]
    module = types.ModuleType("engine.kernels.baseline_attention")
    module.__package__, module.__file__ = "engine.kernels", path
    exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - our own file of another revision
    return module


def build_info(kernel) -> str:
    """Registers and spills of the kernel's last build, where this Triton reports them."""
    try:
        for per_device in kernel.device_caches.values():
            compiled = list(per_device[0].values())[-1]
            return f"regs {compiled.n_regs} spills {compiled.n_spills}"
    except (AttributeError, IndexError, TypeError):
        pass
    return ""


def attention_rows(baseline) -> None:
    heads, window, dk = 2, 4, 96
    for batch, tokens in SHAPES:
        torch.manual_seed(0)
        qkv = torch.randn(batch, 3 * heads * dk, tokens, device="cuda")
        rel_k, rel_v = torch.randn(2 * window + 1, dk, device="cuda") * 0.2, torch.randn(2 * window + 1, dk, device="cuda") * 0.2
        lengths = torch.randint(tokens // 2, tokens + 1, (batch,), device="cuda", dtype=torch.int32)
        lengths[0] = tokens
        mask = torch.arange(tokens, device="cuda")[None, None] < lengths[:, None, None]
        inside = mask.expand(batch, heads * dk, tokens)
        ref = None
        variants = [("baseline", baseline, {})] if baseline else []
        variants.append(("as configured", attention, {}))
        for block_m, block_n, warps, splits in itertools.product((16, 32), (32, 64), (4, 8), (1, 2, 4) if batch == 1 else (1,)):
            settings = dict(BLOCK_M=block_m, BLOCK_N=block_n, NUM_WARPS=warps, splits_for=lambda *args, splits=splits: splits)
            variants.append((f"q{block_m} k{block_n} w{warps} s{splits}", attention, settings))
        for name, module, settings in variants:
            saved = {key: getattr(module, key) for key in settings}
            for key, value in settings.items():
                setattr(module, key, value)
            try:
                fn = lambda: module.launch(qkv, rel_k, rel_v, lengths, heads, dk**-0.5)  # noqa: E731
                out = fn()
                ref = out if ref is None else ref
                ms = graph_time(fn)
                print(f"attention {batch}x{tokens} {name:<20} {ms * 1e3:8.1f} µs  err {rel_err(out[inside], ref[inside]):.1e}  {build_info(module.relative_attention_kernel)}", flush=True)
            except Exception as error:  # noqa: BLE001 - a variant that fails to build is reported, not fatal
                print(f"attention {batch}x{tokens} {name:<20} failed: {type(error).__name__}: {str(error)[:200]}", flush=True)
            finally:
                for key, value in saved.items():
                    setattr(module, key, value)


PRODUCTS = (
    ("qkv 1x1", 192, 576, 1), ("out 1x1", 192, 192, 1), ("ffn conv_1 k3", 192, 768, 3), ("ffn conv_2 k3", 768, 192, 3),
    ("dds 1x1", 192, 192, 1), ("flow proj 1x1", 192, 29, 1),
)
BACK_TO_BACK = 10
"""Launches per graph replay: the time per launch then holds no graph launch or idle gap."""


def product_rows() -> None:
    """Per product at one sentence: cuBLAS, `exact_conv1d` as configured (with its adds of the
    reduction's runs, which torch.compile fuses into the consumer), and the narrow tiles' kernel
    alone with the reduction cut into 1–6 runs."""
    tokens = 480
    for name, c_in, c_out, k in PRODUCTS:
        torch.manual_seed(0)
        x = torch.randn(1, c_in, tokens, device="cuda")
        weight, bias = torch.randn(c_out, c_in, k, device="cuda") * c_in**-0.5, torch.randn(c_out, device="cuda")
        taps = weight.permute(2, 0, 1).contiguous()
        lengths = torch.full((1,), tokens - 30, device="cuda", dtype=torch.int32)
        inside = (torch.arange(tokens, device="cuda") < tokens - 30).expand(1, c_out, tokens)
        xm = x * inside[:1, :1]
        steps = k * triton.cdiv(c_in, conv1d.NARROW_TILES[1])
        with exact_fp32():
            ref = F.conv1d(xm, weight, bias, padding=k // 2)
            cublas = lambda: F.conv1d(xm, weight, bias, padding=k // 2)  # noqa: E731
            print(f"product {name:<14} cuBLAS fp32          {graph_time(cublas, BACK_TO_BACK) * 1e3:8.1f} µs", flush=True)
            as_configured = lambda: torch.ops.tts_turbo.exact_conv1d(x, taps, bias, lengths, k // 2, False, True)  # noqa: E731
            out = as_configured()
            runs = conv1d.narrow_runs(k, c_in)
            print(f"product {name:<14} as configured, {runs} runs {graph_time(as_configured, BACK_TO_BACK) * 1e3:8.1f} µs  err {rel_err(out[inside], ref[inside]):.1e}", flush=True)
            for splits, block_t, fill in itertools.product((1, 2, 3, 4, 6), (32, 64, 128), (0, 1, 2)):
                if splits > steps or (fill and block_t != 64):
                    continue
                def fn(splits=splits, block_t=block_t, fill=fill):
                    return conv1d.conv1d(x, taps, None, lengths, padding=k // 2, block_t=block_t, channel_blocks=conv1d.NARROW_TILES,
                                         num_stages=2 if block_t == 128 else 3, splits=splits, zero_past=splits == 1, fill=fill)
                label = f"{splits} runs t{block_t}{f' fill {fill}' if fill else ''}"
                try:
                    out = fn()
                    summed = (out.sum(0) if splits > 1 else out) + bias[:, None]
                    print(f"product {name:<14} {label:<18} kernel alone {graph_time(fn, BACK_TO_BACK) * 1e3:8.1f} µs  err {rel_err(summed[inside], ref[inside]):.1e}", flush=True)
                except Exception as error:  # noqa: BLE001
                    print(f"product {name:<14} {label} failed: {type(error).__name__}: {str(error)[:200]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", help="another revision's engine/kernels/attention.py")
    parser.add_argument("--only", choices=("attention", "products"))
    args = parser.parse_args()
    with torch.inference_mode():
        if args.only != "products":
            attention_rows(load(args.baseline) if args.baseline else None)
        if args.only != "attention":
            product_rows()


if __name__ == "__main__":
    main()
