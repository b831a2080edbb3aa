"""Training pairs for the shapes planner: (planning context, request) -> (reasoning, JSON plan).

Requests come from the generators of tests/data/planner_cases.jsonl (world/planning/cases.py),
with other seeds and only the templates of its "main" split: its held-out phrasing families,
sentence frames and edit styles never appear here, so that split measures unseen phrasings.
About two in five requests come inside a training-only wrapper ("ok, ...", "would you ...?"),
none of them an evaluation template, and pasting a reference has cases of its own on varied
pictures. Each target is the RulePlanner's plan for the request, kept only when it satisfies
the case's exact expected semantics (world/planning/evaluate.py), written compactly: a short
rationale (what is asked, which operation, why), steps without per-step reasons, numbers to two
decimals, so a small model has short, regular sequences to learn.
"""
from __future__ import annotations

import json
import re

import numpy as np

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
    from world.planning.scene_edits import edit_objects_reply

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


# Training-only wrappers around a request, so that the model reads what a request asks from its
# content, not from the sentence around it: on the main split's phrasings alone it learnt
# "Could you make ...?" to mean a new picture, because that frame only ever came with one, and
# planned "could you color the ball red?" as a new picture too. None of these is a template of
# the held-out split (tests/test_planner_model.py checks every held-out request).
REQUEST_WRAPPERS = ("ok, {}", "next, {}", "alright, {}", "hey, {}", "hmm, {}", "{}, thanks",
                    "{} thank you", "{}!")
IMPERATIVE_WRAPPERS = ("would you {}?", "I need you to {}.", "go ahead and {}", "{} for me",
                       "{}, if you can", "{} now", "try to {}")
WRAP_SHARE = 0.4


def _imperative_words() -> frozenset[str]:
    """First words of the edit templates that are commands ("make", "remove", "please" ...)."""
    from world.edits import RESIZE_WORDS, TEMPLATES

    words = {text.split()[0] for group in TEMPLATES.values()
             for _, style, text, _ in group if style in ("plain", "please")}
    words |= {word for forms in RESIZE_WORDS.values()
              for word in (*forms["verb"], *forms["change"])}
    words |= {"draw", "paint", "make", "create", "render", "generate", "show"}
    return frozenset(w for w in words if not w.startswith("{"))


def wrap_request(request: str, rng: np.random.Generator, imperative_words) -> str:
    """`request` inside a random training-only wrapper (WRAP_SHARE of the time)."""
    if not request or rng.random() >= WRAP_SHARE:
        return request
    body = request.rstrip(".?!")
    wrappers = REQUEST_WRAPPERS
    if body.split()[0].lower() in imperative_words:
        wrappers = wrappers + IMPERATIVE_WRAPPERS
        body = body[0].lower() + body[1:]
    return str(rng.choice(wrappers)).format(body)


def generate_cases(seed: int, scale: int = 1, multi_turn_scale: int = 1):
    """Cases of the main split's templates, from generators seeded with `seed`; multi-turn
    follow-ups `multi_turn_scale` times as many (which object "it" is takes more examples to
    learn than a one-turn edit)."""
    from world.planning.cases import (MAIN_FAMILIES, MAIN_FRAMES, MAIN_STYLES, edit_cases,
                                      multi_turn_cases, other_cases, phrasing_cases)

    rng = np.random.default_rng(seed)
    cases = []
    cases += phrasing_cases(rng, 160 * scale, MAIN_FAMILIES, MAIN_FRAMES, "main",
                            with_image_every=8)
    cases += edit_cases(rng, 160 * scale, MAIN_STYLES, "main")
    cases += multi_turn_cases(rng, 40 * scale * multi_turn_scale, "main")
    # Its own stream, so that the other counts leave these cases as they are.
    compose_rng = np.random.default_rng([seed, 2])
    for _ in range(scale):
        cases += other_cases(rng, "main")
        cases += compose_cases(compose_rng, 12)
    return cases


COMPOSE_VERBS = ("paste {ref} {place}", "put {ref} {place}", "insert {ref} {place}",
                 "place {ref} {place}", "add {ref} {place}")
COMPOSE_CELLS = (("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right"),
                 ("top", "center"), ("bottom", "center"), ("middle", "left"), ("middle", "right"))


def compose_cases(rng, n: int):
    """Pasting a reference image into a place of the current picture, on varied pictures: the
    evaluation set's few compose requests all come on one picture, which made them the same
    prompt every seed, so the pairs held four of them whatever the number of seeds."""
    from world.planning.evaluate import Case, Expected
    from world.check import Exists, Preserved
    from world.exemplars import EXEMPLAR_OBJECTS, EXEMPLARS
    from world.planning.cases import with_images
    from world.phrasings import PLACE_WORDS
    from world.sample import sample_scene

    cases = []
    for k in range(n):
        scene = sample_scene(rng, n_objects=int(rng.integers(1, 3)))
        ref = int(rng.integers(0, 2))
        cell = COMPOSE_CELLS[int(rng.integers(len(COMPOSE_CELLS)))]
        place = str(rng.choice([p for p in PLACE_WORDS[cell] if not p.startswith("near")]))
        request = str(rng.choice(COMPOSE_VERBS)).format(ref=f"ref_{ref + 1}", place=place)
        expect = Expected("plan", [["compose"]],
                          [Exists(*EXEMPLAR_OBJECTS[ref], None, *cell),
                           *(Preserved.of(o) for o in scene.objects)],
                          reference=f"ref_{ref + 1}")
        cases.append(Case(f"train-compose-{k:03d}", "main", "op:compose",
                          with_images(scene, EXEMPLARS), request, expect))
    return cases


def build_pairs(seed: int, scale: int = 1, multi_turn_scale: int = 1) -> list[tuple[str, str]]:
    """(prompt, reply) pairs whose RulePlanner target is right by the case's semantics."""
    from world.planning.evaluate import compare
    from planners.json_reply import read_reply
    from world.planning.scene_edits import PLANNER_OPERATIONS
    from world.planning.rules import RulePlanner

    planner = RulePlanner()
    wrapper_rng = np.random.default_rng([seed, 1])
    imperative_words = _imperative_words()
    pairs = []
    for case in generate_cases(seed, scale, multi_turn_scale):
        context = case.context.for_request(case.request)
        result = planner.plan(case.request, case.context)
        if compare(result, case.expect, context):
            continue
        reply = target_reply(result, case.request, context)
        if reply["action"] != "clarify":
            # The compact form must still be a plan that means the same.
            plan = read_reply(reply, case.request, context, None, PLANNER_OPERATIONS)
            if compare(plan, case.expect, context):
                continue
        request = case.request
        if case.source.startswith(("phrasing:", "edit:", "turn:")):
            request = wrap_request(request, wrapper_rng, imperative_words)
        pairs.append((prompt_text(case.context, request), reply_text(reply)))
    return pairs
