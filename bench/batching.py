"""Cross-request batching in `atelier script`: turns per second, batched against one at a time.

One script of single-object requests, one session each with its own seed, runs twice in the
same warm process: one line after another (`--batch 1`), then with up to 8 sessions side by
side (`--batch 8`, the default), where turns that run the same operation on the same model
share one batched pipeline call. Both runs do the whole turn (plan, generate, check and
correct, save, commit). The images of the two runs are compared turn by turn.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.harness import row

TITLE = "Cross-request batching in `atelier script`: turns per second vs one at a time"
KIND = "cost"
TARGET = 1.5
BATCH = 8


def script_lines(n: int) -> list[str]:
    from bench.compositional import seed_of
    from bench.prompts import load_prompts

    prompts = [p for p in load_prompts() if p["category"] == "single_object"][:n]
    return [json.dumps({"session": p["id"], "request": p["prompt"], "seed": seed_of(p["id"])})
            for p in prompts]


def run_script(context, script: Path, out: Path, batch: int) -> tuple[list[dict], float, list]:
    from agent.engines.script import ScriptRun, parse_script

    out.mkdir()
    with context.atelier(out) as atelier:
        run = ScriptRun(atelier, parse_script(script), out, batch=batch)
        started = time.perf_counter()
        entries = run.run()
        return entries, time.perf_counter() - started, run.batch_sizes


def compare_images(first: Path, second: Path, a: list[dict], b: list[dict]) -> dict:
    from PIL import Image

    differences, identical = [], 0
    for x, y in zip(a, b):
        if x["image"] is None or y["image"] is None:
            continue
        with Image.open(first / x["image"]) as i, Image.open(second / y["image"]) as j:
            d = np.abs(np.asarray(i.convert("RGB"), np.int16) - np.asarray(j.convert("RGB"),
                                                                            np.int16))
        differences.append(int(d.max()))
        identical += int(d.max() == 0)
    same_turns = sum((x["ok"], x["plan"], x["checks_passed"]) == (y["ok"], y["plan"],
                                                                   y["checks_passed"])
                     for x, y in zip(a, b))
    return {"turns_compared": len(differences), "identical_images": identical,
            "max_pixel_difference": max(differences, default=0),
            "same_plans_and_verdicts": same_turns}


def same_images_row(label: str, images: dict) -> dict:
    """The summary row for `compare_images`' figures."""
    return row(f"{label} (largest pixel difference, 0-255)", images["max_pixel_difference"],
               note=f"{images['identical_images']}/{images['turns_compared']} bit-identical")


def run(context) -> dict:
    n = context.size("batching", quick=16, full=64)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = tmp / "turns.jsonl"
        script.write_text("".join(line + "\n" for line in script_lines(n)))
        # A first turn loads the models, so neither timed run pays for it.
        warm = tmp / "warm.jsonl"
        warm.write_text(script.read_text().splitlines()[0] + "\n")
        run_script(context, warm, tmp / "warm", batch=1)
        alone, alone_s, _ = run_script(context, script, tmp / "alone", batch=1)
        together, together_s, sizes = run_script(context, script, tmp / "together", batch=BATCH)
        images = compare_images(tmp / "alone", tmp / "together", alone, together)
    ratio = (n / together_s) / (n / alone_s)
    figures = {"turns": n, "batch": BATCH,
               "one_at_a_time": {"seconds": round(alone_s, 3), "turns_per_second": n / alone_s},
               "batched": {"seconds": round(together_s, 3), "turns_per_second": n / together_s,
                           "model_calls": len(sizes), "batch_sizes": sizes},
               "speedup": round(ratio, 3), "images": images}
    figures["summary"] = [
        row("turns per second, batched", round(n / together_s, 3), unit="turns/s",
            baseline=round(n / alone_s, 3), baseline_label="one at a time",
            ratio=round(ratio, 3), target=f">= {TARGET}x", ok=ratio >= TARGET,
            note=f"{n} sessions, batches up to {BATCH}"),
        same_images_row("same images as one at a time", images),
    ]
    figures["tables"] = [{
        "title": f"{n} one-turn sessions",
        "columns": ["", "seconds", "turns per second", "model calls"],
        "rows": [["one at a time", round(alone_s, 2), round(n / alone_s, 3), ""],
                 [f"batched (up to {BATCH})", round(together_s, 2), round(n / together_s, 3),
                  f"{len(sizes)} (sizes {sizes})"]],
    }]
    figures["notes"] = (f"Same plans and verdicts in {images['same_plans_and_verdicts']}/{n} "
                        f"turns; images identical bit for bit in {images['identical_images']}/"
                        f"{images['turns_compared']}, and never more than "
                        f"{images['max_pixel_difference']}/255 apart (a batched matrix product "
                        "adds in another order). generate and edit batch; the other operations "
                        "run one call at a time inside the same scheduler.")
    return figures


def plot(figures: dict, path: Path) -> None:
    from bench.plots import grouped_bars

    grouped_bars(path, ["one at a time", f"batched (up to {figures['batch']})"],
                 {"turns per second": [figures["one_at_a_time"]["turns_per_second"],
                                       figures["batched"]["turns_per_second"]]},
                 ylabel="turns per second", title=f"atelier script, {figures['turns']} sessions")
