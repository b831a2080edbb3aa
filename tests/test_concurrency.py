"""Lazily loaded models and shared parts are made once, by one thread, however many threads
touch them first at the same moment (pipelines/once.py).

Each test forces the race: a barrier releases every thread at once onto a part that nobody
has loaded yet, and the test repeats that over fresh objects. Before the fix, `atelier script`
with eight workers failed turns with "Cannot copy out of meta tensor": two loads ran at once
and from_pretrained's meta-device initialisation, which patches torch for the whole process,
left one of them with empty tensors."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from agent.api import Atelier
from pipelines.models import ModelConfig, ModelSet
from pipelines.once import Once, OnceMap

MODELS = Path(__file__).resolve().parents[1] / "models"
WORKERS = 8


def together(calls, timeout: float = 120.0) -> list:
    """Run each call in its own thread, all released at one moment; their results in order.
    Any thread's exception is raised here."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)
    errors: list = []

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as error:  # collected, raised in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread is still waiting: a deadlock"
    if errors:
        raise errors[0]
    return results


def no_meta_tensors(module: torch.nn.Module) -> bool:
    return all(p.device.type != "meta" for p in module.parameters())


def test_once_makes_its_value_in_one_thread_while_the_others_wait():
    made = []
    slot = Once()

    def make():
        made.append(threading.get_ident())
        threading.Event().wait(0.05)  # long enough for every other thread to arrive
        return object()

    values = together([lambda: slot.get(make)] * WORKERS)
    assert len(made) == 1 and all(v is values[0] for v in values)


def test_once_tries_again_after_a_failed_make():
    slot, attempts = Once(), []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk busy")
        return "loaded"

    with pytest.raises(OSError):
        slot.get(flaky)
    assert not slot.made and slot.get(flaky) == "loaded" and slot.get(flaky) == "loaded"
    assert len(attempts) == 2


def test_once_map_makes_each_key_once():
    values, counts = OnceMap(), {}

    def make(key):
        counts[key] = counts.get(key, 0) + 1
        threading.Event().wait(0.02)
        return key * 10

    got = together([lambda k=k: values.get(k, lambda: make(k)) for k in [1, 2] * 4])
    assert got == [10, 20] * 4 and counts == {1: 1, 2: 1}
    assert 1 in values and 3 not in values and sorted(values.values()) == [10, 20]


@pytest.mark.parametrize("attempt", range(3))
def test_eight_threads_asking_for_the_base_model_at_once_share_one_load(attempt):
    models = ModelSet(ModelConfig.shipped(MODELS, device="cpu"))
    pipes = together([models.base] * WORKERS)
    assert all(p is pipes[0] for p in pipes)
    assert no_meta_tensors(pipes[0].unet) and no_meta_tensors(pipes[0].text_encoder)


@pytest.mark.parametrize("attempt", range(3))
def test_different_models_loading_side_by_side_never_leave_meta_tensors(attempt):
    """Loads of different models at once: each from_pretrained patches torch process-wide, so
    one thread's load could empty the modules another thread builds."""
    from diffusers import StableDiffusionImg2ImgPipeline

    from index.embedder import Embedder

    models = ModelSet(ModelConfig.shipped(MODELS, device="cpu"))
    embedder = Embedder.shipped(MODELS, progress=False)
    base, edit, clip, img2img, loaded = together(
        [models.base, models.edit, models.clip,
         lambda: models.derive(StableDiffusionImg2ImgPipeline), embedder.load])
    assert no_meta_tensors(base.unet) and no_meta_tensors(edit.unet)
    assert edit.vae is base.vae and img2img.unet is base.unet
    assert no_meta_tensors(clip[0]) and no_meta_tensors(loaded._model)
    assert embedder.encode_text("a red circle").shape == (embedder.dim,)


@pytest.mark.parametrize("attempt", range(2))
def test_a_scripts_workers_touching_the_runner_first_together_all_work(attempt):
    """What `atelier script --batch 8` does first in each worker: ask the runner which batch
    a call joins, which loads the base model (the traceback of the reported failure)."""
    from pipelines.base import StepInputs
    from pipelines.spec import OPERATIONS

    from agent.turn.runner import PipelineRunner

    runner = PipelineRunner(ModelSet(ModelConfig.shipped(MODELS, device="cpu")))
    args = OPERATIONS["layout"].validate(
        {"objects": [{"phrase": "a red circle", "box": [0.1, 0.1, 0.4, 0.4]}]})
    keys = together([lambda: runner.batch_key("layout", args, StepInputs())] * WORKERS)
    assert len(set(keys)) == 1
    assert no_meta_tensors(runner.models.base().unet)


def test_atelier_builds_each_part_once_when_sessions_start_together(tmp_path):
    with Atelier(home=tmp_path) as atelier:
        orchestrators = together([atelier.orchestrator] * WORKERS)
        assert all(o is orchestrators[0] for o in orchestrators)
        assert atelier.planner() is orchestrators[0].planner
        assert atelier.runner() is orchestrators[0].runner


SCRIPT = [{"session": "h00", "request": "a red circle at the top left", "seed": 1000},
          {"session": "h01", "request": "a large blue square in the center", "seed": 1001},
          {"session": "h02", "request": "a small yellow triangle at the bottom right",
           "seed": 1002}]


@pytest.mark.parametrize("attempt", range(3))
def test_a_batched_script_from_a_cold_start_runs_every_turn(tmp_path, attempt, monkeypatch):
    """The reported script, run as `atelier script s.jsonl --out run` runs it (--batch 8),
    each time on models nobody has loaded yet."""
    from agent.engines.script import ScriptRun, parse_script

    monkeypatch.setenv("ATELIER_MODELS", str(MODELS))
    script = tmp_path / "s.jsonl"
    script.write_text("".join(json.dumps(line) + "\n" for line in SCRIPT))
    out = tmp_path / "run"
    with Atelier(home=out) as atelier:
        entries = ScriptRun(atelier, parse_script(script), out, batch=8).run()
    assert [e["ok"] for e in entries] == [True] * 3, [e["error"] for e in entries]


def test_sessions_asking_from_threads_at_once_get_the_images_they_get_alone(tmp_path):
    """Python API users may ask in several sessions from several threads: the model calls
    take turns (a pipeline's scheduler holds each call's state), so every image is the one
    the same request and seed make alone."""
    from PIL import ImageChops

    requests = ["a red circle", "a blue square", "a green triangle", "a yellow circle"]
    with Atelier(home=tmp_path / "together", models=MODELS, retriever=None) as atelier:
        results = together([lambda r=r, i=i: atelier.session(f"s{i}").ask(r, seed=i)
                            for i, r in enumerate(requests)])
        together_images = [r.image.open() for r in results]
    with Atelier(home=tmp_path / "alone", models=MODELS, retriever=None) as atelier:
        alone_images = [atelier.session(f"s{i}").ask(r, seed=i).image.open()
                        for i, r in enumerate(requests)]
    for mixed, alone in zip(together_images, alone_images):
        assert ImageChops.difference(mixed, alone).getbbox() is None
