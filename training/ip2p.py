"""Train the shapes world's InstructPix2Pix UNet on exact (before, instruction, after) triples.

    python -m training.ip2p --sd checkpoints/sd/export --steps 6000 --out checkpoints/ip2p

It starts from the text-to-image UNet (the InstructPix2Pix recipe: four extra input channels
for the before-image latents, zero-initialised) and shares that folder's VAE, text encoder,
tokenizer and scheduler. With `--clip FOLDER` the text encoder and tokenizer come from that
shapes CLIP instead (its text tower, as training/sd.py converts it), so an edit model can be
trained on a new text tower alongside the text-to-image model that will use it. Text and
image conditions are dropped independently so both guidance scales work. Each export's edit
success on `--eval-n` validation edits goes to OUT/log.jsonl beside the loss. Resumable from
OUT/latest.pt.
"""
from __future__ import annotations

import argparse
import copy
import math
from functools import partial
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

from training.data import cached_dataset, parallel_chunks, start_run
from training.sd import (SCHEDULER_CONFIG, add_unet_arguments, cached_tokenizer,
                         diffusion_loss, encode_images, encode_prompts, load_text_encoder,
                         sample_training_scene,
                         save_atomically, signal_to_noise, token_ids, train_loop)
from world.edits import EDIT_KINDS, sample_edit
from world.render import render


