"""A session: one conversation's turns and images, kept in the store.

    session = Atelier().session("poster")
    result = session.ask("a red circle left of a blue square")     # TurnResult
    for event in session.stream("make the circle green"):          # the same turn, live
        print(event)
    session.undo(); session.redo(); session.branch("img_1"); session.history()
    session.ask("a green triangle", mask=mask)     # repaint only the mask's white pixels

A turn's images are written to the store as they are made; the turn itself (its images'
rows, plans, events and the new current image) is committed in one transaction when its last
event is reached. A turn that is abandoned (the process killed, the stream not read to the
end) leaves the session exactly as it was.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from agent.turn.checks import Verdict
from agent.errors import UsageError
from agent.turn.events import (TERMINAL, CheckResult, Event, ImageMade, PlanMade, TurnDone,
                          TurnFailed)
from agent.sessions.pnginfo import image_chunks, png_bytes
from agent.sessions.store import ImageRecord, PendingTurn, Store, TurnRecord, image_number

if TYPE_CHECKING:
    from planners.context import PlanningContext
    from planners.plan import Plan

    from agent.turn.orchestrator import NewImage

MAX_SEED = 2**32 - 1
MAX_REQUEST_CHARS = 2000
HISTORY_TURNS = 20  # turns handed to the planner; the context summarises older ones anyway


@dataclass
class TurnResult:
    """What one turn did."""

    session: str
    turn: int
    request: str
    ok: bool
    action: str | None
    image: ImageRecord | None                     # the session's current image afterwards
    images: list[ImageRecord]                     # every image the turn made, attempts too
    plans: list["Plan"]                           # the plan, and the re-plan if there was one
    checks: list[CheckResult]
    checks_passed: bool | None
    events: list[Event]
    seed: int
    seconds: float
    error: str | None = None
    error_kind: str | None = None
    note: str | None = None

    @property
    def plan(self) -> "Plan | None":
        return self.plans[-1] if self.plans else None

    @property
    def rationale(self) -> str:
        return self.plan.rationale if self.plan is not None else ""


def read_request(request: str) -> str:
    """The request, stripped; raises UsageError naming what is wrong with it."""
    if not isinstance(request, str):
        raise UsageError(f"the request must be text, got {type(request).__name__}")
    if "\x00" in request:
        raise UsageError("the request contains a NUL character; remove it")
    try:
        request.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from a terminal or argv arrive as surrogates
        raise UsageError("the request is not valid UTF-8 text; retype it or fix the "
                         "terminal's encoding") from None
    request = request.strip()
    if not request:
        raise UsageError("the request is empty; say what to draw or change")
    if len(request) > MAX_REQUEST_CHARS:
        raise UsageError(f"the request is {len(request)} characters long; keep it under "
                         f"{MAX_REQUEST_CHARS}")
    return request


def _check_seed(seed: int | None) -> int:
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise UsageError(f"seed {seed!r} is not a whole number in 0..{MAX_SEED}")
    return seed


class TurnRun:
    """One turn, run as its events are read: iterate it, then read `result`."""

    def __init__(self, session: "Session", request: str, seed: int | None, image=None,
                 plan: "Plan | None" = None, source: str | None = None,
                 source_digest: str | None = None, mask=None):
        self.session = session
        self.request = read_request(request)
        self.seed = _check_seed(seed)
        self.upload = self._open_upload(image)
        self.mask = self._open_mask(mask)
        self.plan = plan
        store = session.store
        self.pending = PendingTurn(session.id, session.name, self.request, time.time(),
                                   store.current_number(session.id), self.seed, source,
                                   source_digest)
        self.result: TurnResult | None = None
        self._events: list[Event] = []
        self._started = False

    @staticmethod
    def _open_upload(image):
        if image is None:
            return None
        if isinstance(image, (str, Path)):
            from agent.sessions.image_files import open_rgb
            return open_rgb(image)
        from agent.sessions.image_files import MAX_SIDE, to_rgb
        from PIL import Image
        if not isinstance(image, Image.Image):
            raise UsageError(f"image must be a file path or a PIL image, got "
                             f"{type(image).__name__}")
        if max(image.size) > MAX_SIDE:
            raise UsageError(f"image is {image.width}x{image.height}, larger than the "
                             f"{MAX_SIDE}x{MAX_SIDE} limit; scale it down first")
        if min(image.size) < 1:
            raise UsageError(f"image is {image.width}x{image.height}; give an image with pixels")
        return to_rgb(image)

    def _open_mask(self, mask):
        """The mask as black and white "L" pixels, checked against the image it marks."""
        if mask is None:
            return None
        from PIL import Image
        if isinstance(mask, (str, Path)):
            from agent.sessions.image_files import open_rgb
            mask = open_rgb(mask)
        if not isinstance(mask, Image.Image):
            raise UsageError(f"mask must be a file path or a PIL image, got {type(mask).__name__}")
        target = self.upload if self.upload is not None else self.session.current
        if target is None:
            raise UsageError("a mask marks a region of an image, but there is no image yet; "
                             "upload one or make one first")
        if mask.size != (target.width, target.height):
            raise UsageError(f"the mask is {mask.width}x{mask.height} but the image is "
                             f"{target.width}x{target.height}; draw it over the image itself")
        mask = mask.convert("L").point(lambda value: 255 if value > 127 else 0)
        if mask.getbbox() is None:
            raise UsageError("the mask is empty; paint the region to repaint in white")
        return mask

    def __iter__(self) -> Iterator[Event]:
        if self._started:
            raise RuntimeError("a turn runs once; start another with Session.stream")
        self._started = True
        workspace = _TurnWorkspace(self.session, self.pending)
        if self.upload is not None:
            workspace.add_upload(self.upload, self.request)
        plan = self.plan
        if self.mask is not None:
            mask_id = workspace.add_mask(self.mask, self.request)
            plan = plan or mask_plan(self.request, mask_id)
        orchestrator = self.session.atelier.orchestrator()
        for event in orchestrator.run(self.request, workspace, seed=self.seed, plan=plan):
            self._events.append(event)
            self.pending.events.append(event.to_dict())
            if isinstance(event, PlanMade):
                self.pending.plans.append({"round": event.round, "planner": event.planner,
                                           "plan": event.plan.model_dump(mode="json"),
                                           "observation": event.observation})
            if isinstance(event, TERMINAL):
                # Durable before anyone hears the turn is done.
                self.result = self._commit(event, workspace)
            yield event

    def _commit(self, event: Event, workspace: "_TurnWorkspace") -> TurnResult:
        store = self.session.store
        upload = workspace.upload_number
        if isinstance(event, TurnDone):
            after = image_number(event.image_id) if event.image_id else None
            move = {"run": "push", "undo": "undo", "redo": "redo"}.get(event.action)
            if event.action == "run" and after is None:
                move = None
            note = "; ".join(event.failures + event.notices) or None
            if event.action in ("undo", "redo") and event.failures:
                move = None  # nothing to undo or redo: the note says so
            number = store.commit_turn(self.pending, ok=True, action=event.action,
                                       image_after=after, move=move, note=note,
                                       checks_passed=event.checks_passed)
            ok, error, kind = True, None, None
        else:
            # A failed turn still keeps an uploaded image: it becomes the current one.
            after = upload if upload is not None else self.pending.image_before
            number = store.commit_turn(self.pending, ok=False, action=None, image_after=after,
                                       move="push" if upload is not None else None,
                                       error=event.error, error_kind=event.kind)
            ok, error, kind, note = False, event.error, event.kind, None
        return self.session._result(number, self._events, ok, error, kind, note)


def mask_plan(request: str, mask_id: str) -> "Plan":
    """A drawn mask says where; the request says what: one inpaint of the masked region. No
    planner is asked, since the region is already chosen."""
    from planners.plan import Plan, Step

    return Plan(rationale=f"You marked a region ({mask_id}); it is repainted from your request, "
                          "and every pixel outside it stays as it was.",
                steps=[Step(op="inpaint", args={"prompt": request, "target": mask_id},
                            reason="repaint only the marked region")])


class _TurnWorkspace:
    """What the orchestrator sees of the session during one turn."""

    def __init__(self, session: "Session", pending: PendingTurn):
        self.session = session
        self.store = session.store
        self.pending = pending
        self.upload_number: int | None = None
        self._made: dict[str, Any] = {}   # images of this turn, by id, in memory

    def add_upload(self, image, request: str) -> None:
        number = self.store.reserve_image_number(self.session.id)
        image_id = f"img_{number}"
        chunks = image_chunks(request=request, step=None, seed=None,
                              models={}, op=None, params={}, size=image.size,
                              session=self.session.name, image_id=image_id, parent_ids=[])
        sha, path = self.store.write_image_file(png_bytes(image, chunks))
        reading = self.session.atelier.checker().read(image)
        self.pending.images.append({
            "number": number, "sha256": sha, "path": path, "width": image.width,
            "height": image.height, "parents": [], "role": "upload", "op": None,
            "params": {}, "chosen": True, "scene": reading.scene, "caption": reading.caption,
            "created": time.time()})
        self._made[image_id] = image
        self.upload_number = number

    def add_mask(self, mask, request: str) -> str:
        """Keep a drawn mask as an image of the session (role "mask"), so the step that uses
        it names it by id like any other image and its record says what was repainted."""
        number = self.store.reserve_image_number(self.session.id)
        image_id = f"img_{number}"
        parent = self.current_id()
        chunks = image_chunks(request=request, step=None, seed=None, models={}, op=None,
                              params={}, size=mask.size, session=self.session.name,
                              image_id=image_id, parent_ids=[parent] if parent else [])
        sha, path = self.store.write_image_file(png_bytes(mask, chunks))
        self.pending.images.append({
            "number": number, "sha256": sha, "path": path, "width": mask.width,
            "height": mask.height, "parents": [parent] if parent else [], "role": "mask",
            "op": None, "params": {}, "chosen": False,
            "caption": "a mask drawn by the user: white marks the region to repaint",
            "created": time.time()})
        self._made[image_id] = mask
        return image_id

    # --- Workspace --------------------------------------------------------------------------

    def current_id(self) -> str | None:
        if self.upload_number is not None:
            return f"img_{self.upload_number}"
        number = self.pending.image_before
        return None if number is None else f"img_{number}"

    def open(self, image_id: str):
        if image_id in self._made:
            return self._made[image_id]
        return self.session.image(image_id).open()

    def context(self, request: str, notes=()) -> "PlanningContext":
        return self.session.planning_context(request, notes, workspace=self)

    def save(self, image, info: "NewImage") -> tuple[str, str]:
        number = self.store.reserve_image_number(self.session.id)
        image_id = f"img_{number}"
        chunks = image_chunks(request=self.pending.request, step=info.step_record,
                              seed=info.seed, models=self.session.atelier.model_ids(),
                              op=info.op, params=info.params, size=image.size,
                              session=self.session.name, image_id=image_id,
                              parent_ids=info.parents)
        sha, path = self.store.write_image_file(png_bytes(image, chunks))
        self.pending.images.append({
            "number": number, "sha256": sha, "path": path, "width": image.width,
            "height": image.height, "parents": list(info.parents), "role": "attempt",
            "op": info.op, "round": info.round, "step": info.step, "attempt": info.attempt,
            "seed": info.seed, "params": info.params, "chosen": False, "created": time.time()})
        self._made[image_id] = image
        return image_id, str(self.store.home / path)

    def annotate(self, image_id: str, verdict: Verdict, chosen: bool) -> None:
        row = self.pending.image_row(image_number(image_id))
        row["checks"] = verdict.to_dict()
        if verdict.reading.scene is not None:
            row["scene"], row["caption"] = verdict.reading.scene, verdict.reading.caption
        row["chosen"] = row.get("chosen", False) or chosen

    def scene_of(self, image_id: str) -> dict | None:
        number = image_number(image_id)
        if any(row["number"] == number for row in self.pending.images):
            return self.pending.image_row(number).get("scene")
        return self.session.image(image_id).scene

    def preview_move(self, action: str) -> tuple[str | None, str | None]:
        here, last = self.store.position(self.session.id)
        target = here - 1 if action == "undo" else here + 1
        if not 0 <= target <= last:
            what = "undo" if action == "undo" else "redo"
            return self.current_id(), f"nothing to {what}"
        number = self.store.current_number(self.session.id, target)
        return (None if number is None else f"img_{number}"), None

    def made(self) -> list[dict]:
        return self.pending.images


class Session:
    """One named conversation in an Atelier store."""

    def __init__(self, atelier, name: str, session_id: int):
        self.atelier = atelier
        self.store: Store = atelier.store
        self.name = name
        self.id = session_id

    def __repr__(self) -> str:
        return f"Session({self.name!r})"

    # --- turns --------------------------------------------------------------------------

    def stream(self, request: str, *, seed: int | None = None, image=None, mask=None,
               source: str | None = None, source_digest: str | None = None) -> TurnRun:
        """The turn for `request` as an iterable of events; its `result` is set once the last
        event has been read. `image` (a path or PIL image) is uploaded first and becomes the
        current image. `mask` (a path or PIL image the size of that image, white = repaint)
        makes the turn one inpaint of the marked region with the request as its prompt.
        `source` is a key that at most one turn of the store may carry (a script line), for
        exactly-once runs."""
        return TurnRun(self, request, seed, image, source=source, source_digest=source_digest,
                       mask=mask)

    def ask(self, request: str, *, seed: int | None = None, image=None,
            mask=None) -> TurnResult:
        run = self.stream(request, seed=seed, image=image, mask=mask)
        for _ in run:
            pass
        return run.result

    def run_plan(self, plan: "Plan", *, request: str | None = None, seed: int | None = None
                 ) -> TurnResult:
        """Run a given plan as a turn (no planner): how tools and experts drive a session."""
        text = request or plan.describe().splitlines()[0] or "plan"
        run = TurnRun(self, text[:MAX_REQUEST_CHARS], seed, plan=plan)
        for _ in run:
            pass
        return run.result

    def record_failure(self, request: str, error: str, *, kind: str = "error",
                       seed: int | None = None, source: str | None = None,
                       source_digest: str | None = None,
                       error_class: str | None = None) -> TurnResult:
        """Record a turn that could not run at all (its input was refused, the code failed:
        then `kind` is "bug" and `error_class` names the exception's class)."""
        # Whatever the text was (even undecodable bytes), it is stored as valid UTF-8.
        request = str(request).encode("utf-8", "replace").decode("utf-8")
        pending = PendingTurn(self.id, self.name, request[:MAX_REQUEST_CHARS] or "(empty)",
                              time.time(), self.store.current_number(self.id), seed, source,
                              source_digest)
        event = TurnFailed(error, kind)
        pending.events.append(event.to_dict())
        number = self.store.commit_turn(pending, ok=False, action=None,
                                        image_after=pending.image_before, move=None,
                                        error=error, error_kind=kind, error_class=error_class)
        return self._result(number, [event], False, error, kind, None)

    def _result(self, number: int, events: list[Event], ok: bool, error: str | None,
                kind: str | None, note: str | None) -> TurnResult:
        made = {e.image_id for e in events if isinstance(e, ImageMade)}
        images = [r for r in self.store.images(self.id) if r.id in made]
        record = next(t for t in self.store.turns(self.id) if t.number == number)
        return TurnResult(
            session=self.name, turn=number, request=record.request, ok=ok, action=record.action,
            image=self.current, images=images,
            plans=[e.plan for e in events if isinstance(e, PlanMade)],
            checks=[e for e in events if isinstance(e, CheckResult)],
            checks_passed=record.checks_passed, events=list(events), seed=record.seed,
            seconds=record.seconds, error=error, error_kind=kind, note=note or record.note)

    # --- navigation ---------------------------------------------------------------------

    @property
    def current(self) -> ImageRecord | None:
        return self.store.current(self.id)

    def undo(self) -> ImageRecord | None:
        """Go back to the image before the last change (None: the empty canvas)."""
        if not self.store.step(self.id, -1):
            raise UsageError("nothing to undo")
        return self.current

    def redo(self) -> ImageRecord | None:
        if not self.store.step(self.id, +1):
            raise UsageError("nothing to redo")
        return self.current

    def branch(self, image_id: str) -> ImageRecord:
        """Make any earlier image of this session current; the next turn builds on it."""
        record = self.image(image_id)
        self.store.branch(self.id, record.number)
        return record

    # --- reading ------------------------------------------------------------------------

    def image(self, image_id: str) -> ImageRecord:
        return self.store.image(self.id, image_id)

    def images(self) -> list[ImageRecord]:
        return self.store.images(self.id)

    def history(self) -> list[TurnRecord]:
        return self.store.turns(self.id)

    def events(self, turn: int) -> list[dict]:
        return self.store.turn_events(self.id, turn)

    def planning_context(self, request: str = "", notes=(), workspace: _TurnWorkspace | None = None
                         ) -> "PlanningContext":
        """What the planner is told: recent turns, the images worth naming, the current
        image with the scene read from it, and any notes from earlier rounds of this turn."""
        from planners.context import ImageInfo, PlanningContext, Turn
        from planners.plan import Plan

        history = []
        for record in self.history()[-HISTORY_TURNS:]:
            plan = None
            if record.plan is not None:
                try:
                    plan = Plan.model_validate(record.plan)
                except ValueError:
                    plan = None  # written under another operation registry
            note = record.error or record.note or ""
            history.append(Turn(request=record.request, plan=plan, note=note[:500],
                                image_id=record.image_after))
        history.extend(notes)

        rows = [_row_view(r) for r in self.images()]
        if workspace is not None:
            rows += [_pending_view(r) for r in workspace.made()]
        current = workspace.current_id() if workspace is not None else (
            self.current.id if self.current is not None else None)
        shown = [r for r in rows if r["chosen"] or r["role"] in ("upload", "mask")
                 or r["id"] == current]
        images = [ImageInfo(id=r["id"], parent_ids=r["parents"], op=r["op"],
                            caption=r["caption"] or "") for r in shown]
        scene = None
        png = None
        if current is not None:
            row = next((r for r in rows if r["id"] == current), None)
            read_scene = self.atelier.domain().scene_reading
            if row is not None and row["scene"] is not None and read_scene is not None:
                try:
                    scene = read_scene(row["scene"])
                except (ValueError, KeyError, TypeError):
                    scene = None  # written by another domain's reader
            if row is not None:
                png = (self.store.home / row["path"]).read_bytes()
        return PlanningContext(request=request, history=history, images=images,
                               current_image=current, scene=scene, current_png=png,
                               operations=self.atelier.offered_operations())


def _row_view(record: ImageRecord) -> dict:
    return {"id": record.id, "parents": list(record.parent_ids), "op": record.op,
            "caption": record.caption, "chosen": record.chosen, "role": record.role,
            "scene": record.scene, "path": record.path}


def _pending_view(row: dict) -> dict:
    return {"id": f"img_{row['number']}", "parents": list(row["parents"]), "op": row["op"],
            "caption": row.get("caption", ""), "chosen": row.get("chosen", False),
            "role": row["role"], "scene": row.get("scene"), "path": row["path"]}
