"""CenterNet decode for the CoDeNet-like detector's three outputs (numpy only, runs on the host).

CoDeNet keeps CenterNet's anchor-free heads (Zhou et al., "Objects as Points", 2019): at
output stride 4 the network predicts per class a centre heatmap (logits here: the sigmoid is
part of the decode, not of the accelerator), a box size and a sub-pixel centre offset.
Channel conventions (CenterNet's): ``size`` = (width, height) and ``offset`` = (dx, dy), both
in output-grid cells.

Decode: sigmoid -> 3x3 max-pool "NMS" (a peak is a cell equal to the maximum of its 3x3
neighbourhood) -> top-k over classes and positions -> score threshold -> boxes in input pixels
``((x + dx) +- w/2) * stride``, ``((y + dy) +- h/2) * stride``.

``encode`` does the inverse for planted objects (Gaussian peaks, as CenterNet's training
targets); ``self_test`` checks that decode recovers them. Run ``python decode.py`` to run it.
"""

from __future__ import annotations

import numpy as np

Detection = tuple[int, float, float, float, float, float]  # (class, score, x0, y0, x1, y1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))  # 1 / (1 + exp(-x)) without overflow


def max_pool3x3(x: np.ndarray) -> np.ndarray:
    """3x3 max filter, stride 1, over the last two axes (borders padded with -inf)."""
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], constant_values=-np.inf)
    h, w = x.shape[-2:]
    out = np.full(x.shape, -np.inf)
    for dy in range(3):
        for dx in range(3):
            out = np.maximum(out, padded[..., dy : dy + h, dx : dx + w])
    return out


def _single(a: np.ndarray, channels: int | None, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"{what}: decode takes one image, got batch {a.shape[0]}")
        a = a[0]
    if a.ndim != 3 or (channels is not None and a.shape[0] != channels):
        raise ValueError(
            f"{what}: expected ({channels or 'C'}, H, W) or (1, {channels or 'C'}, H, W), got {a.shape}"
        )
    return a


def decode(
    heatmap_logits: np.ndarray,
    size: np.ndarray,
    offset: np.ndarray,
    k: int = 100,
    threshold: float = 0.3,
    stride: int = 4,
) -> list[Detection]:
    """Detections ``(class, score, x0, y0, x1, y1)`` of one image, best score first.

    ``heatmap_logits`` (C, H, W) or (1, C, H, W); ``size`` and ``offset`` (2, H, W) or
    (1, 2, H, W). At most ``k`` peaks are taken, then those scoring below ``threshold`` are
    dropped. Box coordinates are in input pixels (x1, y1 exclusive, not clipped to the image).
    """
    heat = sigmoid(_single(heatmap_logits, None, "heatmap"))
    size = _single(size, 2, "size").astype(np.float64)
    offset = _single(offset, 2, "offset").astype(np.float64)
    c, h, w = heat.shape
    if size.shape[1:] != (h, w) or offset.shape[1:] != (h, w):
        raise ValueError(f"size {size.shape} / offset {offset.shape} do not match the heatmap {heat.shape}")
    peaks = np.where(heat == max_pool3x3(heat), heat, 0.0).ravel()
    k = min(k, peaks.size)
    top = np.argpartition(-peaks, k - 1)[:k] if k < peaks.size else np.arange(peaks.size)
    top = top[np.lexsort((top, -peaks[top]))]  # score descending, ties by index
    detections: list[Detection] = []
    for index in top:
        score = float(peaks[index])
        if score < threshold or score <= 0.0:
            break
        cls, pos = divmod(int(index), h * w)
        y, x = divmod(pos, w)
        cx = x + offset[0, y, x]
        cy = y + offset[1, y, x]
        bw, bh = size[0, y, x], size[1, y, x]
        detections.append(
            (
                cls,
                score,
                float((cx - bw / 2) * stride),
                float((cy - bh / 2) * stride),
                float((cx + bw / 2) * stride),
                float((cy + bh / 2) * stride),
            )
        )
    return detections


def encode(
    boxes: np.ndarray,
    num_classes: int = 20,
    out_size: int = 64,
    stride: int = 4,
    sigma: float = 1.5,
    peak: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet-style head outputs for planted objects: (heatmap_logits, size, offset), batch 1.

    ``boxes``: (n, 6) rows ``(class, score_unused, x0, y0, x1, y1)`` or (n, 5) rows
    ``(class, x0, y0, x1, y1)`` in input pixels. Each object puts a Gaussian of height ``peak``
    at its centre cell in its class channel (background 0.01), and its size/offset there.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), -1)
    if boxes.shape[1] == 6:
        boxes = boxes[:, [0, 2, 3, 4, 5]]
    heat = np.full((num_classes, out_size, out_size), 0.01)
    size = np.zeros((2, out_size, out_size))
    offset = np.zeros((2, out_size, out_size))
    yy, xx = np.mgrid[0:out_size, 0:out_size]
    for cls, x0, y0, x1, y1 in boxes:
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        g = peak * np.exp(-((xx - ix) ** 2 + (yy - iy) ** 2) / (2 * sigma**2))
        heat[int(cls)] = np.maximum(heat[int(cls)], g)
        size[:, iy, ix] = ((x1 - x0) / stride, (y1 - y0) / stride)
        offset[:, iy, ix] = (cx - ix, cy - iy)
    logits = np.log(heat) - np.log1p(-heat)
    return (logits[None].astype(np.float32), size[None].astype(np.float32), offset[None].astype(np.float32))


def self_test(seed: int = 0) -> list[Detection]:
    """Plant objects (one pair of same-class neighbours 3 cells apart), decode, check them."""
    rng = np.random.default_rng(seed)
    objects = [(3, 40.0, 60.0, 100.0, 140.0), (3, 52.0, 60.0, 112.0, 140.0), (17, 150.0, 20.0, 250.0, 90.0)]
    for _ in range(3):
        cls = int(rng.integers(20))
        x0, y0 = rng.uniform(0, 200, 2)
        w, h = rng.uniform(12, 56, 2)
        objects.append((cls, x0, y0, x0 + w, y0 + h))
    centres = {(int(c), int((x0 + x1) / 8), int((y0 + y1) / 8)) for c, x0, y0, x1, y1 in objects}
    if len(centres) != len(objects):
        raise AssertionError("planted objects collide")
    heat, size, offset = encode(np.array(objects))
    found = decode(heat, size, offset, k=100, threshold=0.3)
    if len(found) != len(objects):
        raise AssertionError(f"found {len(found)} detections for {len(objects)} planted objects")
    for cls, x0, y0, x1, y1 in objects:
        best = min(
            found, key=lambda d: np.abs(np.array(d[2:]) - (x0, y0, x1, y1)).max() + 1e3 * (d[0] != cls)
        )
        if (
            best[0] != cls
            or np.abs(np.array(best[2:]) - (x0, y0, x1, y1)).max() > 1e-3
            or abs(best[1] - 0.95) > 1e-6
        ):
            raise AssertionError(f"object {(cls, x0, y0, x1, y1)} decoded as {best}")
    return found


if __name__ == "__main__":
    for cls, score, x0, y0, x1, y1 in self_test():
        print(f"class {cls:2d}  score {score:.3f}  box ({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f})")
    print("decode self-test passed")
