"""Train the shapes world's InstructPix2Pix UNet on exact (before, instruction, after) triples.

    python -m training.ip2p --sd checkpoints/sd/export --steps 6000 --out checkpoints/ip2p

It starts from the text-to-image UNet (the InstructPix2Pix recipe: four extra input channels
for the before-image latents, zero-initialised) and shares that folder's VAE, text encoder,
tokenizer and scheduler. Text and image conditions are dropped independently so both
guidance scales work. Resumable from OUT/latest.pt.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from training.data import Checkpointer, image_tensor
from training.sd import (SCHEDULER_CONFIG, apply_update, diffusion_loss, encode_prompts,
                         restore_training_state, sample_training_scene, signal_to_noise,
                         training_state)
from world.edits import sample_edit
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


@torch.no_grad()
def encode_edits(vae, rng, n: int, batch: int = 100) -> dict:
    """`n` random edits: before/after latents (before unscaled mode, as the pipeline encodes
    it) and every edit's instruction."""
    befores, afters, instructions = [], [], []
    while len(instructions) < n:
        pairs = []
        while len(pairs) < min(batch, n - len(instructions)):
            scene = sample_training_scene(rng)
            try:
                edit, after = sample_edit(scene, rng)
            except ValueError:
                continue
            pairs.append((scene, after, edit.instruction))
        before = torch.stack([image_tensor(render(s)) for s, _, _ in pairs])
        after = torch.stack([image_tensor(render(a)) for _, a, _ in pairs])
        befores.append(vae.encode(before).latent_dist.mode())
        afters.append(vae.encode(after).latent_dist.mode() * vae.config.scaling_factor)
        instructions.extend(i for _, _, i in pairs)
    return {"before": torch.cat(befores), "after": torch.cat(afters), "instructions": instructions}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd", required=True, help="shapes-sd folder to start from and share")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--dataset", type=int, default=30000)
    parser.add_argument("--drop", type=float, default=0.05, help="chance of dropping each condition")
    parser.add_argument("--min-snr-gamma", type=float, default=5.0)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="checkpoints/ip2p")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    checkpoints = Checkpointer(out)
    sd = Path(args.sd)

    vae = AutoencoderKL.from_pretrained(sd / "vae").eval()
    text_encoder = CLIPTextModel.from_pretrained(sd / "text_encoder").eval()
    tokenizer = CLIPTokenizer.from_pretrained(sd / "tokenizer")
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    snr = signal_to_noise(noise_scheduler)

    dataset_path = out / "dataset.pt"
    if dataset_path.exists():
        data = torch.load(dataset_path, weights_only=False)
    else:
        data = encode_edits(vae, np.random.default_rng(args.seed + 2), args.dataset)
        torch.save(data, dataset_path)
    empty_context = encode_prompts(text_encoder, tokenizer, [""])

    unet = widen_input(UNet2DConditionModel.from_pretrained(sd / "unet"))
    ema = copy.deepcopy(unet).requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    step = 0
    state = checkpoints.load()
    if state:
        step = restore_training_state(state, unet, ema, optimizer, rng)
    log = open(out / "log.jsonl", "a")
    start = time.time()
    while step < args.steps:
        index = rng.integers(0, len(data["instructions"]), args.batch)
        context = encode_prompts(text_encoder, tokenizer, [data["instructions"][i] for i in index])
        image_latents = data["before"][index].clone()
        # Independent dropout of the two conditions (both at once 5% x 5% ... plus the rest).
        roll = torch.from_numpy(rng.random((args.batch, 2)))
        context[roll[:, 0] < args.drop] = empty_context
        image_latents[roll[:, 1] < args.drop] = 0.0
        loss = diffusion_loss(unet, noise_scheduler, snr, data["after"][index], context,
                              args.min_snr_gamma, image_latents=image_latents)
        apply_update(unet, ema, optimizer, loss, step, args)
        step += 1
        if step % 50 == 0:
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 5),
                                  "seconds": round(time.time() - start, 1)}) + "\n")
            log.flush()
        if step % 250 == 0 or step == args.steps:
            checkpoints.save(training_state(unet, ema, optimizer, step, rng))
        if step % 1000 == 0 or step == args.steps:
            assemble_pipeline(out / "export", sd, ema)


def assemble_pipeline(folder: Path, sd: Path, unet) -> None:
    """An InstructPix2Pix-format folder: the new UNet, the rest shared with shapes-sd."""
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    base = StableDiffusionPipeline.from_pretrained(sd)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet,
        scheduler=base.scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(folder)


if __name__ == "__main__":
    main()
