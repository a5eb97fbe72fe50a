"""VITS (Piper) inference modules: tensors in, tensors out; no I/O and no loops over time.

Kim, Kong, Son, "Conditional Variational Autoencoder with Adversarial Learning for End-to-End
Text-to-Speech" (VITS), ICML 2021, arXiv:2106.06103. Parameter names follow the Piper training code
so that the weights of a voice `.onnx` map one to one (see `onnx_weights.py`).

The inference path is split at its one data-dependent shape, the total frame count:
`encode_text` + `durations` → the host reads the frame count once →
`latent` (length regulation, prior, reverse flow) + `vocode` (HiFi-GAN) at a fixed, possibly padded length.
Padding never changes the audible output: every conv input is masked, which is exactly the zero
padding the unpadded model sees.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import PiperArch

LRELU_SLOPE = 0.1


def sequence_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths → (B, max_len) float mask."""
    positions = torch.arange(max_len, device=lengths.device)
    return (positions[None, :] < lengths[:, None]).to(torch.float32)


class GemmConv1d(nn.Conv1d):
    """The same convolution as one matrix product over the unfolded input (stride 1, no groups).

    Used outside the vocoder, where T is a few hundred tokens or frames: cuDNN's fp32 kernels
    (TF32 stays off on the duration path) and its NCHW↔NHWC transposes around fp16 convolutions
    cost more there than one cuBLAS product. Swapped in by `use_gemm_convs`, same parameters.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, d, pad = self.kernel_size[0], self.dilation[0], self.padding[0]
        if k > 1:
            x = F.pad(x, (pad, pad)).unfold(2, d * (k - 1) + 1, 1)[..., ::d]  # (B, C, T, K)
            x = x.permute(0, 1, 3, 2).reshape(x.shape[0], -1, x.shape[2])  # (B, C·K, T)
        y = torch.matmul(self.weight.view(self.out_channels, -1), x)
        return y if self.bias is None else y + self.bias[:, None]


def use_gemm_convs(module: nn.Module, on: bool) -> int:
    """Switch every plain (ungrouped, stride-1) Conv1d under `module` between cuDNN and GEMM form.
    Returns how many were switched."""
    count = 0
    for conv in module.modules():
        if isinstance(conv, nn.Conv1d) and conv.groups == 1 and conv.stride == (1,) and conv.padding_mode == "zeros":
            conv.__class__ = GemmConv1d if on else nn.Conv1d
            count += 1
    return count


def mask_counts(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) mask → (B,) int32 valid positions, as the Triton kernels take them."""
    return mask.sum(dim=(1, 2)).to(torch.int32)


def exact_product(taps: torch.Tensor | None, bias: torch.Tensor, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """The 1 × 1 convolution `taps` (1, C_out, C_in) of x (B, C_in, T) through `exact_conv1d`, zero
    at and past each item's length; None without taps or lengths. cuBLAS runs these fp32 products
    on FFMA (TF32 stays off on the duration path, ~4 TFLOP/s at Piper's 192 channels) and over the
    padding; the Triton kernel multiplies on the tensor cores at fp32 accuracy and skips tiles past
    each length (a chapter's batches are ~1.6× padded). Both are fp32-accurate but round
    differently, so a duration at a rounding edge may take one frame more or less than eager
    fp32's."""
    if taps is None or lengths is None:
        return None
    return torch.ops.tts_turbo.exact_conv1d(x, taps, bias, lengths, 0, False, True)


def pointwise(conv: nn.Conv1d, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """`conv` (1 × 1) of x; through `exact_product` when `use_exact_products` armed it (then zero
    past each length, where `conv` would give its bias)."""
    y = exact_product(getattr(conv, "taps", None), conv.bias, x, lengths)
    return conv(x) if y is None else y


def use_exact_products(module: nn.Module, on: bool) -> int:
    """Arm (or disarm) `pointwise` for the fp32 1 × 1 convolutions that modules under `module`
    run through it (each names them in `POINTWISE`), and the fused q/k/v product of each
    attention layer: tap-major copies of the current weights, not part of the state dict. Returns
    how many products are armed."""
    if on:
        from ...kernels import conv1d  # noqa: F401  registers torch.ops.tts_turbo.exact_conv1d
    count = 0
    for owner in module.modules():
        for conv in _pointwise_convs(owner):
            armed = on and conv.weight.dtype == torch.float32
            conv.register_buffer("taps", conv.weight.detach().permute(2, 0, 1).contiguous() if armed else None, persistent=False)
            count += armed
        if isinstance(owner, RelativeAttention):
            armed = on and owner.qkv_weight is not None and owner.qkv_weight.dtype == torch.float32
            owner.qkv_taps = owner.qkv_weight[None] if armed else None
            count += armed
    return count


def exact_products_armed(module: nn.Module) -> bool:
    """Whether `use_exact_products` left any product under `module` armed."""
    return any(getattr(m, "taps", None) is not None or getattr(m, "qkv_taps", None) is not None for m in module.modules())


def _pointwise_convs(owner: nn.Module) -> list[nn.Conv1d]:
    """The convolutions `owner` runs through `pointwise` that `exact_conv1d` computes as they are:
    1 × 1, stride 1, no padding or groups, a bias, ≥ 16 input channels (its smallest tile)."""
    convs = []
    for name in getattr(owner, "POINTWISE", ()):
        child = getattr(owner, name)
        convs.extend(child if isinstance(child, nn.ModuleList) else [child])
    return [
        c for c in convs
        if c.kernel_size == (1,) and c.stride == (1,) and c.padding == (0,) and c.groups == 1 and c.bias is not None and c.in_channels >= 16
    ]


def channels_last_1d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) with the same values, stored (B, T, C)."""
    return x.unsqueeze(2).contiguous(memory_format=torch.channels_last).squeeze(2)


class ChannelsLastConv1d(nn.Conv1d):
    """The same convolution run as a (1 × K) 2-D convolution on channels-last input, which the
    CPU's oneDNN computes without reordering the input of every call (the vocoder's fp32
    convolutions 1.4× faster on the CI machine); outputs stay channels-last, so do the leaky
    ReLUs, masks and residual adds between them. Swapped in by `use_channels_last_convs`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x.unsqueeze(2), self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]), (1, self.dilation[0]), self.groups)
        return y.squeeze(2)


