"""Agent overhead: one end-to-end turn against the bare diffusers call it makes.

In one warm process, a turn ("a red circle": plan, generate, read back and check, save the
PNG with its metadata, commit to the store) is timed against the text-to-image pipeline
called directly with the same prompt, sampler, steps, guidance, size and seed. Corrections
and re-plans are switched off so the turn makes exactly that one call; the two are timed in
alternation and the medians compared, so a machine busy with other work slows both alike.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import row

TITLE = "Agent overhead: end-to-end turn time / the bare diffusers call"
KIND = "cost"
REQUEST = "a red circle"
TARGET = 1.05


def bare_call(context, args, seed: int):
    """The pipeline call the generate step makes, straight to diffusers."""
    import torch

    from pipelines.sampling import native_size

    models = context.model_set()
    pipe = models.with_sampler(args.sampler)
    size = native_size(models.base())
    return pipe(prompt=args.prompt, negative_prompt=args.negative_prompt,
                num_inference_steps=args.steps, guidance_scale=args.guidance,
                width=args.width or size, height=args.height or size,
                generator=torch.Generator("cpu").manual_seed(seed)).images[0]


def run(context) -> dict:
    from agent.orchestrator import Limits

    repeats = context.size("overhead", quick=3, full=10)
    turn_times, bare_times, steps = [], [], []
    with tempfile.TemporaryDirectory() as home:
        with context.atelier(Path(home), limits=Limits(max_corrections=0, replans=0)) as atelier:
            for i in range(repeats + 1):  # the first pair warms both paths up
                seed = 100 + i
                started = time.perf_counter()
                result = atelier.session(f"overhead-{i}").ask(REQUEST, seed=seed)
                turn = time.perf_counter() - started
                plan = result.plan.steps
                if [s.op for s in plan] != ["generate"] or len(result.images) != 1:
                    raise RuntimeError(f"{REQUEST!r} was expected to make one generate call; "
                                       f"it ran {[s.op for s in plan]} with "
                                       f"{len(result.images)} image(s)")
                started = time.perf_counter()
                bare_call(context, plan[0].args, seed)
                bare = time.perf_counter() - started
                if i:
                    turn_times.append(turn)
                    bare_times.append(bare)
                    steps.append(plan[0].args.steps)
    turn, bare = statistics.median(turn_times), statistics.median(bare_times)
    ratio = turn / bare
    figures = {"request": REQUEST, "repeats": repeats, "steps": steps[0],
               "turn_seconds": [round(t, 4) for t in turn_times],
               "bare_seconds": [round(t, 4) for t in bare_times],
               "median_turn_seconds": round(turn, 4), "median_bare_seconds": round(bare, 4),
               "overhead_ms": round(1000 * (turn - bare), 1), "ratio": round(ratio, 4)}
    figures["summary"] = [
        row("end-to-end turn / bare diffusers call", round(turn, 3), unit="s",
            baseline=round(bare, 3), baseline_label="bare call, same parameters",
            ratio=round(ratio, 4), target=f"<= {TARGET}", ok=ratio <= TARGET,
            note=f"median of {repeats}"),
    ]
    figures["tables"] = [{
        "title": f"{REQUEST!r}, {steps[0]} steps, median of {repeats} alternating runs",
        "columns": ["", "seconds"],
        "rows": [["end-to-end turn", round(turn, 4)], ["bare diffusers call", round(bare, 4)],
                 ["overhead", round(turn - bare, 4)], ["ratio", round(ratio, 4)]],
    }]
    return figures
