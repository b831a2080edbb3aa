"""edit_objects by phrase: a planner-only operation for pictures of anything.

The model names each object it changes by a phrase ("the sailboat") or by the id the
detector's reading gave it (obj_2), and says what it becomes, that it goes, or what is added
where. Each change becomes one `inpaint` of the current image: the object's padded box (from
the reading) as the region, the new object drawn in its box, and the request's picture as the
prompt, so everything outside the region stays exactly as it was. An object the reading does
not list is passed on as a description, which the grounding tool finds when the step runs.

    {"op": "edit_objects", "args": {"caption": "a red sailboat on a calm lake",
     "changes": [{"do": "change", "object": "the sailboat", "becomes": "a red sailboat"}]}}
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipelines.spec import Box, OpArgs, OpSpec, Prompt

from .context import PlanningContext
from .plan import PlanError, PlannerOperation, _error_lines, the_step_of

EDIT_OBJECTS = "edit_objects"
PAD = 0.04   # of the image side around an object's box: its edge and shadow go with it


class PhraseChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    do: Literal["change", "remove", "add"]
    object: str | None = Field(None, max_length=200,
                               description="(change, remove) the object: a phrase or its id")
    becomes: str | None = Field(None, max_length=200,
                                description="(change, add) the new object, e.g. 'a red car'")
    box: Box | None = Field(None, description="(add) where the new object goes; (change) a new "
                                              "box, else it keeps its own")

    @model_validator(mode="after")
    def _fields_fit(self) -> "PhraseChange":
        if self.do in ("change", "remove") and not self.object:
            raise ValueError(f"a {self.do!r} needs `object`, the object it is about")
        if self.do in ("change", "add") and not self.becomes:
            raise ValueError(f"a {self.do!r} needs `becomes`, the new object")
        if self.do == "add" and self.box is None:
            raise ValueError("an 'add' needs `box`, where the new object goes")
        return self


class PhraseEditArgs(OpArgs):
    caption: Prompt = Field(description="the whole picture as it should look afterwards")
    changes: list[PhraseChange] = Field(min_length=1, max_length=8)


SPEC = OpSpec(EDIT_OBJECTS, "Change, remove or add objects of the current image, naming each "
              "by a phrase or by its id in the detector's reading; regions, boxes and masks "
              "are worked out for you and everything else stays as it is.", PhraseEditArgs,
              frozenset({"image"}))


def padded(box) -> list[float]:
    return [round(max(box[0] - PAD, 0.0), 4), round(max(box[1] - PAD, 0.0), 4),
            round(min(box[2] + PAD, 1.0), 4), round(min(box[3] + PAD, 1.0), 4)]


def find_box(context: PlanningContext, name: str) -> list[float] | None:
    """The box of the object the reading lists under this id or phrase, or None."""
    if context.scene is None:
        return None
    key = name.strip().lower()
    bare = key.removeprefix("the ").removeprefix("a ").removeprefix("an ")
    for o in context.scene.objects:
        if key == o.id or bare == o.name.lower().removeprefix("a ").removeprefix("an "):
            return list(o.box)
    return None


def step_for(change: PhraseChange, caption: str, sampling: dict, context) -> dict:
    if change.do == "add":
        return {"op": "inpaint", "args": {**sampling, "prompt": caption,
                                          "target": [padded(change.box)],
                                          "objects": [{"phrase": change.becomes,
                                                       "box": list(change.box)}]}}
    box = find_box(context, change.object)
    objects = [] if change.do == "remove" else [
        {"phrase": change.becomes, "box": list(change.box or box or [])}]
    if box is None:
        # Not in the reading: the grounding tool finds it by description when the step runs.
        args = {"prompt": caption, "target": change.object}
        if change.do == "change" and change.box is not None:
            args["objects"] = objects
        return {"op": "inpaint", "args": {**sampling, **args}}
    region = padded(box) if change.box is None else [
        min(a, b) for a, b in zip(padded(box)[:2], padded(change.box)[:2])] + [
        max(a, b) for a, b in zip(padded(box)[2:], padded(change.box)[2:])]
    return {"op": "inpaint", "args": {**sampling, "prompt": caption, "target": [region],
                                      "objects": objects}}


def expand(data: Any, context: PlanningContext | None) -> Any:
    """The reply with its edit_objects step replaced by one inpaint per change."""
    number = the_step_of(data, EDIT_OBJECTS)
    if number is None:
        return data
    steps = data["steps"]
    where = f"step {number + 1} ({EDIT_OBJECTS})"
    if context is None or context.current_image is None:
        raise PlanError(f"{where} edits the current image, but there is none yet; make one "
                        "first (generate or layout)", data)
    step = steps[number]
    try:
        args = PhraseEditArgs.model_validate(step.get("args", {}))
    except ValidationError as error:
        raise PlanError([f"{where}: {line}" for line in _error_lines(error, "args")],
                        data) from None
    sampling = args.model_dump(include={"seed", "steps", "guidance", "negative_prompt"},
                               exclude_defaults=True)
    made = [{**step_for(c, args.caption, sampling, context), "reason": step.get("reason", "")}
            for c in args.changes]
    return {**data, "steps": steps[:number] + made + steps[number + 1:]}


PLANNER_OPERATIONS = {EDIT_OBJECTS: PlannerOperation(SPEC, expand)}
