"""The compositional prompt set: GenEval-style categories on the shapes world.

    python -m bench.prompts          # rewrites bench/data/compositional.jsonl; same file each run

Every prompt is a phrasing of a scene drawn by the world's sampler (world/sample.py,
world/phrasings/) from a fixed seed, so the constraints it states are exact; the file is
written once and read by the benchmark, and a test checks that it still matches this code.

Categories (what each one checks):
- single_object: one object, its shape and colour (and size where said);
- two_objects: two objects of different shapes, both present (shapes and count only, as
  GenEval's two_object checks classes, not colours);
- counting: 2-4 objects of one shape and colour, exactly that many;
- colour_binding: two objects of different shapes and colours, each colour on its own shape;
- position: one object in a named cell of the 3 x 3 grid;
- relation: two objects, one left of / right of / above / below the other.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

PROMPTS = Path(__file__).parent / "data" / "compositional.jsonl"
CATEGORIES = ("single_object", "two_objects", "counting", "colour_binding", "position",
              "relation")
PER_CATEGORY = 90
SEED = 20_250


def _distinct_shapes_and_colours(scene) -> bool:
    a, b = scene.objects
    return a.shape != b.shape and a.color != b.color


def _same_kind_scene(rng, n: int):
    from world.sample import sample_object
    from world.scene import COLORS, SHAPES, Scene

    shape, color = str(rng.choice(SHAPES)), str(rng.choice(list(COLORS)))
    while True:
        objects = []
        for _ in range(n):
            obj = sample_object(rng, objects, shape=shape, color=color)
            if obj is None:
                break
            objects.append(obj)
        if len(objects) == n:
            return Scene(tuple(objects), "white")


def _prompt(category: str, rng):
    """(text, constraints) for one prompt of `category`."""
    from world.check import Background, Count, Exists
    from world.phrasings import sample_phrasing
    from world.sample import sample_scene

    def phrase(scene, families):
        return sample_phrasing(scene, rng, families=families, frames=["bare"])

    if category == "single_object":
        p = phrase(sample_scene(rng, n_objects=1, background="white"), ["bare", "no_place"])
        return p.text, list(p.constraints)
    if category == "position":
        p = phrase(sample_scene(rng, n_objects=1, background="white"), ["caption", "no_size"])
        return p.text, list(p.constraints)
    if category == "counting":
        p = phrase(_same_kind_scene(rng, int(rng.integers(2, 5))), ["count"])
        return p.text, list(p.constraints)
    while True:  # the two-object categories
        scene = sample_scene(rng, n_objects=2, background="white")
        if category == "relation":
            try:
                p = phrase(scene, ["relation"])
            except ValueError:  # too close on both axes to state a relation
                continue
            return p.text, list(p.constraints)
        if not _distinct_shapes_and_colours(scene):
            continue
        p = phrase(scene, ["bare", "no_place"])
        if category == "colour_binding":
            return p.text, list(p.constraints)
        shapes = [Exists(shape=o.shape) for o in scene.objects]
        return p.text, [Count(2), *shapes, Background("white")]


def make_prompts(per_category: int = PER_CATEGORY, seed: int = SEED) -> list[dict]:
    from world.check import constraint_to_dict

    rng = np.random.default_rng(seed)
    rows = []
    seen: set[str] = set()  # no prompt twice, even across categories
    for category in CATEGORIES:
        made = 0
        while made < per_category:
            text, constraints = _prompt(category, rng)
            if text in seen:
                continue
            seen.add(text)
            made += 1
            rows.append({"id": f"{category}-{made:03d}", "category": category, "prompt": text,
                         "constraints": [constraint_to_dict(c) for c in constraints]})
    return rows


def load_prompts(path: Path = PROMPTS) -> list[dict]:
    from world.check import constraint_from_dict

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    for row in rows:
        row["constraints"] = [constraint_from_dict(c) for c in row["constraints"]]
    return rows


def sample(rows: list[dict], per_category: int) -> list[dict]:
    """The first `per_category` prompts of each category (the --quick subset)."""
    taken: dict[str, int] = {}
    chosen = []
    for row in rows:
        if taken.get(row["category"], 0) < per_category:
            taken[row["category"]] = taken.get(row["category"], 0) + 1
            chosen.append(row)
    return chosen


def render_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)


def main() -> int:
    rows = make_prompts()
    PROMPTS.parent.mkdir(parents=True, exist_ok=True)
    PROMPTS.write_text(render_jsonl(rows))
    print(f"{len(rows)} prompts in {len(CATEGORIES)} categories -> {PROMPTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
