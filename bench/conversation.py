"""Conversations: sessions as a person types them, judged turn by turn per world/WORLD.md.

Each session of tests/data/conversations.jsonl asks for a picture and then edits it twice.
The agent takes every session twice, with its self-correction (checks, corrections and one
re-plan) and without (one attempt per step, no re-plan). A turn is judged on the image it
leaves:
- a new picture: every constraint its request states holds;
- an edit: the asked change made and everything else kept (world.check.constraints_for_edit),
  on the scene the previous turn really left. The objects an edit names are found in that
  scene by their shape, colour and size, or else by shape and colour (a size no request
  stated may come out either way), the nearest to where they were meant to be; an edit whose
  objects are not there is a wrong turn.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.harness import percent, row

TITLE = "Conversations: multi-turn sessions, the agent with and without self-correction"
KIND = "quality"
DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "conversations.jsonl"
# The general domain sees through a detector and reads edits in any vocabulary: its goal is
# lower than the shapes domain's, whose reader knows every word and every pixel.
TARGETS = {"shapes": 0.90, "general": 0.85}


def load_sessions(n: int | None = None) -> list[dict]:
    sessions = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return sessions[:n] if n else sessions


def find_named(obj: dict, scene):
    """Index of the object in `scene` matching `obj`'s shape, colour and size (else its shape
    and colour), nearest to where `obj` was meant to be; None when there is none."""
    same = [i for i, o in enumerate(scene.objects)
            if (o.shape, o.color, o.size) == (obj["shape"], obj["color"], obj["size"])]
    same = same or [i for i, o in enumerate(scene.objects)
                    if (o.shape, o.color) == (obj["shape"], obj["color"])]
    if not same:
        return None
    return min(same, key=lambda i: (scene.objects[i].x - obj["x"]) ** 2 + (scene.objects[i].y - obj["y"]) ** 2)


def edit_on(found, turn: dict):
    """The turn's edit with its object indices moved to the scene `found`; None when an
    object it names is missing."""
    from world.edits import Edit

    edit = Edit.from_dict(turn["edit"])
    intended = turn["before"]["objects"]
    targets = [find_named(intended[i], found) for i in edit.targets]
    params = dict(edit.params)
    if "anchor" in params:
        params["anchor"] = find_named(intended[params["anchor"]], found)
        if params["anchor"] is None:
            return None
    if None in targets:
        return None
    return Edit(edit.kind, tuple(targets), params, edit.instruction, edit.template)


def judge(image, turn: dict, previous) -> bool:
    """Is the turn right? `previous` is the scene the last turn's image shows."""
    from world.check import check, constraints_for_edit, constraints_from_json
    from world.detect import detect

    if image is None:
        return False
    found = detect(image).scene
    if turn["kind"] == "generate":
        return not check(found, constraints_from_json(json.dumps(turn["constraints"])))
    if previous is None:
        return False
    edit = edit_on(previous, turn)
    return edit is not None and not check(found, constraints_for_edit(previous, edit))


def converse(context, sessions: list[dict], limits) -> list[list[bool]]:
    from world.detect import detect

    verdicts = []
    with tempfile.TemporaryDirectory() as home:
        with context.atelier(Path(home), limits=limits) as atelier:
            for s in sessions:
                session, previous, marks = atelier.session(s["session"]), None, []
                for t, turn in enumerate(s["turns"]):
                    result = session.ask(turn["request"], seed=s["seed"] + t)
                    image = result.image.open() if result.image is not None else None
                    marks.append(judge(image, turn, previous))
                    previous = detect(image).scene if image is not None else previous
                verdicts.append(marks)
    return verdicts


def summarise(verdicts: list[list[bool]], sessions: list[dict]) -> dict:
    turns = [(turn["kind"], ok) for s, v in zip(sessions, verdicts) for turn, ok in zip(s["turns"], v)]
    kinds: dict[str, list[bool]] = {}
    for kind, ok in turns:
        kinds.setdefault(kind, []).append(ok)
    return {"turns": len(turns), "correct": sum(ok for _, ok in turns) / len(turns),
            "per_kind": {k: sum(v) / len(v) for k, v in sorted(kinds.items())},
            "sessions_all_right": sum(all(v) for v in verdicts) / len(verdicts)}


def run(context) -> dict:
    from agent.turn.orchestrator import Limits

    sessions = load_sessions(context.size("conversation", quick=4, full=0) or None)
    corrected = summarise(converse(context, sessions, Limits()), sessions)
    single = summarise(converse(context, sessions, Limits(max_corrections=0, replans=0)), sessions)
    target = TARGETS.get(context.domain, TARGETS["general"])
    figures = {"sessions": len(sessions), "with_correction": corrected, "without_correction": single}
    figures["summary"] = [
        row("turns correct: agent with self-correction", corrected["correct"], unit="%",
            baseline=single["correct"], baseline_label="without self-correction",
            target=f">= {percent(target)}", ok=corrected["correct"] >= target,
            note=f"{corrected['turns']} turns, {len(sessions)} sessions"),
        row("sessions with every turn right: with self-correction", corrected["sessions_all_right"],
            unit="%", baseline=single["sessions_all_right"], baseline_label="without self-correction"),
    ]
    figures["tables"] = [{
        "title": f"Turns correct per kind ({corrected['turns']} turns)",
        "columns": ["kind", "with self-correction", "without"],
        "rows": [[k, percent(v), percent(single["per_kind"][k])] for k, v in corrected["per_kind"].items()],
    }]
    return figures
