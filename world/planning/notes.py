"""What the LLM planner is told about the shapes world: notes on its pictures and worked
examples whose plans come from the rule planner, so they follow the registry and the world's
numbers as they are today. The shipped shapes-planner was trained on this prompt."""
from __future__ import annotations

import json
from functools import lru_cache

from planners.context import PlanningContext

from ..scene import Obj, Scene
from .rules import RulePlanner
from .scene_edits import PLANNER_OPERATIONS, edit_objects_reply
from .scenes import context_for_scene

WORLD_NOTES = """\
Notes on the images (the shapes world): 128x128 pictures of 1 to 4 flat circles, squares and
triangles in red, green, blue, yellow, purple or cyan, small (box side 0.18 of the image) or
large (0.32), on a white, gray or black background. Boxes are [x0, y0, x1, y1] in 0..1 with
y growing downward. Places: columns left (x < 1/3), center, right (x > 2/3); rows top
(y < 1/3), middle, bottom. "A left of B" means A's centre is at least 0.1 left of B's.
- Several objects, or any stated place or relation: use layout, one box per object, sized as
  above, centred in its named cell, relations kept with room to spare, boxes not touching.
- One object without a place: generate is enough.
- Changing some objects of the current image: edit_objects, naming each object by its id in
  the scene; it inpaints only the padded boxes of what changes (old and new places for a move)
  with a caption of the whole new picture, so every other object stays exactly as it is.
- Another way to change the current image: edit with an instruction, or invert_edit with the
  old and new captions, which changes every object the same way.
"""


def _example_requests():
    """Worked examples: (context, request). Their plans come from the RulePlanner, so they
    follow the registry and the world's numbers as they are today."""
    # Two circles, so the edit's reasoning shows how "the top circle" is told apart.
    scene = Scene((Obj("circle", "red", "small", 0.22, 0.25),
                   Obj("square", "blue", "large", 0.7, 0.68),
                   Obj("circle", "green", "small", 0.25, 0.78)))
    edited = context_for_scene(scene)
    return [
        (PlanningContext(), "a big yellow triangle at the top left and a small green circle "
                            "below it, on a gray background"),
        (edited, "make the top circle purple"),
        (edited, "undo that"),
    ]


def worked_examples(edit_objects: bool = True) -> list[tuple[str, str]]:
    planner = RulePlanner()
    examples = []
    for context, request in _example_requests():
        plan = planner.plan(request, context)
        reply = (edit_objects and edit_objects_reply(plan, request, context)
                 or plan.model_dump(mode="json", exclude_defaults=True))
        reply.setdefault("action", "run")
        reply.setdefault("steps", [])
        examples.append((context.for_request(request).render(), json.dumps(reply)))
    examples.append((PlanningContext(request="make it look nicer").render(),
                     json.dumps({"rationale": "The request does not say what to change; "
                                              "'nicer' names no colour, shape, size or place.",
                                 "action": "clarify", "steps": [],
                                 "question": "What should change: a colour, a shape, a size, a "
                                             "place or the background?"})))
    return examples


@lru_cache(maxsize=2)
def _examples(edit_objects: bool) -> tuple[tuple[str, str], ...]:
    return tuple(worked_examples(edit_objects))


def llm_options(edit_objects: bool = True) -> dict:
    """LLMPlanner's keyword arguments for the shapes world."""
    return {"domain_notes": WORLD_NOTES, "examples": list(_examples(edit_objects)),
            "planner_operations": PLANNER_OPERATIONS if edit_objects else {}}
