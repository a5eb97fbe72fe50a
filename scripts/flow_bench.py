"""Stage B's two halves at a chapter batch's shape, each as one CUDA graph: the flow (reverse, in
the precision and with the GEMM-form convolutions of Max speed) eager, compiled, and with a
candidate fused WaveNet layer, and the fused Triton vocoder. Says how much of stage B the flow
still is once compiled (without compile its unfused elementwise work was 14 ms of a chapter's
40 ms of stage B, run AJ), and whether the candidate is worth moving into the engine.

The candidate runs each WaveNet layer (WaveNet: van den Oord et al., 2016; in VITS's flow, Kim et
al., 2021) in three launches instead of ~10: the dilated convolution with the gate
tanh(a) · σ(b) applied to its two output halves before the store (`gated_conv_kernel`), then the
1 × 1 residual and skip products with the residual add and the running skip sum in their
epilogues (`engine.kernels.conv1d`). Values past an item's length are left unspecified, as in the
vocoder's kernels, and selected away once at the end of the stack.

    python3 scripts/flow_bench.py [--rows 16] [--frames 1152]
    TRITON_INTERPRET=1 python3 scripts/flow_bench.py --check   (the candidate against eager, on the CPU)
"""

from __future__ import annotations

import argparse
import types

import torch
import triton
import triton.language as tl

from engine.kernels.conv1d import _tanh, conv1d, dot, program_tile
from engine.models.piper.model import sequence_mask


@triton.jit
def gated_conv_kernel(
    x_ptr, w_ptr, b_ptr, len_ptr, y_ptr,
    C_in, H, T,
    stride_xb, stride_xc, stride_xt, stride_yb, stride_yc, stride_yt,
    K: tl.constexpr, DIL: tl.constexpr, PAD: tl.constexpr, EXACT: tl.constexpr,
    BLOCK_CO: tl.constexpr, BLOCK_CI: tl.constexpr, BLOCK_T: tl.constexpr,
):
    """y[c] = tanh(conv(x)[c] + b[c]) · σ(conv(x)[H + c] + b[H + c]) for c < H, with the weight
    arranged (K, 2H, C_in): one input tile feeds both halves' products."""
    t, co, b, live, valid = program_tile(len_ptr, BLOCK_CO, BLOCK_T)
    if live:
        x_base = x_ptr + b * stride_xb
        acc_t = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        acc_s = tl.zeros((BLOCK_CO, BLOCK_T), dtype=tl.float32)
        n_ci = tl.cdiv(C_in, BLOCK_CI)
        for step in range(K * n_ci):
            j = step // n_ci
            ci = (step - j * n_ci) * BLOCK_CI + tl.arange(0, BLOCK_CI)
            pos = t + (j * DIL - PAD)
            x_ok = (ci[:, None] < C_in) & ((pos >= 0) & (pos < valid))[None, :]
            x = tl.load(x_base + ci[:, None] * stride_xc + pos[None, :] * stride_xt, mask=x_ok, other=0.0)
            w_ok = (co[:, None] < H) & (ci[None, :] < C_in)
            w_tap = w_ptr + j * 2 * H * C_in + co[:, None] * C_in + ci[None, :]
            w_t = tl.load(w_tap, mask=w_ok, other=0.0)
            w_s = tl.load(w_tap + H * C_in, mask=w_ok, other=0.0)
            acc_t = acc_t + dot(w_t, x.to(w_t.dtype), EXACT)
            acc_s = acc_s + dot(w_s, x.to(w_s.dtype), EXACT)
        co_ok = co < H
        acc_t += tl.load(b_ptr + co, mask=co_ok, other=0.0).to(tl.float32)[:, None]
        acc_s += tl.load(b_ptr + H + co, mask=co_ok, other=0.0).to(tl.float32)[:, None]
        gated = _tanh(acc_t) * tl.sigmoid(acc_s)
        ok = co_ok[:, None] & (t[None, :] < T)
        tl.store(y_ptr + b * stride_yb + co[:, None] * stride_yc + t[None, :] * stride_yt, gated.to(y_ptr.dtype.element_ty), mask=ok)


def gated_conv(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, lengths: torch.Tensor, dilation: int, padding: int, block_t: int = 128) -> torch.Tensor:
    """x (B, C_in, T) → (B, H, T), `taps` (K, 2H, C_in); same-length convolution."""
    k, two_h, c_in = taps.shape
    b, _, t = x.shape
    h = two_h // 2
    y = torch.empty((b, t, h), device=x.device, dtype=x.dtype).transpose(1, 2)  # channels-last, as the conv1d kernels
    block_co, block_ci = 64, 64 if c_in >= 64 else triton.next_power_of_2(c_in)
    grid = (triton.cdiv(t, block_t), triton.cdiv(h, block_co), b)
    gated_conv_kernel[grid](
        x, taps, bias, lengths, y, c_in, h, t, *x.stride(), *y.stride(),
        K=k, DIL=dilation, PAD=padding, EXACT=taps.dtype == torch.float32,
        BLOCK_CO=block_co, BLOCK_CI=block_ci, BLOCK_T=block_t, num_warps=4,
    )
    return y


