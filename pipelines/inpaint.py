"""inpaint: redraw a region of the current image with the base text-to-image model.

No inpainting-trained UNet is needed: after every denoising step the latents outside the
region are replaced by the known image's latents, diffused to the same noise level
(conditional correction, as in RePaint and SDEdit's masked variant). With `resample` > 1 each
step is undone and redone (RePaint's resampling) so the region agrees with its surroundings.
The target is a mask image, boxes, or an object description that the grounding tool resolves.

With `objects`, the region is instead filled from its surroundings and each object is drawn
alone and placed in its box (pipelines/placement.py), then redrawn at `harmonise` strength
under the prompt: a model that cannot yet draw an object at a given place still edits right.
"""
from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image

from pipelines.base import (Adapter, StepInputs, Timings, check_same_size, fit_image,
                            with_note)
from pipelines.errors import InputError
from pipelines.grounding import dilate
from pipelines.placement import Job, draw_alone, filled, place
from pipelines.families import accepted, native_size, size_multiple, uses_own_loops
from pipelines.sampling import (alpha_bar, boxes_mask, ddim, decode_latents, encode_image,
                                encode_text, keep_outside, latent_mask, next_timestep, noise_like,
                                noised, predict, timesteps_from)
from pipelines.spec import IMAGE_ID_PATTERN, OPERATIONS, InpaintArgs

# Detector masks stop half-way through an object's antialiased edge; growing them by this
# fraction of the side (3 px at 128) takes the whole edge along.
GROUNDED_DILATION = 3 / 128


