"""Agent overhead: one end-to-end turn against the bare diffusers call it makes.

In one warm process, a turn ("a red circle": plan, generate, read back and check, save the
PNG with its metadata, commit to the store) is timed against the text-to-image pipeline
called directly with the same prompt, sampler, steps, guidance, size and seed. Corrections
and re-plans are switched off so the turn makes exactly that one call. The two are timed in
rounds, in a shuffled order each round, and the medians compared: on a shared virtual
machine the fastest run of each path is one lucky draw (fastest-to-fastest ratios of four
runs here: 1.02, 1.05, 1.06, 1.16), while the ratio of the medians held at 1.043 to 1.044.
The fastest runs are reported too.

The agent's own work is also timed alone, with the model call replaced by a replay of its
result, which says what the ratio is made of without the sampling's noise.
"""
from __future__ import annotations

import random
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

    from pipelines.families import native_size

    models = context.model_set()
    pipe = models.with_sampler(args.sampler)
    size = native_size(models.base())
    return pipe(prompt=args.prompt, negative_prompt=args.negative_prompt,
                num_inference_steps=args.steps, guidance_scale=args.guidance,
                width=args.width or size, height=args.height or size,
                generator=torch.Generator("cpu").manual_seed(seed)).images[0]


class _Replay:
    """A step runner that hands back one recorded result: the agent's work without a model."""

    def __init__(self, runner, result):
        self.runner, self.result = runner, result

    def run(self, op, args, inputs, seed):
        return self.result

    def model_ids(self):
        return self.runner.model_ids()


def one_turn(atelier, name: str, seed: int):
    result = atelier.session(name).ask(REQUEST, seed=seed)
    ops = [s.op for s in result.plan.steps] if result.plan is not None else []
    if ops != ["generate"] or len(result.images) != 1:
        raise RuntimeError(f"{REQUEST!r} was expected to make one generate call; it ran {ops} "
                           f"with {len(result.images)} image(s)")
    return result


def agent_alone(context, home: Path, result, repeats: int) -> float:
    """Seconds of a turn's own work (plan, check, save, commit), the model call replayed."""
    from agent.api import Atelier
    from agent.turn.orchestrator import Limits

    with Atelier(home=home, models=_Replay(context.runner(), result), checker="shapes",
                 retriever=None, limits=Limits(max_corrections=0, replans=0)) as atelier:
        times = []
        for i in range(repeats + 1):
            started = time.perf_counter()
            one_turn(atelier, f"replay-{i}", 0)
            times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def run(context) -> dict:
    from agent.turn.orchestrator import Limits
    from pipelines.base import StepInputs

    repeats = context.size("overhead", quick=8, full=20)
    order = random.Random(0)
    times: dict[str, list[float]] = {"turn": [], "bare": []}
    with tempfile.TemporaryDirectory() as home:
        home = Path(home)
        with context.atelier(home / "turns",
                             limits=Limits(max_corrections=0, replans=0)) as atelier:
            # A first turn warms both paths up and gives the step's arguments.
            args = one_turn(atelier, "overhead-0", 100).plan.steps[0].args
            bare_call(context, args, 100)
            for i in range(1, repeats + 1):
                for which in order.sample(["turn", "bare"], 2):
                    started = time.perf_counter()
                    if which == "turn":
                        one_turn(atelier, f"overhead-{i}", 100 + i)
                    else:
                        bare_call(context, args, 100 + i)
                    times[which].append(time.perf_counter() - started)
        recorded = context.runner().run("generate", args, StepInputs(), 0)
        own = agent_alone(context, home / "replay", recorded, repeats)
    turn_times, bare_times = times["turn"], times["bare"]
    turn, bare = statistics.median(turn_times), statistics.median(bare_times)
    ratio = turn / bare
    fastest_ratio = min(turn_times) / min(bare_times)
    figures = {"request": REQUEST, "repeats": repeats, "steps": args.steps,
               "sampler": args.sampler, "turn_seconds": [round(t, 4) for t in turn_times],
               "bare_seconds": [round(t, 4) for t in bare_times],
               "median_turn_seconds": round(turn, 4), "median_bare_seconds": round(bare, 4),
               "ratio": round(ratio, 4), "fastest_ratio": round(fastest_ratio, 4),
               "agent_alone_ms": round(1000 * own, 1),
               "ratio_from_parts": round((bare + own) / bare, 4)}
    figures["summary"] = [
        row("end-to-end turn / bare diffusers call", round(turn, 3), unit="s",
            baseline=round(bare, 3), baseline_label="bare call, same parameters",
            ratio=round(ratio, 4), target=f"<= {TARGET}", ok=ratio <= TARGET,
            note=f"medians of {repeats} rounds; the agent's own work alone: "
                 f"{figures['agent_alone_ms']} ms per turn"),
    ]
    figures["tables"] = [{
        "title": f"{REQUEST!r}, {args.sampler}, {args.steps} steps, {repeats} rounds",
        "columns": ["", "median (s)", "fastest (s)"],
        "rows": [["end-to-end turn", round(turn, 4), round(min(turn_times), 4)],
                 ["bare diffusers call", round(bare, 4), round(min(bare_times), 4)],
                 ["ratio", round(ratio, 4), figures["fastest_ratio"]]],
    }]
    figures["notes"] = (f"The agent's own work per turn (plan, read back and check, PNG with "
                        f"metadata, store commit), timed with the model call replayed: "
                        f"{figures['agent_alone_ms']} ms, so (bare + own) / bare = "
                        f"{figures['ratio_from_parts']}.")
    return figures
