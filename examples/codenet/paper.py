"""CoDeNet as the paper's hardware configurations run it (FPGA 2021, arXiv 2006.08357; the
quantized model behind configurations a-e is Zhen-Dong/CoDeNet's `shufflenetv2_dcn`, which
hqjenny/CoDeNet's accelerator runs). Facts in ../shared/REFERENCES.md; what is our choice is
marked below.

* **First layer** (8-bit weights, on the ARM CPU in CoDeNet): conv 3x3 3 -> 24 + ReLU, stride 4
  (configurations a and c), or stride 2 + max pool 3x3/2 (configuration b). Both give 24 channels
  at a quarter of the input. The compiler puts it on the host (`--host`, `FIRST_LAYER`).
* **Backbone**: ShuffleNetV2 1.0x, stages of 116, 232 and 464 channels with 4, 8 and 4 units, the
  first of each stride 2, then a 1x1 conv to 1,024 channels + ReLU. A stride-1 unit splits its
  channels in half, passes one half on and runs the other through 1x1 + ReLU, depthwise 3x3 (no
  ReLU), 1x1 + ReLU; a stride-2 unit runs both branches on the whole input (depthwise 3x3/2,
  1x1 + ReLU; and 1x1 + ReLU, depthwise 3x3/2, 1x1 + ReLU). Each unit concatenates its two halves
  and shuffles them (2 groups): concatenation instead of residual adds throughout.
* **Decoder**: three stages, 1,024 -> 256 -> 128 -> 64 channels, each: one offset s per pixel
  from a 1x1 conv of the stage input, clipped to [0, N] and rounded to an integer (N = 7: the
  paper's bound, its 15-row line buffer); a depthwise 3x3 deformable conv at the input's width
  with taps at centre + (1 + s) * p_k, no interpolation; a 1x1 conv to the output width + ReLU;
  nearest 2x upsampling. Output stride 4, as CenterNet. This is the order of Zhen-Dong's model
  and hqjenny's accelerator notebook (the deformable conv at the input's width, then the 1x1);
  the paper's Fig. 5(c) text puts the 1x1 first.
* **Heads** (CenterNet, 64 wide): heatmap (20 VOC classes), size (2), offset (2), each 1x1 + ReLU,
  depthwise 3x3 + ReLU, 1x1 with bias.

Quantization (`hwcodesign quantize --weight-bits 4 --symmetric-activations --host <first layer>`):
int4 per-channel symmetric weights and int8 symmetric activations (zero point 0, scale max|x| /
127), as the paper states (Zhen-Dong's code and hqjenny's HLS quantize activations
asymmetrically); the first layer stays float, for the host.

Our choices: the offset form [0, N] with taps at (1 + s) * p_k is the paper's (Zhen-Dong's code
trains s in [-7, 8] as a dilation); BatchNorm is folded away before export (the convs carry
biases); the weights are random, rescaled layer by layer on synthetic scenes so that every
layer's output has unit spread (no data set is downloaded here: the detector detects nothing in
particular); each offset conv is set so that its s spans [0, N] on those scenes.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/script_loader.py
from script_loader import load_script  # noqa: E402

deform = load_script(HERE / "model.py", "codenet_model")
scenes = load_script(HERE / "build.py", "codenet_build")

from hwcodesign.flows.quantize import quantize_model  # noqa: E402
from hwcodesign.onnx_edit import inline_constants  # noqa: E402

CONFIGURATIONS = {"a": (256, "stride4"), "b": (256, "maxpool"), "c": (512, "stride4")}
"""The paper's configurations of the 1.0x model: input size and first layer."""
STAGES = ((116, 4), (232, 8), (464, 4))  # ShuffleNetV2 1.0x: output channels, units
STEM_CHANNELS = 24
LAST_CHANNELS = 1024
DECODER = (1024, 256, 128, 64)
HEAD_WIDTH = 64
HEADS = {"heatmap": 20, "size": 2, "offset": 2}
OFFSET_BOUND = 7  # N: offsets s in [0, N]
FIRST_LAYER = "stem"
"""The module (and ONNX node name prefix, `/stem/`) of the layer that runs on the host."""


def conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


def shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """ShuffleNet's channel shuffle, as torchvision writes it (Reshape, Transpose, Reshape)."""
    n, c, h, w = (int(s) for s in x.shape)
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Unit(nn.Module):
    """One ShuffleNetV2 unit: split (stride 1) or two branches (stride 2), concatenate, shuffle."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride == 2:
            self.left = nn.Sequential(conv(cin, cin, 3, 2, groups=cin, relu=False), conv(cin, half))
        inner = cin if stride == 2 else cin // 2
        self.right = nn.Sequential(conv(inner, half), conv(half, half, 3, stride, groups=half, relu=False),
                                   conv(half, half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            left, right = x.chunk(2, dim=1)
            return shuffle(torch.cat((left, self.right(right)), dim=1))
        return shuffle(torch.cat((self.left(x), self.right(x)), dim=1))


class SquareDeformStage(nn.Module):
    """CoDeNet's decoder stage: s = round(clip(conv1x1(x), 0, N)) per pixel, a depthwise 3x3
    deformable conv reading s * P (P the square pattern: taps at centre + (1 + s) * p_k), a 1x1
    conv + ReLU, nearest 2x upsampling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.offset = nn.Conv2d(cin, 1, 1)
        self.deform = deform.DeformConv2d(cin, cin, 3, 1, 1, groups=cin)
        self.project = conv(cin, cout)
        taps = [(i - 1, j - 1) for i in range(3) for j in range(3)]
        pattern = torch.tensor([v for tap in taps for v in tap], dtype=torch.float32).reshape(1, 18, 1, 1)
        self.register_buffer("pattern", pattern)

    def offsets(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(torch.clamp(self.offset(x), 0.0, float(OFFSET_BOUND)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.deform(x, self.offsets(x) * self.pattern))
        return nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")


class CoDeNet(nn.Module):
    """The detector of one configuration (`CONFIGURATIONS`): image -> (heatmap, size, offset)."""

    def __init__(self, configuration: str = "a") -> None:
        super().__init__()
        _, first = CONFIGURATIONS[configuration]
        if first == "stride4":
            self.stem = conv(3, STEM_CHANNELS, 3, 4)
        else:
            self.stem = nn.Sequential(*conv(3, STEM_CHANNELS, 3, 2), nn.MaxPool2d(3, 2, 1))
        units: list[nn.Module] = []
        cin = STEM_CHANNELS
        for cout, repeats in STAGES:
            units += [Unit(cin, cout, 2)] + [Unit(cout, cout, 1) for _ in range(repeats - 1)]
            cin = cout
        self.backbone = nn.Sequential(*units, conv(cin, LAST_CHANNELS))
        self.decoder = nn.Sequential(*(SquareDeformStage(a, b) for a, b in zip(DECODER, DECODER[1:], strict=False)))
        self.heads = nn.ModuleDict({name: nn.Sequential(conv(HEAD_WIDTH, HEAD_WIDTH),
                                                        conv(HEAD_WIDTH, HEAD_WIDTH, 3, groups=HEAD_WIDTH),
                                                        nn.Conv2d(HEAD_WIDTH, channels, 1))
                                    for name, channels in HEADS.items()})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.decoder(self.backbone(self.stem(x)))
        return tuple(head(y) for head in self.heads.values())


@torch.no_grad()
def unit_spread(model: CoDeNet, images: torch.Tensor) -> None:
    """Random weights rescaled in forward order so that every conv's output has standard
    deviation 1 on `images` (layer-sequential unit-variance init), each offset conv set so that
    its s = round(clip(., 0, N)) spreads over [0, N] (mean N / 2, a spread of N / 3). One forward
    pass: each conv's hook rescales its weights and returns its output as rescaled, so the layers
    after it see what they will see."""
    offsets = {id(stage.offset) for stage in model.modules() if isinstance(stage, SquareDeformStage)}

    def rescale(module: nn.Module, _inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        spread, mean = max(float(out.std()), 1e-6), float(out.mean())
        if id(module) in offsets:  # out' = k (out - mean) + N / 2
            k = OFFSET_BOUND / 3 / spread
            module.weight.mul_(k)
            module.bias.copy_(k * (module.bias - mean) + OFFSET_BOUND / 2)
            return k * (out - mean) + OFFSET_BOUND / 2
        module.weight.mul_(1.0 / spread)
        module.bias.mul_(1.0 / spread)
        return out / spread

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d | deform.DeformConv2d)]
    handles = [module.register_forward_hook(rescale) for module in convs]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()


def make_model(configuration: str = "a", images: torch.Tensor | None = None, seed: int = 0) -> CoDeNet:
    """The configuration's detector with random weights rescaled on `images` (`unit_spread`)."""
    torch.manual_seed(seed)
    model = CoDeNet(configuration).eval()
    if images is not None:
        unit_spread(model, images)
    return model


CALIBRATION_IMAGES = 8
WEIGHT_BITS = 4  # CoDeNet's 4-bit per-channel symmetric weights (the first layer's 8-bit ones run on the host in float)
DEFAULT_OUT = Path("build/examples/codenet")


def first_layer_nodes(model: onnx.ModelProto) -> list[str]:
    """The exported first layer's nodes (`FIRST_LAYER`): what `hwcodesign quantize --host` keeps float."""
    return [node.name for node in model.graph.node if node.name.startswith(f"/{FIRST_LAYER}/")]


def export(model: CoDeNet, size: int) -> onnx.ModelProto:
    """The TorchScript export (its DeformConv Function's symbolic writes the ONNX DeformConv), opset 19."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, size, size),), buffer, dynamo=False, opset_version=19,
                          input_names=["input"], output_names=list(HEADS))
    exported = onnx.load_from_string(buffer.getvalue())
    exported.ir_version = min(exported.ir_version, scenes.IR_VERSION)
    exported.graph.name = "codenet_paper"
    return exported


def build_paper(out_dir: Path, configuration: str = "a", size: int | None = None, seed: int = 0) -> dict[str, Path]:
    """Write ``codenet_<configuration>_float.onnx`` and ``codenet_<configuration>_w4a8.onnx`` (at
    the configuration's input size, or `size`: the tests' small frames); return their paths. The
    quantized model keeps the first layer float, so the compiler runs it on the host."""
    size = size or CONFIGURATIONS[configuration][0]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"codenet_{configuration}" + ("" if size == CONFIGURATIONS[configuration][0] else f"_{size}")
    paths = {"float": out_dir / f"{stem}_float.onnx", "w4a8": out_dir / f"{stem}_w4a8.onnx"}
    images, _ = scenes.synthetic_scenes(CALIBRATION_IMAGES, seed=seed, stream=3, size=size)
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    try:
        model = make_model(configuration, torch.from_numpy(images), seed)
        float_model = export(model, size)
    finally:
        torch.set_num_threads(threads)
    quantized = quantize_model(float_model, images, weight_bits=WEIGHT_BITS, host=first_layer_nodes(float_model),
                               symmetric_activations=True)
    inline_constants(float_model)
    onnx.save(float_model, str(paths["float"]))
    onnx.save(quantized, str(paths["w4a8"]))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGURATIONS), default="a", help="the paper's configuration")
    parser.add_argument("--size", type=int, help="input size (default: the configuration's)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = build_paper(args.out, args.config, args.size)
    for key, path in paths.items():
        print(f"{key:>6}: {path} ({path.stat().st_size / 1e6:.2f} MB file)")
    print(f"built in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
