"""edit_objects: a planner operation that names the current image's objects.

A model that edits "the red circle" should only have to say which object and what it
becomes. It names the object by what it is in the detector's scene listing ({"color": "red",
"shape": "circle"}, with "pick": "top" or "at": "top left" where several fit, or "it" for the
object the last change was about), or by its id there (obj_2); the object is then found
here, by the same resolution the RulePlanner uses, so reading ids and centres off the listing
is not the model's job. The inpaint boxes (padded, old and new place for a move, a free spot
for an added object) and the caption of the whole new picture are worked out here too, so a
model cannot get a box or a caption wrong. An `edit_objects` step is expanded into
registered operations before the plan is validated: executors, history and evaluation only
ever see registered operations.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.spec import OpArgs, OpSpec
from world.captions import PLACE_NAMES
from world.scene import BACKGROUNDS, COLORS, MAX_OBJECTS, SHAPES, SIZES

from planners.context import PlanningContext
from planners.plan import Plan, PlanError, PlannerOperation, _error_lines, the_step_of

from .language import Mention
from .scenes import scene_of
from .rules import (CHOICES, EXTREME_WORDS, EditIntent, NotRead, compile_edits, mention_words,
                    focus, interpret, resolve)

EDIT_OBJECTS = "edit_objects"
PLACES = {name: cell for cell, name in PLACE_NAMES.items()}
RELATIONS = ("left_of", "right_of", "above", "below", "beside")
# An object named by id, or by pronoun: "it" (what the last change was about), "them", "all".
OBJECT_PATTERN = r"^(obj_[0-9]{1,2}|it|them|all)$"
PICKS = {word: direction for direction, word in EXTREME_WORDS.items()}
# The reply's `do` for each edit kind of the rule planner's EditIntent.
KINDS = ("change", "remove", "move", "add", "swap_colors", "background")


class ObjectRef(BaseModel):
    """An object of the current scene named by what it is, in the scene listing's words."""

    model_config = ConfigDict(extra="forbid")
    color: Literal[tuple(COLORS)] | None = None
    shape: Literal[SHAPES] | None = None
    size: Literal[tuple(SIZES)] | None = None
    at: Literal[tuple(PLACES)] | None = Field(None, description="where it is, e.g. 'top left'")
    pick: Literal[tuple(PICKS)] | None = Field(
        None, description="of several that fit, the leftmost, rightmost, top or bottom one")
    other: bool = Field(False, description="not the one the last change was about")

    def mention(self):
        return Mention(0, 0, det="the", size=self.size, color=self.color, shape=self.shape,
                       generic=self.shape is None, other=self.other,
                       extremes=[PICKS[self.pick]] if self.pick else [])

    def words(self) -> str:
        words = ["the", "other" if self.other else None, self.pick, mention_words(self.mention())]
        return " ".join(w for w in words if w) + (f" at the {self.at}" if self.at else "")


ObjectName = Annotated[str, Field(pattern=OBJECT_PATTERN)] | ObjectRef


