"""`atelier world ...`: sample, render and read back scenes of the shapes world."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.interfaces.commands.arguments import positive_int, seed_value
from agent.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("world", help="sample and detect scenes of the shapes world")
    commands = parser.add_subparsers(dest="world_command", metavar="COMMAND", required=True)

    sample = commands.add_parser(
        "sample", help="write N random scenes as PNGs plus scenes.jsonl with their captions"
    )
    sample.add_argument("--n", type=positive_int, required=True, help="number of scenes")
    sample.add_argument("--seed", type=seed_value, required=True, help="same seed, same files")
    sample.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="new or empty output folder")
    sample.set_defaults(func=sample_command)

    detect = commands.add_parser(
        "detect", help="print the scene read from each image, one JSON line each"
    )
    detect.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    detect.set_defaults(func=detect_command)


def sample_command(args: argparse.Namespace) -> int:
    import numpy as np

    from world.captions import caption
    from world.render import render
    from world.sample import sample_scene

    out: Path = args.out
    # Refusing a used folder keeps stale images from mixing with a new scenes.jsonl.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} is not an empty folder; choose a new folder or empty it")
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(args.seed)
    with open(out / "scenes.jsonl", "w", encoding="utf-8") as index:
        for i in range(args.n):
            scene = sample_scene(rng)
            file_name = f"{i:06d}.png"
            render(scene).save(out / file_name, format="PNG")
            record = {"file": file_name, "scene": scene.to_dict(), "caption": caption(scene)}
            index.write(json.dumps(record) + "\n")
    print(f"wrote {args.n} images and scenes.jsonl to {out}")
    return 0


def detect_command(args: argparse.Namespace) -> int:
    from agent.sessions.image_files import open_rgb
    from world.detect import detect

    for path in args.images:
        image = open_rgb(path)
        try:
            detection = detect(image)
        except ValueError as error:
            raise UsageError(f"{path}: {error}") from None
        print(json.dumps(detection.scene.to_dict()), flush=True)
    return 0
