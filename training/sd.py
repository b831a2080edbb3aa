"""Train the shapes world's text-to-image UNet and assemble a Stable-Diffusion-format folder.

    python -m training.sd --vae checkpoints/vae/export --clip checkpoints/clip/export \
        --steps 8000 --out checkpoints/sd

The text encoder is the shapes CLIP's text tower (frozen), converted to a transformers
CLIPTextModel; the VAE is trained separately (training/vae.py). The recipe: v-prediction
with zero terminal SNR (mostly flat, bright images otherwise drift to gray), min-SNR loss
weights, caption dropout for classifier-free guidance, and EMA weights for sampling.
Resumable from OUT/latest.pt.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel

from training.data import Checkpointer, image_tensor
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


def load_text_encoder(clip_folder: Path):
    """The shapes CLIP's text tower as transformers' CLIPTextModel, and its tokenizer."""
    import open_clip
    from transformers import CLIPTokenizer

    from training.convert import clip_text_model_from_open_clip

    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{clip_folder}")
    tokenizer = CLIPTokenizer.from_pretrained(clip_folder)
    return clip_text_model_from_open_clip(model.eval(), tokenizer), tokenizer


def signal_to_noise(noise_scheduler) -> torch.Tensor:
    alphas_cumprod = noise_scheduler.alphas_cumprod
    return alphas_cumprod / (1 - alphas_cumprod).clamp(min=1e-8)


def sample_training_scene(rng: np.random.Generator):
    count = int(rng.choice(4, p=OBJECT_COUNT_WEIGHTS)) + 1
    return sample_scene(rng, n_objects=count)


@torch.no_grad()
def encode_dataset(vae, rng, n: int, batch: int = 100):
    """Render and encode `n` scenes once: the VAE is frozen, so latents never change."""
    scenes, latents = [], []
    for start in range(0, n, batch):
        chunk = [sample_training_scene(rng) for _ in range(min(batch, n - start))]
        images = torch.stack([image_tensor(render(s)) for s in chunk])
        latents.append(vae.encode(images).latent_dist.mode())
        scenes.extend(chunk)
    latents = torch.cat(latents)
    # Stable Diffusion's convention: latents scaled to unit variance before diffusion.
    vae.register_to_config(scaling_factor=round(1.0 / latents.std().item(), 5))
    return scenes, latents * vae.config.scaling_factor


def prompt_for(scene, rng, dropout: float) -> str:
    from world.phrasings import random_phrasing
    roll = rng.random()
    if roll < dropout:
        return ""
    return caption(scene) if roll < dropout + (1 - dropout) / 2 else random_phrasing(scene, rng)


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str]) -> torch.Tensor:
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    return text_encoder(ids)[0]


def diffusion_loss(unet, noise_scheduler, snr, x0, context, min_snr_gamma: float,
                   image_latents: torch.Tensor | None = None) -> torch.Tensor:
    """v-prediction loss with min-SNR weights; `image_latents` are concatenated to the noisy
    input, as InstructPix2Pix's UNet takes them."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (x0.shape[0],))
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


def lr_scale(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to a tenth."""
    return min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / total)))


def apply_update(unet, ema, optimizer, loss, step: int, args) -> None:
    """One optimiser step at the scheduled rate, with clipping and the EMA update."""
    for group in optimizer.param_groups:
        group["lr"] = args.lr * lr_scale(step, args.warmup, args.steps)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
    optimizer.step()
    update_ema(ema, unet, step, args.ema)


def training_state(unet, ema, optimizer, step: int, rng) -> dict:
    return {"model": unet.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
            "step": step, "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}


def restore_training_state(state: dict, unet, ema, optimizer, rng) -> int:
    """Load what `training_state` saved; returns the step to continue from."""
    unet.load_state_dict(state["model"])
    ema.load_state_dict(state["ema"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return state["step"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vae", required=True, help="AutoencoderKL folder")
    parser.add_argument("--clip", required=True, help="open_clip shapes-clip folder")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--dataset", type=int, default=40000)
    parser.add_argument("--caption-dropout", type=float, default=0.1)
    parser.add_argument("--min-snr-gamma", type=float, default=5.0)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="checkpoints/sd")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    checkpoints = Checkpointer(out)

    vae = AutoencoderKL.from_pretrained(args.vae).eval()
    text_encoder, tokenizer = load_text_encoder(Path(args.clip))
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    snr = signal_to_noise(noise_scheduler)

    dataset_path = out / "dataset.pt"
    if dataset_path.exists():
        data = torch.load(dataset_path, weights_only=False)
    else:
        scenes, latents = encode_dataset(vae, np.random.default_rng(args.seed + 1), args.dataset)
        data = {"scenes": [s.to_dict() for s in scenes], "latents": latents,
                "scaling_factor": vae.config.scaling_factor}
        torch.save(data, dataset_path)
    vae.register_to_config(scaling_factor=data["scaling_factor"])
    from world.scene import Scene
    scenes = [Scene.from_dict(d) for d in data["scenes"]]
    latents = data["latents"]

    unet = UNet2DConditionModel(**UNET_CONFIG)
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
        index = rng.integers(0, len(scenes), args.batch)
        x0 = latents[index]
        prompts = [prompt_for(scenes[i], rng, args.caption_dropout) for i in index]
        context = encode_prompts(text_encoder, tokenizer, prompts)
        loss = diffusion_loss(unet, noise_scheduler, snr, x0, context, args.min_snr_gamma)
        apply_update(unet, ema, optimizer, loss, step, args)
        step += 1
        if step % 50 == 0:
            log.write(json.dumps({"step": step, "loss": round(loss.item(), 5),
                                  "seconds": round(time.time() - start, 1)}) + "\n")
            log.flush()
        if step % 250 == 0 or step == args.steps:
            checkpoints.save(training_state(unet, ema, optimizer, step, rng))
        # A loadable folder now and then, so it can be judged while training goes on.
        if step % 1000 == 0 or step == args.steps:
            assemble_pipeline(out / "export", vae, text_encoder, tokenizer, ema)


def assemble_pipeline(folder: Path, vae, text_encoder, tokenizer, unet) -> None:
    """A Stable-Diffusion-format folder that StableDiffusionPipeline.from_pretrained loads."""
    from diffusers import StableDiffusionPipeline

    scheduler = DPMSolverMultistepScheduler(**SCHEDULER_CONFIG, algorithm_type="dpmsolver++",
                                            final_sigmas_type="zero")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)


if __name__ == "__main__":
    main()
