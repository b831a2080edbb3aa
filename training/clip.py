"""Train the shapes world's CLIP (open_clip format) contrastively on scenes and their phrasings.

    python -m training.clip --steps 3000 --out checkpoints/clip

The model folder it trains in is open_clip's hub layout (`open_clip_config.json`,
`open_clip_model.safetensors`, tokenizer files), so the checkpoint it exports loads with
`open_clip.create_model_and_transforms("local-dir:PATH")` like any hub model.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.data import Checkpointer
from training.tokenizer import write_tokenizer, world_words
from world.captions import caption
from world.phrasings import random_phrasing
from world.render import render
from world.sample import sample_scene

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


def prepare_folder(folder: Path) -> None:
    """Config and tokenizer files, written once; weights come from training."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "open_clip_config.json").exists():
        vocab_size = write_tokenizer(folder, world_words(), CONTEXT_LENGTH)
        (folder / "open_clip_config.json").write_text(json.dumps(model_config(vocab_size), indent=2))


def training_text(scene, rng: np.random.Generator) -> str:
    # Half canonical, half free phrasings: the index and SD conditioning see both kinds.
    return caption(scene) if rng.random() < 0.5 else random_phrasing(scene, rng)


def main(argv=None) -> None:
    import open_clip

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=192)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="checkpoints/clip")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    out = Path(args.out)
    folder = out / "model"
    prepare_folder(folder)
    model, preprocess, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    rng = np.random.default_rng(args.seed)
    checkpoints = Checkpointer(out)
    step = 0
    state = checkpoints.load()
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, rng.bit_generator.state = state["step"], state["rng"]
    log = open(out / "log.jsonl", "a")
    start = time.time()
    model.train()
    while step < args.steps:
        scenes = [sample_scene(rng) for _ in range(args.batch)]
        images = torch.stack([preprocess(render(s)) for s in scenes])
        texts = tokenizer([training_text(s, rng) for s in scenes])
        scale = min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * scale
        image_features, text_features, logit_scale = model(images, texts)
        logits = logit_scale * image_features @ text_features.T
        labels = torch.arange(len(scenes))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        step += 1
        record = {"step": step, "loss": round(loss.item(), 4), "seconds": round(time.time() - start, 1)}
        if step % args.eval_every == 0 or step == args.steps:
            from training.evaluate import clip_figures
            model.eval()
            record.update(clip_figures(model, preprocess, tokenizer))
            model.train()
        if step % 25 == 0 or len(record) > 3:
            log.write(json.dumps(record) + "\n")
            log.flush()
        if step % 100 == 0 or step == args.steps:
            checkpoints.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "step": step, "rng": rng.bit_generator.state})
    export_clip(model, folder, out / "export")


def export_clip(model, config_folder: Path, export: Path) -> None:
    """Copy config and tokenizer files, then the weights as fp16 safetensors."""
    import shutil

    from safetensors.torch import save_file

    export.mkdir(parents=True, exist_ok=True)
    for item in config_folder.iterdir():
        if item.is_file() and not item.name.endswith(".safetensors"):
            shutil.copy(item, export / item.name)
    weights = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(export / "open_clip_model.safetensors"))


if __name__ == "__main__":
    main()
