"""edit_objects: a planner operation that names the current image's objects by id.

A model that edits "the red circle" should only have to say which object (obj_2, as the
detector's scene lists it) and what it becomes. The inpaint boxes (padded, old and new place
for a move, a free spot for an added object) and the caption of the whole new picture are
then worked out here, by the same code the RulePlanner uses, so a model cannot get a box or
a caption wrong. An `edit_objects` step is expanded into registered operations before the
plan is validated: executors, history and evaluation only ever see registered operations.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.spec import OpArgs, OpSpec
from world.captions import PLACE_NAMES
from world.scene import BACKGROUNDS, COLORS, MAX_OBJECTS, SHAPES, SIZES

from .context import PlanningContext
from .plan import PlanError, _error_lines

EDIT_OBJECTS = "edit_objects"
PLACES = {name: cell for cell, name in PLACE_NAMES.items()}
RELATIONS = ("left_of", "right_of", "above", "below", "beside")
OBJECT_ID_PATTERN = r"^obj_[0-9]{1,2}$"
# The reply's `do` for each edit kind of the rule planner's EditIntent.
KINDS = ("change", "remove", "move", "add", "swap_colors", "background")


class ObjectChange(BaseModel):
    """One change to the current scene. Which fields it takes depends on `do`."""

    model_config = ConfigDict(extra="forbid")
    do: Literal[KINDS] = Field(description="the kind of change")
    object: str | None = Field(None, pattern=OBJECT_ID_PATTERN,
                               description="the object it changes (change, remove, move, "
                                           "swap_colors)")
    other: str | None = Field(None, pattern=OBJECT_ID_PATTERN,
                              description="swap_colors: the object it trades colours with")
    color: Literal[tuple(COLORS)] | None = Field(None, description="change, add: the colour")
    shape: Literal[SHAPES] | None = Field(None, description="change, add: the shape")
    size: Literal[tuple(SIZES)] | None = Field(None, description="change, add: the size")
    to: Literal[tuple(PLACES)] | None = Field(None, description="move, add: the place it goes")
    relation: Literal[RELATIONS] | None = Field(None, description="move, add: where it goes "
                                                                  "relative to `anchor`")
    anchor: str | None = Field(None, pattern=OBJECT_ID_PATTERN,
                               description="move, add: the object `relation` refers to")
    background: Literal[tuple(BACKGROUNDS)] | None = Field(None, description="background: the new one")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "ObjectChange":
        needs = {"change": ("object",), "remove": ("object",), "move": ("object",),
                 "add": ("shape", "color"), "swap_colors": ("object", "other"),
                 "background": ("background",)}[self.do]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.do!r} change needs {', '.join(missing)}")
        if self.do == "change" and not (self.color or self.shape or self.size):
            raise ValueError("a 'change' needs at least one of color, shape, size")
        if self.do in ("move", "add"):
            if (self.relation is None) != (self.anchor is None):
                raise ValueError(f"a {self.do!r} by relation needs both relation and anchor")
            if self.do == "move" and self.to is None and self.relation is None:
                raise ValueError("a 'move' needs `to` (a place) or relation and anchor")
        return self


class EditObjectsArgs(OpArgs):
    """The changes, applied in order to the current image's scene. Sampling arguments (seed,
    steps, guidance, negative_prompt) pass on to the operation that makes the edit."""

    changes: list[ObjectChange] = Field(
        min_length=1, max_length=8,
        description='the changes in order, each {"do": change | remove | move | add | '
                    'swap_colors | background, "object": the obj_N it changes, "other": '
                    '(swap_colors) the obj_N it trades colours with, "color" / "shape" / "size": '
                    '(change, add) the new value, "to": (move, add) a place such as "top left", '
                    '"relation" + "anchor": (move, add) e.g. "left_of" + "obj_2", "background": '
                    '(background) the new one}; leave out what a change does not use')


EDIT_OBJECTS_SPEC = OpSpec(
    EDIT_OBJECTS,
    "Change objects of the current image named by their ids in the detector's scene "
    "(recolour, reshape, resize, move, remove, add, swap colours, new background); the "
    "masks, boxes and caption are worked out for you and everything else stays as it is.",
    EditObjectsArgs, frozenset({"image"}))
PLANNER_OPERATIONS: dict[str, OpSpec] = {EDIT_OBJECTS: EDIT_OBJECTS_SPEC}


def expand(data: Any, context: PlanningContext | None) -> Any:
    """The reply with its edit_objects step replaced by the registered operation that makes
    the edit; anything else is returned as it came. Raises PlanError (words for the model)
    when the step is malformed or cannot be done on the current scene."""
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        return data
    steps = data["steps"]
    ours = [n for n, s in enumerate(steps) if isinstance(s, dict) and s.get("op") == EDIT_OBJECTS]
    if not ours:
        return data
    if len(ours) > 1:
        raise PlanError("put every change in one edit_objects step (its `changes` list)", data)
    number = ours[0]
    step = steps[number]
    where = f"step {number + 1} ({EDIT_OBJECTS})"
    if context is None or context.scene is None or context.current_image is None:
        raise PlanError(f"{where} edits the current image's objects, but there is no current "
                        "image yet; make one first (for example with layout)", data)
    unknown = set(step) - {"op", "args", "inputs", "reason"}
    if unknown:
        raise PlanError(f"{where} takes op, args, inputs and reason, not "
                        f"{', '.join(sorted(unknown))}", data)
    if step.get("inputs") not in (None, [], [context.current_image]):
        raise PlanError(f"{where} works on the current image ({context.current_image}), whose "
                        "scene is shown; leave out inputs", data)
    try:
        args = EditObjectsArgs.model_validate(step.get("args", {}))
    except ValidationError as error:
        raise PlanError([f"{where}: {line}" for line in _error_lines(error, "args")], data) from None
    made = compile_changes(args, context, where, data)
    return {**data, "steps": steps[:number] + made + steps[number + 1:]}


def compile_changes(args: EditObjectsArgs, context: PlanningContext, where: str,
                    raw: Any = None) -> list[dict]:
    """The registered step(s), as dicts, that make `args.changes` on the current scene."""
    from .rules import CHOICES, NotRead, _compile_edits

    ids = [o.id for o in context.scene.objects]

    def index(object_id: str) -> int:
        if object_id not in ids:
            raise PlanError(f"{where} names {object_id}, which the scene does not have; its "
                            f"objects are {', '.join(ids) or 'none'}", raw)
        return ids.index(object_id)

    intents = [_intent(change, index) for change in args.changes]
    removed = {i for intent in intents if intent.kind == "remove" for i in intent.targets}
    added = sum(intent.kind == "add" for intent in intents)
    if ids and len(removed) >= len(ids) and not added:
        raise PlanError(f"{where} removes every object; a picture keeps at least one", raw)
    if len(ids) - len(removed) + added > MAX_OBJECTS:
        raise PlanError(f"{where} leaves more than {MAX_OBJECTS} objects, the most a picture "
                        "holds", raw)
    try:
        plan = _compile_edits(intents, context, CHOICES, [])
    except NotRead as problem:
        raise PlanError(f"{where}: {problem}", raw) from None
    sampling = args.model_dump(exclude_defaults=True, exclude={"changes"})
    steps = []
    for made in plan.steps:
        step = made.model_dump(mode="json", exclude_defaults=True)
        step["args"] = {**step.get("args", {}), **sampling}
        steps.append(step)
    return steps


def _intent(change: ObjectChange, index):
    from .rules import EditIntent

    if change.do == "background":
        return EditIntent("background", (), {"background": change.background})
    if change.do == "change":
        params = {k: v for k in ("color", "shape", "size") if (v := getattr(change, k))}
        return EditIntent("change", (index(change.object),), params)
    if change.do == "remove":
        return EditIntent("remove", (index(change.object),))
    if change.do == "swap_colors":
        return EditIntent("swap_colors", (index(change.object), index(change.other)))
    if change.do == "move":
        target = index(change.object)
        if change.relation:
            anchor = index(change.anchor)
            if anchor == target:
                raise PlanError(f"{change.object} cannot move relative to itself")
            return EditIntent("move", (target,), {"relation": change.relation, "anchor": anchor})
        return EditIntent("move", (target,), {"place": list(PLACES[change.to])})
    params = {"shape": change.shape, "color": change.color, "size": change.size,
              "place": list(PLACES[change.to]) if change.to else None}
    if change.relation:
        params["relation"], params["anchor"] = change.relation, index(change.anchor)
    return EditIntent("add", (), params)


def changes_from_intents(intents) -> list[dict]:
    """The edit_objects changes that say what a list of the rule planner's EditIntents say
    (the reverse of `_intent`), written compactly: only the fields that are set."""
    changes = []
    for intent in intents:
        kind, p, targets = intent.kind, intent.params, intent.targets
        if kind == "background":
            changes.append({"do": "background", "background": p["background"]})
        elif kind == "change":
            changes.append({"do": "change", "object": f"obj_{targets[0] + 1}",
                            **{k: p[k] for k in ("color", "shape", "size") if p.get(k)}})
        elif kind == "remove":
            changes.extend({"do": "remove", "object": f"obj_{i + 1}"} for i in targets)
        elif kind == "swap_colors":
            changes.append({"do": "swap_colors", "object": f"obj_{targets[0] + 1}",
                            "other": f"obj_{targets[1] + 1}"})
        elif kind in ("move", "add"):
            change = {"do": kind}
            if kind == "move":
                change["object"] = f"obj_{targets[0] + 1}"
            else:
                change.update({k: p[k] for k in ("shape", "color", "size") if p.get(k)})
            if p.get("place"):
                change["to"] = PLACE_NAMES[tuple(p["place"])]
            if p.get("relation"):
                change.update(relation=p["relation"], anchor=f"obj_{p['anchor'] + 1}")
            changes.append(change)
        else:
            raise ValueError(f"no edit_objects change for edit kind {kind!r}")
    return changes


def edit_objects_reply(result, request: str, context: PlanningContext) -> dict | None:
    """The rule planner's plan for an edit of the current scene written as a model's reply
    with one edit_objects step; None when `result` is no such plan. The rationale first says
    how each object it refers to was found (`resolve`'s trace), then keeps the plan's own."""
    from .plan import Plan
    from .rules import EditIntent, NotRead, interpret

    if not isinstance(result, Plan) or context.scene is None:
        return None
    trace: list[str] = []
    try:
        intent, _ = interpret(request, context.for_request(request), trace)
    except NotRead:
        return None
    intents = intent if isinstance(intent, list) else [intent]
    if not intents or not all(isinstance(i, EditIntent) for i in intents):
        return None
    return {"rationale": " ".join([*trace, result.rationale]), "action": "run",
            "steps": [{"op": EDIT_OBJECTS, "args": {"changes": changes_from_intents(intents)}}]}
