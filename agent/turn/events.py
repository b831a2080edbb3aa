"""The typed events of one turn, in the order the orchestrator yields them.

    PlanMade -> [ExemplarsRetrieved] -> StepStarted -> ImageMade -> CheckResult
             -> [Correction -> StepStarted -> ImageMade -> CheckResult]* -> ... -> TurnDone

or TurnFailed in place of TurnDone. A re-plan starts again at PlanMade with `round=2`. The
CLI, the web page, the session store, logs and tests all read this one stream; each event
turns into plain JSON with `to_dict` (images travel as ids and store paths, never pixels).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **{f.name: _plain(getattr(self, f.name)) for f in fields(self)}}


def _plain(value):
    if hasattr(value, "model_dump"):  # a pydantic Plan
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class PlanMade(Event):
    """A plan to run. `round` 2 is the re-plan made after `observation` (what went wrong)."""

    type: ClassVar[str] = "plan_made"
    plan: Any                     # planners.plan.Plan
    planner: str
    round: int = 1
    observation: str | None = None
    repeated: bool = False        # the re-plan is the plan that already failed: not run again

    @property
    def rationale(self) -> str:
        return self.plan.rationale


@dataclass(frozen=True)
class ExemplarsRetrieved(Event):
    """Retrieval's hits for a step that asked for exemplars, under the ids the step uses."""

    type: ClassVar[str] = "exemplars_retrieved"
    step: int
    query: str
    hits: tuple[dict, ...]        # {"id": "ref_1", "index_id", "score", "caption", "path"}
    round: int = 1


@dataclass(frozen=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    step: int                     # 1-based within the plan
    total: int
    attempt: int                  # 1 is the planned step; more are corrections
    op: str
    args: dict
    reason: str = ""
    round: int = 1


@dataclass(frozen=True)
class ImageMade(Event):
    type: ClassVar[str] = "image_made"
    image_id: str                 # img_N of the session
    path: str                     # the content-addressed file in the store
    step: int
    attempt: int
    op: str
    seed: int
    parent_ids: tuple[str, ...] = ()
    seconds: float = 0.0
    round: int = 1


@dataclass(frozen=True)
class CheckResult(Event):
    """Whether an image does what its step meant. `passed` None: nothing could judge it."""

    type: ClassVar[str] = "check_result"
    image_id: str
    step: int
    attempt: int
    passed: bool | None
    method: str                   # "world", "clip" or "none"
    failures: tuple[str, ...] = ()
    score: float | None = None
    round: int = 1


@dataclass(frozen=True)
class Correction(Event):
    """The next attempt at a step: `strategy` is "seed", "guidance" or "op"."""

    type: ClassVar[str] = "correction"
    step: int
    attempt: int                  # the attempt about to run
    strategy: str
    op: str
    args: dict
    reason: str
    round: int = 1


@dataclass(frozen=True)
class TurnDone(Event):
    """The turn is complete. `image_id` is the session's current image afterwards;
    `checks_passed` False means the closest attempt is shown although checks still fail."""

    type: ClassVar[str] = "turn_done"
    action: str                   # "run", "undo", "redo" or "upload"
    image_id: str | None
    checks_passed: bool | None
    seconds: float
    step_images: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()  # what the turn's report must say, e.g. how little was checked


@dataclass(frozen=True)
class TurnFailed(Event):
    """The turn made no result. `kind`: "plan" (no valid plan), "not_understood", "input"
    (a step's input could not be used), "model" (a model is missing or broken), "llm", "error"
    (another refusal with its reason), "bug" (an exception in Atelier's code or a library it
    calls; the report names its class)."""

    type: ClassVar[str] = "turn_failed"
    error: str
    kind: str
    seconds: float = 0.0


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in (
    PlanMade, ExemplarsRetrieved, StepStarted, ImageMade, CheckResult, Correction, TurnDone,
    TurnFailed)}

TERMINAL = (TurnDone, TurnFailed)

