"""The HiFi-GAN decoder and the flow's WaveNet couplings as short chains of fused Triton convolutions.

Same function as `model.Generator` on padded input (every conv input masked past the item's
length), in one launch per convolution: the leaky ReLU and mask are applied as the input tile is
loaded, and bias, residual add, the sum over parallel residual blocks, the 1/num_kernels scale and
the final tanh happen before the tile is stored. For joe-medium that is 23 launches for the whole
decoder, where eager PyTorch needs ~150 kernels plus cuDNN's layout transposes. Intermediates
are stored channels-last (the kernels' own allocation), which keeps the shifted tap loads aligned:
on an H100 the medium sentence's decoder takes 0.64 ms against 1.57 ms for cuDNN in fp16.
"""

from __future__ import annotations

import torch
from torch import nn

from ...kernels.conv1d import channels_last, conv1d, conv_transpose1d
from ...kernels.wavenet import gated_conv
from .model import LRELU_SLOPE, WN, Generator, ResidualCouplingBlock

POST_SLOPE = 0.01
"""conv_post is preceded by F.leaky_relu's default slope in the exported graph."""


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (C_out, C_in, K) → (K, C_out, C_in), the kernels' layout."""
    return weight.detach().permute(2, 0, 1).contiguous()


def _transposed_taps(weight: torch.Tensor) -> torch.Tensor:
    """ConvTranspose1d weight (C_in, C_out, K) → (K, C_out, C_in)."""
    return weight.detach().permute(2, 1, 0).contiguous()


class _Conv:
    """One convolution's weights in kernel layout plus its geometry."""

    def __init__(self, conv: nn.Conv1d):
        self.weight = _taps(conv.weight)
        self.bias = conv.bias.detach() if conv.bias is not None else None
        self.dilation = conv.dilation[0]
        self.padding = conv.padding[0]


