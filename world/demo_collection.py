"""The demo collection: seeded shapes-world scenes with their canonical captions.

A share of the demo scenes are groups (world.sample.sample_group_scene): one shape and colour
two to four times, the rest of the canvas random. That gives count queries such as "three red
triangles" something to find, as a real collection of repeated motifs would.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from world.captions import caption
from world.render import render
from world.sample import sample_group_scene, sample_scene
from world.scene import Scene

DEMO_SIZE = 2000
DEMO_SEED = 0
DEMO_TAG = "demo"
GROUP_SHARE = 0.4


def demo_scene(rng: np.random.Generator) -> Scene:
    return sample_scene(rng) if rng.random() >= GROUP_SHARE else sample_group_scene(rng)


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
