"""An ESDA-style submanifold sparse CNN that regresses the pupil centre from event frames.

After Gao et al., "ESDA: A Composable Dynamic Sparse Dataflow Architecture for Efficient
Event-based Vision Processing on FPGA" (FPGA 2024) and its eye-tracking system (Zhang et al.,
2024: the sparse CNN feature extractor on the FPGA, 0.7 ms latency on the AIS 2024 event-based
eye-tracking data). The input is ESDA's: a (3, 60, 80) voxel grid of a 10 ms window (3 time
bins, signed polarities) of the 640x480 sensor downsampled by 8.

Sparsity is written exactly as the frontend's masked-dense convention reads it
(``hwcodesign/frontend/sparse.py``), so this torch module *is* the reference the accelerator
must reproduce and exports to ONNX as such:

* ``active = Cast(Greater(ReduceMax(Abs(x), axes=[1], keepdims=1), 0))``: a site is active
  when any time bin holds a nonzero value;
* every conv output (after BatchNorm and ReLU) is multiplied by the mask of its level, so an
  inactive site is exactly 0 at every layer: what a sparse conv never computes;
* a strided conv's level is ``MaxPool(previous mask)`` over stride x stride blocks, ceil mode
  (``SparseConv.downsample``): an output site is active when any input site of its block is,
  ESDA's rule (its line buffer keyed by ``x >> 1, y >> 1``, MinkowskiEngine's coordinate
  downsampling), whatever the conv's kernel.

Layers (``EyeTracker``; channels, level = spatial size):

* stem: sparse conv 3x3, 3 -> 16, at 60x80;
* MobileNetV2 inverted residual blocks (1x1 expand, depthwise 3x3, 1x1 project, each with
  ReLU -- also the projection, so every activation is unsigned and an inactive site is the
  uint8 zero point; residual add where stride 1 and the channels match), three of them with a
  stride-2 depthwise conv (kernel 3, pad 1): 60x80 -> 30x40 -> 15x20 -> 8x10;
* a 1x1 conv to 16 channels, then a sparse conv whose window is the whole 8x10 level
  (kernel = stride = 8x10, no padding) to a 1x1 level of 32 channels, global average pool, and
  the embedding: a linear layer to 64 features with ReLU (the accelerator's output);
* the recurrent head, on the host CPU as in ESDA's tracker: a GRU of 64 units (ESDA's smaller
  configuration) stepping once per frame, then a linear layer to (cx, cy) normalised to [0, 1].

One frame is one GRU step: ``forward(x, h) -> (centre, h_next)`` is what exports to ONNX, the
hidden state an input and an output, so the compiler makes it a state pair the driver carries
from frame to frame. ``forward_sequence`` runs the same cell over a window of consecutive frames
for training (truncated back-propagation through time). The GRU is why the per-frame head no
longer needs a host filter: it sees the history, so a fixation window with a handful of events
can lean on the frames before it, which is what ``track.smooth`` did by hand.

Where this departs from ESDA: the whole-level conv. ESDA's tracker ends its sparse CNN with a
1x1 conv and a global average pool, and feeds the pooled features to the GRU (its
``MobileNetSubmanifold`` with ``"pool": {"type": "global_avg"}``). A submanifold sparse conv
cannot tell an inactive site from the zero padding beyond the border, so the layers before the
pool are translation-equivariant and the pooled features translation-invariant: they can say
where the pupil is only through what surrounds it (on real eyes: eyelids, glints, the eye's own
shape). The synthetic eyes here have no such cues, and ESDA's head measured no better than
always predicting the mean centre (14.9 px against 15.6 px on ``data.TEST``, 8 epochs; 14.4 px
at 12 epochs with four corneal glints added to the synthetic eye). So the example keeps a
whole-level conv: a Flatten + Linear over the 8x10 sites written as a strided sparse conv with
its own weights per site; the global average pool over its single site then only ends the
sparse part (the frontend's rule: after a GlobalAveragePool the network is dense).

BatchNorm (``ActiveBatchNorm``) takes its batch statistics over active sites only: with ~1%
of sites active, statistics over all sites would be those of the zeros. In eval mode it is a
per-channel affine map that ``fused_for_export`` folds into the conv before it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

CHANNELS, HEIGHT, WIDTH = 3, 60, 80  # ESDA's: 3 time bins of the 640x480 sensor downsampled by 8
INPUT_NAME = "events"
OUTPUT_NAME = "centre"
STATE_INPUT_NAME = "hidden"
STATE_OUTPUT_NAME = "hidden_next"


def active_mask(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) float: 1 where any channel of the input is nonzero (the convention's mask)."""
    return (x.abs().amax(dim=1, keepdim=True) > 0).to(x.dtype)


class ActiveBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose training statistics are over the active sites of the batch only.

    Sparse conv libraries (SCN, spconv, MinkowskiEngine) normalise over the active sites; here
    the inactive sites would be 99% of the batch. In eval mode (and after folding) it is the
    ordinary per-channel affine map of the running statistics.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if not self.training or mask is None:
            return super().forward(x)
        count = mask.sum().clamp(min=1.0) * 1.0
        masked = x * mask
        mean = masked.sum(dim=(0, 2, 3)) / count
        var = ((masked * x).sum(dim=(0, 2, 3)) / count - mean * mean).clamp(min=0.0)
        with torch.no_grad():
            momentum = self.momentum if self.momentum is not None else 0.1
            unbiased = var * count / (count - 1).clamp(min=1.0)
            self.running_mean.mul_(1 - momentum).add_(momentum * mean)
            self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
            self.num_batches_tracked += 1
        scale = self.weight / torch.sqrt(var + self.eps)
        shift = self.bias - mean * scale
        return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))


class SparseConv(nn.Module):
    """Conv -> BatchNorm -> ReLU -> multiply by the mask of the output's level.

    The mask product is the whole of the sparsity: the conv is computed densely in torch, and
    the accelerator computes it at active sites only, which gives the same numbers because the
    inputs at inactive sites are zero and the outputs there are zeroed.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] | None = None,
                 groups: int = 1) -> None:
        super().__init__()
        kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        if padding is None:
            if any(k % 2 == 0 for k in kernel):
                raise ValueError(f"'same' padding needs an odd kernel, got {kernel}")
            padding = (kernel[0] // 2, kernel[1] // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, groups=groups, bias=False)
        self.bn: nn.Module = ActiveBatchNorm(out_channels)

    @property
    def strided(self) -> bool:
        return tuple(self.conv.stride) != (1, 1)

    def downsample(self, mask: torch.Tensor) -> torch.Tensor:
        """The active sites of this layer's output: the input's, or for a strided layer ESDA's
        block rule, any active site in its stride x stride block (a partial last block where the
        conv's output size rounds up)."""
        if not self.strided:
            return mask
        return F.max_pool2d(mask, self.conv.stride, self.conv.stride, ceil_mode=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output, its level's mask) for an input on the level of `mask`."""
        out_mask = self.downsample(mask)
        y = self.conv(x)
        y = self.bn(y, out_mask) if isinstance(self.bn, ActiveBatchNorm) else self.bn(y)
        return F.relu(y) * out_mask, out_mask


class InvertedResidual(nn.Module):
    """MobileNetV2's block in sparse form: 1x1 expand, depthwise 3x3 (the stride), 1x1 project.

    Every conv keeps its ReLU (see the module docstring); a stride-1 block with as many
    outputs as inputs adds its input back, a sum of two tensors of one level, so still zero
    at the inactive sites.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = SparseConv(in_channels, hidden, 1) if expansion != 1 else None
        self.depthwise = SparseConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SparseConv(hidden, out_channels, 1)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = x
        if self.expand is not None:
            y, _ = self.expand(y, mask)
        y, out_mask = self.depthwise(y, mask)
        y, _ = self.project(y, out_mask)
        return (y + x if self.residual else y), out_mask


@dataclass(frozen=True)
class BlockSpec:
    """One inverted residual block: output channels, expansion ratio, stride."""

    channels: int
    expansion: int
    stride: int


STEM_CHANNELS = 16
STEM_STRIDE = 2  # 60x80 -> 30x40
BLOCKS = (
    BlockSpec(24, 2, 2),  # -> 15x20
    BlockSpec(24, 2, 1),
    BlockSpec(32, 2, 2),  # -> 8x10
    BlockSpec(32, 2, 1),
)
REDUCE_CHANNELS = 16
FLAT_CHANNELS = 32
EMBEDDING = 64  # the accelerator's output per frame
HIDDEN = 64  # GRU units: ESDA's smaller configuration (64 or 96)


def level_sizes(height: int = HEIGHT, width: int = WIDTH, blocks: tuple[BlockSpec, ...] = BLOCKS) -> list[tuple[int, int]]:
    """(H, W) of every level: the input's, then after the stem and each block of stride 2
    (kernel 3, pad 1)."""
    sizes = [(height, width)]
    for stride in (STEM_STRIDE, *(block.stride for block in blocks)):
        if stride == 2:
            h, w = sizes[-1]
            sizes.append(((h - 1) // 2 + 1, (w - 1) // 2 + 1))
    return sizes


class EyeTracker(nn.Module):
    """The whole network: (N, 3, 60, 80) voxel grids and the GRU's hidden state -> (N, 2) pupil
    centre (cx, cy) in [0, 1] and the next hidden state."""

    def __init__(self, height: int = HEIGHT, width: int = WIDTH, blocks: tuple[BlockSpec, ...] = BLOCKS) -> None:
        super().__init__()
        self.size = (height, width)
        self.stem = SparseConv(CHANNELS, STEM_CHANNELS, 3, STEM_STRIDE)
        layers = []
        channels = STEM_CHANNELS
        for block in blocks:
            layers.append(InvertedResidual(channels, block.channels, block.expansion, block.stride))
            channels = block.channels
        self.blocks = nn.ModuleList(layers)
        last = level_sizes(height, width, blocks)[-1]
        self.reduce = SparseConv(channels, REDUCE_CHANNELS, 1)
        self.flatten = SparseConv(REDUCE_CHANNELS, FLAT_CHANNELS, last, last, padding=(0, 0))
        self.embed = nn.Linear(FLAT_CHANNELS, EMBEDDING)
        self.gru = nn.GRU(EMBEDDING, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, 2)

    def features(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(activation, mask of its level) after the stem, every block, reduce and flatten."""
        mask = active_mask(x)
        y, mask = self.stem(x, mask)
        out = [(y, mask)]
        for block in self.blocks:
            y, mask = block(y, mask)
            out.append((y, mask))
        for layer in (self.reduce, self.flatten):
            y, mask = layer(y, mask)
            out.append((y, mask))
        return out

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        """(N, EMBEDDING) per frame: the sparse CNN, global average pool and embedding, all that
        the accelerator runs."""
        y, _ = self.features(x)[-1]
        return F.relu(self.embed(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)))

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        """The hidden state at a sequence's start, (1, batch, HIDDEN) zeros (what the driver's
        reset() restores)."""
        return torch.zeros(1, batch, HIDDEN)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame per sequence: x (N, 2, H, W), h (1, N, HIDDEN) -> (centre (N, 2), h_next):
        the ONNX model's signature, with the state as an input and an output."""
        y, h_next = self.gru(self.embedding(x).unsqueeze(1), h)
        return self.head(y[:, 0]), h_next

    def forward_sequence(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows of consecutive frames: x (B, T, 2, H, W) -> (centres (B, T, 2), h after the last
        frame), from `h` or zeros. The CNN runs on all B*T frames at once (BatchNorm sees them
        all), the GRU steps along T: numerically the same as T calls of `forward`."""
        batch, steps = x.shape[:2]
        embedded = self.embedding(x.flatten(0, 1)).view(batch, steps, EMBEDDING)
        y, h_last = self.gru(embedded, self.initial_state(batch) if h is None else h)
        return self.head(y), h_last

    def sparse_convs(self) -> list[SparseConv]:
        return [m for m in self.modules() if isinstance(m, SparseConv)]

    def fused_for_export(self) -> EyeTracker:
        """An eval-mode copy with every BatchNorm folded into its conv (which gains a bias):
        the float ONNX model then has the Conv -> Relu -> Mul(mask) pattern per sparse layer,
        and the QDQ model quantizes the folded weights per output channel."""
        fused = copy.deepcopy(self).eval()
        for layer in fused.sparse_convs():
            if isinstance(layer.bn, nn.BatchNorm2d):
                layer.conv = fold_batchnorm(layer.conv, layer.bn)
                layer.bn = nn.Identity()
        return fused


@torch.no_grad()
def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """The conv with bias equal to ``bn(conv(x))`` for eval-mode running statistics."""
    gain = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True)
    folded.weight.copy_(conv.weight * gain.view(-1, 1, 1, 1))
    previous = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    folded.bias.copy_(bn.bias + (previous - bn.running_mean) * gain)
    return folded


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm gains and shifts included, before folding)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@dataclass(frozen=True)
class LayerMacs:
    """One layer's multiply-accumulates per frame: dense, and per active output site."""

    name: str
    level: tuple[int, int]
    macs_per_site: int
    dense_macs: int


def layer_macs(model: EyeTracker) -> list[LayerMacs]:
    """MACs per output site (kernel taps x input channels per group x output channels) and per
    dense frame of every conv and the embedding, in forward order: what the accelerator runs."""
    rows = []
    h, w = model.size
    for name, module in model.named_modules():
        if isinstance(module, SparseConv):
            conv = module.conv
            kh, kw = conv.kernel_size
            (sh, sw), (ph, pw) = conv.stride, conv.padding
            h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            per_site = kh * kw * conv.in_channels // conv.groups * conv.out_channels
            rows.append(LayerMacs(name, (h, w), per_site, per_site * h * w))
    embed = model.embed
    rows.append(LayerMacs("embed", (1, 1), embed.in_features * embed.out_features,
                          embed.in_features * embed.out_features))
    return rows


def host_macs(model: EyeTracker) -> int:
    """The host head's multiply-accumulates per frame: the GRU's three gates (input and hidden
    products) and the final linear layer."""
    gru = model.gru
    return 3 * gru.hidden_size * (gru.input_size + gru.hidden_size) + model.head.in_features * model.head.out_features


def sparse_macs(model: EyeTracker, frames: torch.Tensor) -> float:
    """Mean MACs per frame at the frames' active sites: each conv's MACs per output site times
    the active sites of its output level (what the accelerator computes), plus the embedding."""
    sites: list[float] = []

    def record(_module: nn.Module, _inputs: object, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        sites.append(float(output[1].sum(dim=(1, 2, 3)).mean()))

    hooks = [layer.register_forward_hook(record) for layer in model.sparse_convs()]
    try:
        with torch.no_grad():
            model.embedding(frames)
    finally:
        for hook in hooks:
            hook.remove()
    rows = layer_macs(model)
    assert len(sites) == len(rows) - 1
    return sum(row.macs_per_site * count for row, count in zip(rows, sites)) + rows[-1].macs_per_site


def level_densities(model: EyeTracker, frames: torch.Tensor) -> list[tuple[tuple[int, int], float]]:
    """((H, W), mean active fraction) of every level, input first: how the strided layers
    spread the active sites (each output site is active when any site of its block is)."""
    with torch.no_grad():
        masks = [active_mask(frames)] + [mask for _, mask in model.features(frames)]
    levels: dict[tuple[int, int], float] = {}
    for mask in masks:
        levels.setdefault((int(mask.shape[2]), int(mask.shape[3])), float(mask.mean()))
    return list(levels.items())