def widen_input(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """A copy of `unet` that takes 8 input channels; the 4 new ones start at zero, so it begins
    as the text-to-image model."""
    config = dict(unet.config)
    config["in_channels"] = 8
    wide = UNet2DConditionModel.from_config(config)
    state = unet.state_dict()
    weight = state["conv_in.weight"]
    state["conv_in.weight"] = torch.cat([weight, torch.zeros_like(weight)], dim=1)
    wide.load_state_dict(state)
    return wide


def parse_kind_weights(text: str) -> dict[str, float]:
    """"swap_colors=3,remove=2" -> a weight for every edit kind (1 where not named)."""
    weights = dict.fromkeys(EDIT_KINDS, 1.0)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, value = item.partition("=")
        if kind not in weights:
            raise argparse.ArgumentTypeError(
                f"unknown edit kind {kind!r} in --kind-weights; use some of {', '.join(EDIT_KINDS)}")
        try:
            weights[kind] = float(value)
            if not math.isfinite(weights[kind]):  # nan or inf would make no probabilities
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--kind-weights needs kind=number pairs, got {item!r}") from None
        if weights[kind] < 0:
            raise argparse.ArgumentTypeError(f"--kind-weights: {kind}'s weight must not be negative")
    if not any(weights.values()):
        raise argparse.ArgumentTypeError("--kind-weights: at least one kind needs a positive weight")
    return weights


def training_edit(rng: np.random.Generator, kind_weights: dict[str, float] | None = None):
    """A training scene, an edit that fits it, and the edited scene. With `kind_weights` the
    edit's kind is drawn first, by weight; without, kinds come as the world's edits fit its
    scenes (so kinds that need two objects, or an object to spare, come rarer)."""
    kind = None
    if kind_weights:
        # Drawn once, then scenes until one fits: so a kind that fits few scenes keeps its share.
        kinds = list(kind_weights)
        p = np.array([kind_weights[k] for k in kinds]) / sum(kind_weights.values())
        kind = [kinds[rng.choice(len(kinds), p=p)]]
    while True:
        scene = sample_training_scene(rng)
        try:
            return (scene, *sample_edit(scene, rng, kinds=kind))
        except ValueError:
            continue


def edit_chunk(tokenizer_folder: str, kind_weights: dict[str, float] | None, seed: int, count: int):
    """`count` random edits: before and after renders (uint8) and each instruction's token ids.
    Runs in a worker process."""
    rng = np.random.default_rng(seed)
    befores, afters, instructions = [], [], []
    for _ in range(count):
        scene, edit, after = training_edit(rng, kind_weights)
        befores.append(np.asarray(render(scene)))
        afters.append(np.asarray(render(after)))
        instructions.append(edit.instruction)
    ids = token_ids(cached_tokenizer(tokenizer_folder), instructions)
    return np.stack(befores), np.stack(afters), ids.numpy()


def build_dataset(vae, tokenizer_folder: str, n: int, seed: int, workers: int, device,
                  kind_weights: dict[str, float] | None = None) -> dict:
    """Before latents unscaled (as the pipeline encodes its image), after latents scaled."""
    chunks = parallel_chunks(partial(edit_chunk, tokenizer_folder, kind_weights), seed, n, workers)
    vae.to(device)  # after the workers: forked processes must not inherit a CUDA context
    before = torch.cat([encode_images(vae, b, device) for b, _, _ in chunks])
    after = torch.cat([encode_images(vae, a, device) for _, a, _ in chunks]) * vae.config.scaling_factor
    return {"before": before.cpu(), "after": after.cpu(), "input_ids": torch.from_numpy(np.concatenate([i for _, _, i in chunks]))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd", required=True, help="shapes-sd folder to start from and share")
    add_unet_arguments(parser, steps=6000, lr=5e-4, warmup=100, dataset=30000,
                       out="checkpoints/ip2p")
    parser.add_argument("--clip", help="open_clip shapes-clip folder whose text tower replaces the --sd one")
    parser.add_argument("--drop", type=float, default=0.05, help="chance of dropping each condition")
    parser.add_argument("--kind-weights", type=parse_kind_weights, default=None, metavar="KIND=W,...",
                        help="draw edit kinds by these weights (unnamed kinds 1), to train more "
                             "on the kinds that fail most; default: as the world's edits fit scenes")
    args = parser.parse_args(argv)
    device = start_run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sd = Path(args.sd)

    vae = AutoencoderKL.from_pretrained(sd / "vae").eval()
    text_encoder, tokenizer, tokenizer_folder = load_text_encoder(Path(args.clip) if args.clip else sd)
    data = cached_dataset(out / "dataset.pt", lambda: build_dataset(
        vae, tokenizer_folder, args.dataset, args.seed + 2, args.workers, device, args.kind_weights))
    before, after, input_ids = (data[k].to(device) for k in ("before", "after", "input_ids"))
    text_encoder.to(device)
    empty_context = encode_prompts(text_encoder, tokenizer, [""])
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    snr = signal_to_noise(noise_scheduler).to(device)
    unet = (UNet2DConditionModel.from_pretrained(args.init, torch_dtype=torch.float32) if args.init
            else widen_input(UNet2DConditionModel.from_pretrained(sd / "unet"))).to(device)

    def batch_loss():
        index = torch.randint(0, len(input_ids), (args.batch,), device=device)
        with torch.no_grad():
            context = text_encoder(input_ids[index])[0]
        image_latents = before[index]
        # Independent dropout of the two conditions, so both guidance scales are learned.
        roll = torch.rand(args.batch, 2, device=device)
        context = torch.where((roll[:, 0] < args.drop)[:, None, None], empty_context, context)
        image_latents = torch.where((roll[:, 1] < args.drop)[:, None, None, None], 0.0, image_latents)
        return diffusion_loss(unet, noise_scheduler, snr, after[index], context, args.min_snr_gamma,
                              image_latents=image_latents)

    def export(ema):
        assemble_pipeline(out / "export", sd, copy.deepcopy(ema).cpu(),
                          copy.deepcopy(text_encoder).cpu() if args.clip else None,
                          tokenizer if args.clip else None)

    def validate(folder: Path, n: int) -> dict:
        from diffusers import StableDiffusionInstructPix2PixPipeline

        from training.evaluate import VALIDATION_SEED, edit_accuracy, load_for_validation

        pipe = load_for_validation(StableDiffusionInstructPix2PixPipeline, folder, device)
        return {"edit_success": edit_accuracy(pipe, n=n, seed=VALIDATION_SEED + 3)}

    train_loop(unet, out, args, batch_loss, export, validate)


def assemble_pipeline(folder: Path, sd: Path, unet, text_encoder=None, tokenizer=None) -> None:
    """An InstructPix2Pix-format folder: the new UNet, the rest shared with shapes-sd (or the
    given text encoder and tokenizer)."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    base = StableDiffusionPipeline.from_pretrained(sd)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=base.vae, text_encoder=text_encoder or base.text_encoder,
        tokenizer=tokenizer or base.tokenizer, unet=unet, scheduler=base.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    save_atomically(pipe, folder)


if __name__ == "__main__":
    main()
