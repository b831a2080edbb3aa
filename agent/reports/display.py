"""Turn events into the lines the terminal commands print."""
from __future__ import annotations

import json

from agent.turn.events import (CheckResult, Correction, Event, ExemplarsRetrieved, ImageMade,
                          PlanMade, StepStarted, TurnDone, TurnFailed)


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def printable(text: str) -> str:
    """Text safe for a terminal: a plan's rationale, a caption or an LLM's question is other
    people's text, and control characters in it (escape sequences) could rewrite the screen."""
    return "\n".join("".join(c if c.isprintable() else " " for c in line)
                     for line in str(text).split("\n"))


def event_lines(event: Event, paths: bool = True) -> list[str]:
    """What to print for one event (nothing for some)."""
    return [printable(line) for line in _event_lines(event, paths)]


def _event_lines(event: Event, paths: bool) -> list[str]:
    if isinstance(event, PlanMade):
        lines = []
        if event.round > 1:
            lines.append(f"re-planning after: {_short(event.observation or '', 300)}")
        if event.repeated:
            lines.append("the planner gave the same plan again; it is not run twice")
        else:
            lines.append(event.plan.describe())
        return lines
    if isinstance(event, ExemplarsRetrieved):
        hits = ", ".join(f"{h['id']} ({h['score']:.2f}) {json.dumps(_short(h['caption'], 60))}"
                         for h in event.hits)
        return [f"  exemplars for step {event.step}: {hits or 'none found'}"]
    if isinstance(event, StepStarted):
        if event.attempt == 1:
            return [f"  step {event.step}/{event.total}: {event.op}"]
        return []
    if isinstance(event, Correction):
        return [f"  step {event.step}, attempt {event.attempt}: {event.strategy} "
                f"({event.op}): {event.reason}"]
    if isinstance(event, ImageMade):
        where = f" {event.path}" if paths else ""
        return [f"    made {event.image_id} (seed {event.seed}){where}"]
    if isinstance(event, CheckResult):
        if event.passed is None:
            return []
        if event.passed:
            return [f"    check ({event.method}): passed"]
        return [f"    check ({event.method}) failed: {_short('; '.join(event.failures), 300)}"]
    if isinstance(event, TurnDone):
        verdict = _verdict_line(event)
        return [verdict] if verdict else []
    return []


def _verdict_line(event: TurnDone) -> str | None:
    if event.action in ("undo", "redo"):
        return event.failures[0] if event.failures else None
    if event.checks_passed is False:
        return ("the result still fails its checks after every correction: "
                + _short("; ".join(event.failures), 300))
    return None


def failure_line(event: TurnFailed) -> str:
    error = " ".join(printable(event.error).split())  # one line, whatever the planner said
    if event.kind == "not_understood":
        return f"not understood: {error}"
    return f"turn failed ({event.kind}): {error}"
