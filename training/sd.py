"""Train the shapes world's text-to-image UNet and assemble a Stable-Diffusion-format folder.

    python -m training.sd --vae checkpoints/vae/export --clip checkpoints/clip/export \
        --steps 8000 --out checkpoints/sd

The text encoder is the shapes CLIP's text tower (frozen), converted to a transformers
CLIPTextModel; the VAE is trained separately (training/vae.py). The recipe: v-prediction
with zero terminal SNR (mostly flat, bright images otherwise drift to gray), min-SNR loss
weights, caption dropout for classifier-free guidance, and EMA weights for sampling.
Each export is judged on `--eval-n` validation prompts of one object and of two in a relation,
logged to OUT/log.jsonl beside the loss. Resumable from OUT/latest.pt.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel

from training.data import (Checkpointer, TimeBudget, add_run_arguments, cached_dataset,
                           parallel_chunks, pick_prompts, start_run, uint8_to_tensor)
from world.captions import caption
from world.render import render
from world.sample import sample_scene

UNET_CONFIG = dict(
    sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
    block_out_channels=(64, 128, 128),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=128, attention_head_dim=8, norm_num_groups=32,
)
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
    prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
    steps_offset=1,
)
# Mostly one or two objects: those are the prompts people start from and the bench judges.
OBJECT_COUNT_WEIGHTS = (0.4, 0.35, 0.15, 0.1)
# Token ids kept per training scene: its canonical caption and this many free phrasings.
PHRASINGS_PER_SCENE = 3


def load_text_encoder(folder: Path):
    """The text encoder to train on, its tokenizer and the tokenizer's folder. `folder` is an
    open_clip shapes-clip (its text tower is converted to transformers' CLIPTextModel) or a
    Stable Diffusion folder (its text_encoder/ and tokenizer/ as they are, so a shipped model
    is continued on the exact text encoder it ships with)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    if (folder / "text_encoder").is_dir():
        tokenizer_folder = folder / "tokenizer"
        return (CLIPTextModel.from_pretrained(folder / "text_encoder").eval(),
                CLIPTokenizer.from_pretrained(tokenizer_folder), str(tokenizer_folder))

    import open_clip

    from training.convert import clip_text_model_from_open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    return clip_text_model_from_open_clip(model.eval(), tokenizer), tokenizer, str(folder)


def signal_to_noise(noise_scheduler) -> torch.Tensor:
    alphas_cumprod = noise_scheduler.alphas_cumprod
    return alphas_cumprod / (1 - alphas_cumprod).clamp(min=1e-8)


def sample_training_scene(rng: np.random.Generator):
    count = int(rng.choice(4, p=OBJECT_COUNT_WEIGHTS)) + 1
    return sample_scene(rng, n_objects=count)


@lru_cache(maxsize=2)
def cached_tokenizer(folder: str):
    from transformers import CLIPTokenizer
    return CLIPTokenizer.from_pretrained(folder)


def token_ids(tokenizer, texts: list[str]) -> torch.Tensor:
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def scene_chunk(tokenizer_folder: str, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` rendered scenes (uint8) and the token ids of each one's canonical caption
    followed by PHRASINGS_PER_SCENE free phrasings. Runs in a worker process."""
    from world.phrasings import random_phrasing

    rng = np.random.default_rng(seed)
    scenes = [sample_training_scene(rng) for _ in range(count)]
    images = np.stack([np.asarray(render(s)) for s in scenes])
    texts = [text for s in scenes
             for text in [caption(s)] + [random_phrasing(s, rng) for _ in range(PHRASINGS_PER_SCENE)]]
    ids = token_ids(cached_tokenizer(tokenizer_folder), texts)
    return images, ids.view(count, 1 + PHRASINGS_PER_SCENE, -1).numpy()


@torch.no_grad()
def encode_images(vae, images: np.ndarray, device, batch: int = 500) -> torch.Tensor:
    """uint8 images -> VAE latent modes (unscaled), in batches on `device`."""
    return torch.cat([vae.encode(uint8_to_tensor(images[i:i + batch]).to(device)).latent_dist.mode()
                      for i in range(0, len(images), batch)])


def build_dataset(vae, tokenizer_folder: str, n: int, seed: int, workers: int, device,
                  scaling_factor: float | None = None) -> dict:
    """Render, tokenize and encode `n` scenes once: the VAE and text encoder are frozen, so
    latents and token ids never change. Latents are scaled by `scaling_factor`, or when it is
    None by one measured on them."""
    chunks = parallel_chunks(partial(scene_chunk, tokenizer_folder), seed, n, workers)
    vae.to(device)  # after the workers: forked processes must not inherit a CUDA context
    latents = torch.cat([encode_images(vae, images, device) for images, _ in chunks])
    if scaling_factor is None:
        # Stable Diffusion's convention: latents scaled to unit variance before diffusion.
        scaling_factor = round(1.0 / latents.std().item(), 5)
    return {"latents": (latents * scaling_factor).cpu(), "input_ids": torch.from_numpy(np.concatenate([ids for _, ids in chunks])),
            "scaling_factor": scaling_factor}


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str]) -> torch.Tensor:
    ids = token_ids(tokenizer, prompts).to(text_encoder.device)
    return text_encoder(ids)[0]


def diffusion_loss(unet, noise_scheduler, snr, x0, context, min_snr_gamma: float,
                   image_latents: torch.Tensor | None = None) -> torch.Tensor:
    """v-prediction loss with min-SNR weights; `image_latents` are concatenated to the noisy
    input, as InstructPix2Pix's UNet takes them."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
    noisy = noise_scheduler.add_noise(x0, noise, t)
    if image_latents is not None:
        noisy = torch.cat([noisy, image_latents], dim=1)
    target = noise_scheduler.get_velocity(x0, noise, t)
    prediction = unet(noisy, t, encoder_hidden_states=context).sample
    weight = torch.minimum(snr[t], torch.full_like(snr[t], min_snr_gamma)) / (snr[t] + 1)
    return (weight * F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))).mean()


@torch.no_grad()
def update_ema(ema, model, step: int, max_decay: float) -> None:
    # Warm-up of the decay so early steps are not dominated by the random init.
    decay = min(max_decay, (1 + step) / (10 + step))
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1 - decay)


def lr_scale(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up, then cosine decay to a tenth over the run's progress (0..1)."""
    return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress)))


def apply_update(unet, ema, optimizer, loss, step: int, progress: float, args) -> None:
    """One optimiser step at the scheduled rate, with clipping and the EMA update."""
    for group in optimizer.param_groups:
        group["lr"] = args.lr * lr_scale(step, args.warmup, progress)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    optimizer.step()
    update_ema(ema, unet, step, args.ema)


def training_state(unet, ema, optimizer, step: int) -> dict:
    state = {"model": unet.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
             "step": step, "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_training_state(state: dict, unet, ema, optimizer) -> int:
    """Load what `training_state` saved; returns the step to continue from."""
    unet.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"]


def add_unet_arguments(parser: argparse.ArgumentParser, *, steps: int, lr: float, warmup: int,
                       dataset: int, out: str) -> None:
    """Options every UNet training run shares, beyond those of every training script."""
    add_run_arguments(parser, steps=steps, batch=32, lr=lr, warmup=warmup, dataset=dataset,
                      out=out)
    parser.add_argument("--export-every", type=int, default=1000)
    parser.add_argument("--min-snr-gamma", type=float, default=5.0)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--init", help="UNet folder to start from (a fresh optimiser; ignored when resuming)")
    parser.add_argument("--eval-n", type=int, default=40,
                        help="validation cases judged at each export and logged (0: none); drawn "
                             "from validation seeds, apart from the held-out ones the bench reports")


def train_loop(unet, out: Path, args, batch_loss, export, validate=None) -> None:
    """Shared loop: `batch_loss()` gives one batch's loss; `export(ema)` writes a loadable
    folder. Checkpoints every 250 steps, exports every `args.export_every`, and then logs
    `validate(folder, n)`, the task's own figures for that folder."""
    checkpoints = Checkpointer(out)
    ema = copy.deepcopy(unet).requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    step = 0
    state = checkpoints.load()
    if state:
        step = restore_training_state(state, unet, ema, optimizer)
    budget = TimeBudget(args.steps, args.minutes, args.deadline)
    log = open(out / "log.jsonl", "a")
    while not budget.finished(step):
        loss = batch_loss()
        apply_update(unet, ema, optimizer, loss, step, budget.progress(step), args)
        step += 1
        done = budget.finished(step)
        if step % 50 == 0 or done:
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 5),
                                  "seconds": round(time.time() - budget.start, 1)}) + "\n")
            log.flush()
        if step % 250 == 0 or done:
            checkpoints.save(training_state(unet, ema, optimizer, step))
        # A loadable folder now and then, so it can be judged while training goes on.
        if step % args.export_every == 0 or done:
            export(ema)
            if validate is not None and args.eval_n > 0:
                record = {"step": step, "validation": validate(out / "export", args.eval_n)}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(json.dumps(record), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", required=True, help="AutoencoderKL folder")
    parser.add_argument("--clip", required=True, help="open_clip shapes-clip folder, or a Stable "
                        "Diffusion folder whose text encoder to keep (to continue a shipped model)")
    add_unet_arguments(parser, steps=8000, lr=1e-3, warmup=200, dataset=40000,
                       out="checkpoints/sd")
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    args = parser.parse_args(argv)
    device = start_run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    text_encoder, tokenizer, tokenizer_folder = load_text_encoder(Path(args.clip))
    # A UNet continued from --init learnt latents at its VAE's scale, so that scale stays.
    data = cached_dataset(out / "dataset.pt", lambda: build_dataset(
        vae, tokenizer_folder, args.dataset, args.seed + 1, args.workers, device,
        vae.config.scaling_factor if args.init else None))
    vae.to("cpu").register_to_config(scaling_factor=data["scaling_factor"])
    latents, input_ids = data["latents"].to(device), data["input_ids"].to(device)
    text_encoder.to(device)
    empty_ids = token_ids(tokenizer, [""]).to(device)

    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    snr = signal_to_noise(noise_scheduler).to(device)
    unet = (UNet2DConditionModel.from_pretrained(args.init, torch_dtype=torch.float32) if args.init
            else UNet2DConditionModel(**UNET_CONFIG)).to(device)

    def batch_loss():
        index = torch.randint(0, len(latents), (args.batch,), device=device)
        with torch.no_grad():
            context = text_encoder(pick_prompts(input_ids[index], empty_ids, args.caption_dropout))[0]
        return diffusion_loss(unet, noise_scheduler, snr, latents[index], context, args.min_snr_gamma)

    def export(ema):
        assemble_pipeline(out / "export", vae, copy.deepcopy(text_encoder).cpu(), tokenizer,
                          copy.deepcopy(ema).cpu())

    def validate(folder: Path, n: int) -> dict:
        from diffusers import StableDiffusionPipeline

        from training.evaluate import (VALIDATION_SEED, load_for_validation, prompt_accuracy,
                                       relation_prompts, single_object_prompts)

        pipe = load_for_validation(StableDiffusionPipeline, folder, device)
        return {"single_object": prompt_accuracy(pipe, single_object_prompts(n, VALIDATION_SEED + 1)),
                "relation": prompt_accuracy(pipe, relation_prompts(n, VALIDATION_SEED + 2))}

    train_loop(unet, out, args, batch_loss, export, validate)


def assemble_pipeline(folder: Path, vae, text_encoder, tokenizer, unet) -> None:
    """A Stable-Diffusion-format folder that StableDiffusionPipeline.from_pretrained loads."""
    from diffusers import StableDiffusionPipeline

    scheduler = DPMSolverMultistepScheduler(**SCHEDULER_CONFIG, algorithm_type="dpmsolver++",
                                            final_sigmas_type="zero")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    save_atomically(pipe, folder)


def save_atomically(pipe, folder: Path) -> None:
    """Write beside `folder`, then swap it in, so a reader never sees half a model."""
    import shutil

    folder = Path(folder)
    staging, old = folder.with_name(folder.name + ".new"), folder.with_name(folder.name + ".old")
    shutil.rmtree(staging, ignore_errors=True)
    pipe.save_pretrained(staging)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


if __name__ == "__main__":
    main()
