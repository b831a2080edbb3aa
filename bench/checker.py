"""The model checker calibrated against the world's exact checker.

The general domain judges images with a detector (agent/turn/seeing.py), as SLD's and LMD's
evaluations do; the shapes world can judge the same images exactly (world/checking.py). Step
results of the shipped models, of the kinds the general domain checks by model:
- `generate`: a compositional prompt (bench/data/compositional.jsonl) drawn by the base model
  as written, its things, counts, places and relations read from the words;
- `layout`: the rule planner's layout of such a prompt, each phrase wanted in its box;
- `inpaint` with objects: one object of a rendered scene redrawn in another colour or shape,
  or a new object added, the rest of the image kept.
Both checkers judge every image. Agreement: the share of images where both say the same;
false passes: images the model checker passes and the exact checker fails, as a share of all
images (and of the failed ones).
"""
from __future__ import annotations

import time
import zlib

import numpy as np

from bench.harness import percent, row

TITLE = "The model checker (detector) against the world's exact checker"
KIND = "quality"
TARGET_AGREEMENT, TARGET_FALSE_PASSES = 0.95, 0.03
BATCH = 8


def model_checker(context):
    from agent.turn.seeing import DetectorChecker
    from pipelines.detection import ModelEyes

    config = context.config()
    if not config.detector:
        raise SystemExit("the model set has no detector: the shipped one is models/shapes-detector")
    eyes = ModelEyes(config.detector, config.segmenter, device=context.device,
                     threshold=config.detector_threshold)
    return DetectorChecker(eyes)


def generate_results(context, prompts: list[dict]):
    from pipelines.base import StepInputs
    from planners.plan import Step

    runner = context.runner()
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        steps = [Step(op="generate", args={"prompt": p["prompt"]}) for p in chunk]
        calls = [(s.args, StepInputs(), zlib.crc32(p["id"].encode())) for s, p in zip(steps, chunk)]
        for step, result in zip(steps, runner.run_batch("generate", calls)):
            yield "generate", step, None, result.images[0]


def layout_results(context, prompts: list[dict]):
    from agent.domains import get_domain
    from pipelines.base import StepInputs
    from planners.plan import Plan

    planner = get_domain("shapes").rule_planner()
    runner = context.runner()
    for p in prompts:
        plan = planner.plan(p["prompt"])
        if not isinstance(plan, Plan):
            continue
        for step in plan.steps:
            if step.op == "layout":
                result = runner.run("layout", step.args, StepInputs(),
                                    zlib.crc32(p["id"].encode()))
                yield "layout", step, None, result.images[0]


def inpaint_steps(n: int, seed: int = 4242):
    """(step, scene before): a recolour, a change of shape or an added object, as one inpaint
    with the new object in its box."""
    from planners.phrase_edits import padded
    from planners.plan import Step
    from world.captions import caption
    from world.sample import sample_object, sample_scene
    from world.scene import COLORS, SHAPES

    rng = np.random.default_rng(seed)
    for i in range(n):
        scene = sample_scene(rng, int(rng.integers(1, 4)))
        kind = ("recolour", "reshape", "add")[i % 3]
        if kind == "add":
            new = sample_object(rng, scene.objects)
            if new is None:
                continue
            after = scene.replace(objects=scene.objects + (new,))
        else:
            old = scene.objects[int(rng.integers(len(scene.objects)))]
            if kind == "recolour":
                new = old.replace(color=str(rng.choice([c for c in COLORS if c != old.color])))
            else:
                new = old.replace(shape=str(rng.choice([s for s in SHAPES if s != old.shape])),
                                  y=old.y)
            after = scene.replace(objects=tuple(new if o is old else o for o in scene.objects))
        box = [round(v, 4) for v in new.box]
        step = Step(op="inpaint", inputs=["img_1"], args={
            "prompt": caption(after), "target": [padded(box)],
            "objects": [{"phrase": f"a {new.size} {new.color} {new.shape}", "box": box}]})
        yield step, scene


def inpaint_results(context, n: int):
    from pipelines.base import StepInputs
    from world.render import render

    runner = context.runner()
    for i, (step, scene) in enumerate(inpaint_steps(n)):
        before = render(scene, context.canvas())
        result = runner.run("inpaint", step.args, StepInputs(image=before), 1000 + i)
        yield "inpaint", step, before, result.images[0]


def run(context) -> dict:
    from bench.prompts import load_prompts, sample
    from world.checking import WorldChecker

    n = context.size("checker", quick=6, full=480)
    prompts = sample(load_prompts(), max(n // 6, 1))
    exact, model = WorldChecker(), model_checker(context)
    tally: dict[str, dict[str, int]] = {}
    examples: list[dict] = []
    started = time.perf_counter()
    sources = [generate_results(context, prompts),
               layout_results(context, prompts[: max(len(prompts) // 3, 1)]),
               inpaint_results(context, max(n // 4, 3))]
    for source in sources:
        for op, step, before, image in source:
            truth = exact.judge(image, exact.expect(step, before)).passed
            expectation = model.expect(step, before)
            seen = model.judge(image, expectation).passed if expectation else None
            if truth is None:
                continue
            counts = tally.setdefault(op, {"results": 0, "agree": 0, "false_pass": 0,
                                           "false_fail": 0, "exact_fails": 0, "abstained": 0})
            counts["results"] += 1
            counts["exact_fails"] += not truth
            if seen is None:
                counts["abstained"] += 1
            elif seen == truth:
                counts["agree"] += 1
            elif seen:
                counts["false_pass"] += 1
            else:
                counts["false_fail"] += 1
            if seen is not None and seen != truth and len(examples) < 12:
                examples.append({"op": op, "about": expectation.about, "exact": truth,
                                 "model": seen})
    total = {k: sum(c[k] for c in tally.values()) for k in next(iter(tally.values()), {})}
    results = max(total.get("results", 0), 1)
    agreement = total.get("agree", 0) / results
    false_passes = total.get("false_pass", 0) / results
    figures = {"results": total.get("results", 0), "per_op": tally, "total": total,
               "agreement": round(agreement, 4), "false_passes": round(false_passes, 4),
               "false_passes_of_failures": round(
                   total.get("false_pass", 0) / max(total.get("exact_fails", 0), 1), 4),
               "seconds": round(time.perf_counter() - started, 1), "disagreements": examples}
    figures["summary"] = [
        row("agreement with the exact checker: model checker", agreement, unit="%",
            note=f"{figures['results']} step results; target >= {percent(TARGET_AGREEMENT)}"),
        row("false passes (model passes, exact fails)", false_passes, unit="%",
            note=f"{total.get('false_pass', 0)} of {total.get('exact_fails', 0)} failed images; "
                 f"target <= {percent(TARGET_FALSE_PASSES)}"),
    ]
    figures["tables"] = [{
        "title": "Per operation",
        "columns": ["op", "results", "exact fails", "agree", "false pass", "false fail",
                    "abstained"],
        "rows": [[op, c["results"], c["exact_fails"], c["agree"], c["false_pass"],
                  c["false_fail"], c["abstained"]] for op, c in tally.items()],
    }]
    return figures
