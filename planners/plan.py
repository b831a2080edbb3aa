"""The typed plan a planner returns, and its validation against the operation registry.

A `Plan` is a rationale (the planner's reasoning, kept and shown) and a list of `Step`s, each
one registered operation with arguments validated by that operation's own `OpSpec` schema.
Everything here is generated from `pipelines.spec.OPERATIONS`: a new operation needs no change
in this file.

Two error families (DESIGN.md, habit 5):
- `PlanError`: the model got it wrong (bad JSON, unknown operation, missing argument, an image
  id the session does not have). Its message is written for the model and goes back to the
  planner as an observation.
- `PlannerUnavailable`: the planner could not be reached (an LLM server down or too slow
  after bounded retries); the turn fails with the cause, nothing is re-planned.
- anything else (TypeError, ValueError from our own code) is a bug or a configuration
  problem and is raised as is.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping

from pydantic import (BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from pipelines.spec import IMAGE_ID_PATTERN, OPERATIONS, OpArgs, OpSpec

if TYPE_CHECKING:  # context imports this module
    from .context import PlanningContext

IMAGE_ID = re.compile(IMAGE_ID_PATTERN)
ACTIONS = ("run", "undo", "redo")



@dataclass(frozen=True)
class PlannerOperation:
    """An operation only planners write (a domain's, such as the shapes domain's
    edit_objects): shown to the model beside the registry's, and expanded before validation
    by `expand(reply, context) -> reply`, which replaces its steps with registered ones and
    raises PlanError with words for the model when it cannot."""

    spec: OpSpec
    expand: Callable[[Any, "PlanningContext | None"], Any]


def the_step_of(data: Any, op: str) -> int | None:
    """Where a reply's one step of planner operation `op` stands, or None when it has none
    (or is not a reply with steps). More than one is refused in words for the model."""
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        return None
    ours = [n for n, s in enumerate(data["steps"]) if isinstance(s, dict) and s.get("op") == op]
    if len(ours) > 1:
        raise PlanError(f"put every change in one {op} step (its `changes` list)", data)
    return ours[0] if ours else None


class PlanError(Exception):
    """A plan the model got wrong. `problems` lists each mistake in words the model can act
    on; `raw` keeps the reply that caused it."""

    def __init__(self, problems: list[str] | str, raw: Any = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.raw = raw
        super().__init__("; ".join(self.problems))


class PlanningFailed(PlanError):
    """The model's plan was still wrong after the repair round. `attempts` holds, per call,
    the raw reply and the problems found in it."""

    def __init__(self, attempts: list[tuple[Any, list[str]]]):
        self.attempts = attempts
        last_raw, last_problems = attempts[-1]
        super().__init__(last_problems, last_raw)

    def __str__(self) -> str:
        return (f"the planner gave no valid plan after {len(self.attempts)} attempt(s); "
                f"last problems: {'; '.join(self.problems)}")


class PlannerUnavailable(RuntimeError):
    """The planner could not be asked at all: its server is down, or a call timed out on
    every try. Not a mistake in a plan, so it is never fed back for a re-plan; the message
    names the cause and the fix."""


def _operations(info: ValidationInfo | None) -> Mapping[str, OpSpec]:
    """The registry to validate against: OPERATIONS, unless the caller passed another one as
    validation context ({"operations": ...}), which is how tests add an operation."""
    context = info.context if info is not None else None
    if isinstance(context, dict) and context.get("operations") is not None:
        return context["operations"]
    return OPERATIONS


def _error_lines(error: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for item in error.errors(include_url=False):
        where = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        lines.append(f"{where.lstrip('.') or 'plan'}: {item['msg']}")
    return lines


class ExemplarQuery(BaseModel):
    """Ask retrieval for `k` exemplar images matching `query` before the step runs. Within
    that step its hits are named ref_1 .. ref_k."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, max_length=300)
    k: int = Field(4, ge=1, le=16)


