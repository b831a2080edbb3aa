"""Compositional text-to-image, GenEval-style: the base model alone against the agent.

For each prompt of bench/data/compositional.jsonl (bench/prompts.py: 540 prompts in six
categories), the base text-to-image model makes one image from the prompt as it stands, and
the agent runs the prompt as one turn (planner, layout, checks and corrections), both from
the same seed and with the same sampling settings. The world's detector reads each image
back and the prompt's own constraints judge it: a prompt counts when every constraint holds.
"""
from __future__ import annotations

import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

from bench.harness import percent, row

TITLE = "Compositional text-to-image (GenEval-style): base model alone vs the agent"
KIND = "quality"
BATCH = 8


def seed_of(prompt_id: str) -> int:
    """A prompt's seed, the same in quick and full runs."""
    return zlib.crc32(prompt_id.encode())


def judge(image, constraints) -> bool:
    from world.check import check
    from world.detect import detect

    return image is not None and not check(detect(image).scene, constraints)


def base_model(context, prompts: list[dict]) -> tuple[list[bool], float]:
    """Each prompt straight to the text-to-image model (batched: same settings, one
    generator per prompt). Returns the verdicts and the seconds per image."""
    from pipelines.base import StepInputs
    from pipelines.spec import GenerateArgs

    runner = context.runner()
    verdicts: list[bool] = []
    started = time.perf_counter()
    for start in range(0, len(prompts), BATCH):
        chunk = prompts[start:start + BATCH]
        calls = [(GenerateArgs(prompt=p["prompt"]), StepInputs(), seed_of(p["id"]))
                 for p in chunk]
        results = runner.run_batch("generate", calls)
        verdicts += [judge(r.images[0], p["constraints"]) for r, p in zip(results, chunk)]
    return verdicts, (time.perf_counter() - started) / max(len(prompts), 1)


def agent_turns(context, prompts: list[dict]) -> list[dict]:
    """Each prompt as the first turn of its own session."""
    outcomes = []
    with tempfile.TemporaryDirectory() as home:
        with context.atelier(Path(home)) as atelier:
            for p in prompts:
                result = atelier.session(p["id"]).ask(p["prompt"], seed=seed_of(p["id"]))
                image = result.image.open() if result.image is not None else None
                ops = [s.op for s in result.plan.steps] if result.plan is not None else []
                outcomes.append({"ok": judge(image, p["constraints"]),
                                 "images": len(result.images), "ops": ops,
                                 "seconds": result.seconds, "checks_passed": result.checks_passed})
    return outcomes


def run(context) -> dict:
    from bench.prompts import CATEGORIES, load_prompts, sample

    per_category = context.size("compositional", quick=3, full=90)
    prompts = sample(load_prompts(), per_category)
    base, base_seconds = base_model(context, prompts)
    agent = agent_turns(context, prompts)

    categories = {}
    for category in CATEGORIES:
        picked = [i for i, p in enumerate(prompts) if p["category"] == category]
        if picked:
            categories[category] = {
                "n": len(picked),
                "base": sum(base[i] for i in picked) / len(picked),
                "agent": sum(agent[i]["ok"] for i in picked) / len(picked)}
    n = len(prompts)
    overall = {"base": sum(base) / n, "agent": sum(a["ok"] for a in agent) / n}
    plans = Counter("+".join(a["ops"]) or "none" for a in agent)
    figures = {
        "prompts": n, "per_category": per_category, "categories": categories, "all": overall,
        "base_seconds_per_image": round(base_seconds, 3),
        "agent_seconds_per_turn": round(sum(a["seconds"] for a in agent) / n, 3),
        "agent_images_per_turn": round(sum(a["images"] for a in agent) / n, 2),
        "agent_plans": dict(plans.most_common()),
        "outcomes": [{"id": p["id"], "base": b, **a} for p, b, a in zip(prompts, base, agent)],
    }
    figures["summary"] = [
        row("success, all categories: agent", overall["agent"], unit="%",
            baseline=overall["base"], baseline_label="base model alone",
            note=f"{n} prompts"),
        row("agent images per turn (attempts included)", figures["agent_images_per_turn"]),
    ]
    figures["tables"] = [{
        "title": f"Share of prompts right, per category ({n} prompts)",
        "columns": ["category", "prompts", "base model alone", "agent", "points gained"],
        "rows": [[c, f["n"], percent(f["base"]), percent(f["agent"]),
                  f"{100 * (f['agent'] - f['base']):+.1f}"] for c, f in categories.items()]
        + [["all", n, percent(overall["base"]), percent(overall["agent"]),
            f"{100 * (overall['agent'] - overall['base']):+.1f}"]],
    }, {
        "title": "The agent's plans (final plan of each turn)",
        "columns": ["plan", "turns"],
        "rows": [[plan, count] for plan, count in plans.most_common()],
    }]
    figures["notes"] = (f"Base model: {figures['base_seconds_per_image']} s per image "
                        f"(batches of {BATCH}). Agent: {figures['agent_seconds_per_turn']} s per "
                        f"turn, {figures['agent_images_per_turn']} images per turn.")
    return figures


def plot(figures: dict, path: Path) -> None:
    from bench.plots import grouped_bars

    categories = list(figures["categories"]) + ["all"]
    values = {who: [figures["categories"][c][who] for c in figures["categories"]]
              + [figures["all"][who]] for who in ("base", "agent")}
    grouped_bars(path, categories, {"base model alone": values["base"], "agent": values["agent"]},
                 ylabel="prompts right", title="Compositional prompts, per category",
                 percent=True)
