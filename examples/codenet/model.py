"""A CoDeNet-like object detector in torch, with a deformable convolution that exports to ONNX.

Architecture after Huang, Wang, Dong et al., "CoDeNet: Efficient Deployment of Input-Adaptive
Object Detection on Embedded FPGAs", FPGA 2021 (arXiv:2006.08357):

* a light ShuffleNetV2-style backbone of output stride 32 (``Backbone``);
* a CenterNet-style upsampling neck whose three stages use a *depthwise* deformable 3x3
  convolution with *limited-range* offsets, followed by nearest x2 upsampling and a 1x1
  convolution (``DeformUpStage``) -- the two algorithm/hardware co-design changes of the paper
  that make deformable convolution cheap on an FPGA (depthwise: ~C times fewer MACs than a full
  deformable conv; bounded offsets: every sample lies in a small line buffer);
* CenterNet heads (heatmap, box size, centre offset) at stride 4 (``CenterNetHead``).

The paper's detector runs on Pascal VOC (20 classes) at 256x256 and 512x512; this example uses
256x256, so the backbone ends at 8x8 and the neck returns to 64x64 (stride 4, as CenterNet).

No torchvision: ``deform_conv2d`` is deformable convolution v1 in plain torch (bilinear sampling
by gathering the four neighbours, zero outside the image), differentiable in the input, weights
and offsets, and exported as a standard ONNX ``DeformConv`` node (opset 19) by the TorchScript
exporter through ``DeformConv2dFunction.symbolic``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 20  # Pascal VOC, as in the paper's evaluation
INPUT_SIZE = 256  # the paper's smaller input resolution
OFFSET_RANGE = 2  # R: offsets are clipped to [-R, R] pixels (the paper's "limited range")
KERNEL = 3


# ---------------------------------------------------------------------------
# Deformable convolution (v1)
# ---------------------------------------------------------------------------


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    offset_groups: int = 1,
) -> torch.Tensor:
    """Deformable convolution v1 with ONNX ``DeformConv`` semantics, in plain torch.

    ``x``: (N, C, H, W); ``weight``: (M, C/groups, kH, kW); ``offset``: (N, offset_groups*kH*kW*2,
    oH, oW), where for tap k = i*kW + j of offset group g the pair (dy, dx) sits at channels
    (g*kH*kW + k)*2 and +1. Tap (i, j) of output (oh, ow) samples x at

        y = oh*stride - pad + i*dilation + dy,   x = ow*stride - pad + j*dilation + dx

    by bilinear interpolation of the four neighbouring pixels, each neighbour outside the image
    counting as zero. Channel c uses offset group c // (C / offset_groups).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    # Plain ints: under ONNX tracing shapes are tensors, and shape arithmetic inside the
    # autograd Function's traced subgraph breaks the TorchScript exporter's peephole pass.
    n, c, h, w = (int(s) for s in x.shape)
    m, cg, kh, kw = (int(s) for s in weight.shape)
    taps = kh * kw
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if cg * groups != c or m % groups:
        raise ValueError(f"weight {tuple(weight.shape)} does not match {c} channels in {groups} groups")
    if c % offset_groups:
        raise ValueError(f"{c} channels are not divisible by {offset_groups} offset groups")
    if tuple(offset.shape) != (n, offset_groups * taps * 2, oh, ow):
        raise ValueError(f"offset shape {tuple(offset.shape)} != {(n, offset_groups * taps * 2, oh, ow)}")

    off = offset.reshape(n, offset_groups, taps, 2, oh, ow)
    dev, dtype = x.device, x.dtype
    tap = torch.arange(taps, device=dev)  # k = i*kW + j
    tap_i = torch.div(tap, kw, rounding_mode="floor").to(dtype) * dh
    tap_j = torch.remainder(tap, kw).to(dtype) * dw
    out_y = torch.arange(oh, device=dev, dtype=dtype) * sh - ph
    out_x = torch.arange(ow, device=dev, dtype=dtype) * sw - pw
    ys = (tap_i.view(taps, 1, 1) + out_y.view(1, oh, 1)) + off[:, :, :, 0]  # (n, og, taps, oh, ow)
    xs = (tap_j.view(taps, 1, 1) + out_x.view(1, 1, ow)) + off[:, :, :, 1]
    y0 = torch.floor(ys)
    x0 = torch.floor(xs)
    fy = ys - y0  # differentiable in the offsets (floor has zero gradient)
    fx = xs - x0
    y0 = y0.long()
    x0 = x0.long()

    per_group = c // offset_groups
    flat = x.reshape(n, offset_groups, per_group, h * w)
    samples = x.new_zeros(n, offset_groups, per_group, taps * oh * ow)
    for yy, wy in ((y0, 1 - fy), (y0 + 1, fy)):
        for xx, wx in ((x0, 1 - fx), (x0 + 1, fx)):
            inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(n, offset_groups, 1, -1)
            values = torch.gather(flat, 3, index.expand(-1, -1, per_group, -1))
            coeff = (wy * wx * inside.to(dtype)).reshape(n, offset_groups, 1, -1)
            samples = samples.addcmul_(values, coeff)

    cols = samples.reshape(n, groups, c // groups, taps, oh * ow)
    wgt = weight.reshape(groups, m // groups, cg, taps)
    out = torch.einsum("ngckl,gmck->ngml", cols, wgt).reshape(n, m, oh, ow)
    if bias is not None:
        out = out + bias.view(1, m, 1, 1)
    return out


class DeformConv2dFunction(torch.autograd.Function):
    """``deform_conv2d`` as an autograd Function whose ONNX export is one ``DeformConv`` node."""

    @staticmethod
    def forward(ctx, x, weight, offset, bias, stride, padding, dilation, groups, offset_groups):  # noqa: D102
        ctx.save_for_backward(x, weight, offset, bias)
        ctx.conf = (stride, padding, dilation, groups, offset_groups)
        return deform_conv2d(x, weight, offset, bias, *ctx.conf)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        # Recompute the forward with autograd (as activation checkpointing does) and differentiate.
        leaves = [t.detach().requires_grad_(need) for t, need in zip(ctx.saved_tensors, ctx.needs_input_grad)]
        wanted = [t for t in leaves if t.requires_grad]
        grads = iter(())
        if wanted:
            with torch.enable_grad():
                out = deform_conv2d(*leaves, *ctx.conf)
            grads = iter(torch.autograd.grad(out, wanted, grad_out))
        return (*(next(grads) if t.requires_grad else None for t in leaves), None, None, None, None, None)

    @staticmethod
    def symbolic(g, x, weight, offset, bias, stride, padding, dilation, groups, offset_groups):  # noqa: D102
        kh, kw = (int(s) for s in weight.type().sizes()[2:])
        (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
        return g.op(
            "DeformConv",
            x,
            weight,
            offset,
            bias,
            kernel_shape_i=[kh, kw],
            pads_i=[ph, pw, ph, pw],
            strides_i=[sh, sw],
            dilations_i=[dh, dw],
            group_i=int(groups),
            offset_group_i=int(offset_groups),
        )


class DeformConv2d(nn.Module):
    """Deformable convolution layer; ``forward(x, offset)``; exports to ONNX ``DeformConv``.

    The bias is always materialised (zeros when ``bias=False``) so the exported node always has
    four inputs (X, W, offset, B); ``fold_batchnorm`` folds a following BatchNorm into W and B.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = KERNEL,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        offset_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.offset_groups = groups, offset_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bias = nn.Parameter(torch.zeros(out_channels), requires_grad=bias)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return DeformConv2dFunction.apply(
            x,
            self.weight,
            offset,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.offset_groups,
        )

    @torch.no_grad()
    def fold_batchnorm(self, bn: nn.BatchNorm2d) -> None:
        """Fold an eval-mode BatchNorm that follows this layer into its weight and bias."""
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.weight.mul_(a.view(-1, 1, 1, 1))
        self.bias.copy_((self.bias - bn.running_mean) * a + bn.bias)


# ---------------------------------------------------------------------------
# Backbone
# ---------------------------------------------------------------------------


def conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ShuffleBlock(nn.Module):
    """A ShuffleNetV2 unit simplified to a depthwise-separable block.

    ShuffleNetV2 (Ma et al., ECCV 2018), CoDeNet's backbone, builds each unit from
    1x1 conv -> BN -> ReLU, 3x3 depthwise conv (stride s) -> BN, 1x1 conv -> BN -> ReLU. Here the
    branch sees all channels instead of a channel split, and stride-1 units add their input
    (standing in for the identity half of ShuffleNetV2's split/concat/shuffle) instead of
    concatenating and shuffling: channel split and shuffle are Slice/Reshape/Transpose chains
    that a streaming accelerator implements as wiring, and leaving them out keeps the example to
    ops the compiler lowers (Conv, depthwise Conv, Add).
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.residual = stride == 1 and cin == cout
        self.branch = nn.Sequential(
            conv_bn_relu(cin, cout, 1),
            nn.Conv2d(cout, cout, 3, stride, 1, groups=cout, bias=False),
            nn.BatchNorm2d(cout),
            conv_bn_relu(cout, cout, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        return x + y if self.residual else y


class Backbone(nn.Module):
    """ShuffleNetV2-0.5x-like backbone, output stride 32 (256x256 -> 8x8).

    Stem 3x3/2 conv (24 ch) and 3x3/2 max pool, then three stages of (4, 8, 4) units with
    (48, 96, 192) channels -- ShuffleNetV2 0.5x's widths and repeats -- each starting with a
    stride-2 unit, and a final 1x1 conv (``out_channels``; ShuffleNetV2's conv5 has 1024, 512
    here keeps the 4-bit model below the 0.76 MB of the paper's small variant).
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (48, 96, 192),
        repeats: tuple[int, ...] = (4, 8, 4),
        out_channels: int = 512,
    ) -> None:
        super().__init__()
        self.stem = conv_bn_relu(3, 24, 3, 2)
        self.pool = nn.MaxPool2d(3, 2, 1)
        layers: list[nn.Module] = []
        cin = 24
        for width, repeat in zip(widths, repeats):
            layers.append(ShuffleBlock(cin, width, 2))
            layers.extend(ShuffleBlock(width, width, 1) for _ in range(repeat - 1))
            cin = width
        self.stages = nn.Sequential(*layers)
        self.conv5 = conv_bn_relu(cin, out_channels, 1)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.stages(self.pool(self.stem(x))))


# ---------------------------------------------------------------------------
# Neck and heads
# ---------------------------------------------------------------------------


class DeformUpStage(nn.Module):
    """One CoDeNet upsampling stage: bounded depthwise deformable conv, x2 nearest, 1x1 conv.

    CoDeNet replaces the full deformable conv + transposed conv of CenterNet's upsampling path by
    a *depthwise* deformable 3x3 conv (group = channels, one offset group), whose offsets come
    from a 3x3 conv (2*3*3 = 18 channels) and are clipped to [-R, R] (``offset_range``; the Clip
    is how the exported model declares R, which sizes the accelerator's line buffer), followed
    by BN -> ReLU, nearest-neighbour x2 upsampling (cheaper than a transposed conv in hardware)
    and a 1x1 conv -> BN -> ReLU that changes the channel count.
    """

    def __init__(self, cin: int, cout: int, offset_range: float = OFFSET_RANGE) -> None:
        super().__init__()
        self.offset_range = float(offset_range)
        self.offset = nn.Conv2d(cin, 2 * KERNEL * KERNEL, KERNEL, 1, KERNEL // 2, bias=True)
        self.deform = DeformConv2d(cin, cin, KERNEL, 1, KERNEL // 2, groups=cin, offset_groups=1, bias=False)
        self.bn = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.project = conv_bn_relu(cin, cout, 1)

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.offset(x), -self.offset_range, self.offset_range)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.deform(x, self.offsets(x))))
        y = F.interpolate(y, scale_factor=2.0, mode="nearest")
        return self.project(y)


class CenterNetHead(nn.Module):
    """A CenterNet head (Zhou et al., "Objects as Points", 2019): 3x3 conv -> ReLU -> 1x1 conv.

    The heatmap head's bias starts at -log((1 - 0.1) / 0.1) (CenterNet's focal-loss prior); its
    output stays logits -- the sigmoid is part of the host-side decode.
    """

    def __init__(self, cin: int, cout: int, hidden: int = 64, prior: float | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, hidden, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.out = nn.Conv2d(hidden, cout, 1, 1, 0, bias=True)
        if prior is not None:
            nn.init.constant_(self.out.bias, -float(torch.log(torch.tensor((1 - prior) / prior))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.conv(x)))


class CoDeNet(nn.Module):
    """CoDeNet-like detector: backbone (stride 32) -> 3 deformable upsampling stages -> 3 heads.

    ``forward`` returns ``(heatmap_logits, size, offset)`` of shapes (N, 20, 64, 64),
    (N, 2, 64, 64), (N, 2, 64, 64) for a (N, 3, 256, 256) input.
    """

    def __init__(
        self,
        num_classes: int = NUM_CLASSES,
        neck_channels: tuple[int, ...] = (128, 64, 64),
        head_channels: int = 64,
        offset_range: float = OFFSET_RANGE,
    ) -> None:
        super().__init__()
        self.backbone = Backbone()
        stages = []
        cin = self.backbone.out_channels
        for cout in neck_channels:
            stages.append(DeformUpStage(cin, cout, offset_range))
            cin = cout
        self.neck = nn.Sequential(*stages)
        self.heatmap = CenterNetHead(cin, num_classes, head_channels, prior=0.1)
        self.size = CenterNetHead(cin, 2, head_channels)
        self.center_offset = CenterNetHead(cin, 2, head_channels)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = self.neck(self.backbone(x))
        return self.heatmap(f), self.size(f), self.center_offset(f)

    def deform_stages(self) -> list[DeformUpStage]:
        return [m for m in self.modules() if isinstance(m, DeformUpStage)]

    def fused_for_export(self) -> CoDeNet:
        """An eval-mode copy with every BatchNorm folded into the convolution before it.

        (The TorchScript exporter would fold BN into ``nn.Conv2d`` itself but cannot see through
        the custom DeformConv; folding everything here also lets the caller adjust the final
        weights, e.g. put them on a quantization grid, before export.)
        """
        fused = copy.deepcopy(self).eval()
        for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
            for k in range(len(seq) - 1):
                if isinstance(seq[k], nn.Conv2d) and isinstance(seq[k + 1], nn.BatchNorm2d):
                    seq[k] = fold_conv_batchnorm(seq[k], seq[k + 1])
                    seq[k + 1] = nn.Identity()
        for stage in fused.deform_stages():
            stage.deform.fold_batchnorm(stage.bn)
            stage.bn = nn.Identity()
        assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
        return fused


@torch.no_grad()
def fold_conv_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d (with bias) computing ``bn(conv(x))`` of an eval-mode BatchNorm."""
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    )
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded.weight.copy_(conv.weight * a.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_((bias - bn.running_mean) * a + bn.bias)
    return folded


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
