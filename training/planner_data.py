"""Training pairs for the shapes planner: (planning context, request) -> (reasoning, JSON plan).

Requests come from the same generators as tests/data/planner_cases.jsonl, with other seeds
and only the templates of its "main" split: the held-out phrasing families, sentence frames
and edit styles never appear here, so the held-out split measures phrasings the model did not
see. Each target is the RulePlanner's plan for the request, kept only when it satisfies the
case's exact expected semantics (planners/evaluate.py), written compactly: a short rationale
(what is asked, which operation, why), steps without per-step reasons, numbers to two
decimals, so a small model has short, regular sequences to learn.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Why each operation, said the same way every time. Edits of named objects (edit_objects) have
# none: their rationale already says what each object becomes, and every token of a reply is a
# model call at planning time.
WHY = {
    "layout": "A layout pins each object to its own box.",
    "generate": "One object with no place: a text prompt is enough.",
    "inpaint": "Inpainting only what changes keeps the rest as it is.",
    "edit": "An instruction edit changes it and keeps the rest.",
    "invert_edit": "An inversion edit changes every object the same way.",
    "reference": "A reference image guides the new one.",
    "compose": "Compose pastes the reference into its box.",
    "restore": "Restore cleans the image up.",
}


def _round(value):
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, list):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def _first_sentence(text: str) -> str:
    text = text.strip()
    match = re.search(r"(?<!e\.g)(?<!i\.e)\. ", text)
    return text if match is None else text[:match.start() + 1]


def target_reply(result, request: str = "", context=None) -> dict:
    """The compact reply the model learns for a planner result (Plan or NotUnderstood).
    Edits of the current scene name objects by id (edit_objects) when `context` is given."""
    from planners.plan import NotUnderstood
    from planners.scene_edits import edit_objects_reply

    if isinstance(result, NotUnderstood):
        question = _first_sentence(result.message)
        return {"rationale": "The request cannot be planned as it stands.", "action": "clarify",
                "steps": [], "question": question}
    result = result.model_copy(update={"rationale": _first_sentence(result.rationale)})
    data = (context is not None and edit_objects_reply(result, request, context)
            or result.model_dump(mode="json", exclude_defaults=True))
    steps = []
    for step in data.get("steps", []):
        step.pop("reason", None)
        steps.append(_round(step))
    rationale = data["rationale"]
    if steps:
        rationale += " " + WHY.get(steps[0]["op"], "")
    return {"rationale": rationale.strip(), "action": data.get("action", "run"), "steps": steps}


def reply_text(reply: dict) -> str:
    return json.dumps(reply, separators=(",", ":"))


def prompt_text(context, request: str) -> str:
    """The user message a planner sends: the rendered context with the request."""
    return context.for_request(request).render()


def generate_cases(seed: int, scale: int = 1, multi_turn_scale: int = 1):
    """Cases of the main split's templates, from generators seeded with `seed`; multi-turn
    follow-ups `multi_turn_scale` times as many (which object "it" is takes more examples to
    learn than a one-turn edit)."""
    sys.path.insert(0, str(ROOT / "tests" / "data"))
    import make_planner_cases as make

    rng = np.random.default_rng(seed)
    cases = []
    cases += make.phrasing_cases(rng, 160 * scale, make.MAIN_FAMILIES, make.MAIN_FRAMES, "main",
                                 with_image_every=8)
    cases += make.edit_cases(rng, 160 * scale, make.MAIN_STYLES, "main")
    cases += make.multi_turn_cases(rng, 40 * scale * multi_turn_scale, "main")
    for _ in range(scale):
        cases += make.other_cases(rng, "main")
    return cases


def build_pairs(seed: int, scale: int = 1, multi_turn_scale: int = 1) -> list[tuple[str, str]]:
    """(prompt, reply) pairs whose RulePlanner target is right by the case's semantics."""
    from planners.evaluate import compare
    from planners.json_reply import read_reply
    from planners.rules import RulePlanner

    planner = RulePlanner()
    pairs = []
    for case in generate_cases(seed, scale, multi_turn_scale):
        context = case.context.for_request(case.request)
        result = planner.plan(case.request, case.context)
        if compare(result, case.expect, context):
            continue
        reply = target_reply(result, case.request, context)
        if reply["action"] != "clarify":
            # The compact form must still be a plan that means the same.
            plan = read_reply(reply, case.request, context)
            if compare(plan, case.expect, context):
                continue
        pairs.append((prompt_text(case.context, case.request), reply_text(reply)))
    return pairs