class FusedWN:
    """A flow coupling's WaveNet stack (`model.WN`, no speaker conditioning) in fused launches."""

    def __init__(self, wn):
        self.hidden = wn.hidden
        self.in_layers = [(c.weight.detach().permute(2, 0, 1).contiguous(), c.bias.detach(), c.dilation[0], c.padding[0]) for c in wn.in_layers]
        self.res_skip = []
        for i, c in enumerate(wn.res_skip_layers):
            w, bias = c.weight.detach().permute(2, 0, 1).contiguous(), c.bias.detach()
            if i < len(wn.res_skip_layers) - 1:
                self.res_skip.append(((w[:, : self.hidden].contiguous(), bias[: self.hidden]), (w[:, self.hidden :].contiguous(), bias[self.hidden :])))
            else:
                self.res_skip.append((None, (w, bias)))

    def __call__(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        skip = None
        for (taps, bias, dilation, padding), (res, to_skip) in zip(self.in_layers, self.res_skip):
            acts = gated_conv(x, taps, bias, lengths, dilation, padding)
            if res is not None:
                x = conv1d(acts, res[0], res[1], lengths, residual=x)
            skip = conv1d(acts, to_skip[0], to_skip[1], lengths, running_sum=skip, out=skip)
        return torch.where(mask > 0, skip, 0.0)


def fuse_flow(flow, lengths: torch.Tensor) -> list:
    """Route each coupling's WaveNet stack through `FusedWN` (for this batch's lengths); returns
    what `unfuse_flow` needs to put the modules back."""
    saved = []
    for layer in flow.flows.values():
        if hasattr(layer, "enc"):
            fused = FusedWN(layer.enc)
            saved.append((layer.enc, layer.enc.forward))
            layer.enc.forward = types.MethodType(lambda self, x, mask, g, f=fused: f(x, mask, lengths), layer.enc)
    return saved


def unfuse_flow(saved: list) -> None:
    for module, forward in saved:
        module.forward = forward


def check() -> None:
    """The candidate against the eager flow with the bundled voice's weights, fp32, two items of different lengths."""
    from engine import load_model

    vits = load_model("default", "cpu").model
    torch.manual_seed(0)
    rows, frames_max = 2, 40
    frames = torch.tensor([40, 27], dtype=torch.int32)
    mask = sequence_mask(frames, frames_max).unsqueeze(1).float()
    z_p = torch.randn(rows, vits.arch.inter_channels, frames_max) * mask
    with torch.inference_mode():
        reference = vits.flow.reverse(z_p, mask, None)
        saved = fuse_flow(vits.flow, frames)
        try:
            fused = vits.flow.reverse(z_p, mask, None)
        finally:
            unfuse_flow(saved)
    error = ((fused - reference).norm() / reference.norm()).item()
    print(f"fused WaveNet flow against eager, fp32, interpreter: rel err {error:.2e}")
    if not error < 1e-4:
        raise SystemExit("the candidate does not match the eager flow")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--frames", type=int, default=1152, help="the batch's frame bucket (a chapter batch: ~1,000)")
    parser.add_argument("--check", action="store_true", help="only compare the candidate with the eager flow (CPU, TRITON_INTERPRET=1)")
    args = parser.parse_args()
    if args.check:
        return check()
    from kernel_bench import graph_time, rel_err
    from profiling import max_speed_wrapper

    tts = max_speed_wrapper(False).model
    vits, decoder = tts.model, tts.runner.fused_decoder
    dtype = vits.flow.flows["0"].pre.weight.dtype
    torch.manual_seed(0)
    frames = torch.randint(int(args.frames * 0.6), args.frames + 1, (args.rows,), device="cuda", dtype=torch.int32)
    mask = sequence_mask(frames, args.frames).unsqueeze(1).to(dtype)
    z_p = torch.randn(args.rows, vits.arch.inter_channels, args.frames, device="cuda", dtype=dtype) * mask
    compiled = torch.compile(vits.flow.reverse, dynamic=False)
    with torch.inference_mode():
        z = vits.flow.reverse(z_p, mask, None)
        print(f"{args.rows} rows × {args.frames} frames ({int(frames.sum())} valid), flow in {dtype}")
        for name, fn in (("flow, eager", lambda: vits.flow.reverse(z_p, mask, None)), ("flow, compiled", lambda: compiled(z_p, mask, None))):
            print(f"  {name:<28} {graph_time(fn):8.3f} ms  rel err {rel_err(fn(), z):.2e}", flush=True)
        saved = fuse_flow(vits.flow, frames)
        try:
            fn = lambda: vits.flow.reverse(z_p, mask, None)
            print(f"  {'flow, fused WaveNet layers':<28} {graph_time(fn):8.3f} ms  rel err {rel_err(fn(), z):.2e}", flush=True)
        finally:
            unfuse_flow(saved)
        if decoder is not None:
            print(f"  {'vocoder, fused Triton':<28} {graph_time(lambda: vits.vocode_fused(decoder, z, mask, frames, None)):8.3f} ms")


if __name__ == "__main__":
    main()
