"""Objects drawn one at a time and placed in boxes: LLM-grounded Diffusion's per-box
generation, shared by `layout` (method per_box) and `inpaint` (with `objects`).

Each phrase is drawn alone by the base model, the grounding tool cuts out the object that
matches the phrase, and the cut-out is scaled into its box on a canvas. A model that draws an
object right but not where it is asked (a small one learns places last) still puts every
object where the plan says. A phrase the tool cannot match is drawn again from fresh noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pipelines.base import Timings
from pipelines.grounding import dilate

# The sampler the per-box layout figure (98% of 100) was measured with, at the operation's
# steps (20 by default).
OBJECT_SAMPLER = "dpm++2m"
# Pixels around a grounding mask that go with a cut-out (its antialiased edge) when it was
# drawn on the same background as the canvas, and around an object's hole when it is cleared.
CUTOUT_MARGIN = 1
HOLE_MARGIN = 2
# The ring around a region whose median colour fills it.
RING = 3
# Levels from its median within which 95% of a plain background lies (the shapes model's
# backgrounds: 10 to 17; a photograph's: far more).
PLAIN_SPREAD = 24


@dataclass
class Drawn:
    """One image per phrase, the mask of its object there (None: nothing found), how many
    images were drawn in all, and the phrases the tool could not match (their largest object
    stands in)."""

    images: list[Image.Image]
    cutouts: list[np.ndarray | None]
    draws: int
    unmatched: list[int]

    def missing(self) -> list[int]:
        return [i for i, cut in enumerate(self.cutouts) if cut is None]

    def params(self, phrases: list[str]) -> dict:
        """What the drawing did, for an operation's parameters."""
        return {"object_draws": self.draws, "unmatched": [phrases[i] for i in self.unmatched],
                "missing": [phrases[i] for i in self.missing()]}


def alone(phrase: str, background_prompt: str) -> str:
    """The prompt that draws one object by itself: "a red circle, on a gray background"."""
    return f"{phrase}, {background_prompt}" if background_prompt else phrase


@dataclass
class Job:
    """The objects one call draws alone: their phrases, the background they are drawn on, the
    negative prompt, and the call's own generator (all of its noise comes from it, in order,
    so a call batched with others draws what it draws alone)."""

    phrases: list[str]
    background_prompt: str
    negative_prompt: str
    generator: torch.Generator


def draw_alone(models, jobs: list[Job], steps: int, guidance: float, size: int, redraws: int,
               timings: Timings) -> list[Drawn]:
    """Draw each job's phrases alone until the grounding tool finds them, at most 1 + `redraws`
    times; one batched pipeline call per round for all jobs together."""
    pipe = models.with_sampler(OBJECT_SAMPLER)
    images = [[None] * len(job.phrases) for job in jobs]
    cutouts: list[list[np.ndarray | None]] = [[None] * len(job.phrases) for job in jobs]
    draws = [0] * len(jobs)
    for _ in range(1 + redraws):
        missing = [(j, i) for j, job in enumerate(jobs) for i in range(len(job.phrases))
                   if cutouts[j][i] is None]
        if not missing:
            break
        with timings.phase("denoise"):
            drawn = pipe(prompt=[alone(jobs[j].phrases[i], jobs[j].background_prompt)
                                 for j, i in missing],
                         negative_prompt=[jobs[j].negative_prompt for j, _ in missing],
                         num_inference_steps=steps, guidance_scale=guidance, width=size,
                         height=size, generator=[jobs[j].generator for j, _ in missing]).images
        with timings.phase("ground"):
            for (j, i), image in zip(missing, drawn):
                draws[j] += 1
                images[j][i], cutouts[j][i] = image, find(models.grounder, image, jobs[j].phrases[i])
    results = []
    with timings.phase("ground"):
        for j in range(len(jobs)):
            unmatched = [i for i, cut in enumerate(cutouts[j]) if cut is None]
            # What the tool cannot match to its phrase, it may still see as an object.
            for i in unmatched:
                cutouts[j][i] = largest(models.grounder.objects(images[j][i]))
            results.append(Drawn(images[j], cutouts[j], draws[j], unmatched))
    return results


def find(grounder, image: Image.Image, phrase: str) -> np.ndarray | None:
    """The one object of `image` that the grounding tool matches to `phrase`, or None."""
    try:
        masks = grounder.locate(image, phrase)
    except ValueError:  # nothing matches, several do, or the phrase names nothing it knows
        return None
    return masks[0] if len(masks) == 1 and masks[0].any() else None


def largest(masks: list[np.ndarray]) -> np.ndarray | None:
    return max((m for m in masks if m.any()), key=lambda m: int(m.sum()), default=None)


def place(canvas: Image.Image, boxes: list[list[float]], drawn: Drawn, margin: int) -> Image.Image:
    """Each found cut-out scaled into its box on `canvas`, with `margin` pixels around its mask."""
    for box, image, cut in zip(boxes, drawn.images, drawn.cutouts):
        if cut is not None:
            canvas = paste_into_box(canvas, image, dilate(cut, margin), box)
    return canvas


def cleared(image: Image.Image, masks: list[np.ndarray]) -> tuple[Image.Image, np.ndarray]:
    """`image` with its objects painted over in the median colour of the rest, and the
    painted area: the background that objects are placed on. A plain background (95% of it
    within PLAIN_SPREAD levels of its median) is painted flat all over, which drops the faint
    ghosts of objects that a small model leaves; a photograph's is kept as drawn."""
    hole = np.zeros((image.height, image.width), dtype=bool)
    for mask in masks:
        hole |= dilate(mask, HOLE_MARGIN)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    rest = pixels[~hole]
    if len(rest):
        median = np.median(rest, axis=0)
        if np.percentile(np.abs(rest - median).max(axis=1), 95) <= PLAIN_SPREAD:
            flat = tuple(int(v) for v in median.round())
            return Image.new("RGB", image.size, flat), hole
    return filled(image, hole, ~hole), hole


def filled(image: Image.Image, region: np.ndarray, source: np.ndarray | None = None) -> Image.Image:
    """`image` with `region` painted in the median colour of `source` (default: a ring of
    RING pixels around the region), which is the background around a plain-background object."""
    pixels = np.asarray(image.convert("RGB")).copy()
    if source is None:
        source = dilate(region, RING) & ~region
    if region.any() and source.any():
        pixels[region] = np.median(pixels[source], axis=0).astype(np.uint8)
    return Image.fromarray(pixels)


def paste_into_box(image: Image.Image, source: Image.Image, cutout: np.ndarray, box) -> Image.Image:
    """`source`'s pixels under `cutout`, scaled to fit `box` of `image` and centred in it."""
    ys, xs = np.nonzero(cutout)
    crop = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    piece = source.crop(crop)
    alpha = Image.fromarray(cutout.astype(np.uint8) * 255).crop(crop)
    width, height = image.size
    x0, y0 = int(np.floor(box[0] * width)), int(np.floor(box[1] * height))
    x1, y1 = int(np.ceil(box[2] * width)), int(np.ceil(box[3] * height))
    scale = min((x1 - x0) / piece.width, (y1 - y0) / piece.height)
    size = (max(1, round(piece.width * scale)), max(1, round(piece.height * scale)))
    piece = piece.resize(size, Image.Resampling.LANCZOS)
    # A smooth alpha keeps the pasted edge antialiased, like the objects around it.
    alpha = alpha.resize(size, Image.Resampling.BILINEAR)
    corner = (x0 + (x1 - x0 - size[0]) // 2, y0 + (y1 - y0 - size[1]) // 2)
    result = image.copy()
    result.paste(piece, corner, alpha)
    return result