class ChannelsLastConvTranspose1d(nn.ConvTranspose1d):
    """`ChannelsLastConv1d` for the upsampling convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(
            x.unsqueeze(2), self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]), (0, self.output_padding[0]), self.groups, (1, self.dilation[0])
        )
        return y.squeeze(2)


def use_channels_last_convs(decoder: "Generator", on: bool) -> int:
    """Switch the vocoder's convolutions between PyTorch's layout and channels-last (CPU).
    Returns how many convolutions the decoder has (all are switched)."""
    swaps = {nn.Conv1d: ChannelsLastConv1d, nn.ConvTranspose1d: ChannelsLastConvTranspose1d}
    count = 0
    for conv in decoder.modules():
        for plain, channels_last in swaps.items():
            if type(conv) in (plain, channels_last):
                conv.__class__ = channels_last if on else plain
                count += 1
    decoder.channels_last = on
    return count


class LayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T); computed in fp32 (an fp32 island)."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, -1).float(), (x.shape[1],), self.gamma.float(), self.beta.float(), self.eps)
        return y.transpose(1, -1).type_as(x)


# --------------------------------------------------------------------------------------------
# Text encoder: post-LN transformer with windowed relative-position attention
# (Shaw et al., "Self-Attention with Relative Position Representations", arXiv:1803.02155).
# --------------------------------------------------------------------------------------------


def _rel_to_abs(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, 2T-1) relative logits → (B, H, T, T) absolute, by the pad/reshape trick."""
    b, h, t, _ = x.shape
    x = F.pad(x, (0, 1))
    x = x.reshape(b, h, 2 * t * t)
    x = F.pad(x, (0, t - 1))
    return x.reshape(b, h, t + 1, 2 * t - 1)[:, :, :t, t - 1 :]


