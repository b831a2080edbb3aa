"""Multi-turn editing, MagicBrush-style: sessions of three edits, each on the last result.

A session starts from a rendered scene and asks three edit instructions in a row
(world/edits/ draws each edit for the scene the previous one should have left, with its
exact result). Two editors take each session: the instruction-editing model alone, fed its
own previous output, and the agent, in one session whose first turn uploads the start image.
Each turn's image is read back by the world's detector and judged against that turn's edit
(world.check.constraints_for_edit), per turn number:
- success: the asked change made and everything else kept (world/WORLD.md's "correct");
- preservation: every object the edit did not name still there (turns that have one);
- session: all three turns right.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import percent, row

TITLE = "Multi-turn editing (MagicBrush-style): 3-turn sessions, edit model alone vs the agent"
KIND = "quality"
TURNS = 3
SEED = 31_337
BATCH = 8


def make_sessions(n: int, seed: int = SEED) -> list[dict]:
    """`n` sessions: a start scene and three (edit, before, after) turns."""
    from world.edits import sample_edit
    from world.sample import sample_scene

    rng = np.random.default_rng(seed)
    sessions = []
    while len(sessions) < n:
        start = sample_scene(rng, n_objects=int(rng.integers(1, 4)))
        scene, turns = start, []
        try:
            for _ in range(TURNS):
                edit, after = sample_edit(scene, rng)
                turns.append((edit, scene, after))
                scene = after
        except ValueError:  # an emptied canvas fits few edits: draw another session
            continue
        sessions.append({"id": f"mt-{len(sessions):03d}", "start": start, "turns": turns,
                         "seed": int(rng.integers(2**31))})
    return sessions


def judge(image, edit, before, after) -> tuple[bool, bool | None]:
    """(the turn is right, the unnamed objects are kept; None when the edit names all)."""
    from world.check import Preserved, check, constraints_for_edit
    from world.detect import detect

    if image is None:
        return False, False
    found = detect(image).scene
    constraints = constraints_for_edit(before, edit, after)
    kept = [c for c in constraints if isinstance(c, Preserved)]
    return not check(found, constraints), (not check(found, kept)) if kept else None


def edit_model(context, sessions: list[dict], size: int) -> list[list[tuple]]:
    """The edit model alone, turn after turn on its own output (sessions batched by turn)."""
    from pipelines.base import StepInputs
    from pipelines.spec import EditArgs
    from world.render import render

    runner = context.runner()
    images = [render(s["start"], size) for s in sessions]
    verdicts: list[list[tuple]] = [[] for _ in sessions]
    for t in range(TURNS):
        for start in range(0, len(sessions), BATCH):
            chunk = range(start, min(start + BATCH, len(sessions)))
            calls = [(EditArgs(instruction=sessions[i]["turns"][t][0].instruction),
                      StepInputs(image=images[i]), sessions[i]["seed"] + t) for i in chunk]
            for i, result in zip(chunk, runner.run_batch("edit", calls)):
                images[i] = result.images[0]
                verdicts[i].append(judge(images[i], *sessions[i]["turns"][t]))
    return verdicts


def agent(context, sessions: list[dict], size: int) -> tuple[list[list[tuple]], list[dict]]:
    from world.render import render

    verdicts: list[list[tuple]] = []
    turns: list[dict] = []
    with tempfile.TemporaryDirectory() as home:
        with context.atelier(Path(home)) as atelier:
            for s in sessions:
                session = atelier.session(s["id"])
                verdicts.append([])
                for t, (edit, before, after) in enumerate(s["turns"]):
                    image = render(s["start"], size) if t == 0 else None
                    result = session.ask(edit.instruction, seed=s["seed"] + t, image=image)
                    made = result.image.open() if result.image is not None else None
                    verdicts[-1].append(judge(made, edit, before, after))
                    turns.append({"ok": result.ok, "seconds": result.seconds,
                                  "ops": [st.op for st in result.plan.steps]
                                  if result.plan is not None else [], "kind": edit.kind})
    return verdicts, turns


def rates(verdicts: list[list[tuple]]) -> dict:
    per_turn = []
    for t in range(TURNS):
        right = [v[t][0] for v in verdicts]
        kept = [v[t][1] for v in verdicts if v[t][1] is not None]
        per_turn.append({"success": sum(right) / len(right),
                         "preservation": sum(kept) / len(kept) if kept else None})
    all_kept = [k for v in verdicts for _, k in v if k is not None]
    return {"per_turn": per_turn,
            "success": sum(ok for v in verdicts for ok, _ in v) / (len(verdicts) * TURNS),
            "preservation": sum(all_kept) / len(all_kept) if all_kept else None,
            "sessions_all_right": sum(all(ok for ok, _ in v) for v in verdicts) / len(verdicts)}


def run(context) -> dict:
    n = context.size("multiturn", quick=4, full=100)
    sessions = make_sessions(n)
    size = context.canvas()
    started = time.perf_counter()
    model = rates(edit_model(context, sessions, size))
    model_seconds = time.perf_counter() - started
    agent_verdicts, turns = agent(context, sessions, size)
    mine = rates(agent_verdicts)
    ops: dict[str, int] = {}
    for turn in turns:
        key = "+".join(turn["ops"]) or "none"
        ops[key] = ops.get(key, 0) + 1
    figures = {"sessions": n, "turns": TURNS, "edit_model": model, "agent": mine,
               "edit_model_seconds_per_turn": round(model_seconds / (n * TURNS), 3),
               "agent_seconds_per_turn": round(sum(t["seconds"] for t in turns) / len(turns), 3),
               "agent_plans": ops}
    figures["summary"] = [
        row("turn success (mean of 3 turns): agent", mine["success"], unit="%",
            baseline=model["success"], baseline_label="edit model alone",
            note=f"{n} sessions"),
        row("preservation of unnamed objects: agent", mine["preservation"], unit="%",
            baseline=model["preservation"], baseline_label="edit model alone"),
        row("sessions with all 3 turns right: agent", mine["sessions_all_right"], unit="%",
            baseline=model["sessions_all_right"], baseline_label="edit model alone"),
    ]

    def cell(x):
        return percent(x) if x is not None else "n/a"

    figures["tables"] = [{
        "title": f"Per turn ({n} sessions)",
        "columns": ["turn", "success: edit model", "success: agent",
                    "preservation: edit model", "preservation: agent"],
        "rows": [[t + 1, cell(model["per_turn"][t]["success"]),
                  cell(mine["per_turn"][t]["success"]),
                  cell(model["per_turn"][t]["preservation"]),
                  cell(mine["per_turn"][t]["preservation"])] for t in range(TURNS)]
        + [["sessions with all 3 right", cell(model["sessions_all_right"]),
            cell(mine["sessions_all_right"]), "", ""]],
    }, {
        "title": "The agent's plans per turn",
        "columns": ["plan", "turns"],
        "rows": [[k, v] for k, v in sorted(ops.items(), key=lambda kv: -kv[1])],
    }]
    return figures


def plot(figures: dict, path: Path) -> None:
    from bench.plots import lines

    turns = list(range(1, figures["turns"] + 1))
    series = {}
    for who, label in (("edit_model", "edit model alone"), ("agent", "agent")):
        per_turn = figures[who]["per_turn"]
        series[f"success: {label}"] = (turns, [p["success"] for p in per_turn])
        if all(p["preservation"] is not None for p in per_turn):
            series[f"preservation: {label}"] = (turns, [p["preservation"] for p in per_turn])
    lines(path, series, xlabel="turn", ylabel="share of sessions",
          title="Multi-turn editing, per turn", percent=True)
