"""Held-out figures of the shipped shapes-world models.

    python -m bench.models [--quick] [--only clip sd ip2p]

Prints one JSON object of figures (and writes it to bench/results/models.json). Every model
is loaded through its standard loader, exactly as a user's hub model would be.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from agent.config import models_dir
from bench.harness import update_results


def clip_figures(folder: Path, quick: bool) -> dict:
    import open_clip

    from training.evaluate import clip_figures as figures

    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    return figures(model.eval(), preprocess, tokenizer, n_pairs=1000, n_single=100 if quick else 300)


def sd_figures(folder: Path, quick: bool) -> dict:
    from diffusers import StableDiffusionPipeline

    from training.evaluate import (object_prompts, prompt_accuracy, relation_prompts,
                                   single_object_prompts, vae_round_trip_accuracy)

    pipe = StableDiffusionPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    n = 20 if quick else 100
    figures = {
        "vae_round_trip_exact": vae_round_trip_accuracy(pipe.vae, n=100 if quick else 500),
        "single_object_all_attributes": prompt_accuracy(pipe, single_object_prompts(n)),
        "single_object_without_place": prompt_accuracy(pipe, object_prompts(n)),
        "two_objects_relation": prompt_accuracy(pipe, relation_prompts(n)),
    }
    figures["seconds_per_image_20_steps_cfg"] = seconds_per_image(pipe)
    return figures


def seconds_per_image(pipe, repeats: int = 3) -> float:
    """One 128 x 128 image, 20 steps with classifier-free guidance, after a warm-up call."""
    run = lambda: pipe("a red circle", num_inference_steps=20, guidance_scale=5.0,  # noqa: E731
                       generator=torch.Generator().manual_seed(0), height=128, width=128)
    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return round((time.perf_counter() - start) / repeats, 3)


def ip2p_figures(folder: Path, quick: bool) -> dict:
    from diffusers import StableDiffusionInstructPix2PixPipeline

    from training.evaluate import edit_accuracy

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return edit_accuracy(pipe, n=40 if quick else 300)


MODELS = {"clip": ("shapes-clip", clip_figures), "sd": ("shapes-sd", sd_figures),
          "ip2p": ("shapes-ip2p", ip2p_figures)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples, for a rough look")
    parser.add_argument("--only", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--models", type=Path, default=None, help="folder holding the model folders")
    args = parser.parse_args(argv)
    root = args.models or models_dir()
    out = Path(__file__).parent / "results" / "models.json"
    # A model measured again replaces only its own entry; each entry says how it was measured.
    for key in args.only:
        name, measure = MODELS[key]
        folder = root / name
        if not folder.exists():
            print(f"{folder} is missing: train it with python -m training.{key}", flush=True)
            return 1
        entry = {name: {**measure(folder, args.quick),
                        "machine": f"{torch.get_num_threads()} CPU threads", "quick": args.quick}}
        print(json.dumps(entry), flush=True)
        update_results(out, entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
