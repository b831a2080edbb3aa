"""Sampling: steps against accuracy for DDIM, DPM-Solver++ 2M and Euler.

The base model draws compositional prompts (bench/prompts.py, the same number from each
category) with each sampler at a range of step counts, and with DDIM at 50 steps as the
baseline, all from the same seeds; the world's detector judges each image against its
prompt. The figure is, per sampler, the fewest steps whose accuracy is within 1 point of
50-step DDIM, and the fewest of all, which is what `generate`'s defaults should be
(pipelines/spec.py); the suite says whether they are.
"""
from __future__ import annotations

from pathlib import Path

from bench.harness import percent, row

TITLE = "Sampling: steps vs accuracy for DDIM, DPM-Solver++ and Euler"
KIND = "cost"
SAMPLERS = ("ddim", "dpm++2m", "euler")
BASELINE = ("ddim", 50)
WITHIN = 0.01     # one point of accuracy
BATCH = 8


def accuracy(context, prompts: list[dict], sampler: str, steps: int) -> float:
    from bench.compositional import judge, seed_of
    from pipelines.base import StepInputs
    from pipelines.spec import GenerateArgs

    runner = context.runner()
    right = 0
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        calls = [(GenerateArgs(prompt=p["prompt"], sampler=sampler, steps=steps), StepInputs(),
                  seed_of(p["id"])) for p in chunk]
        right += sum(judge(r.images[0], p["constraints"])
                     for r, p in zip(runner.run_batch("generate", calls), chunk))
    return right / len(prompts)


def defaults() -> tuple[str, int]:
    from pipelines.spec import GenerateArgs

    fields = GenerateArgs.model_fields
    return fields["sampler"].default, fields["steps"].default


def fewest_steps(curve: dict[int, float], target: float) -> int | None:
    within = [steps for steps, acc in sorted(curve.items()) if acc >= target - WITHIN - 1e-9]
    return within[0] if within else None


def run(context) -> dict:
    from bench.prompts import load_prompts, sample

    per_category = context.size("sampling", quick=2, full=20)
    grid = context.sizes.get("sampling_steps") or ([5, 10, 20] if context.quick
                                                   else [4, 6, 8, 10, 15, 20, 30])
    prompts = sample(load_prompts(), per_category)
    baseline = accuracy(context, prompts, *BASELINE)
    curves = {s: {steps: accuracy(context, prompts, s, steps) for steps in grid}
              for s in SAMPLERS}
    fewest = {s: fewest_steps(curve, baseline) for s, curve in curves.items()}
    default_sampler, default_steps = defaults()
    candidates = [(steps, s != default_sampler, s) for s, steps in fewest.items()
                  if steps is not None]
    best = min(candidates) if candidates else None
    recommended = {"sampler": best[2], "steps": best[0]} if best else None
    is_default = recommended == {"sampler": default_sampler, "steps": default_steps}
    figures = {"prompts": len(prompts), "steps_grid": grid, "baseline": {
        "sampler": BASELINE[0], "steps": BASELINE[1], "accuracy": baseline},
        "curves": {s: {str(k): v for k, v in c.items()} for s, c in curves.items()},
        "fewest_steps_within_1_point": fewest, "recommended": recommended,
        "default": {"sampler": default_sampler, "steps": default_steps},
        "default_is_recommended": is_default}
    label = (f"{recommended['sampler']}, {recommended['steps']} steps" if recommended
             else "none in the grid")
    figures["summary"] = [
        row("fewest steps within 1 point of 50-step DDIM", label,
            note=f"DDIM 50: {percent(baseline)} on {len(prompts)} prompts"),
        row("generate's default", f"{default_sampler}, {default_steps} steps",
            target="the fewest steps above", ok=is_default),
    ]
    figures["tables"] = [{
        "title": f"Accuracy on {len(prompts)} prompts (50-step DDIM: {percent(baseline)})",
        "columns": ["sampler", *[f"{s} steps" for s in grid], "fewest within 1 point"],
        "rows": [[s, *[percent(curves[s][k]) for k in grid], fewest[s] or "none"]
                 for s in SAMPLERS],
    }]
    return figures


def plot(figures: dict, path: Path) -> None:
    from bench.plots import lines

    series = {s: ([int(k) for k in c], list(c.values())) for s, c in figures["curves"].items()}
    base = figures["baseline"]
    lines(path, series, xlabel="steps", ylabel="prompts right",
          title="Accuracy against sampling steps", percent=True,
          reference=(f"{base['sampler']} {base['steps']} steps", base["accuracy"]))
