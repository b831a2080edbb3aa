"""What the eyes (detector and segmenter) learn from: scenes with objects near each other as
well as apart, each scene's objects as a table, text queries with the attributes they name,
and the pixel noise that makes a renderer's exact images look like a model's."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from world.phrasings.vocabulary import COLOR_WORDS, SHAPE_WORDS
from world.phrasings.vocabulary import SIZE_WORDS as SIZE_SYNONYMS
from world.sample import BACKGROUND_WEIGHTS, sample_group_scene, sample_object, sample_scene
from world.scene import (CANVAS, COLORS, MAX_OBJECTS, MIN_GAP_PX, SHAPES, SIZES, Obj, Scene,
                         valid_layout)

COLOR_NAMES = tuple(COLORS)
SIZE_NAMES = tuple(SIZES)
TEMPLATES = ("{}", "a {}", "the {}", "a photo of a {}")
# Columns of an object table row.
BOX, SHAPE, COLOR, SIZE, VALID = slice(0, 4), 4, 5, 6, 7


def sample_near_scene(rng: np.random.Generator) -> Scene:
    """Two to four objects, each placed 4 to 10 px from one already there: the neighbours a
    detector must keep apart and a segmenter must not spill onto."""
    count = int(rng.integers(2, MAX_OBJECTS + 1))
    background = str(rng.choice(list(BACKGROUND_WEIGHTS), p=list(BACKGROUND_WEIGHTS.values())))
    while True:
        objects = [sample_object(rng)]
        for _ in range(count - 1):
            for _ in range(60):
                anchor = objects[int(rng.integers(len(objects)))]
                candidate = Obj(str(rng.choice(SHAPES)), str(rng.choice(COLOR_NAMES)),
                                str(rng.choice(SIZE_NAMES)), 0.5, 0.5)
                (aw, ah), (cw, ch) = anchor.extent, candidate.extent
                gap = float(rng.uniform(MIN_GAP_PX + 0.5, 10)) / CANVAS
                side = int(rng.integers(4))
                slide = float(rng.uniform(-0.5, 0.5))
                if side < 2:   # left or right of the anchor
                    sign = -1 if side == 0 else 1
                    x = anchor.x + sign * ((aw + cw) / 2 + gap)
                    y = anchor.y + slide * ah
                else:          # above or below
                    sign = -1 if side == 2 else 1
                    x = anchor.x + slide * aw
                    y = anchor.y + sign * ((ah + ch) / 2 + gap)
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    continue
                candidate = candidate.replace(x=round(x, 4), y=round(y, 4))
                if valid_layout(objects + [candidate]):
                    objects.append(candidate)
                    break
            else:
                break
        if len(objects) == count:
            return Scene(tuple(objects), background)


def sample_training_scene(rng: np.random.Generator) -> Scene:
    roll = rng.random()
    if roll < 0.2:
        return sample_near_scene(rng)
    if roll < 0.35:
        return sample_group_scene(rng)
    return sample_scene(rng)


def object_table(scene: Scene) -> np.ndarray:
    """MAX_OBJECTS x 8 float32: box (x0, y0, x1, y1 in 0..1), shape, colour and size indices,
    and 1 where the row is an object."""
    table = np.zeros((MAX_OBJECTS, 8), dtype=np.float32)
    for i, o in enumerate(scene.objects):
        table[i, BOX] = o.box
        table[i, SHAPE] = SHAPES.index(o.shape)
        table[i, COLOR] = COLOR_NAMES.index(o.color)
        table[i, SIZE] = SIZE_NAMES.index(o.size)
        table[i, VALID] = 1
    return table


def phrase(shape: str | None, color: str | None, size: str | None,
           rng: np.random.Generator | None = None) -> str:
    """The words for an attribute combination ("small red circle", "red", "circle"); with `rng`,
    size synonyms and a random template."""
    if rng is None:
        pick = lambda words: words[0]  # noqa: E731
    else:
        pick = lambda words: str(rng.choice(words))  # noqa: E731
    words = []
    if size:
        words.append(pick(SIZE_SYNONYMS[size]))
    if color:
        words.append(pick(COLOR_WORDS[color]))
    words.append(pick(SHAPE_WORDS[shape]) if shape else ("object" if color is None else "shape"))
    text = " ".join(words)
    if rng is None:
        return text
    if shape is None and color is not None and rng.random() < 0.5:
        text = words[-2]      # a colour alone: "red"
    return str(rng.choice(TEMPLATES)).format(text)


def attribute_combinations() -> list[tuple[str | None, str | None, str | None]]:
    """(shape, colour, size): every shape with any colour or none and any size or none, every
    colour alone, and "object"."""
    combos = [(s, c, z) for s in SHAPES for c in (None, *COLOR_NAMES) for z in (None, *SIZE_NAMES)]
    return combos + [(None, c, None) for c in COLOR_NAMES] + [(None, None, None)]


def query_bank(rng: np.random.Generator) -> tuple[list[str], torch.Tensor]:
    """One step's queries, every attribute combination in freshly drawn words, and their
    attributes as indices (-1 where a query does not say)."""
    combos = attribute_combinations()
    texts = [phrase(s, c, z, rng) for s, c, z in combos]
    attributes = torch.tensor([[SHAPES.index(s) if s else -1,
                                COLOR_NAMES.index(c) if c else -1,
                                SIZE_NAMES.index(z) if z else -1] for s, c, z in combos])
    return texts, attributes


def query_matches(table: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """batch x objects x queries: the object is one the query names."""
    fits = torch.ones(table.shape[:2] + (len(attributes),), dtype=torch.bool)
    for column, a in ((SHAPE, 0), (COLOR, 1), (SIZE, 2)):
        wanted = attributes[:, a][None, None, :]
        fits &= (wanted < 0) | (table[..., column, None].long() == wanted)
    return fits & (table[..., VALID, None] > 0)


def augment(images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Images in [-1, 1] as a generator draws them rather than as the renderer does: colours a
    little off, some noise, now and then softer edges."""
    batch = len(images)
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    offset = (torch.rand(batch, 3, 1, 1, generator=generator) - 0.5) * 0.16
    contrast = 0.9 + torch.rand(batch, 1, 1, 1, generator=generator) * 0.2
    noise = torch.randn(images.shape, generator=generator) * (
        torch.rand(batch, 1, 1, 1, generator=generator) * 0.04)
    blurred = F.avg_pool2d(images, 3, 1, 1, count_include_pad=False)
    blur = (torch.rand(batch, 1, 1, 1, generator=generator) < 0.3).float() * torch.rand(
        batch, 1, 1, 1, generator=generator)
    images = images * (1 - blur) + blurred * blur
    return (images * contrast + offset + noise).clamp(-1, 1)
