"""Seeded random scenes that obey every world/WORLD.md placement rule."""
from __future__ import annotations

import numpy as np

from .scene import (CENTRE_RANGE, COLORS, MAX_OBJECTS, SHAPES, SIZES, Obj, Scene,
                    boxes_clear, inside_canvas)

# "Background mostly white": the other two appear now and then.
BACKGROUND_WEIGHTS = {"white": 0.7, "gray": 0.15, "black": 0.15}


def sample_object(rng: np.random.Generator, others=(), shape=None, color=None, size=None,
                  tries: int = 200) -> Obj | None:
    """A random object clear of `others`, or None when no free spot was found."""
    shape = shape or str(rng.choice(SHAPES))
    color = color or str(rng.choice(list(COLORS)))
    size = size or str(rng.choice(list(SIZES)))
    lo, hi = CENTRE_RANGE
    for _ in range(tries):
        obj = Obj(shape, color, size, round(float(rng.uniform(lo, hi)), 4),
                  round(float(rng.uniform(lo, hi)), 4))
        if inside_canvas(obj.box) and all(boxes_clear(obj.box, o.box) for o in others):
            return obj
    return None


def sample_scene(rng: np.random.Generator, n_objects: int | None = None,
                 background: str | None = None) -> Scene:
    """A scene of 1..4 objects (or exactly `n_objects`), none touching, all inside the canvas."""
    count = n_objects or int(rng.integers(1, MAX_OBJECTS + 1))
    if background is None:
        names = list(BACKGROUND_WEIGHTS)
        background = names[int(rng.choice(len(names), p=list(BACKGROUND_WEIGHTS.values())))]
    while True:
        objects: list[Obj] = []
        for _ in range(count):
            obj = sample_object(rng, objects)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == count:
            return Scene(tuple(objects), background)


def sample_group_scene(rng: np.random.Generator, shape: str | None = None,
                       color: str | None = None, count: int | None = None) -> Scene:
    """A scene with one shape and colour two to four times (or `count` times), the rest of
    the canvas random: repeated motifs, which plain random scenes almost never have (three red
    triangles turn up in about one scene in 5,000), so that counts have something to be learnt
    and found from."""
    if shape is None:
        shape = str(rng.choice(SHAPES))
    if color is None:
        color = str(rng.choice(list(COLORS)))
    if count is None:
        count = int(rng.integers(2, MAX_OBJECTS + 1))
    extra = int(rng.integers(0, MAX_OBJECTS - count + 1))
    background = str(rng.choice(list(BACKGROUND_WEIGHTS), p=list(BACKGROUND_WEIGHTS.values())))
    while True:
        objects = []
        for i in range(count + extra):
            kind = {"shape": shape, "color": color} if i < count else {}
            obj = sample_object(rng, objects, **kind)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == count + extra:
            return Scene(tuple(objects), background)