class Inpaint(Adapter):
    spec = OPERATIONS["inpaint"]

    def apply(self, args: InpaintArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs (an image of another size is fitted to the model) and find the region
        pipe = self.models.base()
        image, note = fit_image(inputs.image, "image", size_multiple(pipe))
        with timings.phase("ground"):
            mask = self.target_mask(args.target, image, inputs)
        if not mask.any():
            raise InputError("target", "covers no pixels of the image; give a larger region")
        images, params = self.repainted(pipe, image, mask, args, generator, timings)
        return images, with_note(params, note)

    def repainted(self, pipe, image: Image.Image, mask: np.ndarray, args: InpaintArgs,
                  generator: torch.Generator, timings: Timings):
        if args.objects is not None:
            return self.place_objects(pipe, image, mask, args, generator, timings)
        checkpoint = self.models.config.inpaint is not None
        if checkpoint or not uses_own_loops(pipe):
            result, steps = family_inpaint(self.models, image, mask, args.prompt, args, 1.0,
                                           generator, timings)
            return [result], {"pipeline": "inpainting checkpoint" if checkpoint
                              else "family inpainting", "denoising_steps": steps,
                              "mask_fraction": round(float(mask.mean()), 4)}

        # 2. Prepare
        scheduler = ddim(pipe, args.steps)
        text = encode_text(pipe, [args.prompt], args.negative_prompt, args.guidance)
        known = encode_image(pipe, image)
        region = latent_mask(mask, pipe.vae_scale_factor, known)

        # 3. Denoise with the known latents put back at every step
        with timings.phase("denoise"):
            start = noise_like(known, generator) * scheduler.init_noise_sigma
            latents = repaint(pipe, scheduler, scheduler.timesteps, start, text, args.guidance,
                              known, region, generator, resample=args.resample)
            generated = decode_latents(pipe, latents)[0]

        # 4. Return, with the pixels outside the mask exactly as they were
        result = keep_outside(generated, image, mask)
        return [result], {"sampler": "ddim", "mask_fraction": round(float(mask.mean()), 4)}

    def place_objects(self, pipe, image: Image.Image, mask: np.ndarray, args: InpaintArgs,
                      generator: torch.Generator, timings: Timings):
        """The region filled from around it, each object drawn alone and pasted in its box."""
        phrases = [o.phrase for o in args.objects]
        (drawn,) = draw_alone(self.models, [Job(phrases, "", args.negative_prompt, generator)],
                              args.steps, args.guidance, native_size(pipe), args.redraws, timings)
        # Drawn on another background than the image's, a cut-out leaves its rim behind.
        composed = place(filled(image, mask), [o.box for o in args.objects], drawn, margin=0)
        params = {"mechanism": "per_box_composition", "mask_fraction": round(float(mask.mean()), 4),
                  **drawn.params(phrases)}
        if int(args.steps * args.harmonise) < 1:
            return [keep_outside(composed, image, mask)], {**params, "harmonised": False}
        result, steps = harmonised(self.models, composed, mask, args.prompt, args,
                                   args.harmonise, generator, timings)
        return [keep_outside(result, image, mask)], {**params, "harmonised": True,
                                                     "sampler": "ddim", "denoising_steps": steps}

    def target_mask(self, target, image: Image.Image, inputs: StepInputs) -> np.ndarray:
        width, height = image.size
        if isinstance(target, list):
            return boxes_mask(target, width, height)
        if re.fullmatch(IMAGE_ID_PATTERN, target):
            mask = inputs.mask if inputs.mask is not None else inputs.references.get(target)
            if mask is None:
                raise InputError("target", f"mask image {target} was not supplied with the step; "
                                           "supply it, or give boxes or an object description")
            if inputs.image is not None and mask.size == inputs.image.size != image.size:
                mask = mask.resize(image.size, Image.Resampling.NEAREST)  # fitted with the image
            check_same_size(image, mask, "target")
            return np.asarray(mask.convert("L")) > 127
        try:
            masks = self.models.grounder.locate(image, target)
        except ValueError as error:
            raise InputError("target", f"{target!r}: {error}") from None
        grow = max(1, round(GROUNDED_DILATION * width))
        return dilate(np.logical_or.reduce(masks), grow)


def repaint(pipe, scheduler, timesteps, latents: torch.Tensor, text, guidance: float,
            known: torch.Tensor, region: torch.Tensor, generator: torch.Generator,
            resample: int = 1) -> torch.Tensor:
    """Denoise `latents` over `timesteps` (DDIM), keeping `known` outside `region`
    (1 = generate, 0 = keep)."""
    for i, t in enumerate(timesteps):
        t_next = next_timestep(timesteps, i)
        rounds = resample if t_next is not None else 1
        for round_ in range(rounds):
            output = predict(pipe, scheduler, latents, t, text, guidance)
            stepped = scheduler.step(output, t, latents, return_dict=False)[0]
            known_next = noised(scheduler, known, noise_like(known, generator), t_next)
            stepped = region * stepped + (1 - region) * known_next
            if round_ + 1 < rounds:
                # Back to t with fresh noise: x_t = sqrt(a_t / a_next) x_next + sqrt(1 - ...) eps
                ratio = (alpha_bar(scheduler, t) / alpha_bar(scheduler, t_next)).to(stepped)
                fresh = noise_like(stepped, generator)
                latents = ratio.sqrt() * stepped + (1 - ratio).sqrt() * fresh
            else:
                latents = stepped
    return latents


def harmonised(models, image: Image.Image, region_pixels: np.ndarray, prompt: str, args,
               strength: float, generator: torch.Generator, timings: Timings):
    """SDEdit inside `region_pixels` (H x W bool) at `strength`, known latents elsewhere, under
    `prompt`; pixels outside the region exactly as in `image`. Returns (image, steps run)."""
    pipe = models.base()
    if not uses_own_loops(pipe):
        return family_inpaint(models, image, region_pixels, prompt, args, strength, generator,
                              timings)
    scheduler = ddim(pipe, args.steps)
    text = encode_text(pipe, [prompt], args.negative_prompt, args.guidance)
    known = encode_image(pipe, image)
    region = latent_mask(region_pixels, pipe.vae_scale_factor, known)
    timesteps = timesteps_from(scheduler, args.steps, strength)
    with timings.phase("denoise"):
        start = noised(scheduler, known, noise_like(known, generator), timesteps[0])
        latents = repaint(pipe, scheduler, timesteps, start, text, args.guidance, known, region,
                          generator)
        generated = decode_latents(pipe, latents)[0]
    return keep_outside(generated, image, region_pixels), len(timesteps)


def family_inpaint(models, image: Image.Image, region_pixels: np.ndarray, prompt: str, args,
                   strength: float, generator: torch.Generator, timings: Timings):
    """Inpainting through the set's inpainting checkpoint, else the family's own diffusers
    pipeline (SDXL, SD3, FLUX) on the base model's components, which blends the known latents
    back outside the mask at every step as the SD loop above does. Returns (image, steps run),
    pixels outside the region kept."""
    pipe = models.inpainting()
    mask = Image.fromarray(region_pixels.astype(np.uint8) * 255)
    with timings.phase("denoise"):
        generated = pipe(**accepted(pipe, prompt=prompt, image=image, mask_image=mask,
                                    strength=strength, num_inference_steps=args.steps,
                                    guidance_scale=args.guidance, width=image.width,
                                    height=image.height, generator=generator,
                                    negative_prompt=args.negative_prompt or None)).images[0]
    return keep_outside(generated, image, region_pixels), max(1, int(args.steps * strength))
