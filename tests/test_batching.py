"""Batched model calls: one pipeline call for several prompts gives each prompt the image its
own call gives (same seed, same parameters, pixels equal up to float rounding); classifier-free
guidance runs both branches in one UNet call per step; and `atelier script` batches calls of
different sessions, with the same turns and images as a one-at-a-time run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tiny_diffusion
from world_runner import WorldRunner

from agent.api import Atelier
from agent.engines.batching import BatchScheduler
from agent.engines.script import ScriptRun, parse_script
from pipelines.base import StepInputs
from pipelines.models import ModelConfig, ModelSet
from pipelines.registry import build_adapter
from world.render import render
from world.scene import Obj, Scene


def shapes_models(config: ModelConfig) -> ModelSet:
    """A model set that finds objects as the shapes world does."""
    from world.grounding import WorldGrounder

    return ModelSet(config, grounder=WorldGrounder())

SIZE = tiny_diffusion.SIZE


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def models(tiny_models):
    return shapes_models(ModelConfig.shipped(tiny_models, device="cpu"))


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def assert_same_image(a, b) -> None:
    """Equal up to float rounding: a batched matrix product may add in another order, which
    can move a rare pixel by one level."""
    difference = np.abs(pixels(a) - pixels(b))
    assert a.size == b.size and difference.max() <= 1 and (difference > 0).mean() < 0.01


# --- adapters --------------------------------------------------------------------------------

def test_generate_batch_gives_each_prompt_its_own_image(models):
    adapter = build_adapter("generate", models)
    calls = [{"prompt": p, "seed": s, "steps": 3} for p, s in
             (("a red circle", 1), ("a blue square at the top", 2), ("a green triangle", 3))]
    alone = [adapter.run(args) for args in calls]
    together = adapter.run_batch([(args, None) for args in calls])
    for one, batched in zip(alone, together):
        assert batched.seed == one.seed and batched.timings["batch"] == 3
        assert {k: v for k, v in batched.params_used.items()} == one.params_used
        assert_same_image(batched.images[0], one.images[0])


def test_edit_batch_gives_each_instruction_its_own_image(models):
    adapter = build_adapter("edit", models)
    image = render(Scene((Obj("circle", "red", "large", 0.3, 0.3),)), SIZE)
    calls = [({"instruction": text, "seed": seed, "steps": 3}, StepInputs(image=image))
             for text, seed in (("make the circle green", 4), ("make it blue", 5))]
    together = adapter.run_batch(calls)
    for (args, inputs), batched in zip(calls, together):
        assert_same_image(batched.images[0], adapter.run(args, inputs).images[0])


def test_calls_with_other_settings_are_not_batched(models):
    adapter = build_adapter("generate", models)
    with pytest.raises(ValueError, match="cannot share one batched call"):
        adapter.run_batch([({"prompt": "a red circle", "steps": 3}, None),
                           ({"prompt": "a red circle", "steps": 4}, None)])
    with pytest.raises(ValueError, match="cannot share one batched call"):
        adapter.run_batch([({"prompt": "a red circle", "num_images": 2}, None)] * 2)


# --- classifier-free guidance ---------------------------------------------------------------

def unet_batches(pipe, call) -> list[int]:
    """The batch size of every UNet forward pass `call` makes."""
    sizes: list[int] = []
    hook = pipe.unet.register_forward_hook(lambda module, args, output: sizes.append(
        args[0].shape[0]))
    try:
        call()
    finally:
        hook.remove()
    return sizes


def test_per_box_layouts_batch_and_draw_what_each_draws_alone(models):
    adapter = build_adapter("layout", models)
    calls = [{"objects": [{"phrase": p, "box": [0.1, 0.1, 0.45, 0.45]},
                          {"phrase": "a blue square", "box": [0.55, 0.55, 0.9, 0.9]}],
              "seed": s, "steps": 3, "redraws": 1} for p, s in (("a red circle", 1),
                                                                  ("a green triangle", 2))]
    calls.append({"objects": [{"phrase": "a cyan circle", "box": [0.3, 0.3, 0.7, 0.7]}],
                  "seed": 3, "steps": 3, "redraws": 1, "background_prompt": "a gray background"})
    keys = {adapter.batch_key(adapter.validate(c), StepInputs()) for c in calls}
    assert len(keys) == 1 and None not in keys
    alone = [adapter.run(args) for args in calls]
    together = adapter.run_batch([(args, None) for args in calls])
    for one, batched in zip(alone, together):
        assert batched.params_used == one.params_used and batched.timings["batch"] == 3
        assert_same_image(batched.images[0], one.images[0])
    # Multidiffusion and harmonised layouts run one call at a time.
    for other in ({"method": "multidiffusion"}, {"harmonise": 0.5}):
        assert adapter.batch_key(adapter.validate({**calls[0], **other}), StepInputs()) is None


@pytest.mark.parametrize("sampler", ["dpm++2m", "ddim", "euler"])
def test_guidance_runs_both_branches_in_one_unet_call_per_step(models, sampler):
    adapter = build_adapter("generate", models)
    pipe = models.with_sampler(sampler)
    steps = 4
    guided = unet_batches(pipe, lambda: adapter.run(
        {"prompt": "a red circle", "steps": steps, "guidance": 5.0, "sampler": sampler,
         "seed": 0}))
    assert guided == [2] * steps          # unconditional and conditional, side by side
    batched = unet_batches(pipe, lambda: adapter.run_batch(
        [({"prompt": p, "steps": steps, "sampler": sampler, "seed": 0}, None)
         for p in ("a red circle", "a blue square", "a green triangle")]))
    assert batched == [6] * steps         # three prompts, both branches, one call
    plain = unet_batches(pipe, lambda: adapter.run(
        {"prompt": "a red circle", "steps": steps, "guidance": 1.0, "sampler": sampler,
         "seed": 0}))
    assert plain == [1] * steps           # no guidance, no unconditional branch


# --- the scheduler, on exact world images -------------------------------------------------

class BatchingWorldRunner(WorldRunner):
    """WorldRunner with the batching interface: a batch is each call run in turn, recorded."""

    def __init__(self):
        super().__init__()
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()   # where the model calls ran

    def run(self, op, args, inputs, seed):
        import threading

        self.threads.add(threading.current_thread().name)
        return super().run(op, args, inputs, seed)

    def batch_key(self, op, args, inputs):
        return (op, args.steps, args.guidance) if op in ("generate", "edit") else None

    def run_batch(self, op, calls):
        self.batches.append([seed for _, _, seed in calls])
        return [self.run(op, args, inputs, seed) for args, inputs, seed in calls]


SESSIONS_SCRIPT = [
    json.dumps({"session": f"s{i}", "request": request, "seed": 10 + i})
    for i, request in enumerate(["a red circle", "a blue square", "a green triangle",
                                 "a yellow circle at the top left", "a purple square"])
] + [
    json.dumps({"session": f"s{i}", "request": "make it bigger"}) for i in range(3)
] + ['{"session": "s1", "request": "undo"}', '{"session": "s5", "request": "a cyan circle"}']


def write_script(folder: Path, lines: list[str]) -> Path:
    path = folder / "turns.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run_script(script: Path, out: Path, runner, batch: int) -> tuple[list[dict], ScriptRun]:
    out.mkdir(parents=True)
    with Atelier(home=out, models=runner, retriever=None) as atelier:
        run = ScriptRun(atelier, parse_script(script), out, batch=batch)
        return run.run(), run


def test_script_batches_sessions_with_the_same_turns_as_one_at_a_time(tmp_path):
    script = write_script(tmp_path, SESSIONS_SCRIPT)
    alone, _ = run_script(script, tmp_path / "alone", WorldRunner(), batch=1)
    runner = BatchingWorldRunner()
    together, run = run_script(script, tmp_path / "together", runner, batch=4)

    def key(entry):
        return {k: v for k, v in entry.items() if k != "seconds"}

    # The world runner is exact, so even the image files (named by their bytes) agree.
    assert [key(e) for e in together] == [key(e) for e in alone]
    assert [json.loads(line) for line in (tmp_path / "together" / "manifest.jsonl")
            .read_text().splitlines()] == together   # rewritten in file order
    assert max(len(b) for b in runner.batches) > 1 and max(run.batch_sizes) > 1
    assert max(run.batch_sizes) <= 4
    # Every model call ran in the thread that reads the results, none in the workers: a
    # second thread running torch kernels slows both (agent/engines/batching.py).
    assert runner.threads == {"MainThread"}

    # Which calls share a batch depends on the script, not on thread timing.
    again = BatchingWorldRunner()
    run_script(script, tmp_path / "again", again, batch=4)
    assert again.batches == runner.batches


def test_a_failing_call_fails_only_its_own_turn(tmp_path):
    class Refusing(BatchingWorldRunner):
        def run(self, op, args, inputs, seed):
            if "purple" in getattr(args, "prompt", ""):
                raise RuntimeError("this one breaks")
            return super().run(op, args, inputs, seed)

    script = write_script(tmp_path, [
        '{"session": "a", "request": "a red circle", "seed": 1}',
        '{"session": "b", "request": "a purple circle", "seed": 2}',
        '{"session": "c", "request": "a blue circle", "seed": 3}'])
    entries, _ = run_script(script, tmp_path / "out", Refusing(), batch=3)
    assert [e["ok"] for e in entries] == [True, False, True]
    assert "this one breaks" in entries[1]["error"]


def test_calls_from_outside_the_workers_run_alone():
    runner = BatchingWorldRunner()
    scheduler = BatchScheduler(runner, max_batch=4)
    from pipelines.spec import GenerateArgs

    result = scheduler.run("generate", GenerateArgs(prompt="a red circle"), StepInputs(), 3)
    assert result.seed == 3 and runner.batches == [] and scheduler.model_ids() == \
        runner.model_ids()
    with pytest.raises(ValueError):
        BatchScheduler(runner, max_batch=0)


# --- the scheduler, on diffusion models -----------------------------------------------------

def test_script_batches_real_pipeline_calls(tmp_path, tiny_models):
    script = write_script(tmp_path, [
        json.dumps({"session": f"s{i}", "request": request, "seed": i})
        for i, request in enumerate(["a red circle", "a blue square", "a green triangle"])])
    config = ModelConfig.shipped(tiny_models, device="cpu")
    alone, _ = run_script(script, tmp_path / "alone", config, batch=1)
    together, run = run_script(script, tmp_path / "together", config, batch=3)
    assert max(run.batch_sizes) == 3
    for one, batched in zip(alone, together):
        assert (one["ok"], one["seed"], one["plan"]) == (batched["ok"], batched["seed"],
                                                         batched["plan"])
        from PIL import Image

        with Image.open(tmp_path / "alone" / one["image"]) as a, \
                Image.open(tmp_path / "together" / batched["image"]) as b:
            assert_same_image(a.convert("RGB"), b.convert("RGB"))
