"""Training data from the world's sampler and renderer: images as [-1, 1] tensors; and what
every training script shares: its run options, device and checkpoints."""
from __future__ import annotations

import argparse

import numpy as np
import torch

from world.render import render
from world.sample import sample_scene
from world.scene import BACKGROUNDS, Scene


def image_tensor(image) -> torch.Tensor:
    """PIL RGB -> 3 x H x W float tensor in [-1, 1], the range diffusers' VAEs use."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def scene_batch(rng: np.random.Generator, batch_size: int) -> tuple[list[Scene], torch.Tensor]:
    scenes = [sample_scene(rng) for _ in range(batch_size)]
    return scenes, torch.stack([image_tensor(render(s)) for s in scenes])


def object_weights(images: torch.Tensor, scenes: list[Scene], object_weight: float) -> torch.Tensor:
    """Per-pixel loss weights: objects cover little of a flat canvas, so weigh them up."""
    background = torch.tensor([BACKGROUNDS[s.background] for s in scenes], dtype=torch.float32)
    background = (background / 127.5 - 1.0)[:, :, None, None]
    is_object = ((images - background).abs().amax(dim=1, keepdim=True) > 0.02).float()
    return 1.0 + (object_weight - 1.0) * is_object


def pick_prompts(input_ids: torch.Tensor, empty_ids: torch.Tensor | None = None,
                 dropout: float = 0.0) -> torch.Tensor:
    """Per row of N x variants x length token ids (variant 0 the canonical caption, the rest
    free phrasings): the empty prompt with chance `dropout` (for classifier-free guidance),
    else the caption or one of the phrasings, half and half."""
    batch, variants, _ = input_ids.shape
    roll = torch.rand(batch, device=input_ids.device)
    phrasing = torch.randint(1, variants, (batch,), device=input_ids.device)
    choice = torch.where(roll < dropout + (1 - dropout) / 2, 0, phrasing)
    ids = input_ids[torch.arange(batch, device=input_ids.device), choice]
    if empty_ids is None:
        return ids
    return torch.where((roll < dropout)[:, None], empty_ids, ids)


def cached_dataset(path, build) -> dict:
    """The dataset saved at `path`, else `build()`, saved there: rendering is done once per run
    folder, and a resumed run trains on the same data."""
    from pathlib import Path

    path = Path(path)
    if path.exists():
        return torch.load(path, weights_only=False)
    data = build()
    torch.save(data, path)
    return data


class Checkpointer:
    """Keeps `latest.pt` (model, optimiser, step, rng state) so training resumes where it stopped."""

    def __init__(self, folder):
        from pathlib import Path
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "latest.pt"

    def load(self):
        if self.path.exists():
            return torch.load(self.path, map_location="cpu", weights_only=False)
        return None

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.path)

    def resume(self, model, optimizer) -> int:
        """Model, optimiser and torch's random state as last saved; the step to go on from
        (0 when there is nothing to resume)."""
        state = self.load()
        if not state:
            return 0
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        return state["step"]

    def save_training(self, model, optimizer, step: int) -> None:
        self.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                   "step": step, "torch_rng": torch.get_rng_state()})


def apply_gradients(model, optimizer, loss, max_norm: float = 1.0) -> None:
    """One optimiser step on `loss`, gradients clipped to `max_norm`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()


def loss_record(step: int, started: float, losses: dict) -> dict:
    """A log line: the step, seconds since `started` and each loss term."""
    import time

    return {"step": step, "seconds": round(time.time() - started, 1),
            **{k: round(float(v), 4) for k, v in losses.items()}}


def warmup_cosine(step: int, warmup: int, progress: float) -> float:
    """The learning rate's share at `step`: linear warm-up, then a cosine to zero over
    `progress` (0..1)."""
    return min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * progress))


def schedule_learning_rate(optimizer, lr: float, warmup: int, budget: "TimeBudget",
                           step: int) -> None:
    """Each parameter group's rate at `step`: `lr` times `warmup_cosine`'s share, times the
    group's own "rate" where it has one (a pretrained part that learns slower)."""
    scale = warmup_cosine(step, warmup, budget.progress(step))
    for group in optimizer.param_groups:
        group["lr"] = lr * scale * group.get("rate", 1.0)