class Step(BaseModel):
    """One conditioning operation. `inputs` are the session images it reads; an operation
    that needs an image and names none works on the previous step's result (the current
    image for the first step)."""

    model_config = ConfigDict(extra="forbid")
    op: str
    # SerializeAsAny: dump the operation's own fields, not only the OpArgs base ones.
    args: SerializeAsAny[OpArgs]
    reason: str = Field("", max_length=1000)
    inputs: list[str] = Field(default_factory=list, max_length=8)
    exemplars: ExemplarQuery | None = None

    @model_validator(mode="before")
    @classmethod
    def _typed_args(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        operations = _operations(info)
        op = data.get("op")
        if not isinstance(op, str):
            raise ValueError("each step needs 'op', the name of an operation")
        spec = operations.get(op)
        if spec is None:
            raise ValueError(f"unknown operation {op!r}; use one of {', '.join(operations)}")
        args = data.get("args", {})
        if isinstance(args, OpArgs):
            if not isinstance(args, spec.args_schema):
                raise ValueError(f"args for {op!r} must be {spec.args_schema.__name__}, "
                                 f"got {type(args).__name__}")
            return data
        if not isinstance(args, dict):
            raise ValueError(f"'args' of a {op!r} step must be an object")
        try:
            typed = spec.args_schema.model_validate(args)
        except ValidationError as error:
            raise ValueError(f"bad arguments for {op!r}: "
                             + "; ".join(_error_lines(error, "args"))) from None
        return {**data, "args": typed}

    @field_validator("inputs")
    @classmethod
    def _image_ids(cls, value: list[str]) -> list[str]:
        for image_id in value:
            if not IMAGE_ID.match(image_id):
                raise ValueError(f"{image_id!r} is not an image id; ids look like img_3 or ref_1")
        return value

    @property
    def spec(self) -> OpSpec:
        return OPERATIONS[self.op]

    def image_ids(self) -> list[str]:
        """Every image id the step refers to: its inputs and any argument that is an id
        (found by value, so a new operation's id arguments are covered without listing)."""
        found = list(self.inputs)

        def walk(value):
            if isinstance(value, str) and IMAGE_ID.match(value):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(self.args.model_dump())
        return list(dict.fromkeys(found))

    def summary(self) -> str:
        """One line: the op and the arguments that differ from their defaults."""
        changed = self.args.model_dump(exclude_defaults=True)
        parts = [f"{k}={json.dumps(v)}" for k, v in changed.items()]
        if self.inputs:
            parts.append(f"inputs={','.join(self.inputs)}")
        if self.exemplars:
            parts.append(f"exemplars={json.dumps(self.exemplars.query)} k={self.exemplars.k}")
        return f"{self.op}({', '.join(parts)})"


class Plan(BaseModel):
    """What to do for a request: `run` the steps in order, or `undo` / `redo` the last change
    (no steps). The rationale is the planner's reasoning, shown to the user and stored."""

    model_config = ConfigDict(extra="forbid")
    rationale: str = Field(max_length=4000)
    action: Literal[ACTIONS] = "run"
    steps: list[Step] = Field(default_factory=list, max_length=16)

    @model_validator(mode="after")
    def _steps_fit_action(self) -> "Plan":
        if self.action == "run" and not self.steps:
            raise ValueError("a plan that runs needs at least one step")
        if self.action != "run" and self.steps:
            raise ValueError(f"an {self.action} plan has no steps")
        return self

    def problems(self, context: "PlanningContext | None" = None,
                 operations: Mapping[str, OpSpec] | None = None) -> list[str]:
        """What is wrong with this plan in `context`, in words for the model: image ids the
        session does not have, a step that needs an image when there is none yet, an
        operation the model set does not offer."""
        operations = OPERATIONS if operations is None else operations
        images = set(context.image_ids()) if context is not None else set()
        exemplars = set(context.exemplar_ids()) if context is not None else set()
        has_image = context is not None and context.current_image is not None
        offered = context.operations if context is not None else None
        found = []
        for number, step in enumerate(self.steps, 1):
            spec = operations[step.op]
            if offered is not None and step.op not in offered:
                found.append(f"step {number} ({step.op}): this model set does not offer "
                             f"{step.op}; it offers {', '.join(offered)}")
            own_refs = ({f"ref_{i}" for i in range(1, step.exemplars.k + 1)}
                        if step.exemplars else set())
            for image_id in step.image_ids():
                known = images if image_id.startswith("img_") else (own_refs or exemplars)
                if image_id not in known:
                    choices = ", ".join(sorted(known)) or "none yet"
                    found.append(f"step {number} ({step.op}) names {image_id}, which is not an "
                                 f"image of this session; known ids: {choices}")
            if "image" in spec.needs and not step.inputs and not has_image and number == 1:
                found.append(f"step {number} ({step.op}) works on an existing image, but the "
                             "session has none yet; make one first (for example with generate)")
        return found

    def check(self, context: "PlanningContext | None" = None,
              operations: Mapping[str, OpSpec] | None = None) -> "Plan":
        problems = self.problems(context, operations)
        if problems:
            raise PlanError(problems)
        return self

    def describe(self) -> str:
        """Human-readable: rationale, then one numbered line per step."""
        lines = [self.rationale.strip(), *self.step_lines()]
        return "\n".join(line for line in lines if line)

    def step_lines(self) -> list[str]:
        """The action when it is not "run", then one numbered line per step with its reason."""
        lines = [] if self.action == "run" else [f"-> {self.action}"]
        for number, step in enumerate(self.steps, 1):
            line = f"{number}. {step.summary()}"
            if step.reason:
                line += f"  # {step.reason}"
            lines.append(line)
        return lines


class NotUnderstood(BaseModel):
    """A planner's honest "I did not understand": what it could not read, and a question
    or hint for the user. Not an error: the conversation goes on."""

    model_config = ConfigDict(extra="forbid")
    request: str
    message: str
    unknown: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        return self.message


PlanResult = Plan | NotUnderstood


def validate_plan(data: Any, context: "PlanningContext | None" = None,
                  operations: Mapping[str, OpSpec] | None = None) -> Plan:
    """A Plan from model output (a dict or a JSON string), checked against the registry and
    the context; raises PlanError listing every problem found."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise PlanError(f"the reply is not valid JSON ({error.msg} at line {error.lineno} "
                            f"column {error.colno})", data) from None
    if not isinstance(data, dict):
        raise PlanError(f"the plan must be a JSON object, got {type(data).__name__}", data)
    try:
        plan = Plan.model_validate(data, context={"operations": operations})
    except ValidationError as error:
        raise PlanError(_error_lines(error), data) from None
    problems = plan.problems(context, operations)
    if problems:
        raise PlanError(problems, data)
    return plan


# --- what the model is shown ------------------------------------------------------------

def _inline_refs(schema: dict) -> dict:
    """Replace local $refs by their definitions: several providers' structured-output modes
    refuse $defs, and every schema here is small and acyclic."""
    defs = schema.get("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.split("/")[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(schema)


def args_json_schema(spec: OpSpec) -> dict:
    schema = _inline_refs(spec.args_schema.model_json_schema())
    schema.pop("title", None)
    return schema


def plan_json_schema(operations: Mapping[str, OpSpec] | None = None) -> dict:
    """The JSON schema of a planner's reply, one step variant per registered operation. It
    also allows action "clarify" with a question, the model's way to say it did not
    understand."""
    operations = OPERATIONS if operations is None else operations
    exemplars = _inline_refs(ExemplarQuery.model_json_schema())
    exemplars.pop("title", None)
    variants = []
    for name, spec in operations.items():
        variants.append({
            "type": "object",
            "description": spec.description,
            "properties": {
                "op": {"const": name},
                "args": args_json_schema(spec),
                "reason": {"type": "string", "description": "why this step"},
                "inputs": {"type": "array", "items": {"type": "string", "pattern": IMAGE_ID_PATTERN},
                           "description": "session image ids this step reads; empty: the "
                                          "previous step's result or the current image"},
                "exemplars": {"anyOf": [exemplars, {"type": "null"}]},
            },
            "required": ["op", "args"],
            "additionalProperties": False,
        })
    return {
        "title": "Plan",
        "description": "A plan of conditioning operations for the user's request.",
        "type": "object",
        "properties": {
            "rationale": {"type": "string",
                          "description": "step-by-step reasoning: what the user wants, what "
                                         "the image has, which operations achieve it and why"},
            "action": {"type": "string", "enum": [*ACTIONS, "clarify"],
                       "description": "run the steps; undo or redo the last change; or "
                                      "clarify when the request cannot be understood"},
            "steps": {"type": "array", "items": {"oneOf": variants}},
            "question": {"type": "string",
                         "description": "with action clarify: what was not understood"},
        },
        "required": ["rationale", "action", "steps"],
        "additionalProperties": False,
    }


def operations_text(operations: Mapping[str, OpSpec] | None = None) -> str:
    """The operations as the model reads them: name, what it does, what it needs, and each
    argument with its type, default and description."""
    operations = OPERATIONS if operations is None else operations
    blocks = []
    for name, spec in operations.items():
        schema = args_json_schema(spec)
        required = set(schema.get("required", []))
        needs = f" Needs: {', '.join(sorted(spec.needs))}." if spec.needs else ""
        lines = [f"- {name}: {spec.description}{needs}"]
        for arg, prop in schema.get("properties", {}).items():
            kind = _type_words(prop)
            detail = "required" if arg in required else f"default {json.dumps(prop.get('default'))}"
            about = f"; {prop['description']}" if prop.get("description") else ""
            lines.append(f"    {arg} ({kind}, {detail}){about}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _type_words(prop: dict) -> str:
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return "one of " + ", ".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type_words(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type_words(prop.get('items', {}))}"
    bounds = []
    for key, word in (("minimum", ">="), ("maximum", "<=")):
        if key in prop:
            bounds.append(f"{word} {prop[key]}")
    return kind + (f" {' '.join(bounds)}" if bounds else "")
