"""Train the shapes world's CLIP (open_clip format) contrastively on scenes and their phrasings.

    python -m training.clip --steps 3000 --out checkpoints/clip

The model folder it trains in is open_clip's hub layout (`open_clip_config.json`,
`open_clip_model.safetensors`, tokenizer files), so the checkpoint it exports loads with
`open_clip.create_model_and_transforms("local-dir:PATH")` like any hub model.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from training.data import (Checkpointer, TimeBudget, add_run_arguments, cached_dataset,
                           parallel_chunks, pick_prompts, schedule_learning_rate,
                           start_run)
from training.partial_captions import (fits, multi_positive_loss, partial_texts, pick_partial,
                                       scene_stats)
from training.tokenizer import write_tokenizer, world_words
from world.captions import caption
from world.phrasings import random_phrasing
from world.render import render
from world.sample import sample_group_scene, sample_scene
from world.scene import COLORS, SHAPES

CONTEXT_LENGTH = 48
WIDTH = 128


def model_config(vocab_size: int) -> dict:
    return {
        "model_cfg": {
            "embed_dim": WIDTH,
            "vision_cfg": {"image_size": 64, "patch_size": 8, "width": WIDTH, "layers": 4,
                           "head_width": 32, "mlp_ratio": 4.0},
            "text_cfg": {"context_length": CONTEXT_LENGTH, "vocab_size": vocab_size, "width": WIDTH,
                         "heads": 4, "layers": 4, "mlp_ratio": 4.0,
                         # A small vocabulary in CLIP's own file format, read by transformers.
                         "hf_tokenizer_name": "atelier/shapes-clip"},
        },
        "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                           "interpolation": "bicubic", "resize_mode": "shortest"},
    }


def prepare_folder(folder: Path, init: Path | None = None) -> None:
    """Config and tokenizer files (the `init` model's, when starting from one), written once;
    weights come from training."""
    folder.mkdir(parents=True, exist_ok=True)
    if init is not None and not (folder / "open_clip_config.json").exists():
        for item in Path(init).iterdir():
            if item.is_file() and not item.name.endswith(".safetensors"):
                shutil.copy(item, folder / item.name)
    if not (folder / "open_clip_config.json").exists():
        vocab_size = write_tokenizer(folder, world_words(), CONTEXT_LENGTH)
        config = json.dumps(model_config(vocab_size), indent=2)
        (folder / "open_clip_config.json").write_text(config)


# Token ids kept per training scene: its canonical caption and this many free phrasings; a
# step picks the caption or a phrasing half and half, so the index and SD conditioning see both.
PHRASINGS_PER_SCENE = 3


# A family: one shape and colour once, twice, three and four times, in consecutive scenes.
# Families in one batch are each other's hard negatives, the only way a caption's count is
# ever wrong; without the scene that holds one, "two red squares" never has to lose to it.
FAMILY_COUNTS = (1, 2, 3, 4)


def sample_scenes(rng: np.random.Generator, count: int, group_share: float
                  ) -> tuple[list, np.ndarray]:
    """`count` scenes, about a `group_share` of them in count families, and a flag on the
    first scene of each whole family."""
    scenes, starts = [], []
    while len(scenes) < count:
        if rng.random() < group_share and len(scenes) + len(FAMILY_COUNTS) <= count:
            shape, color = str(rng.choice(SHAPES)), str(rng.choice(list(COLORS)))
            starts.append(len(scenes))
            scenes += [sample_group_scene(rng, shape, color, n) for n in FAMILY_COUNTS]
        else:
            scenes.append(sample_scene(rng))
    flags = np.zeros(count, dtype=bool)
    flags[starts] = True
    return scenes, flags


def scene_chunk(folder: str, group_share: float, seed: int, count: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`count` scenes (see `sample_scenes`) as preprocessed uint8 images (exactly what
    `preprocess` gives, before its normalisation), the token ids of each one's caption and
    phrasings, the family flags, and what each holds (for partial captions). Runs in a
    worker."""
    import open_clip

    rng = np.random.default_rng(seed)
    _, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    scenes, family_starts = sample_scenes(rng, count, group_share)
    images = torch.stack([preprocess(render(s)) for s in scenes])
    # Normalisation is (x - 0.5) / 0.5 of x = pixel / 255: undone exactly to store bytes.
    pixels = ((images * 0.5 + 0.5) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    texts = []
    for s in scenes:
        texts += [caption(s)] + [random_phrasing(s, rng) for _ in range(PHRASINGS_PER_SCENE)]
    return (pixels, tokenizer(texts).view(count, 1 + PHRASINGS_PER_SCENE, -1).numpy(),
            family_starts, np.stack([scene_stats(s) for s in scenes]))


def build_dataset(folder: Path, n: int, seed: int, workers: int, group_share: float = 0.0) -> dict:
    chunks = parallel_chunks(partial(scene_chunk, str(folder), group_share), seed, n, workers)
    return {"pixels": torch.from_numpy(np.concatenate([c[0] for c in chunks])),
            "input_ids": torch.from_numpy(np.concatenate([c[1] for c in chunks])),
            "family_starts": torch.from_numpy(np.concatenate([c[2] for c in chunks])),
            "scene_stats": torch.from_numpy(np.concatenate([c[3] for c in chunks]))}


def batch_indices(batch: int, size: int, family_starts: torch.Tensor | None,
                  family_share: float) -> torch.Tensor:
    """Random dataset rows, with about `family_share` of the batch as whole count families."""
    families = 0 if family_starts is None else min(len(family_starts),
                                                   int(batch * family_share) // len(FAMILY_COUNTS))
    rows = []
    if families:
        starts = family_starts[torch.randperm(len(family_starts))[:families]]
        rows = [starts + offset for offset in range(len(FAMILY_COUNTS))]
    rows.append(torch.randint(0, size, (batch - families * len(FAMILY_COUNTS),)))
    return torch.cat(rows)


def main(argv=None) -> None:
    import open_clip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, steps=3000, batch=192, lr=1e-3, warmup=200, dataset=100_000,
                      out="checkpoints/clip")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--group-share", type=float, default=0.25,
                        help="share of scenes in families that repeat one shape and colour "
                             "two, three and four times (counts)")
    parser.add_argument("--family-share", type=float, default=0.25,
                        help="share of each batch made of whole families, each other's hard "
                             "negatives for counts")
    parser.add_argument("--partial-share", type=float, default=0.0,
                        help="share of each batch whose text names only part of its scene "
                             "(\"two red squares\"), trained against every image it fits")
    parser.add_argument("--init", type=Path,
                        help="open_clip folder to start from: its tokenizer and weights, a fresh "
                             "optimiser (ignored when resuming)")
    parser.add_argument("--lock-text", action="store_true",
                        help="train the image tower alone (the reverse of LiT): text embeddings "
                             "stay exactly as they were, so models conditioned on this text "
                             "tower (shapes-sd, shapes-ip2p) keep their meaning")
    args = parser.parse_args(argv)
    device = start_run(args)

    out = Path(args.out)
    folder = out / "model"
    prepare_folder(folder, args.init)
    data = cached_dataset(out / "dataset.pt", lambda: build_dataset(
        folder, args.dataset, args.seed + 1, args.workers, args.group_share))
    pixels, input_ids = data["pixels"].to(device), data["input_ids"].to(device)
    family_starts = data.get("family_starts")
    if family_starts is not None:
        family_starts = torch.nonzero(family_starts).flatten()
    stats = data.get("scene_stats")
    if args.partial_share and stats is None:
        raise SystemExit(f"{out / 'dataset.pt'} predates partial captions: delete it to rebuild")
    model, preprocess, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    model.to(device)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    partial_ids = tokenizer(partial_texts()).to(device)
    if args.lock_text:
        model.lock_text_tower()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trained if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in trained if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    checkpoints = Checkpointer(out)
    step = checkpoints.resume(model, optimizer)
    if step == 0 and args.init is not None:
        from safetensors.torch import load_file

        weights = load_file(str(Path(args.init) / "open_clip_model.safetensors"))
        model.load_state_dict({k: v.float() for k, v in weights.items()})
    budget = TimeBudget(args.steps, args.minutes, args.deadline)
    log = open(out / "log.jsonl", "a")
    model.train()
    while not budget.finished(step):
        index = batch_indices(args.batch, len(pixels), family_starts,
                              args.family_share).to(device)
        images = pixels[index].permute(0, 3, 1, 2).float() / 127.5 - 1.0
        texts = pick_prompts(input_ids[index])
        positives = torch.eye(args.batch, dtype=torch.bool, device=device)
        if args.partial_share:
            rows = torch.rand(args.batch) < args.partial_share
            batch_stats = stats[index.cpu()]
            picks = pick_partial(batch_stats[rows])
            on_device = rows.to(device)
            texts[on_device] = partial_ids[picks.to(device)]
            positives[on_device] = fits(picks, batch_stats).to(device)
        schedule_learning_rate(optimizer, args.lr, args.warmup, budget, step)
        image_features, text_features, logit_scale = model(images, texts)
        # Texts x images; with whole-scene captions only, this is CLIP's cross-entropy.
        logits = logit_scale * text_features @ image_features.T
        loss = multi_positive_loss(logits, positives)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        step += 1
        done = budget.finished(step)
        record = {"step": step, "loss": round(loss.item(), 4),
                  "seconds": round(time.time() - budget.start, 1)}
        if step % args.eval_every == 0 or done:
            from training.evaluate import clip_figures
            model.eval()
            record.update(clip_figures(model, preprocess, tokenizer))
            model.train()
        if step % 25 == 0 or len(record) > 3:
            log.write(json.dumps(record) + "\n")
            log.flush()
        if step % 500 == 0 or done:
            checkpoints.save_training(model, optimizer, step)
    export_clip(model, folder, out / "export")


def export_clip(model, config_folder: Path, export: Path) -> None:
    """Copy config and tokenizer files, then the weights as fp16 safetensors."""
    from safetensors.torch import save_file

    export.mkdir(parents=True, exist_ok=True)
    for item in config_folder.iterdir():
        if item.is_file() and not item.name.endswith(".safetensors"):
            shutil.copy(item, export / item.name)
    weights = {k: v.detach().cpu().half().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(export / "open_clip_model.safetensors"))


if __name__ == "__main__":
    main()