def export_and_measure(model, processor, folder, measure) -> dict:
    """Export the model (`export_transformers`) and return `measure(folder)`, the export's
    figures; the model goes back to training mode."""
    model.eval()
    export_transformers(model, processor, folder)
    figures = measure(folder)
    model.train()
    return figures


def after_step(step: int, budget: "TimeBudget", losses: dict, *, log, every: int, measure,
               checkpoints: "Checkpointer", model, optimizer) -> None:
    """What follows optimiser step `step`: a log line every 25 steps, with `measure()`'s
    figures every `every` steps and at the end, and a checkpoint every 250 steps and at the
    end."""
    import json

    done = budget.finished(step)
    record = loss_record(step, budget.start, losses)
    measured = step % every == 0 or done
    if measured:
        record.update(measure())
    if step % 25 == 0 or measured:
        log.write(json.dumps(record) + "\n")
        log.flush()
    if step % 250 == 0 or done:
        checkpoints.save_training(model, optimizer, step)


def export_transformers(model, processor, folder) -> None:
    """A transformers model folder with fp16 safetensors (the model itself stays float32, to
    go on training) and its processor's files."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    half = {k: v.detach().cpu().half().contiguous() for k, v in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=half)
    processor.save_pretrained(folder)


def add_run_arguments(parser: argparse.ArgumentParser, *, steps: int, batch: int, lr: float,
                      warmup: int, dataset: int, out: str) -> None:
    """The options every dataset-rendering training script has, with that script's defaults."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--dataset", type=int, default=dataset, help="scenes rendered once")
    parser.add_argument("--minutes", type=float, default=0.0,
                        help="wall-time budget; the schedule ends on time (0: steps only)")
    parser.add_argument("--deadline", type=float, default=None, metavar="UNIX_SECONDS",
                        help="clock time by which training ends, however long the dataset took "
                             "to make (a borrowed machine's end); the schedule ends on time")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--workers", type=int, default=1, help="processes that render the dataset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=out)


def start_run(args: argparse.Namespace) -> torch.device:
    """Threads and seed from the options, then the device to train on."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return pick_device(args.device)


def pick_device(name: str) -> torch.device:
    """`auto` is the GPU when there is one; training scripts then move models and data there."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        # TF32 matmuls: ample precision for these small models, several times the fp32 speed.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


def parallel_chunks(make_chunk, seed: int, n: int, workers: int, chunk: int = 500) -> list:
    """Run `make_chunk(seed_i, count)` over chunks that together give `n` items, each chunk from
    its own seed (so the result does not depend on `workers`), in a pool of `workers` processes.
    Rendering is pure Python and per-item, so it is what a GPU run waits on. Chunks must hold
    numpy arrays, not torch tensors: torch passes tensors between processes through shared
    memory handles, which a fork pool's result queue can block on."""
    jobs = [(seed * 1_000_003 + i, min(chunk, n - start)) for i, start in enumerate(range(0, n, chunk))]
    if workers <= 1:
        return [make_chunk(*job) for job in jobs]
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.starmap(make_chunk, jobs)


def uint8_to_tensor(images: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 uint8 -> N x 3 x H x W float in [-1, 1] (what `image_tensor` gives per image)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def time_limit(seconds: float, deadline: float | None, now: float, spent: float = 0.0) -> float:
    """A run's wall-time limit in seconds (0: none): `seconds`, or `spent` plus the time left
    until the clock time `deadline` when that ends sooner."""
    if deadline is None:
        return seconds
    left = spent + max(deadline - now, 1e-3)
    return min(seconds, left) if seconds > 0 else left


class TimeBudget:
    """Training progress as the larger of steps done and wall time spent, so a run given
    `minutes` ends its learning-rate schedule on time instead of being cut off mid-schedule."""

    def __init__(self, steps: int, minutes: float = 0.0, deadline: float | None = None):
        import time
        self.steps, self.start = steps, time.time()
        self.seconds = time_limit(minutes * 60, deadline, self.start)

    def progress(self, step: int) -> float:
        import time
        done = step / self.steps
        if self.seconds > 0:
            done = max(done, (time.time() - self.start) / self.seconds)
        return min(done, 1.0)

    def finished(self, step: int) -> bool:
        return self.progress(step) >= 1.0
