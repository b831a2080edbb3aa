"""The demo collection: seeded shapes-world scenes with their canonical captions.

Plain random scenes almost never repeat an object (three red triangles turn up in about one
scene in 5,000), so a share of the demo scenes are groups: one shape and colour two to four
times, the rest of the canvas random. That gives count queries such as "three red triangles"
something to find, as a real collection of repeated motifs would.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from world.captions import caption
from world.render import render
from world.sample import BACKGROUND_WEIGHTS, sample_object, sample_scene
from world.scene import COLORS, MAX_OBJECTS, SHAPES, Scene

DEMO_SIZE = 2000
DEMO_SEED = 0
DEMO_TAG = "demo"
GROUP_SHARE = 0.4


def demo_scene(rng: np.random.Generator) -> Scene:
    if rng.random() >= GROUP_SHARE:
        return sample_scene(rng)
    shape, color = str(rng.choice(SHAPES)), str(rng.choice(list(COLORS)))
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


def demo_scenes(n: int = DEMO_SIZE, seed: int = DEMO_SEED) -> list[Scene]:
    """The first n scenes of the seeded sequence: a smaller demo is a prefix of a larger one."""
    rng = np.random.default_rng(seed)
    return [demo_scene(rng) for _ in range(n)]


def write_demo_collection(folder: Path, n: int = DEMO_SIZE, seed: int = DEMO_SEED
                          ) -> list[Path]:
    """Render the demo scenes as `NNNNNN.png` plus `scenes.jsonl` (file, scene, caption), the
    layout `atelier world sample` writes; returns the image paths. Same seed, same bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    lines = []
    for i, scene in enumerate(demo_scenes(n, seed)):
        path = folder / f"{i:06d}.png"
        render(scene).save(path, format="PNG")
        paths.append(path)
        lines.append(json.dumps({"file": path.name, "scene": scene.to_dict(),
                                 "caption": caption(scene)}))
    (folder / "scenes.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