def _abs_to_rel(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, T) absolute weights → (B, H, T, 2T-1) relative."""
    b, h, t, _ = x.shape
    x = F.pad(x, (0, t - 1))
    x = x.reshape(b, h, t * (2 * t - 1))
    x = F.pad(x, (t, 0))
    return x.reshape(b, h, t, 2 * t)[:, :, :, 1:]


class RelativeAttention(nn.Module):
    """Multi-head self-attention with relative keys and values inside a window (heads share them).

    Two implementations of the same function:
    - `plain`: explicit scores and softmax, as in the VITS code;
    - `sdpa`: `scaled_dot_product_attention` with the relative-key logits as an additive bias. The
      relative-value term needs the attention weights inside the window, which SDPA does not
      return; a zero "sink" key whose logit is the row's band maximum recovers the softmax
      normaliser exactly from one extra output channel, so the weights in the window follow
      without materialising the full softmax.
    """

    POINTWISE = ("conv_o",)  # q, k and v run as one product (`fuse_projections`), armed apart

    def __init__(self, channels: int, n_heads: int, window_size: int):
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window_size = window_size
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        rel_shape = (1, 2 * window_size + 1, self.k_channels)
        self.emb_rel_k = nn.Parameter(torch.zeros(rel_shape))
        self.emb_rel_v = nn.Parameter(torch.zeros(rel_shape))
        self.use_sdpa = False
        self.use_kernel = False
        self.register_buffer("qkv_weight", None, persistent=False)
        self.register_buffer("qkv_bias", None, persistent=False)
        self.register_buffer("qkv_taps", None, persistent=False)

    def fuse_projections(self, on: bool) -> None:
        """One (3C × C) product for q, k and v instead of three: at a sentence's few hundred tokens
        each fp32 product is latency-bound (~8 µs on an H100 whatever its height), so three cost
        about three times one. Built from the current weights; not part of the state dict."""
        convs = (self.conv_q, self.conv_k, self.conv_v)
        self.qkv_weight = torch.cat([c.weight[:, :, 0] for c in convs]).detach() if on else None
        self.qkv_bias = torch.cat([c.bias for c in convs]).detach() if on else None
        self.qkv_taps = None  # stale once the weights are rebuilt: `use_exact_products` arms it again

    def use_triton(self, on: bool) -> bool:
        """Run the attention in Triton (`kernels.attention`: one launch, two for one sentence;
        needs the fused q/k/v product and the items' lengths) instead of SDPA with the relative
        terms around it. Returns whether it is on."""
        if on:
            from ...kernels import attention  # noqa: F401  registers torch.ops.tts_turbo.relative_attention
        self.use_kernel = on and self.qkv_weight is not None
        return self.use_kernel

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        return x.view(b, self.n_heads, self.k_channels, t).transpose(2, 3)  # (B, H, T, dk)

    def _rel_embeddings(self, emb: torch.Tensor, t: int) -> torch.Tensor:
        """Window embeddings (1, 2w+1, dk) → (1, 2T-1, dk), zero outside the window."""
        w = self.window_size
        pad = max(t - (w + 1), 0)
        start = max((w + 1) - t, 0)
        if pad > 0:
            emb = F.pad(emb, (0, 0, pad, pad))
        return emb[:, start : start + 2 * t - 1]

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, T); attn_bias: (B, 1, T, T), 0 where allowed and -1e4 where masked (unused by
        the Triton kernel, which reads `lengths` (B,) int32 instead)."""
        qkv = exact_product(self.qkv_taps, self.qkv_bias, x, lengths)
        if qkv is None and self.qkv_weight is not None:
            qkv = torch.matmul(self.qkv_weight, x) + self.qkv_bias[:, None]
        if self.use_kernel and lengths is not None:
            rel_k, rel_v = self.emb_rel_k[0], self.emb_rel_v[0]
            out = torch.ops.tts_turbo.relative_attention(qkv, rel_k, rel_v, lengths, self.n_heads, self.k_channels**-0.5)
            return pointwise(self.conv_o, out, lengths)
        if qkv is None:
            q, k, v = (self._heads(conv(x)) for conv in (self.conv_q, self.conv_k, self.conv_v))
        else:
            q, k, v = (self._heads(part) for part in qkv.chunk(3, dim=1))
        t = x.shape[2]
        q = q * self.k_channels**-0.5
        rel_k = self._rel_embeddings(self.emb_rel_k, t)
        rel_logits = _rel_to_abs(torch.matmul(q, rel_k.unsqueeze(0).transpose(-2, -1)))  # (B,H,T,T)
        if self.use_sdpa:
            out = self._sdpa(q, k, v, rel_logits + attn_bias)
        else:
            out = self._plain(q, k, v, rel_logits + attn_bias, self._rel_embeddings(self.emb_rel_v, t))
        b = x.shape[0]
        return pointwise(self.conv_o, out.transpose(2, 3).reshape(b, -1, t), lengths)

    @staticmethod
    def _plain(q, k, v, bias, rel_v) -> torch.Tensor:
        p = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) + bias, dim=-1)
        return torch.matmul(p, v) + torch.matmul(_abs_to_rel(p), rel_v.unsqueeze(0))

    def _sdpa(self, q, k, v, bias) -> torch.Tensor:
        b, h, t, dk = q.shape
        band = self._band_logits(q, k, bias)  # (B,H,T,2w+1): logits inside the window
        sink_logit = band.amax(dim=-1, keepdim=True)  # ≤ row max, so the sink weight stays in [1/(T+1), 1/2]
        extra = 8  # keeps the head dim a multiple of 8 for the fused kernels
        k_aug = torch.cat([k, k.new_zeros(b, h, 1, dk)], dim=2)
        v_aug = torch.cat([F.pad(v, (0, extra)), F.pad(v.new_ones(b, h, 1, 1), (dk, extra - 1))], dim=2)
        bias_aug = torch.cat([bias.expand(b, h, t, t), sink_logit], dim=-1)
        out = F.scaled_dot_product_attention(q, k_aug, v_aug, attn_mask=bias_aug.to(q.dtype), scale=1.0)
        p_sink = out[..., dk : dk + 1]
        keep = 1.0 - p_sink  # share of the real keys
        main = out[..., :dk] / keep
        # log-normaliser of the real keys: Z = exp(sink) * (1 - p_sink) / p_sink
        log_z = sink_logit + torch.log(keep) - torch.log(p_sink)
        p_band = torch.exp(band - log_z)  # (B,H,T,2w+1)
        return main + torch.matmul(p_band, self.emb_rel_v[0].to(q.dtype))

    def _band_logits(self, q, k, bias) -> torch.Tensor:
        """Scores q_i·k_{i+d} + bias_{i,i+d} for d in [-w, w]; -1e4 outside the sequence."""
        w = self.window_size
        t = q.shape[2]
        k_pad = F.pad(k, (0, 0, w, w))  # (B,H,T+2w,dk)
        k_win = k_pad.unfold(2, 2 * w + 1, 1)  # (B,H,T,dk,2w+1)
        qk = torch.einsum("bhtd,bhtdw->bhtw", q, k_win)
        bias_pad = F.pad(bias, (w, w), value=-1e4)  # (B,h,T,T+2w)
        idx = torch.arange(t, device=q.device)[:, None] + torch.arange(2 * w + 1, device=q.device)[None, :]
        bias_win = torch.gather(bias_pad, 3, idx.expand(*bias_pad.shape[:2], t, 2 * w + 1))
        return qk + bias_win


