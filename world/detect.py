"""The world's grounding tool: image -> scene, with each object's mask.

It must judge generated images too, so it reads colours by projecting each pixel onto the
segment between the background and each palette colour (antialiased edges are blends of
exactly two colours), and reads size and centre from area and centroid, which blur and noise
barely move.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .scene import BACKGROUNDS, CANVAS, COLORS, SHAPES, SIZES, TRIANGLE_HEIGHT, Obj, Scene

PALETTE_NAMES = list(COLORS)
PALETTE = np.array([COLORS[n] for n in PALETTE_NAMES], dtype=np.float32)
# Area per squared side, to turn a pixel count into a side length.
AREA_PER_SIDE2 = {"circle": math.pi / 4, "square": 1.0, "triangle": TRIANGLE_HEIGHT / 2}
SIZE_THRESHOLD = math.sqrt(SIZES["small"] * SIZES["large"])
# A blob smaller than half the smallest object is noise, not an object.
MIN_AREA_FRACTION = 0.5 * AREA_PER_SIDE2["triangle"] * SIZES["small"] ** 2
MAX_RESIDUAL = 60.0
DENOISE_SIGMA = 1.0


@dataclass
class DetectedObject:
    obj: Obj
    mask: np.ndarray  # bool, H x W
    area: float       # fraction of the canvas
    fit: float        # IoU of the mask with the ideal shape it was read as


@dataclass
class Detection:
    scene: Scene
    objects: list[DetectedObject]
    background_rgb: tuple[int, int, int]

    @property
    def masks(self) -> list[np.ndarray]:
        return [d.mask for d in self.objects]


def as_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image (H x W x 3), got shape {array.shape}")
    return array


def read_background(pixels: np.ndarray) -> tuple[str, np.ndarray]:
    """The flat background: the median of the border, snapped to the nearest named one."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    measured = np.median(border, axis=0)
    name = min(BACKGROUNDS, key=lambda n: float(np.sum((measured - BACKGROUNDS[n]) ** 2)))
    return name, measured


def label_pixels(pixels: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per pixel: index into PALETTE, or -1 for background."""
    offset = pixels - background                              # H W 3
    direction = PALETTE - background                          # K 3
    length2 = np.maximum(np.sum(direction ** 2, axis=1), 1.0)  # K
    labels = np.full(pixels.shape[:2], -1, dtype=np.intp)
    # A pixel reaches half-way toward colour k only if |offset| >= 0.5 length2_k / |direction_k|
    # (Cauchy-Schwarz), so the pixels nearer the background than the smallest such reach are
    # background without the per-colour work: most of a mostly flat image.
    norms = np.sqrt(np.sum(direction ** 2, axis=1))
    reach = np.min(np.where(norms > 0, 0.5 * length2 / np.maximum(norms, 1e-12), np.inf))
    candidates = np.sum(offset ** 2, axis=-1) >= (0.999 * reach) ** 2
    if candidates.any():
        labels[candidates] = _label_offsets(offset[candidates], direction, length2)
    return labels


def _label_offsets(offset: np.ndarray, direction: np.ndarray, length2: np.ndarray) -> np.ndarray:
    """label_pixels for N x 3 offsets from the background."""
    t = offset @ direction.T / length2                         # N K: blend fraction per colour
    t_clipped = np.clip(t, 0.0, 1.0)
    residual = np.linalg.norm(offset[:, None, :] - t_clipped[..., None] * direction, axis=-1)
    # Only colours the pixel is at least half-way toward count; of those the closest wins.
    residual = np.where(t >= 0.5, residual, np.inf)
    best = np.argmin(residual, axis=-1)
    best_residual = np.take_along_axis(residual, best[..., None], axis=-1)[..., 0]
    return np.where(best_residual <= MAX_RESIDUAL, best, -1)


def shape_template(shape: str, cx: float, cy: float, side: float, xs: np.ndarray,
                   ys: np.ndarray) -> np.ndarray:
    """Which of the pixel centres (xs, ys) an ideal `shape` of this centre and side covers."""
    half = side / 2
    if shape == "circle":
        return (xs - cx) ** 2 + (ys - cy) ** 2 <= half ** 2
    if shape == "square":
        return (np.abs(xs - cx) <= half) & (np.abs(ys - cy) <= half)
    height = side * TRIANGLE_HEIGHT
    top, bottom = cy - height / 2, cy + height / 2
    # Half-width grows linearly from the apex to the base.
    half_width = half * (ys - top) / height
    return (ys >= top) & (ys <= bottom) & (np.abs(xs - cx) <= half_width)


def read_object(mask: np.ndarray, color: str, side_px: int) -> DetectedObject:
    """Fit each shape to the blob (side from its area, centre from its centroid); best IoU wins."""
    ys, xs = np.nonzero(mask)
    area = float(len(xs))
    # Pixel centres sit at +0.5.
    mx, my = xs.mean() + 0.5, ys.mean() + 0.5
    pad = 4
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, side_px)
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, side_px)
    grid_y, grid_x = np.mgrid[y0:y1, x0:x1] + 0.5
    window = mask[y0:y1, x0:x1]
    best = None
    for shape in SHAPES:
        side = math.sqrt(area / AREA_PER_SIDE2[shape])
        # A triangle's centroid lies a sixth of its height below the centre of its box.
        cy = my - side * TRIANGLE_HEIGHT / 6 if shape == "triangle" else my
        template = shape_template(shape, mx, cy, side, grid_x, grid_y)
        iou = float((template & window).sum()) / float((template | window).sum())
        if best is None or iou > best[0]:
            best = (iou, shape, side, cy)
    iou, shape, side, cy = best
    size = "small" if side / side_px < SIZE_THRESHOLD else "large"
    obj = Obj(shape, color, size, round(float(np.clip(mx / side_px, 0, 1)), 4),
              round(float(np.clip(cy / side_px, 0, 1)), 4))
    return DetectedObject(obj, mask, area / side_px ** 2, iou)


def detect(image) -> Detection:
    pixels = as_array(image)
    side_px = pixels.shape[0]
    if pixels.shape[0] != pixels.shape[1]:
        raise ValueError(f"the shapes world is square; got {pixels.shape[1]}x{pixels.shape[0]}")
    smooth = ndimage.gaussian_filter(pixels, sigma=(DENOISE_SIGMA * side_px / CANVAS,) * 2 + (0,))
    background_name, background = read_background(smooth)
    labels = label_pixels(smooth, background)
    min_area = MIN_AREA_FRACTION * side_px ** 2
    found: list[DetectedObject] = []
    for index, color in enumerate(PALETTE_NAMES):
        components, count = ndimage.label(labels == index)
        for component in range(1, count + 1):
            mask = components == component
            if mask.sum() >= min_area:
                found.append(read_object(ndimage.binary_fill_holes(mask), color, side_px))
    # Reading order (top to bottom, then left to right) gives stable object ids.
    found.sort(key=lambda d: (round(d.obj.y * 3), d.obj.x))
    scene = Scene(tuple(d.obj for d in found), background_name)
    return Detection(scene, found, tuple(int(v) for v in np.round(background)))
