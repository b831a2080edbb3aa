"""Captions that name part of a scene ("a small red square", "two blue circles", "a red
square at the top left"), and which images of a batch each one fits.

A search names what it wants, not everything the image holds. Trained on whole-scene captions
alone, CLIP reads "two red squares" as "two red squares and nothing else" and ranks a lone red
square above two red squares among other shapes. A partial caption fits many images of a
batch, so the contrastive loss takes every image it fits as a positive
(`multi_positive_loss`) instead of pushing the others away as negatives.

What a partial caption means is what a search means by it: "a red square" holds where at least
one red square is; "a small red square" where at least one small one is; "a red square at the
top left" where at least one is in that place cell; "two red squares" where exactly two are.
"""
from __future__ import annotations

import numpy as np
import torch

from world.captions import PLACE_NAMES, cell_phrase
from world.phrasings import NUMBER_WORDS as WORLD_NUMBER_WORDS
from world.scene import COLORS, SHAPES, SIZES, Scene

KINDS = [(color, shape) for color in COLORS for shape in SHAPES]
SIZE_NAMES = list(SIZES)
NUMBER_WORDS = {n: WORLD_NUMBER_WORDS[n] for n in (2, 3, 4)}
PLACES = list(PLACE_NAMES)  # (row, column) cells
PLACE_PHRASES = [cell_phrase(cell) for cell in PLACES]
# Variants per kind: "a" (at least one), one per size (at least one of that size), the exact
# counts two to four, and one per place cell (at least one there).
VARIANTS = ["a"] + SIZE_NAMES + [NUMBER_WORDS[n] for n in sorted(NUMBER_WORDS)] + PLACE_PHRASES
COUNT_OF_VARIANT = {NUMBER_WORDS[n]: n for n in NUMBER_WORDS}


def partial_texts() -> list[str]:
    """Every partial caption, indexed kind * len(VARIANTS) + variant."""
    texts = []
    for color, shape in KINDS:
        for variant in VARIANTS:
            if variant == "a":
                texts.append(f"a {color} {shape}")
            elif variant in SIZE_NAMES:
                texts.append(f"a {variant} {color} {shape}")
            elif variant in COUNT_OF_VARIANT:
                texts.append(f"{variant} {color} {shape}s")
            else:
                texts.append(f"a {color} {shape} {variant}")
    return texts


def scene_stats(scene: Scene) -> np.ndarray:
    """Per kind: how many objects, then how many of each size, then how many in each place
    cell (kinds x (1 + sizes + places))."""
    stats = np.zeros((len(KINDS), 1 + len(SIZE_NAMES) + len(PLACES)), dtype=np.uint8)
    for obj in scene.objects:
        kind = KINDS.index((obj.color, obj.shape))
        stats[kind, 0] += 1
        stats[kind, 1 + SIZE_NAMES.index(obj.size)] += 1
        stats[kind, 1 + len(SIZE_NAMES) + PLACES.index(obj.place)] += 1
    return stats


def pick_partial(stats: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A partial caption (its index in `partial_texts`) true of each scene: one of its objects,
    named by kind, kind and size, kind and place, or by the exact count of its kind."""
    picks = []
    for scene in stats:
        present = torch.nonzero(scene[:, 0]).flatten()
        kind = int(present[torch.randint(len(present), (1,), generator=generator)])
        count = int(scene[kind, 0])
        sizes = [i for i, n in enumerate(scene[kind, 1:1 + len(SIZE_NAMES)]) if n > 0]
        places = [i for i, n in enumerate(scene[kind, 1 + len(SIZE_NAMES):]) if n > 0]
        options = ["a"] + [SIZE_NAMES[i] for i in sizes] + [PLACE_PHRASES[i] for i in places]
        if count in NUMBER_WORDS:
            options += [NUMBER_WORDS[count]] * len(options)  # counts half the time
        variant = options[int(torch.randint(len(options), (1,), generator=generator))]
        picks.append(kind * len(VARIANTS) + VARIANTS.index(variant))
    return torch.tensor(picks)


def fits(picks: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
    """texts x images: whether partial caption `picks[i]` is true of scene `stats[j]`."""
    kind, variant = picks // len(VARIANTS), picks % len(VARIANTS)
    per_kind = stats[:, kind].permute(1, 0, 2).int()  # texts x images x (1 + sizes + places)
    total = per_kind[..., 0]
    result = torch.zeros_like(total, dtype=torch.bool)
    for index, name in enumerate(VARIANTS):
        rows = variant == index
        if name == "a":
            result[rows] = total[rows] >= 1
        elif name in SIZE_NAMES:
            result[rows] = per_kind[rows][..., 1 + SIZE_NAMES.index(name)] >= 1
        elif name in COUNT_OF_VARIANT:
            result[rows] = total[rows] == COUNT_OF_VARIANT[name]
        else:
            cell = 1 + len(SIZE_NAMES) + PLACE_PHRASES.index(name)
            result[rows] = per_kind[rows][..., cell] >= 1
    return result


def multi_positive_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Contrastive loss where a row may have several right answers: minus the log of the
    probability given to all of them together, both ways (texts x images logits)."""
    def one_way(scores, right):
        return -(torch.logsumexp(scores.masked_fill(~right, float("-inf")), dim=1)
                 - torch.logsumexp(scores, dim=1)).mean()

    return (one_way(logits, positives) + one_way(logits.T, positives.T)) / 2