class FFN(nn.Module):
    def __init__(self, channels: int, filter_channels: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.pad = (pad, kernel_size - 1 - pad)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)
        self.register_buffer("taps_1", None, persistent=False)
        self.register_buffer("taps_2", None, persistent=False)

    def fuse(self, on: bool) -> bool:
        """Run the block through the Triton convolution (`exact_conv1d`: masking and ReLU folded
        in, fp32-accurate for fp32 weights) where the items' lengths are given. Builds tap-major
        (K, C_out, C_in) copies of the current weights, not part of the state dict. Only odd
        kernels (symmetric padding) fuse. Returns whether the layer is fused."""
        on = on and self.pad[0] == self.pad[1]
        if on:
            from ...kernels import conv1d  # noqa: F401  registers torch.ops.tts_turbo.exact_conv1d
        self.taps_1 = self.conv_1.weight.detach().permute(2, 0, 1).contiguous() if on else None
        self.taps_2 = self.conv_2.weight.detach().permute(2, 0, 1).contiguous() if on else None
        return on

    def forward(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, T), mask (B, 1, T); `lengths` (B,) int32, the mask's counts, enables the fused path."""
        if self.taps_1 is not None and lengths is not None:
            return self._fused(x, mask, lengths)
        x = torch.relu(self.conv_1(F.pad(x * mask, self.pad)))
        return self.conv_2(F.pad(x * mask, self.pad)) * mask

    def _fused(self, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        conv = torch.ops.tts_turbo.exact_conv1d
        h = conv(x, self.taps_1, self.conv_1.bias, lengths, self.pad[0], False, False)  # inputs past a length read as zero
        return conv(h, self.taps_2, self.conv_2.bias, lengths, self.pad[0], True, True)


class Encoder(nn.Module):
    def __init__(self, arch: PiperArch):
        super().__init__()
        c, n = arch.hidden_channels, arch.n_layers
        self.attn_layers = nn.ModuleList(RelativeAttention(c, arch.n_heads, arch.window_size) for _ in range(n))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(c) for _ in range(n))
        self.ffn_layers = nn.ModuleList(FFN(c, arch.filter_channels, arch.ffn_kernel_size) for _ in range(n))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(c) for _ in range(n))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kernels = all(attn.use_kernel for attn in self.attn_layers)
        attn_bias = None if kernels else (1.0 - mask.unsqueeze(2) * mask.unsqueeze(-1)) * -1e4  # (B,1,T,T)
        fused = kernels or any(ffn.taps_1 is not None for ffn in self.ffn_layers) or any(attn.qkv_taps is not None for attn in self.attn_layers)
        lengths = mask_counts(mask) if fused else None
        x = x * mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers, self.norm_layers_2):
            x = norm1(x + attn(x, attn_bias, lengths))
            x = norm2(x + ffn(x, mask, lengths))
        return x * mask


