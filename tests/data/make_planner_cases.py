"""Write tests/data/planner_cases.jsonl: (context, request) -> expected plan semantics.

    python tests/data/make_planner_cases.py        # rewrites the file; same output every run

It imports only the installed packages (`pip install -e .`), so it runs from any directory.

The generated cases, their templates and the split of held-out template families come from
world/planning/cases.py (training/planner_data.py draws its cases there too, with other
seeds); hand-written cases here add phrasings no template makes.

Split "heldout": whole template families the RulePlanner was not developed against (phrasing
families HELD_FAMILIES, edit styles HELD_STYLES, sentence frames HELD_FRAMES) and the
hand-written unusual phrasings. Everything else is "main".
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from planners.context import PlanningContext
from world.check import Background, Count, Exists, Relation, constraints_for_edit
from world.edits import Edit, apply_edit
from world.planning.cases import (EDIT_OPS, HELD_FAMILIES, HELD_FRAMES, HELD_STYLES,
                                  MAIN_FAMILIES, MAIN_FRAMES, MAIN_STYLES, compose_ops,
                                  edit_cases, multi_turn_cases, other_cases, phrasing_cases)
from world.planning.evaluate import Case, Expected
from world.planning.scenes import context_for_scene
from world.scene import Obj, Scene

OUT = Path(__file__).with_name("planner_cases.jsonl")


# --- hand-written -------------------------------------------------------------------------

def objs(*specs):
    return Scene(tuple(Obj(*s) for s in specs))


TWO = objs(("circle", "red", "small", 0.25, 0.3), ("square", "blue", "large", 0.7, 0.65))
THREE = objs(("triangle", "green", "small", 0.2, 0.2), ("circle", "yellow", "large", 0.5, 0.7),
             ("square", "purple", "small", 0.8, 0.25))


def gen(*objects, relations=(), background=None, count=None):
    """Constraints for a compose request: objects as (shape, color, size, row, column)."""
    constraints = [Count(count if count is not None else len(objects))]
    constraints += [Exists(*o) for o in objects]
    constraints += [Relation(Exists(*objects[a][:2]), r, Exists(*objects[b][:2]))
                    for a, r, b in relations]
    constraints.append(Background(background or "white"))
    return Expected("plan", compose_ops(constraints), constraints)


def edit(scene, kind, targets=(), **params):
    e = Edit(kind, tuple(targets), params)
    after = apply_edit(scene, e)
    return Expected("plan", EDIT_OPS, constraints_for_edit(scene, e, after),
                    notes={"edit": e.to_dict()})


def hand_cases():
    """Unusual phrasings, written by hand: (split, context scene or None, request, expected)."""
    rows = [
        # new pictures
        (None, "I need a tiny cyan triangle up in the top right corner",
         gen(("triangle", "cyan", "small", "top", "right"))),
        (None, "just one big yellow square, nothing else",
         gen(("square", "yellow", "large", None, None))),
        (None, "a red ball left of a green box on a black backdrop",
         gen(("circle", "red", None, None, None), ("square", "green", None, None, None),
             relations=[(0, "left_of", 1)], background="black")),
        (None, "put a purple triangle under a blue circle",
         gen(("triangle", "purple", None, None, None), ("circle", "blue", None, None, None),
             relations=[(0, "below", 1)])),
        (None, "three green dots side by side",
         gen(*[("circle", "green", None, None, None)] * 3)),
        (None, "Show me two squares, a red one on the left and a blue one on the right",
         gen(("square", "red", None, "middle", "left"), ("square", "blue", None, "middle", "right"))),
        (None, "dark background, small violet disc in the middle",
         gen(("circle", "purple", "small", "middle", "center"), background="black")),
        (None, "a big turquoise triangle at the bottom and a little red square above it",
         gen(("triangle", "cyan", "large", "bottom", "center"), ("square", "red", "small", None, None),
             relations=[(1, "above", 0)])),
        (None, "top-left: a blue circle. bottom-right: a yellow triangle.",
         gen(("circle", "blue", None, "top", "left"), ("triangle", "yellow", None, "bottom", "right"))),
        (None, "generate a picture with a large grey background and one small green square",
         gen(("square", "green", "small", None, None), background="gray")),
        (None, "a yellow circle, and to its right a red triangle",
         gen(("circle", "yellow", None, None, None), ("triangle", "red", None, None, None),
             relations=[(1, "right_of", 0)])),
        (None, "four blocks, one in each corner",
         gen(("square", None, None, "top", "left"), ("square", None, None, "top", "right"),
             ("square", None, None, "bottom", "left"), ("square", None, None, "bottom", "right"))),
        (None, "render a crimson circle",
         gen(("circle", "red", None, None, None))),
        (None, "a couple of blue triangles, one above the other",
         gen(("triangle", "blue", None, None, None), ("triangle", "blue", None, None, None))),
        # edits
        (TWO, "could the little red circle be green?", edit(TWO, "recolor", [0], color="green")),
        (TWO, "the square's too big, shrink it", edit(TWO, "resize", [1], size="small")),
        (TWO, "swap colours between the circle and the square",
         edit(TWO, "swap_colors", [0, 1])),
        (TWO, "get that blue square out of there", edit(TWO, "remove", [1])),
        (TWO, "drag the red ball over to the bottom left corner",
         edit(TWO, "move", [0], place=["bottom", "left"])),
        (TWO, "let's have a gray background", edit(TWO, "background", background="gray")),
        (TWO, "turn the square into a triangle please", edit(TWO, "reshape", [1], shape="triangle")),
        (TWO, "stick a small yellow triangle in the top right",
         edit(TWO, "add", shape="triangle", color="yellow", size="small", place=["top", "right"])),
        (THREE, "make the big one red", edit(THREE, "recolor", [1], color="red")),
        (THREE, "the one on the right should be a circle", edit(THREE, "reshape", [2], shape="circle")),
        (THREE, "recolour the leftmost shape blue", edit(THREE, "recolor", [0], color="blue")),
        (THREE, "remove the yellow thing", edit(THREE, "remove", [1])),
        (THREE, "I'd prefer a black background", edit(THREE, "background", background="black")),
        (THREE, "enlarge the purple square", edit(THREE, "resize", [2], size="large")),
        (THREE, "change the green triangle's colour to cyan", edit(THREE, "recolor", [0], color="cyan")),
        (THREE, "move the circle to the top", edit(THREE, "move", [1], place=["top", "center"])),
    ]
    cases = []
    for k, (scene, request, expect) in enumerate(rows):
        context = PlanningContext() if scene is None else context_for_scene(scene)
        cases.append(Case(f"heldout-hand-{k:03d}", "heldout", "hand", context, request, expect))
    return cases


def build() -> list[Case]:
    rng = np.random.default_rng(6)
    cases = []
    cases += phrasing_cases(rng, 160, MAIN_FAMILIES, MAIN_FRAMES, "main", with_image_every=8)
    cases += edit_cases(rng, 160, MAIN_STYLES, "main")
    cases += multi_turn_cases(rng, 40, "main")
    cases += other_cases(rng, "main")
    cases += phrasing_cases(rng, 60, HELD_FAMILIES, None, "heldout")
    held_frames = phrasing_cases(rng, 20, MAIN_FAMILIES, HELD_FRAMES, "heldout")
    for k, case in enumerate(held_frames):
        case.id = f"heldout-frame-{k:03d}"
    cases += held_frames
    cases += edit_cases(rng, 80, HELD_STYLES, "heldout")
    cases += hand_cases()
    return cases


def main() -> None:
    cases = build()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    with open(OUT, "w", encoding="utf-8") as out:
        for case in cases:
            out.write(json.dumps(case.to_dict(), sort_keys=True) + "\n")
    splits = {s: sum(c.split == s for c in cases) for s in ("main", "heldout")}
    print(f"wrote {len(cases)} cases to {OUT} ({splits})")


if __name__ == "__main__":
    main()
