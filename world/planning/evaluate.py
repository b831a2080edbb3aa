"""Judging plans by what they mean: the scene an exact executor would make from a plan, and
whether that scene satisfies what the request states.

`simulate` plays a plan on the current scene with ideal operations: a layout draws each
phrase in its box, an inpaint keeps everything outside its regions and draws there what its
prompt describes and the kept objects do not, an edit or invert_edit does what its words say.
`compare` then checks the expected operations and the world checker's constraints
(world/check.py) on that scene. It reads any planner's plan, an LLM's included: only the
plan's arguments count, not how it was written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from world.check import Constraint, check, constraint_from_dict, constraint_to_dict
from world.scene import SIZES, Obj, Scene

from planners.context import PlanningContext
from planners.plan import NotUnderstood, Plan, PlanResult

from . import language as lang
from .layout import cell_centre
from .scenes import context_for_scene, context_from_json, context_to_json, scene_of
from .rules import NotRead, ObjSpec, read_compose, apply_intents, interpret, layout_boxes

EDIT_OPS = ("inpaint", "edit", "invert_edit")


class SimulationError(ValueError):
    """The plan cannot be played: a prompt names no shape, a mask id, a step that reads an
    image when there is none."""


# --- cases --------------------------------------------------------------------------------

@dataclass
class Expected:
    """What a correct answer to a case means.
    result: "plan", "undo", "redo" or "not_understood".
    ops: accepted operation sequences (any one), e.g. [["layout"]] or [["inpaint"], ["edit"]].
    constraints: what the scene after the plan must satisfy (world.check constraints).
    reference: an image id some step must use; exemplars: a step must ask for exemplars."""

    result: str = "plan"
    ops: list[list[str]] = field(default_factory=list)
    constraints: list[Constraint] = field(default_factory=list)
    reference: str | None = None
    exemplars: bool = False
    notes: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = {"result": self.result, "ops": self.ops,
                "constraints": [constraint_to_dict(c) for c in self.constraints]}
        if self.reference:
            data["reference"] = self.reference
        if self.exemplars:
            data["exemplars"] = True
        if self.notes:
            data["notes"] = self.notes
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Expected":
        return cls(data.get("result", "plan"), [list(o) for o in data.get("ops", [])],
                   [constraint_from_dict(c) for c in data.get("constraints", [])],
                   data.get("reference"), bool(data.get("exemplars")), data.get("notes", {}))


@dataclass
class Case:
    id: str
    split: str            # "main" or "heldout"
    source: str           # "phrasing:<family>:<frame>", "edit:<template>", "turn:...", "hand"
    context: PlanningContext
    request: str
    expect: Expected

    def to_dict(self) -> dict:
        return {"id": self.id, "split": self.split, "source": self.source,
                "context": context_to_json(self.context),
                "request": self.request, "expect": self.expect.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Case":
        return cls(data["id"], data["split"], data["source"],
                   context_from_json(data.get("context", {})), data["request"],
                   Expected.from_dict(data["expect"]))


def load_cases(path: str | Path) -> list[Case]:
    with open(path, encoding="utf-8") as lines:
        return [Case.from_dict(json.loads(line)) for line in lines if line.strip()]


# --- playing a plan -----------------------------------------------------------------------

def _read_objects(text: str) -> tuple[list[ObjSpec], str | None, list]:
    items = lang.chunk(lang.tokenize(text))
    try:
        compose = read_compose(items, [], allow_empty=True)
    except NotRead as problem:
        raise SimulationError(f"cannot read {text!r}: {problem}") from None
    return compose.objects, compose.background, compose.relations


def _size_for(box) -> str:
    side = max(box[2] - box[0], box[3] - box[1])
    return min(SIZES, key=lambda s: abs(SIZES[s] - side))


def _as_obj(spec: ObjSpec, size: str, x: float, y: float, what: str) -> Obj:
    if spec.shape is None or spec.color is None:
        raise SimulationError(f"{what} does not say both a shape and a colour")
    return Obj(spec.shape, spec.color, size, round(x, 4), round(y, 4))


def _compose_scene(text: str) -> Scene:
    specs, background, relations = _read_objects(text)
    if not specs:
        raise SimulationError(f"the prompt {text!r} names no object")
    from .rules import Compose
    compose = Compose(specs, relations, background)
    boxes = layout_boxes(compose)
    if boxes is None:
        raise SimulationError(f"no layout satisfies the prompt {text!r}")
    objs = [_as_obj(s, _size_for(b), (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, repr(text))
            for s, b in zip(specs, boxes)]
    return Scene(tuple(objs), background or "white")


def _matches(spec: ObjSpec, obj: Obj) -> bool:
    return all(getattr(spec, a) in (None, getattr(obj, a)) for a in ("shape", "color", "size")) and (
        spec.row in (None, obj.row)) and (spec.column in (None, obj.column))


def _inside(obj: Obj, box) -> bool:
    return box[0] <= obj.x <= box[2] and box[1] <= obj.y <= box[3]


def _inpaint(args, scene: Scene) -> Scene:
    target = args.target
    if isinstance(target, str):
        if target.startswith(("img_", "ref_")):
            raise SimulationError("an inpaint mask given as an image id cannot be simulated")
        from .rules import resolve_text
        try:
            chosen = resolve_text(target, scene, [])
        except NotRead as problem:
            raise SimulationError(f"the target {target!r}: {problem}") from None
        regions = [list(scene.objects[i].box) for i in chosen]
    else:
        regions = [list(b) for b in target]
    kept = [o for o in scene.objects if not any(_inside(o, b) for b in regions)]
    if args.objects is not None:
        # The region is cleared and each object drawn in its box; the prompt only harmonises.
        placed = _placed(args.objects, "inpaint object")
        return Scene(tuple(kept) + tuple(o for o in placed
                                          if any(_inside(o, b) for b in regions)), scene.background)
    specs, _, _ = _read_objects(args.prompt)
    # Objects the prompt describes that the kept pixels already show are not drawn again.
    unmatched_kept = list(kept)
    new_specs = []
    for spec in specs:
        match = next((o for o in unmatched_kept if _matches(spec, o)), None)
        if match is not None:
            unmatched_kept.remove(match)
        else:
            new_specs.append(spec)
    free = [b for b in regions if not any(_inside(o, b) for o in kept)]
    drawn = []
    for spec in new_specs:
        if not free:
            break  # nothing left to paint it into: the prompt asks for more than the mask allows
        # A box in the cell the prompt names; else the last one (a move lists old, then new).
        fitting = [b for b in free if spec.row in (None, _cell_of(b)[0])
                   and spec.column in (None, _cell_of(b)[1])]
        box = (fitting or free)[-1]
        free.remove(box)
        size = spec.size or _size_for(_unpad(box))
        drawn.append(_as_obj(spec, size, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                             "the inpaint prompt"))
    return Scene(tuple(kept) + tuple(drawn), scene.background)


def _placed(objects, what: str) -> list[Obj]:
    """{phrase, box} items as the objects an exact executor draws, each centred in its box."""
    placed = []
    for item in objects:
        found, _, _ = _read_objects(item.phrase)
        if len(found) != 1:
            raise SimulationError(f"{what} phrase {item.phrase!r} should name one object")
        b = item.box
        placed.append(_as_obj(found[0], _size_for(b), (b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
                              f"{what} phrase {item.phrase!r}"))
    return placed


def _unpad(box, pad: float = 0.012):
    return [box[0] + pad, box[1] + pad, box[2] - pad, box[3] - pad]


def _cell_of(box) -> tuple[str, str]:
    o = Obj("circle", "red", "small", min(max((box[0] + box[2]) / 2, 0), 1),
            min(max((box[1] + box[3]) / 2, 0), 1))
    return o.row, o.column


def _invert_edit(args, scene: Scene) -> Scene:
    source, source_bg, _ = _read_objects(args.source_prompt)
    target, target_bg, _ = _read_objects(args.target_prompt)
    if len(source) != len(target):
        raise SimulationError("invert_edit's prompts describe different numbers of objects")
    remaining = list(range(len(scene.objects)))
    objs = list(scene.objects)
    for s, t in zip(source, target):
        index = next((i for i in remaining if _matches(s, scene.objects[i])), None)
        if index is None:
            raise SimulationError(f"the source prompt's {s.phrase()} is not in the image")
        remaining.remove(index)
        changes = {a: getattr(t, a) for a in ("shape", "color", "size") if getattr(t, a)}
        objs[index] = objs[index].replace(**changes)
        if (t.row or t.column) and (t.row, t.column) != (s.row, s.column):
            x, y = cell_centre(t.row or objs[index].row, t.column or objs[index].column)
            objs[index] = objs[index].replace(x=x, y=y)
    background = scene.background
    if target_bg or source_bg:
        background = target_bg or "white"
    return Scene(tuple(objs), background)


def _edit(args, scene: Scene) -> Scene:
    context = context_for_scene(scene)
    try:
        intent, _ = interpret(args.instruction, context)
        intents = intent if isinstance(intent, list) else [intent]
        from .rules import EditIntent
        if not all(isinstance(i, EditIntent) for i in intents):
            raise SimulationError(f"the instruction {args.instruction!r} is not an edit")
        return apply_intents(intents, scene).after
    except NotRead as problem:
        raise SimulationError(f"the instruction {args.instruction!r}: {problem}") from None


def simulate(plan: Plan, context: PlanningContext) -> Scene:
    """The scene an exact executor makes from `plan` in `context`."""
    scene = scene_of(context)
    for number, step in enumerate(plan.steps, 1):
        op, args = step.op, step.args
        if op == "generate":
            scene = _compose_scene(args.prompt)
        elif op == "reference":
            scene = _compose_scene(args.prompt)
        elif op == "layout":
            objs = _placed(args.objects, "layout")
            background = "white"
            if args.background_prompt:
                _, bg, _ = _read_objects(args.background_prompt)
                background = bg or "white"
            scene = Scene(tuple(objs), background)
        elif scene is None:
            raise SimulationError(f"step {number} ({op}) needs an image, and there is none")
        elif op == "inpaint":
            scene = _inpaint(args, scene)
        elif op == "edit":
            scene = _edit(args, scene)
        elif op == "invert_edit":
            scene = _invert_edit(args, scene)
        elif op == "restore":
            pass
        elif op == "compose":
            caption_text = next((i.caption for i in context.images if i.id == args.reference), None)
            if caption_text is None:
                caption_text = next((e.caption for e in context.exemplars
                                     if e.id == args.reference), "")
            specs, _, _ = _read_objects(args.prompt or caption_text)
            if len(specs) != 1:
                raise SimulationError("compose's reference should show one object")
            b = args.box
            new = _as_obj(specs[0], _size_for(b), (b[0] + b[2]) / 2, (b[1] + b[3]) / 2,
                          "the pasted reference")
            kept = [o for o in scene.objects if not _inside(o, b)]
            scene = Scene(tuple(kept) + (new,), scene.background)
        else:
            raise SimulationError(f"operation {op!r} has no simulation")
    if scene is None:
        raise SimulationError("the plan makes no image")
    return scene


# --- comparing ----------------------------------------------------------------------------

def result_kind(result: PlanResult) -> str:
    if isinstance(result, NotUnderstood):
        return "not_understood"
    return "plan" if result.action == "run" else result.action


def compare(result: PlanResult, expect: Expected, context: PlanningContext) -> list[str]:
    """What differs between a planner's answer and the expected semantics; [] when it
    matches."""
    kind = result_kind(result)
    if kind != expect.result:
        said = f": {result.message}" if isinstance(result, NotUnderstood) else ""
        return [f"expected {expect.result}, got {kind}{said}"]
    if kind != "plan":
        return []
    problems = list(result.problems(context))
    ops = [s.op for s in result.steps]
    if expect.ops and ops not in expect.ops:
        problems.append(f"operations {ops}, expected one of {expect.ops}")
    if expect.reference and not any(expect.reference in s.image_ids() for s in result.steps):
        problems.append(f"no step uses {expect.reference}")
    if expect.exemplars and not any(s.exemplars for s in result.steps):
        problems.append("no step asks for exemplars")
    if expect.constraints:
        try:
            scene = simulate(result, context)
        except SimulationError as error:
            return problems + [f"cannot play the plan: {error}"]
        problems += check(scene, expect.constraints)
    return problems


@dataclass
class Report:
    total: int
    passed: int
    failures: list[tuple[Case, list[str]]]
    # Planners that keep their model calls (LLMPlanner.attempts): cases whose first reply was
    # already a valid plan; None for the others.
    first_valid: int | None = None

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0


def evaluate(planner, cases: list[Case]) -> Report:
    from planners.plan import PlanningFailed

    failures = []
    first_valid = 0 if hasattr(planner, "attempts") else None
    for case in cases:
        try:
            result = planner.plan(case.request, case.context)
        except PlanningFailed as error:
            # An LLM's plan still wrong after its repair round is a wrong answer, not a crash.
            failures.append((case, [str(error)]))
            continue
        finally:
            if first_valid is not None and planner.attempts and not planner.attempts[0].problems:
                first_valid += 1
        problems = compare(result, case.expect, case.context.for_request(case.request))
        if problems:
            failures.append((case, problems))
    return Report(len(cases), len(cases) - len(failures), failures, first_valid)