class ObjectChange(BaseModel):
    """One change to the current scene. Which fields it takes depends on `do`."""

    model_config = ConfigDict(extra="forbid")
    do: Literal[KINDS] = Field(description="the kind of change")
    object: ObjectName | None = Field(None, description="the object it changes (change, remove, "
                                                        "move, swap_colors)")
    other: ObjectName | None = Field(None, description="swap_colors: the object it trades "
                                                       "colours with (left out when `object` "
                                                       "names the two)")
    color: Literal[tuple(COLORS)] | None = Field(None, description="change, add: the colour")
    shape: Literal[SHAPES] | None = Field(None, description="change, add: the shape")
    size: Literal[tuple(SIZES)] | None = Field(None, description="change, add: the size")
    to: Literal[tuple(PLACES)] | None = Field(None, description="move, add: the place it goes")
    relation: Literal[RELATIONS] | None = Field(None, description="move, add: where it goes "
                                                                  "relative to `anchor`")
    anchor: ObjectName | None = Field(None, description="move, add: the object `relation` "
                                                        "refers to")
    background: Literal[tuple(BACKGROUNDS)] | None = Field(None, description="background: the new one")

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> "ObjectChange":
        needs = {"change": ("object",), "remove": ("object",), "move": ("object",),
                 "add": ("shape", "color"), "swap_colors": ("object",),
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
                    'swap_colors | background, "object": the object it changes, "other": '
                    '(swap_colors) the object it trades colours with, "color" / "shape" / "size": '
                    '(change, add) the new value, "to": (move, add) a place such as "top left", '
                    '"relation" + "anchor": (move, add) e.g. "left_of" + {"shape": "square"}, '
                    '"background": (background) the new one}; leave out what a change does not '
                    'use. An object is named by what it is in the scene listing: {"color", '
                    '"shape", "size", "at": its place, "pick": leftmost | rightmost | top | bottom '
                    'of several that fit, "other": true for not the one just changed}, or "it" '
                    '(the object the last change was about), "them", or its id (obj_2)')


EDIT_OBJECTS_SPEC = OpSpec(
    EDIT_OBJECTS,
    "Change objects of the current image, named by what they are in the detector's scene "
    "(recolour, reshape, resize, move, remove, add, swap colours, new background); the "
    "masks, boxes and caption are worked out for you and everything else stays as it is.",
    EditObjectsArgs, frozenset({"image"}))


def expand(data: Any, context: PlanningContext | None) -> Any:
    """The reply with its edit_objects step replaced by the registered operation that makes
    the edit; anything else is returned as it came. Raises PlanError (words for the model)
    when the step is malformed or cannot be done on the current scene."""
    number = the_step_of(data, EDIT_OBJECTS)
    if number is None:
        return data
    steps = data["steps"]
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



PLANNER_OPERATIONS: dict[str, PlannerOperation] = {
    EDIT_OBJECTS: PlannerOperation(EDIT_OBJECTS_SPEC, expand)}

def compile_changes(args: EditObjectsArgs, context: PlanningContext, where: str,
                    raw: Any = None) -> list[dict]:
    """The registered step(s), as dicts, that make `args.changes` on the current scene."""
    scene = scene_of(context)
    ids = [o.id for o in context.scene.objects]
    focused = focus(context)

    def fail(problem: str):
        raise PlanError(f"{where}: {problem}", raw) from None

    def find(name) -> list[int]:
        """The indices of the objects `name` (an id, a pronoun or an ObjectRef) picks out."""
        if isinstance(name, str) and name.startswith("obj_"):
            if name not in ids:
                raise PlanError(f"{where} names {name}, which the scene does not have; its "
                                f"objects are {', '.join(ids) or 'none'}", raw)
            return [ids.index(name)]
        try:
            if isinstance(name, str):
                return resolve(Mention(0, 0, pronoun=name), None, scene, focused)
            return resolve(name.mention(), PLACES[name.at] if name.at else None, scene, focused)
        except NotRead as problem:
            fail(str(problem))

    def find_one(name, role: str) -> int:
        found = find(name)
        if len(found) != 1:
            fail(f"{_name_words(name)} ({role}) is {len(found)} objects; name one")
        return found[0]

    intents = [intent for change in args.changes
               for intent in _intents(change, find, find_one, fail)]
    removed = {i for intent in intents if intent.kind == "remove" for i in intent.targets}
    added = sum(intent.kind == "add" for intent in intents)
    if ids and len(removed) >= len(ids) and not added:
        raise PlanError(f"{where} removes every object; a picture keeps at least one", raw)
    if len(ids) - len(removed) + added > MAX_OBJECTS:
        raise PlanError(f"{where} leaves more than {MAX_OBJECTS} objects, the most a picture "
                        "holds", raw)
    try:
        plan = compile_edits(intents, context, CHOICES, [])
    except NotRead as problem:
        fail(str(problem))
    sampling = args.model_dump(exclude_defaults=True, exclude={"changes"})
    steps = []
    for made in plan.steps:
        step = made.model_dump(mode="json", exclude_defaults=True)
        step["args"] = {**step.get("args", {}), **sampling}
        steps.append(step)
    return steps


