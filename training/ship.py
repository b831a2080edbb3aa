"""Install a trained export into `models/` in the shipped form.

    python -m training.ship checkpoints/sd/export models/shapes-sd
    python -m training.ship checkpoints/ip2p/export models/shapes-ip2p --share-with models/shapes-sd

UNet and VAE weights are stored fp16 (diffusers loads them back as fp32 for CPU runs); the
text encoder stays fp32, because transformers would load an fp16 CLIPTextModel as fp16 and
feed an fp32 UNet half-precision states. With `--share-with`, components whose weights are
identical to that folder's become relative symlinks, so both models share one copy.
"""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HALF_PRECISION = ("unet", "vae")
SHAREABLE = ("vae", "text_encoder", "tokenizer")


def same_weights(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    for name in files_a:
        if name.suffix == ".safetensors":
            x, y = load_file(a / name), load_file(b / name)
            if x.keys() != y.keys() or any(not torch.equal(x[k].float(), y[k].float()) for k in x):
                return False
        elif name.suffix == ".json" and "config" in name.name:
            continue  # configs record the writer's library version
        elif (a / name).read_bytes() != (b / name).read_bytes():
            return False
    return True


def ship(export: Path, target: Path, share_with: Path | None = None) -> None:
    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(export, staging, ignore=shutil.ignore_patterns("README.md"))
    for component in HALF_PRECISION:
        for file in (staging / component).glob("*.safetensors"):
            save_file({k: v.half().contiguous() if v.is_floating_point() else v
                       for k, v in load_file(file).items()}, str(file))
    if share_with is not None:
        for component in SHAREABLE:
            shared = share_with / component
            if shared.exists() and (staging / component).exists() and same_weights(staging / component, shared):
                shutil.rmtree(staging / component)
                os.symlink(os.path.relpath(shared, target), staging / component)
    card = target / "README.md"
    if card.exists():
        shutil.copy(card, staging / "README.md")
    old = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--share-with", type=Path, help="shipped folder whose identical parts to link")
    args = parser.parse_args(argv)
    ship(args.export, args.target, args.share_with)
    print(f"shipped {args.export} -> {args.target}")


if __name__ == "__main__":
    main()
