"""One turn: plan, run each step, check it, correct it, re-plan once; as a stream of events.

    for event in Orchestrator(planner, runner, checker).run(request, workspace, seed=7):
        ...   # PlanMade, StepStarted, ImageMade, CheckResult, Correction, ..., TurnDone

The orchestrator holds no state between turns. Everything it learns about the session
(images, history, the current scene) comes from a `Workspace`, and everything it makes goes
back to it; the session decides what is stored and when.

Two error families (DESIGN.md, habit 5). What the plan got wrong (an unknown operation or
image id, arguments an adapter refuses, a grounding that finds nothing, a step whose checks
keep failing) becomes an observation for one re-plan. What the code or the setup got wrong
(a missing model, a bug) is not the planner's to fix: a missing model ends the turn as
TurnFailed(kind="model"), an LLM that cannot be reached as TurnFailed(kind="llm"), and
anything unexpected propagates.

Seeds: a turn has one seed. Step s, attempt a of round r runs with
`seed + 100_000 (r - 1) + 1_000 (s - 1) + (a - 1)` (mod 2**32), so the first step's first
attempt uses the turn's seed itself (an `atelier run --seed 5` image is the `atelier op ...
--seed 5` image), and every attempt is reproducible from the recorded seed. A seed the plan
sets on a step is used for that step's first attempt.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol

from agent.turn.checks import Checker, Expectation, NoChecker, Verdict
from agent.turn.events import (CheckResult, Correction, Event, ExemplarsRetrieved, ImageMade,
                          PlanMade, StepStarted, TurnDone, TurnFailed)
from planners.plan import (NotUnderstood, Plan, PlanError, PlannerUnavailable, Step,
                           validate_plan)
from pipelines.spec import OPERATIONS

if TYPE_CHECKING:
    from planners.context import PlanningContext, Turn

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Limits:
    """Bounds on one turn. Plans beyond them go back to the planner with the limit named."""

    max_steps: int = 8
    max_corrections: int = 3           # extra attempts per step
    replans: int = 1
    max_side: int = 1024               # pixels, for operations that take a size
    max_images: int = 4                # images one step may make

    def __post_init__(self):
        for name in ("max_steps", "max_side", "max_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1")
        if not 0 <= self.max_corrections <= 10:
            raise ValueError("Limits.max_corrections must be 0..10")
        if not 0 <= self.replans <= 3:
            raise ValueError("Limits.replans must be 0..3")


def attempt_seed(turn_seed: int, round_: int, step: int, attempt: int) -> int:
    offset = 100_000 * (round_ - 1) + 1_000 * (step - 1) + (attempt - 1)
    return (turn_seed + offset) % (MAX_SEED + 1)


@dataclass
class NewImage:
    """What the orchestrator tells the workspace about an image it made."""

    parents: list[str]
    op: str
    step: int
    attempt: int
    round: int
    seed: int
    params: dict
    step_record: dict                  # the plan step as run, for the image's metadata


class Workspace(Protocol):
    """The session side of a turn."""

    def current_id(self) -> str | None: ...

    def open(self, image_id: str): ...  # PIL image; UnknownImage if the session has none

    def context(self, request: str, notes: list["Turn"] = ()) -> "PlanningContext": ...

    def save(self, image, info: NewImage) -> tuple[str, str]: ...  # (image id, store path)

    def annotate(self, image_id: str, verdict: Verdict, chosen: bool) -> None: ...

    def scene_of(self, image_id: str) -> dict | None: ...  # its stored reading, if any

    def preview_move(self, action: str) -> tuple[str | None, str | None]: ...  # (image, note)


class Retrieval(Protocol):
    def search(self, text: str, *, k: int) -> list: ...  # retrieval.retriever.Hit


@dataclass
class Outcome:
    """How one round of a plan went."""

    passed: bool | None
    image_id: str | None = None
    step_images: list[str] = field(default_factory=list)
    failures: tuple[str, ...] = ()
    observation: str | None = None
    kind: str = "check"                # check, input


class Corrections(Protocol):
    """A domain's reader, for the corrector: a generate step's prompt as a `layout` step, and
    an edit step's instruction, read against the scene it edits, as placed changes (an
    `inpaint`, or a `layout` for a new background). None where the words cannot be read."""

    def layout_for(self, step: Step) -> Step | None: ...

    def placed_edit_for(self, step: Step, before: dict) -> Step | None: ...


class Corrector:
    """The next attempt after a failed check, in the order that costs least: another seed, then
    stronger guidance, then another operation. A `generate` that misses a place, a relation or
    an object becomes a `layout`, which gives each object its own box; the switch comes first
    when that is what failed, since no seed teaches a prompt places or counts. A prompt for one
    object whose image holds a stray or missing one is the exception: another seed nearly
    always draws it right, and as a `generate` it still shares a batched call with other turns
    where a layout would run alone. An instruction `edit` that misses twice on an image whose
    scene the checker reads becomes a placed edit: an `inpaint` that draws each changed object
    in its box, or for a new background a `layout` of the same objects.

    Turning a prompt into boxes and an instruction into placed changes takes a reader of the
    domain's words: `corrections` (the domain's; see `Corrections`) brings it, and without it
    only seeds and guidance are tried."""

    SWITCH_KINDS = frozenset({"place", "relation", "count"})
    EDIT_SWITCH_ATTEMPT = 3
    LAST_GENERATE_ATTEMPT = 4          # from here a generate that still misses is laid out

    def __init__(self, guidance_factor: float = 1.5, corrections: "Corrections | None" = None):
        self.guidance_factor = guidance_factor
        self.corrections = corrections

    def next(self, step: Step, attempt: int, verdict: Verdict, tried_ops: set[str],
             before: dict | None = None) -> tuple[str, Step, str] | None:
        """(strategy, the step to run as attempt number `attempt`, why). `before` is the
        scene of the step's input image as the checker's reader stores it, where the checker
        can read one."""
        switch_kinds = verdict.kinds & self.SWITCH_KINDS
        fix = self.corrections
        if fix is not None and step.op == "generate" and "layout" not in tried_ops and (
                switch_kinds or attempt >= self.LAST_GENERATE_ATTEMPT):
            layout = fix.layout_for(step)
            lone_count_miss = (layout is not None and switch_kinds == {"count"}
                               and len(layout.args.objects) == 1)
            if layout is not None and (not lone_count_miss
                                       or attempt >= self.LAST_GENERATE_ATTEMPT):
                return ("op", layout, "a text prompt does not pin objects to places; a layout "
                                      "gives each object its own box")
        if (fix is not None and step.op == "edit" and before is not None
                and attempt >= self.EDIT_SWITCH_ATTEMPT and not tried_ops & {"inpaint", "layout"}):
            placed = fix.placed_edit_for(step, before)
            if placed is not None:
                return ("op", placed, "the instruction editor missed; drawing each changed "
                                      "object in its own box keeps the rest as it is")
        if attempt == 3 and hasattr(step.args, "guidance"):
            bounds = type(step.args).model_fields["guidance"].metadata
            high = next((m.le for m in bounds if getattr(m, "le", None) is not None), 30.0)
            current = step.args.guidance
            stronger = round(min(max(current * self.guidance_factor, current + 1.0), high), 3)
            if stronger > current:
                return ("guidance", _with_args(step, guidance=stronger),
                        f"guidance {current} -> {stronger} follows the prompt more closely")
        return ("seed", step, "another seed")


def _with_args(step: Step, **changes) -> Step:
    args = {**step.args.model_dump(), **changes}
    return Step(op=step.op, args=args, reason=step.reason, inputs=step.inputs)


def planner_name(planner) -> str:
    return str(getattr(planner, "name", None) or type(planner).__name__)


class Orchestrator:
    def __init__(self, planner, runner, checker: Checker | None = None,
                 retriever: Retrieval | None = None, limits: Limits | None = None,
                 corrector: Corrector | None = None, notice: str = ""):
        self.planner = planner
        self.runner = runner
        self.checker = checker or NoChecker()
        self.retriever = retriever
        self.limits = limits or Limits()
        self.corrector = corrector or Corrector()
        # Said with every turn that ran steps, where the domain checks less than it could.
        self.notice = notice

    # --- a turn ---------------------------------------------------------------------------

    def run(self, request: str, workspace: Workspace, *, seed: int,
            plan: Plan | None = None) -> Iterator[Event]:
        """The events of one turn. `plan` skips the planner (tools, expert mode); it is
        validated like any planner's plan and never re-planned."""
        from pipelines.errors import ModelUnavailable

        started = time.perf_counter()
        try:
            yield from self._turn(request, workspace, seed, plan, started)
        except ModelUnavailable as error:
            yield TurnFailed(str(error), "model", _since(started))
        except PlannerUnavailable as error:
            yield TurnFailed(str(error), "llm", _since(started))

    def _turn(self, request, workspace, seed, given, started) -> Iterator[Event]:
        from planners.context import Turn

        notes: list[Turn] = []
        closest: Outcome | None = None
        last: Outcome | None = None
        previous: Plan | None = None
        rounds = 1 if given is not None else 1 + self.limits.replans
        for round_ in range(1, rounds + 1):
            context = workspace.context(request, notes)
            observation = notes[-1].note if notes else None
            try:
                result = given if given is not None else self.planner.plan(request, context)
                if isinstance(result, NotUnderstood):
                    yield TurnFailed(result.message, "not_understood", _since(started))
                    return
                plan = self.validate(result, context)
            except PlanError as error:
                last = Outcome(False, observation=f"the plan was not valid: {error}", kind="plan")
                notes.append(Turn(request=request, note=last.observation[:1000]))
                continue
            if previous is not None and plan.model_dump() == previous.model_dump():
                # The same plan again: its steps already had every correction tried.
                yield PlanMade(plan, planner_name(self.planner), round_, observation,
                               repeated=True)
                break
            previous = plan
            yield PlanMade(plan, planner_name(self.planner), round_, observation)
            if plan.action != "run":
                image_id, note = workspace.preview_move(plan.action)
                yield TurnDone(plan.action, image_id, None, _since(started),
                               failures=(note,) if note else ())
                return
            last = yield from self._execute(plan, workspace, seed, round_)
            if last.passed is not False:
                yield TurnDone("run", last.image_id, last.passed, _since(started),
                               tuple(last.step_images), notices=self._notices())
                return
            # Only a round whose steps all ran can offer a closest result: a step that could
            # not run leaves no result of this turn to show (the current image is not one).
            if last.kind == "check" and (closest is None
                                         or len(last.failures) < len(closest.failures)):
                closest = last
            notes.append(Turn(request=request, plan=plan, note=last.observation[:1000],
                              image_id=last.image_id))
        if closest is not None:
            # Still wrong after every correction: show the closest attempt, and say so.
            yield TurnDone("run", closest.image_id, False, _since(started),
                           tuple(closest.step_images), closest.failures, self._notices())
            return
        kind = last.kind if last is not None else "plan"
        yield TurnFailed(last.observation if last else "no plan", kind, _since(started))

    def _notices(self) -> tuple[str, ...]:
        return (self.notice,) if self.notice else ()

    def validate(self, plan: Plan, context: "PlanningContext") -> Plan:
        """Re-validate against the registry and the session (a planner's object may have
        been built without validation), and apply the limits."""
        checked = validate_plan(plan.model_dump(mode="json"), context)
        problems = []
        if len(checked.steps) > self.limits.max_steps:
            problems.append(f"the plan has {len(checked.steps)} steps; at most "
                            f"{self.limits.max_steps} are allowed, so combine or drop some")
        for number, step in enumerate(checked.steps, 1):
            args = step.args
            for name in ("width", "height"):
                value = getattr(args, name, None)
                if value is not None and value > self.limits.max_side:
                    problems.append(f"step {number} ({step.op}): {name}={value} is above the "
                                    f"{self.limits.max_side} pixel limit; use a smaller size")
            count = getattr(args, "num_images", 1)
            if count > self.limits.max_images:
                problems.append(f"step {number} ({step.op}): num_images={count} is above the "
                                f"limit of {self.limits.max_images}")
        if problems:
            raise PlanError(problems, plan)
        return checked

    # --- a plan ---------------------------------------------------------------------------

    def _execute(self, plan: Plan, workspace: Workspace, seed: int, round_: int
                 ) -> Iterator[Event]:
        from pipelines.errors import InputError

        from agent.errors import UsageError

        previous = workspace.current_id()
        step_images: list[str] = []
        verdicts: list[Verdict] = []
        total = len(plan.steps)
        for number, step in enumerate(plan.steps, 1):
            where = f"step {number} ({step.op})"
            try:
                exemplars = yield from self._exemplars(step, number, round_)
                inputs, parents = self._inputs(step, workspace, previous, exemplars)
            except (PlanError, UsageError, LookupError, ValueError) as error:
                return Outcome(False, previous, step_images, observation=f"{where}: {error}",
                               kind="input")
            source = parents[0] if inputs.image is not None and parents else None
            expectation = self.checker.expect(
                step, inputs.image, scene=workspace.scene_of(source) if source else None)
            try:
                chosen, verdict, tried = yield from self._attempts(
                    step, number, total, inputs, parents, expectation, workspace, seed, round_)
            except InputError as error:
                return Outcome(False, previous, step_images, observation=(
                    f"{where} could not run: {error}"), kind="input")
            step_images.append(chosen)
            verdicts.append(verdict)
            previous = chosen
            if verdict.passed is False:
                tried_words = ", ".join(tried) or "nothing else"
                observation = (f"{where} ran, but its result does not do what the step meant, "
                               f"after {len(tried) + 1} attempt(s) (also tried: {tried_words}): "
                               f"{'; '.join(verdict.failures)}. The closest result is {chosen}.")
                return Outcome(False, chosen, step_images, verdict.failures, observation)
        return Outcome(_all_passed(verdicts), previous, step_images)

    def _exemplars(self, step: Step, number: int, round_: int) -> Iterator[Event]:
        """ref_1 .. ref_k for a step that asks for exemplars: (hit, image) by id."""
        if step.exemplars is None:
            return {}
        if self.retriever is None:
            raise LookupError("it asks for exemplars, but no image index is set up; build one "
                              "with `atelier index build DIR` (or --demo), or plan without "
                              "exemplars")
        from agent.sessions.image_files import open_rgb

        from index.errors import IndexStoreError

        try:
            hits = list(self.retriever.search(step.exemplars.query, k=step.exemplars.k))
        except IndexStoreError as error:
            raise LookupError(f"exemplar search failed: {error}") from None
        found = {f"ref_{i}": hit for i, hit in enumerate(hits, 1)}
        yield ExemplarsRetrieved(number, step.exemplars.query, tuple(
            {"id": ref, "index_id": hit.id, "score": round(float(hit.score), 6),
             "caption": hit.caption, "path": str(hit.path)} for ref, hit in found.items()),
            round_)
        # The paths come from the index's own metadata, never from the plan.
        return {ref: (hit, open_rgb(hit.path)) for ref, hit in found.items()}

    def _inputs(self, step: Step, workspace: Workspace, previous: str | None, exemplars: dict):
        from pipelines.base import StepInputs

        spec = OPERATIONS[step.op]
        source = None
        image = None
        if "image" in spec.needs:
            source = step.inputs[0] if step.inputs else previous
            if source is None:
                raise PlanError("it works on an existing image, but the session has none yet; "
                                "make one first (for example with generate)")
            image = workspace.open(source)
        references = {}
        for image_id in step.image_ids():
            if image_id == source:
                continue
            if image_id.startswith("ref_"):
                if image_id not in exemplars:
                    known = ", ".join(exemplars) or "none"
                    raise PlanError(f"names {image_id}, but this step retrieved {known}; ask "
                                    "for exemplars in the step or name a session image")
                references[image_id] = exemplars[image_id][1]
            else:
                references[image_id] = workspace.open(image_id)
        target = getattr(step.args, "target", None)
        mask = references.get(target) if isinstance(target, str) else None
        parents = [i for i in [source, *references] if i and i.startswith("img_")]
        return StepInputs(image=image, mask=mask, references=references), parents

    def _attempts(self, step: Step, number: int, total: int, inputs, parents: list[str],
                  expectation: Expectation | None, workspace: Workspace, seed: int,
                  round_: int) -> Iterator[Event]:
        """Run a step, correcting it until its check passes or the bound is reached.
        Returns (the chosen image id, its verdict, the strategies tried)."""
        best: tuple[tuple, str, Verdict] | None = None
        tried: list[str] = []
        tried_ops = {step.op}
        current, strategy = step, None
        before_scene = None
        for attempt in range(1, self.limits.max_corrections + 2):
            planned_seed = current.args.seed if attempt == 1 else None
            run_seed = planned_seed if planned_seed is not None else attempt_seed(
                seed, round_, number, attempt)
            args = current.args.model_dump(mode="json")
            yield StepStarted(number, total, attempt, current.op, args, current.reason, round_)
            clock = time.perf_counter()
            result = self.runner.run(current.op, current.args, inputs, run_seed)
            seconds = round(time.perf_counter() - clock, 4)
            if not result.images:
                raise RuntimeError(f"the {current.op} runner returned no image")
            record = {"index": number, "op": current.op, "args": {**args, "seed": result.seed},
                      "reason": current.reason, "attempt": attempt, "round": round_,
                      "strategy": strategy}
            for image in result.images:
                info = NewImage(parents, current.op, number, attempt, round_, result.seed,
                                {**result.params_used, "timings": result.timings}, record)
                image_id, path = workspace.save(image, info)
                yield ImageMade(image_id, path, number, attempt, current.op, result.seed,
                                tuple(parents), seconds, round_)
                verdict = self.checker.judge(image, expectation)
                workspace.annotate(image_id, verdict, chosen=False)
                yield CheckResult(image_id, number, attempt, verdict.passed, verdict.method,
                                  verdict.failures, verdict.score, round_)
                if best is None or verdict.rank < best[0]:
                    best = (verdict.rank, image_id, verdict)
            if best is not None and best[2].passed is not False:
                break
            if attempt > self.limits.max_corrections:
                break
            if before_scene is None and inputs.image is not None and current.op == "edit":
                before_scene = self._scene_of(inputs.image, parents[0] if parents else None,
                                              workspace)
            correction = self.corrector.next(current, attempt + 1, verdict, tried_ops,
                                             before_scene)
            if correction is None:
                break
            strategy, current, why = correction
            tried.append(strategy if strategy != "op" else f"op {current.op}")
            tried_ops.add(current.op)
            yield Correction(number, attempt + 1, strategy, current.op,
                             current.args.model_dump(mode="json"), why, round_)
        _, chosen, verdict = best
        workspace.annotate(chosen, verdict, chosen=True)
        return chosen, verdict, tried


    def _scene_of(self, image, image_id: str | None, workspace: Workspace) -> dict | None:
        """The scene of a step's input image: its stored reading (a model checker reads only
        what it is asked for, and the reading of that image was asked for its objects), else
        what the checker reads in it."""
        stored = workspace.scene_of(image_id) if image_id else None
        return stored or self.checker.read(image).scene or None


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 4)


def _all_passed(verdicts: list[Verdict]) -> bool | None:
    """True when every judged step passed; None when no step could be judged."""
    judged = [v.passed for v in verdicts if v.passed is not None]
    return all(judged) if judged else None