def _intents(change: ObjectChange, find, find_one, fail) -> list:
    """The rule planner's EditIntents for one change; `find` and `find_one` turn the
    change's object names into scene indices, `fail` raises a PlanError."""
    if change.do == "background":
        return [EditIntent("background", (), {"background": change.background})]
    if change.do == "change":
        params = {k: v for k in ("color", "shape", "size") if (v := getattr(change, k))}
        return [EditIntent("change", (target,), params) for target in find(change.object)]
    if change.do == "remove":
        return [EditIntent("remove", tuple(find(change.object)))]
    if change.do == "swap_colors":
        if change.other is None:
            pair = find(change.object)
            if len(pair) != 2:
                fail(f"a 'swap_colors' change needs two objects: {_name_words(change.object)} "
                     f"is {len(pair)}; give `other`")
            return [EditIntent("swap_colors", tuple(pair))]
        return [EditIntent("swap_colors", (find_one(change.object, "object"),
                                           find_one(change.other, "other")))]
    if change.do == "move":
        target = find_one(change.object, "object")
        if change.relation:
            anchor = find_one(change.anchor, "anchor")
            if anchor == target:
                fail(f"{_name_words(change.object)} cannot move relative to itself")
            return [EditIntent("move", (target,), {"relation": change.relation, "anchor": anchor})]
        return [EditIntent("move", (target,), {"place": list(PLACES[change.to])})]
    params = {"shape": change.shape, "color": change.color, "size": change.size,
              "place": list(PLACES[change.to]) if change.to else None}
    if change.relation:
        params["relation"], params["anchor"] = change.relation, find_one(change.anchor, "anchor")
    return [EditIntent("add", (), params)]


def _name_words(name) -> str:
    return name.words() if isinstance(name, ObjectRef) else repr(name)


def object_name(reference) -> str | dict:
    """How an edit_objects reply names the object(s) a rules.Reference picked out: the
    pronoun, or the words that picked it in the scene listing's terms."""
    m = reference.mention
    if m.pronoun:
        return m.pronoun
    ref = ObjectRef(color=m.color, shape=m.shape, size=m.size, other=m.other,
                    at=PLACE_NAMES[tuple(reference.place)] if reference.place else None,
                    pick=EXTREME_WORDS[m.extremes[0]] if m.extremes else None)
    return ref.model_dump(exclude_defaults=True)


def changes_from_intents(intents, references=()) -> list[dict]:
    """The edit_objects changes that say what a list of the rule planner's EditIntents say
    (the reverse of `_intents`), written compactly: only the fields that are set. Objects
    are named as the request named them where one of `references` (rules.Reference) picked
    out exactly those objects, else by id."""
    def name(*targets: int):
        for reference in references:
            if tuple(reference.chosen) == targets and len(reference.mention.extremes) < 2:
                return object_name(reference)
        return None

    def named(*targets: int) -> list:
        """One name for all of `targets` if the request had one, else an id each."""
        whole = name(*targets)
        if whole is not None:
            return [whole]
        return [name(t) or f"obj_{t + 1}" for t in targets]

    changes = []
    for intent in _merged_changes(intents):
        kind, p, targets = intent.kind, intent.params, intent.targets
        if kind == "background":
            changes.append({"do": "background", "background": p["background"]})
        elif kind == "change":
            values = {k: p[k] for k in ("color", "shape", "size") if p.get(k)}
            changes.extend({"do": "change", "object": n, **values} for n in named(*targets))
        elif kind == "remove":
            changes.extend({"do": "remove", "object": n} for n in named(*targets))
        elif kind == "swap_colors":
            pair = named(*targets)
            changes.append({"do": "swap_colors", "object": pair[0]}
                           if len(pair) == 1 else
                           {"do": "swap_colors", "object": pair[0], "other": pair[1]})
        elif kind in ("move", "add"):
            change = {"do": kind}
            if kind == "move":
                change["object"] = named(targets[0])[0]
            else:
                change.update({k: p[k] for k in ("shape", "color", "size") if p.get(k)})
            if p.get("place"):
                change["to"] = PLACE_NAMES[tuple(p["place"])]
            if p.get("relation"):
                change.update(relation=p["relation"], anchor=named(p["anchor"])[0])
            changes.append(change)
        else:
            raise ValueError(f"no edit_objects change for edit kind {kind!r}")
    return changes


