"""Pieces the hand-written sampling loops share (inpaint, layout, restore, invert_edit,
compose), built on the loaded components so they keep the model's own scheduler settings
(prediction type, zero-terminal-SNR rescaling, timestep spacing)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from pipelines.errors import ModelUnavailable

SCHEDULER_CLASSES = {
    "ddim": "DDIMScheduler",
    "dpm++2m": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
}


def make_scheduler(config, sampler: str):
    """A fresh `sampler` scheduler from the loaded scheduler's config: the training-time
    settings carry over, only the solver changes."""
    import diffusers

    overrides = {}
    if sampler == "dpm++2m":
        overrides = {"algorithm_type": "dpmsolver++", "solver_order": 2}
    elif sampler == "ddim" and "clip_sample" not in config:
        # DDIM clips x0 to [-1, 1] by default, which suits pixels, not latents.
        overrides = {"clip_sample": False}
    return getattr(diffusers, SCHEDULER_CLASSES[sampler]).from_config(config, **overrides)


def ddim(pipe, steps: int):
    """A DDIM scheduler set to `steps`: deterministic and single-step, so a loop may repeat a
    step (RePaint) or run it backwards (inversion)."""
    scheduler = make_scheduler(pipe.scheduler.config, "ddim")
    scheduler.set_timesteps(steps, device=pipe._execution_device)
    return scheduler


@dataclass
class Text:
    """Prompt states for a batch, and the negative prompt's when guidance is on."""

    cond: torch.Tensor
    uncond: torch.Tensor | None

    def states(self) -> torch.Tensor:
        return self.cond if self.uncond is None else torch.cat([self.uncond, self.cond])


def encode_text(pipe, prompts: list[str], negative_prompt: str, guidance: float) -> Text:
    # Classifier-free guidance only when it changes anything, as diffusers' pipelines do.
    guided = guidance > 1.0
    cond, uncond = pipe.encode_prompt(prompts, pipe._execution_device, 1, guided,
                                      [negative_prompt] * len(prompts))
    return Text(cond, uncond if guided else None)


def predict(pipe, scheduler, latents: torch.Tensor, t, text: Text, guidance: float) -> torch.Tensor:
    """The model output for `latents` at `t`, with classifier-free guidance, in the latents'
    dtype (which may be wider than the model's)."""
    model_input = latents if text.uncond is None else torch.cat([latents] * 2)
    model_input = scheduler.scale_model_input(model_input, t).to(pipe.unet.dtype)
    output = pipe.unet(model_input, t, encoder_hidden_states=text.states(),
                       return_dict=False)[0].to(latents.dtype)
    if text.uncond is None:
        return output
    uncond, cond = output.chunk(2)
    return uncond + guidance * (cond - uncond)


def encode_image(pipe, image: Image.Image) -> torch.Tensor:
    """Image -> scaled latents (the posterior mean: the known content, without sampling)."""
    pixels = pipe.image_processor.preprocess(image).to(pipe._execution_device, pipe.vae.dtype)
    latents = pipe.vae.encode(pixels).latent_dist.mode()
    return latents * pipe.vae.config.scaling_factor


def decode_latents(pipe, latents: torch.Tensor) -> list[Image.Image]:
    latents = (latents / pipe.vae.config.scaling_factor).to(pipe.vae.dtype)
    pixels = pipe.vae.decode(latents, return_dict=False)[0]
    return pipe.image_processor.postprocess(pixels, output_type="pil")


def initial_noise(pipe, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return randn_tensor(shape, generator=generator, device=pipe._execution_device,
                        dtype=pipe.unet.dtype)


def noise_like(latents: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return randn_tensor(latents.shape, generator=generator, device=latents.device,
                        dtype=latents.dtype)


def alpha_bar(scheduler, t) -> torch.Tensor:
    """Signal fraction at timestep `t`; None is the clean end of the schedule."""
    if t is None:
        return scheduler.final_alpha_cumprod
    return scheduler.alphas_cumprod[int(t)]


def noised(scheduler, x0: torch.Tensor, noise: torch.Tensor, t) -> torch.Tensor:
    """x0 diffused to timestep `t` (x0 itself at the clean end)."""
    if t is None:
        return x0
    return scheduler.add_noise(x0, noise, torch.as_tensor([int(t)], device=x0.device))


def split_prediction(scheduler, output: torch.Tensor, sample: torch.Tensor,
                     t) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, noise) estimates from a model output, whatever the model predicts."""
    a = alpha_bar(scheduler, t).to(sample.device, sample.dtype)
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return (sample - (1 - a).sqrt() * output) / a.sqrt(), output
    if kind == "v_prediction":
        clean = a.sqrt() * sample - (1 - a).sqrt() * output
        return clean, a.sqrt() * output + (1 - a).sqrt() * sample
    if kind == "sample":
        return output, (sample - a.sqrt() * output) / (1 - a).sqrt()
    raise ModelUnavailable(f"prediction type {kind!r} is not supported by this operation")


def timesteps_from(scheduler, steps: int, strength: float) -> torch.Tensor:
    """The last `strength` of the schedule, as diffusers' img2img takes it (SDEdit)."""
    start = steps - min(int(steps * strength), steps)
    return scheduler.timesteps[start * scheduler.order:]


def next_timestep(timesteps: torch.Tensor, i: int):
    return timesteps[i + 1] if i + 1 < len(timesteps) else None


def latent_mask(mask: np.ndarray, factor: int, like: torch.Tensor) -> torch.Tensor:
    """A pixel mask (H x W bool) at latent resolution: a latent cell counts when any of its
    pixels does, so the whole masked area is regenerated."""
    pixels = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.max_pool2d(pixels, factor).to(like.device, like.dtype)


def boxes_mask(boxes, width: int, height: int) -> np.ndarray:
    """Boxes in 0..1 image coordinates -> H x W bool mask of their union."""
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        # Round outward so a box never loses its edge pixels.
        mask[int(np.floor(y0 * height)):int(np.ceil(y1 * height)),
             int(np.floor(x0 * width)):int(np.ceil(x1 * width))] = True
    return mask


def keep_outside(generated: Image.Image, original: Image.Image, mask: np.ndarray) -> Image.Image:
    """`generated` inside the mask and `original` everywhere else: pixels outside the mask stay
    exactly as they were, despite the VAE's round trip."""
    return Image.composite(generated, original, Image.fromarray(mask.astype(np.uint8) * 255))