class TextEncoder(nn.Module):
    POINTWISE = ("proj",)

    def __init__(self, arch: PiperArch):
        super().__init__()
        self.hidden_channels = arch.hidden_channels
        self.inter_channels = arch.inter_channels
        self.emb = nn.Embedding(arch.n_vocab, arch.hidden_channels)
        self.encoder = Encoder(arch)
        self.proj = nn.Conv1d(arch.hidden_channels, 2 * arch.inter_channels, 1)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor):
        x = (self.emb(ids) * math.sqrt(self.hidden_channels)).transpose(1, 2)  # (B, C, T)
        x = self.encoder(x, mask)
        stats = pointwise(self.proj, x, mask_counts(mask) if getattr(self.proj, "taps", None) is not None else None) * mask
        m, logs = torch.split(stats, self.inter_channels, dim=1)
        return x, m, logs


# --------------------------------------------------------------------------------------------
# Stochastic duration predictor (reverse direction only): neural spline flows
# (Durkan et al., "Neural Spline Flows", arXiv:1906.04032).
# --------------------------------------------------------------------------------------------


def depthwise_taps(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """A depthwise `conv` of x (DDSConv's: odd kernel, same-length padding, a bias) as a sum of its
    shifted taps. Compiled, Inductor fuses the taps into the layer norm that follows (and computes
    in fp32); as cuDNN's kernel it is one more launch, ~3 µs of a sentence's ~1.4 ms stage A on an
    H100 for each of the duration predictor's 12 layers."""
    (k,), (dilation,), (pad,) = conv.kernel_size, conv.dilation, conv.padding
    padded = F.pad(x, (pad, pad))
    t = x.shape[-1]
    y = conv.bias[:, None]
    for tap in range(k):
        y = y + conv.weight[:, :, tap] * padded[..., tap * dilation : tap * dilation + t]
    return y


class DDSConv(nn.Module):
    """Dilated depth-separable convolutions with LN and exact GELU."""

    POINTWISE = ("convs_1x1",)

    def __init__(self, channels: int, kernel_size: int, n_layers: int):
        super().__init__()
        self.convs_sep = nn.ModuleList()
        self.convs_1x1 = nn.ModuleList()
        self.norms_1 = nn.ModuleList()
        self.norms_2 = nn.ModuleList()
        for i in range(n_layers):
            dilation = kernel_size**i
            padding = (kernel_size * dilation - dilation) // 2
            self.convs_sep.append(
                nn.Conv1d(channels, channels, kernel_size, groups=channels, dilation=dilation, padding=padding)
            )
            self.convs_1x1.append(nn.Conv1d(channels, channels, 1))
            self.norms_1.append(LayerNorm(channels))
            self.norms_2.append(LayerNorm(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """`lengths` (B,) int32, the mask's counts, lets armed 1 × 1 products skip the padding."""
        if g is not None:
            x = x + g
        depthwise = depthwise_taps if torch.compiler.is_compiling() else nn.Module.__call__
        for sep, c1, n1, n2 in zip(self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2):
            y = F.gelu(n1(depthwise(sep, x * mask)))
            y = F.gelu(n2(pointwise(c1, y, lengths)))
            x = x + y
        return x * mask


def inverse_rational_quadratic_spline(
    x: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    tail_bound: float = 5.0,
    min_bin_width: float = 1e-3,
    min_bin_height: float = 1e-3,
    min_derivative: float = 1e-3,
) -> torch.Tensor:
    """Inverse monotonic rational-quadratic spline with linear tails (Durkan et al. 2019, eq. 4–6).

    Evaluated densely with `torch.where` instead of boolean indexing, so it never syncs with the
    host and keeps static shapes (CUDA-graph safe).
    """
    num_bins = unnormalized_widths.shape[-1]
    inside = (x >= -tail_bound) & (x <= tail_bound)
    xc = x.clamp(-tail_bound, tail_bound)
    boundary = math.log(math.exp(1 - min_derivative) - 1)
    derivs = F.pad(unnormalized_derivatives, (1, 1), value=boundary)

    def knots(unnormalized: torch.Tensor, min_size: float):
        sizes = min_size + (1 - min_size * num_bins) * torch.softmax(unnormalized, dim=-1)
        cum = F.pad(torch.cumsum(sizes, dim=-1), (1, 0))
        cum = 2 * tail_bound * cum - tail_bound
        cum = torch.cat([cum[..., :1].clamp(-tail_bound, -tail_bound), cum[..., 1:-1], cum[..., -1:].clamp(tail_bound, tail_bound)], dim=-1)
        return cum, cum[..., 1:] - cum[..., :-1]

    cumwidths, widths = knots(unnormalized_widths, min_bin_width)
    cumheights, heights = knots(unnormalized_heights, min_bin_height)
    derivatives = min_derivative + F.softplus(derivs)

    locations = torch.cat([cumheights[..., :-1], cumheights[..., -1:] + 1e-6], dim=-1)
    bin_idx = (torch.sum(xc[..., None] >= locations, dim=-1) - 1).clamp(0, num_bins - 1)[..., None]

    def pick(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, bin_idx)[..., 0]

    in_cumwidths, in_widths = pick(cumwidths), pick(widths)
    in_cumheights, in_heights = pick(cumheights), pick(heights)
    in_delta = pick(heights / widths)
    d0, d1 = pick(derivatives[..., :-1]), pick(derivatives[..., 1:])

    dy = xc - in_cumheights
    slope_sum = d0 + d1 - 2 * in_delta
    a = dy * slope_sum + in_heights * (in_delta - d0)
    b = in_heights * d0 - dy * slope_sum
    c = -in_delta * dy
    discriminant = (b.pow(2) - 4 * a * c).clamp_min(0)
    root = (2 * c) / (-b - torch.sqrt(discriminant))
    return torch.where(inside, root * in_widths + in_cumwidths, x)


class ConvFlow(nn.Module):
    POINTWISE = ("proj",)

    def __init__(self, filter_channels: int, kernel_size: int, n_layers: int, num_bins: int = 10, tail_bound: float = 5.0):
        super().__init__()
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        self.filter_channels = filter_channels
        self.pre = nn.Conv1d(1, filter_channels, 1)
        self.convs = DDSConv(filter_channels, kernel_size, n_layers)
        self.proj = nn.Conv1d(filter_channels, 3 * num_bins - 1, 1)

    def reverse(self, z: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        z0, z1 = z[:, :1], z[:, 1:]
        h = pointwise(self.proj, self.convs(self.pre(z0), mask, g, lengths), lengths) * mask  # (B, 3K-1, T)
        h = h.unsqueeze(1).permute(0, 1, 3, 2)  # (B, 1, T, 3K-1)
        scale = math.sqrt(self.filter_channels)
        k = self.num_bins
        z1 = inverse_rational_quadratic_spline(z1, h[..., :k] / scale, h[..., k : 2 * k] / scale, h[..., 2 * k :], self.tail_bound)
        return torch.cat([z0, z1], dim=1) * mask


class ElementwiseAffine(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def reverse(self, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (z - self.m) * torch.exp(-self.logs) * mask


class StochasticDurationPredictor(nn.Module):
    """Reverse path only. Flow indices follow the training layout (0: affine, odd: spline flows,
    even: flips); flow 1 is never used at inference and is not built."""

    POINTWISE = ("pre", "proj")  # not `cond`: the speaker vector has no positions

    REVERSE_SPLINES = ("7", "5", "3")

    def __init__(self, arch: PiperArch):
        super().__init__()
        c = arch.dp_filter_channels
        self.pre = nn.Conv1d(arch.hidden_channels, c, 1)
        self.convs = DDSConv(c, arch.dp_kernel_size, arch.dp_n_layers)
        self.proj = nn.Conv1d(c, c, 1)
        if arch.gin_channels:
            self.cond = nn.Conv1d(arch.gin_channels, c, 1)
        flows: dict[str, nn.Module] = {"0": ElementwiseAffine(2)}
        for idx in self.REVERSE_SPLINES:
            flows[idx] = ConvFlow(c, arch.dp_kernel_size, arch.dp_n_layers)
        self.flows = nn.ModuleDict(flows)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """x: encoder output (B,C,T); noise: (B,2,T) already scaled by noise_w. Returns log-durations."""
        lengths = mask_counts(mask) if getattr(self.pre, "taps", None) is not None else None
        x = pointwise(self.pre, x, lengths)
        if g is not None:
            x = x + self.cond(g)
        h = pointwise(self.proj, self.convs(x, mask, lengths=lengths), lengths) * mask
        z = noise
        for idx in self.REVERSE_SPLINES:
            z = self.flows[idx].reverse(torch.flip(z, [1]), mask, h, lengths)
        z = self.flows["0"].reverse(torch.flip(z, [1]), mask)
        return z[:, :1]


# --------------------------------------------------------------------------------------------
# Flow (mean-only residual coupling with WaveNet-style layers), reverse direction.
# --------------------------------------------------------------------------------------------


class WN(nn.Module):
    def __init__(self, hidden: int, kernel_size: int, dilation_rate: int, n_layers: int, gin_channels: int):
        super().__init__()
        self.hidden = hidden
        self.in_layers = nn.ModuleList()
        self.res_skip_layers = nn.ModuleList()
        if gin_channels:
            self.cond_layer = nn.Conv1d(gin_channels, 2 * hidden * n_layers, 1)
        for i in range(n_layers):
            dilation = dilation_rate**i
            padding = (kernel_size * dilation - dilation) // 2
            self.in_layers.append(nn.Conv1d(hidden, 2 * hidden, kernel_size, dilation=dilation, padding=padding))
            out = 2 * hidden if i < n_layers - 1 else hidden
            self.res_skip_layers.append(nn.Conv1d(hidden, out, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        h2 = 2 * self.hidden
        g_all = self.cond_layer(g) if g is not None else None
        skip = torch.zeros_like(x)
        last = len(self.in_layers) - 1
        for i, (inp, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers)):
            a = inp(x)
            if g_all is not None:
                a = a + g_all[:, i * h2 : (i + 1) * h2]
            acts = torch.tanh(a[:, : self.hidden]) * torch.sigmoid(a[:, self.hidden :])
            rs = res_skip(acts)
            if i < last:
                x = (x + rs[:, : self.hidden]) * mask
                skip = skip + rs[:, self.hidden :]
            else:
                skip = skip + rs
        return skip * mask


class ResidualCouplingLayer(nn.Module):
    def __init__(self, arch: PiperArch):
        super().__init__()
        half = arch.inter_channels // 2
        self.half = half
        self.pre = nn.Conv1d(half, arch.flow_hidden_channels, 1)
        self.enc = WN(arch.flow_hidden_channels, arch.flow_kernel_size, arch.flow_dilation_rate, arch.flow_n_layers, arch.gin_channels)
        self.post = nn.Conv1d(arch.flow_hidden_channels, half, 1)

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        x0, x1 = x[:, : self.half], x[:, self.half :]
        h = self.enc(self.pre(x0) * mask, mask, g)
        x1 = (x1 - self.post(h) * mask) * mask
        return torch.cat([x0, x1], dim=1)


class ResidualCouplingBlock(nn.Module):
    """Couplings sit at even indices of the training layout (odd ones are channel flips)."""

    def __init__(self, arch: PiperArch):
        super().__init__()
        self.flows = nn.ModuleDict({str(2 * i): ResidualCouplingLayer(arch) for i in range(arch.n_flows)})

    def reverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        for idx in reversed(list(self.flows.keys())):
            x = self.flows[idx].reverse(torch.flip(x, [1]), mask, g)
        return x


# --------------------------------------------------------------------------------------------
# HiFi-GAN generator (Kong et al., arXiv:2010.05646), weight norm already removed.
# --------------------------------------------------------------------------------------------


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class ResBlock(nn.Module):
    """HiFi-GAN residual block: type "1" (two convs per dilation) or type "2" (one)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], kind: str):
        super().__init__()
        make = lambda d: nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
        self.kind = kind
        if kind == "1":
            self.convs1 = nn.ModuleList(make(d) for d in dilations)
            self.convs2 = nn.ModuleList(make(1) for _ in dilations)
        else:
            self.convs = nn.ModuleList(make(d) for d in dilations)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        if self.kind == "1":
            for c1, c2 in zip(self.convs1, self.convs2):
                xt = c1(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
                x = x + c2(_masked(F.leaky_relu(xt, LRELU_SLOPE), mask))
            return x
        for conv in self.convs:
            x = x + conv(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
        return x


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


class Generator(nn.Module):
    def __init__(self, arch: PiperArch):
        super().__init__()
        ch = arch.upsample_initial_channel
        self.upsample_rates = arch.upsample_rates
        self.num_kernels = len(arch.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(arch.inter_channels, ch, 7, padding=3)
        if arch.gin_channels:
            self.cond = nn.Conv1d(arch.gin_channels, ch, 1)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(arch.upsample_rates, arch.upsample_kernel_sizes)):
            cin, cout = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(cin, cout, k, u, padding=(k - u) // 2))
            for rk, rd in zip(arch.resblock_kernel_sizes, arch.resblock_dilation_sizes):
                self.resblocks.append(ResBlock(cout, rk, rd, arch.resblock))
        self.conv_post = nn.Conv1d(ch // 2 ** len(arch.upsample_rates), 1, 7, padding=3, bias=False)
        self.channels_last = False

    def forward(self, x: torch.Tensor, g: torch.Tensor | None, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """x: (B, inter, F). frame_mask (B,1,F) reproduces zero padding past each item's length;
        None when the input is not padded."""
        if self.channels_last:  # once here; every layer after keeps the layout
            x = channels_last_1d(x)
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        mask = frame_mask
        for i, up in enumerate(self.ups):
            x = up(_masked(F.leaky_relu(x, LRELU_SLOPE), mask))
            if mask is not None:
                mask = mask.repeat_interleave(self.upsample_rates[i], dim=2)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x, mask)
            for block in blocks[1:]:
                xs = xs + block(x, mask)
            x = xs / self.num_kernels
        x = self.conv_post(_masked(F.leaky_relu(x), mask))  # default slope 0.01, as exported
        return torch.tanh(x)


# --------------------------------------------------------------------------------------------
# The synthesizer
# --------------------------------------------------------------------------------------------


class PiperVITS(nn.Module):
    """The synthesizer, exposed as four stages so the runner can time, batch and capture them."""

    def __init__(self, arch: PiperArch):
        super().__init__()
        self.arch = arch
        self.enc_p = TextEncoder(arch)
        self.dp = StochasticDurationPredictor(arch)
        self.flow = ResidualCouplingBlock(arch)
        self.dec = Generator(arch)
        if arch.n_speakers > 1:
            self.emb_g = nn.Embedding(arch.n_speakers, arch.gin_channels)

    @property
    def hop_length(self) -> int:
        return math.prod(self.arch.upsample_rates)

    def speaker(self, sid: torch.Tensor) -> torch.Tensor | None:
        """(B,) speaker ids → (B, gin, 1) conditioning, or None for single-speaker voices."""
        return self.emb_g(sid).unsqueeze(-1) if self.arch.n_speakers > 1 else None

    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor):
        """ids (B,T) → hidden (B,C,T), prior mean/log-std (B,inter,T), mask (B,1,T)."""
        mask = sequence_mask(lengths, ids.shape[1]).unsqueeze(1)
        x, m_p, logs_p = self.enc_p(ids, mask)
        return x, m_p, logs_p, mask

    def durations(self, x, mask, dur_noise, length_scale, g):
        """Frames per token (B,T), ceil'ed as in VITS, and total frames (B,) ≥ 1.
        dur_noise (B,2,T) is standard normal noise · noise_w; length_scale (B,)."""
        logw = self.dp.reverse(x, mask, dur_noise * mask, g)
        w = torch.exp(logw) * mask * length_scale.view(-1, 1, 1)
        durations = torch.ceil(w)[:, 0]
        return durations, durations.sum(dim=1).clamp_min(1).long()

    def latent(self, m_p, logs_p, durations, frames, prior_noise, g, fused_flow=None):
        """Length regulation + prior sample + reverse flow at F = prior_noise.shape[2] frames.
        prior_noise (B,inter,F) is standard normal noise · noise_scale; `fused_flow` (a
        `fused.FusedFlow` of `self.flow`) runs the flow instead. Returns z (B,inter,F) and y_mask (B,1,F)."""
        n_frames = prior_noise.shape[2]
        y_mask = sequence_mask(frames, n_frames).unsqueeze(1)
        ends = torch.cumsum(durations, dim=1)  # (B,T)
        starts = ends - durations
        pos = torch.arange(n_frames, device=ends.device, dtype=ends.dtype).view(1, -1, 1)
        path = ((pos >= starts.unsqueeze(1)) & (pos < ends.unsqueeze(1))).to(m_p.dtype)  # (B,F,T) hard alignment
        m = torch.bmm(m_p, path.transpose(1, 2))
        logs = torch.bmm(logs_p, path.transpose(1, 2))
        z_p = (m + prior_noise * torch.exp(logs)) * y_mask
        dtype = self.flow.flows["0"].pre.weight.dtype  # the prior is sampled in fp32 whatever the flow runs in
        cond = g.to(dtype) if g is not None else None
        if fused_flow is not None:
            return fused_flow(z_p.to(dtype), frames, cond), y_mask
        return self.flow.reverse(z_p.to(dtype), y_mask.to(dtype), cond), y_mask

    def vocode(self, z, y_mask, g, padded: bool) -> torch.Tensor:
        """(B,inter,F) → (B, F·hop) float32 audio; `padded` masks every decoder conv input so
        samples past each item's length never leak into the audible part."""
        x, cond = self._decoder_inputs(z, y_mask, g)
        audio = self.dec(x, cond, y_mask.to(x.dtype) if padded else None)
        return audio[:, 0].float()

    def vocode_fused(self, decoder, z, y_mask, frames, g) -> torch.Tensor:
        """`vocode` through a `fused.FusedGenerator` built from `self.dec` (always masked)."""
        x, cond = self._decoder_inputs(z, y_mask, g)
        return decoder(x, frames, cond)

    def _decoder_inputs(self, z, y_mask, g) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Masked latent and speaker conditioning in the decoder's dtype."""
        dtype = self.dec.conv_pre.weight.dtype
        return (z * y_mask).to(dtype), (g.to(dtype) if g is not None else None)