def _merged_changes(intents) -> list:
    """Consecutive changes to the same values as one intent over all their targets ("make
    them yellow" is one change of "them", not one per object)."""
    merged = []
    for intent in intents:
        last = merged[-1] if merged else None
        if (intent.kind == "change" and last is not None and last.kind == "change"
                and last.params == intent.params):
            merged[-1] = EditIntent("change", last.targets + intent.targets, last.params)
        else:
            merged.append(intent)
    return merged


RELATION_WORDS = {"left_of": "left of", "right_of": "right of", "above": "above",
                  "below": "below", "beside": "beside"}


PRONOUN_SUBJECTS = {"it": "it", "them": "they", "all": "all of them"}


def _said(name) -> str:
    if isinstance(name, dict):
        return ObjectRef(**name).words()
    return PRONOUN_SUBJECTS.get(name, name)


def _verb(name, singular: str, plural: str) -> str:
    return plural if name in ("them", "all") else singular


def rationale_for(changes: list[dict]) -> str:
    """One sentence a change, in the scene listing's words: what the model reasons before
    writing the step ("the top triangle becomes square.")."""
    sentences = []
    for change in changes:
        do, name = change["do"], change.get("object", "")
        what = _said(name)
        if do == "background":
            sentences.append(f"the background becomes {change['background']}.")
        elif do == "change":
            values = " ".join(change[k] for k in ("size", "color", "shape") if k in change)
            sentences.append(f"{what} {_verb(name, 'becomes', 'become')} {values}.")
        elif do == "remove":
            sentences.append(f"{what} {_verb(name, 'is', 'are')} removed.")
        elif do == "swap_colors":
            other = f" and {_said(change['other'])}" if "other" in change else ""
            sentences.append(f"{what}{other} swap colours.")
        else:
            if do == "add":
                what = "a " + " ".join(change[k] for k in ("size", "color", "shape") if k in change)
            where = []
            if "to" in change:
                where.append(f"to the {change['to']}")
            if "relation" in change:
                where.append(f"{RELATION_WORDS[change['relation']]} {_said(change['anchor'])}")
            verb = "is added" if do == "add" else "moves"
            sentences.append(f"{what} {verb} {' '.join(where)}.")
    return " ".join(sentences)


def edit_objects_reply(result, request: str, context: PlanningContext) -> dict | None:
    """The rule planner's plan for an edit of the current scene written as a model's reply
    with one edit_objects step naming objects as the request did; None when `result` is no
    such plan. The rationale says each change in the scene listing's words."""
    if not isinstance(result, Plan) or context.scene is None:
        return None
    references: list = []
    try:
        intent, _ = interpret(request, context.for_request(request), references)
    except NotRead:
        return None
    intents = intent if isinstance(intent, list) else [intent]
    if not intents or not all(isinstance(i, EditIntent) for i in intents):
        return None
    changes = changes_from_intents(intents, references)
    return {"rationale": rationale_for(changes), "action": "run",
            "steps": [{"op": EDIT_OBJECTS, "args": {"changes": changes}}]}
