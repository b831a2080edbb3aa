"""Grounding: from an object description ("the red circle") to the pixels it names.

Operations ask a `Grounder`, which the domain brings (the shapes world's reads images with the
world's own detector, world/grounding.py). A user with an open-vocabulary detector passes
another object with the same two methods to `ModelSet(..., grounder=...)`.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image


class Grounder(Protocol):
    def locate(self, image: Image.Image, description: str) -> list[np.ndarray]:
        """One H x W bool mask per object the description names; ValueError saying why when it
        names none, or one of several where it asks for one."""

    def objects(self, image: Image.Image) -> list[np.ndarray]:
        """One H x W bool mask per object in the image."""


class NoGrounder:
    """What a model set has when no grounding model is configured: every question is answered
    with what is missing, so an operation that needs one fails saying how to fix it."""

    REASON = ("no grounding model is configured, and this needs one to find objects in an "
              "image; give a grounder (ModelSet(..., grounder=...)) or choose a domain that "
              "brings one")

    def locate(self, image: Image.Image, description: str) -> list[np.ndarray]:
        from pipelines.errors import ModelUnavailable

        raise ModelUnavailable(self.REASON, "grounder")

    def objects(self, image: Image.Image) -> list[np.ndarray]:
        from pipelines.errors import ModelUnavailable

        raise ModelUnavailable(self.REASON, "grounder")


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a mask by `pixels`, so an object's antialiased edge goes with it."""
    from scipy import ndimage

    if pixels <= 0:
        return mask
    return ndimage.binary_dilation(mask, iterations=pixels)


PLURAL_WORDS = ("all", "every", "both", "each")
# What a cut-out of an image drawn alone is asked for: the detector finds "an object" in
# nearly any picture of one thing.
ANY_OBJECT = ("an object",)


class ModelGrounder:
    """Grounding through model eyes (pipelines/detection.py): a description is the detector's
    query, each found object's mask the segmenter's. `objects()` asks for `object_queries`."""

    def __init__(self, eyes, object_queries: tuple[str, ...] = ANY_OBJECT):
        self.eyes = eyes
        self.object_queries = object_queries

    def locate(self, image: Image.Image, description: str) -> list[np.ndarray]:
        found = self.eyes.find(image, [description])
        if not found:
            raise ValueError(f"the detector finds nothing that matches it above score "
                             f"{self.eyes.threshold}; describe the object as it looks")
        words = description.lower().split()
        if not any(w in PLURAL_WORDS for w in words):
            found = found[:1]  # one object asked for: the best match
        return [d.mask for d in found]

    def objects(self, image: Image.Image) -> list[np.ndarray]:
        return [d.mask for d in self.eyes.find(image, list(self.object_queries))]