class FusedGenerator:
    """Built from a loaded `Generator` (after precision conversion); holds its own weight copies."""

    def __init__(self, gen: Generator, block_t: int = 128, num_warps: int | None = None):
        self.block_t = block_t
        self.num_warps = num_warps
        self.num_kernels = gen.num_kernels
        self.pre = _Conv(gen.conv_pre)
        self.cond = gen.cond if hasattr(gen, "cond") else None
        self.ups = [(_transposed_taps(up.weight), up.bias.detach(), up.stride[0], up.padding[0]) for up in gen.ups]
        self.blocks = [self._block(block) for block in gen.resblocks]
        self.post = _Conv(gen.conv_post)
        self.launches = 2 + len(self.ups) + sum(1 + (first is not None) for steps in self.blocks for first, _ in steps)

    @staticmethod
    def _block(block) -> list[tuple[_Conv | None, _Conv]]:
        """Residual steps x ← x + c2(act(c1(act(x)))) (type 1) or x ← x + c(act(x)) (type 2)."""
        if block.kind == "1":
            return [(_Conv(c1), _Conv(c2)) for c1, c2 in zip(block.convs1, block.convs2)]
        return [(None, _Conv(c)) for c in block.convs]

    @torch.compiler.disable  # already fused; compiling around it keeps the rest of the stage
    def __call__(self, x: torch.Tensor, frames: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """x (B, inter, F) in the decoder's dtype, zero past `frames` (B,) → (B, F·hop) float32."""
        lengths = frames.to(torch.int32)
        bias = self.pre.bias
        if self.cond is not None and g is not None:
            bias = bias + self.cond(g)[:, :, 0]  # (B, C): speaker conditioning is a per-item bias
        x = conv1d(x, self.pre.weight, bias, lengths, padding=self.pre.padding)
        for i, (weight, up_bias, stride, padding) in enumerate(self.ups):
            x = conv_transpose1d(x, weight, up_bias, lengths, stride=stride, padding=padding, slope=LRELU_SLOPE)
            lengths = lengths * stride
            x = self._resblocks(x, lengths, self.blocks[i * self.num_kernels : (i + 1) * self.num_kernels])
        audio = torch.empty((x.shape[0], 1, x.shape[2]), device=x.device, dtype=torch.float32)
        conv1d(x, self.post.weight, None, lengths, padding=self.post.padding, slope=POST_SLOPE, tanh=True, out=audio)
        return audio[:, 0]

    def _resblocks(self, x: torch.Tensor, lengths: torch.Tensor, blocks) -> torch.Tensor:
        """mean over blocks of block(x); each block's last conv adds into the running sum."""
        total: torch.Tensor | None = None
        for b, steps in enumerate(blocks):
            h = x
            for s, (first, second) in enumerate(steps):
                inner = h if first is None else self._conv(h, first, lengths)
                if s < len(steps) - 1:
                    h = self._conv(inner, second, lengths, residual=h)
                    continue
                scale = 1.0 / self.num_kernels if b == len(blocks) - 1 else 1.0
                total = self._conv(inner, second, lengths, residual=h, running_sum=total, scale=scale, out=total)
        return total

    def _conv(self, x, conv: _Conv, lengths, **kw) -> torch.Tensor:
        return conv1d(x, conv.weight, conv.bias, lengths, dilation=conv.dilation, padding=conv.padding, slope=LRELU_SLOPE, block_t=self.block_t, num_warps=self.num_warps, **kw)


class _WaveNet:
    """One coupling's WaveNet stack (`model.WN`) in kernel layout: per layer the gated dilated
    convolution, then its 1 × 1 product into the residual and skip halves at once (see `__call__`)."""

    def __init__(self, wn: WN):
        self.hidden = wn.hidden
        self.cond = wn.cond_layer if hasattr(wn, "cond_layer") else None
        self.gates = [_Conv(conv) for conv in wn.in_layers]
        self.products = [(_taps(conv.weight), conv.bias.detach()) for conv in wn.res_skip_layers]

    def __call__(self, state: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """state (B, 2·hidden, F), channels-last: x in the first half, the skip sum (zero on entry)
        in the second, both updated in place → the skip sum's view. A layer's product writes
        [residual; skip] channels, so with the two sums side by side one launch adds both (the
        last layer's product, skip channels only, adds into its half)."""
        x, skip = state[:, : self.hidden], state[:, self.hidden :]
        cond = self.cond(g)[:, :, 0] if self.cond is not None and g is not None else None
        for i, (gate, (weight, bias)) in enumerate(zip(self.gates, self.products)):
            gate_bias = gate.bias if cond is None else gate.bias + cond[:, 2 * i * self.hidden : 2 * (i + 1) * self.hidden]
            acts = gated_conv(x, gate.weight, gate_bias, lengths, dilation=gate.dilation, padding=gate.padding)
            sums = state if weight.shape[1] == 2 * self.hidden else skip
            conv1d(acts, weight, bias, lengths, residual=sums, out=sums)
        return skip


class FusedFlow:
    """`model.ResidualCouplingBlock.reverse` in fused launches: per coupling a 1 × 1 product in
    (which also zeroes the WaveNet's skip sum: its weights are padded with zero rows), the WaveNet
    stack at two launches per layer, and a 1 × 1 product out whose epilogue subtracts from the
    coupled half in place.

    The channel flips between couplings move no data: the latent stays in one buffer whose halves
    alternate between natural and reversed channel order, and each coupling's weights are permuted
    to match (a flip maps the halves onto each other, reversed). Values past an item's length are
    unspecified until the one selection at the end."""

    def __init__(self, flow: ResidualCouplingBlock):
        couplings = [flow.flows[key] for key in reversed(list(flow.flows.keys()))]
        self.half = couplings[0].half
        self.steps = []
        for i, layer in enumerate(couplings):
            reversed_order = i % 2 == 0  # this coupling's flip is the (i + 1)-th: an odd count leaves the buffer reversed
            pre, post = _taps(layer.pre.weight), -_taps(layer.post.weight)
            post_bias = -layer.post.bias.detach()
            if reversed_order:
                pre, post, post_bias = pre.flip(2).contiguous(), post.flip(1).contiguous(), post_bias.flip(0).contiguous()
            pre_bias = layer.pre.bias.detach()
            pre, pre_bias = torch.cat([pre, torch.zeros_like(pre)], dim=1), torch.cat([pre_bias, torch.zeros_like(pre_bias)])  # + the skip sum's zeros
            self.steps.append((reversed_order, (pre, pre_bias), _WaveNet(layer.enc), (post, post_bias)))
        self.ends_reversed = len(couplings) % 2 == 1
        self.launches = 2 + sum(2 * len(wavenet.gates) + 2 for _, _, wavenet, _ in self.steps)  # copy in, select out

    @torch.compiler.disable  # already fused; compiling around it keeps the rest of the stage
    def __call__(self, z: torch.Tensor, frames: torch.Tensor, g: torch.Tensor | None) -> torch.Tensor:
        """z (B, inter, F) in the flow's dtype → the reversed flow's output, zero past `frames` (B,)."""
        lengths = frames.to(torch.int32)
        latent = channels_last(z.shape, z).copy_(z)
        low, high = latent[:, : self.half], latent[:, self.half :]
        for reversed_order, pre, wavenet, post in self.steps:
            x0, x1 = (high, low) if reversed_order else (low, high)
            skip = wavenet(conv1d(x0, *pre, lengths), lengths, g)  # the state: x, and the skip sum at zero
            conv1d(skip, *post, lengths, residual=x1, out=x1)
        if self.ends_reversed:
            latent = latent.flip(1)
        valid = torch.arange(z.shape[2], device=z.device) < frames[:, None, None]
        return torch.where(valid, latent, 0.0)
