"""restore: repair a noisy, blurred or low-resolution current image.

SDEdit redraws the image from part-way down the noise schedule (`strength`), which replaces
noise and blur with what the model knows clean images look like. A data-consistency step
after every denoising step keeps the result true to the input: the coarse content of the
latents (what a `consistency`-cell low-pass filter keeps) is replaced by that of the input's
latents at the same noise level, so the model only supplies the fine detail (ILVR, Choi et
al. 2021, in latent space). Noise and blur barely touch that coarse content, so it is safe
to trust.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.base import Adapter, StepInputs, Timings, check_image, fit_image, with_note
from pipelines.errors import InputError
from pipelines.families import size_multiple, uses_own_loops
from pipelines.sampling import (ddim, decode_latents, encode_image, encode_text, next_timestep,
                                noise_like, noised, predict, timesteps_from)
from pipelines.spec import OPERATIONS, RestoreArgs


class Restore(Adapter):
    spec = OPERATIONS["restore"]

    def apply(self, args: RestoreArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs; a low-resolution image is enlarged only when asked to
        pipe = self.models.base()
        multiple = size_multiple(pipe)
        image = check_image(inputs.image, "image", 1)
        if args.upscale > 1:
            image = image.resize((image.width * args.upscale, image.height * args.upscale),
                                 Image.Resampling.BICUBIC)
        image, note = fit_image(image, "image", multiple)
        if int(args.steps * args.strength) < 1:
            raise InputError("strength", f"{args.strength} of {args.steps} steps leaves no step to "
                                         "run; raise strength or steps")
        if not uses_own_loops(pipe):
            images, params = self.with_family_pipeline(image, args, generator, timings)
            return images, with_note(params, note)

        # 2. Prepare: the input's latents, diffused to the starting level
        scheduler = ddim(pipe, args.steps)
        text = encode_text(pipe, [args.prompt], args.negative_prompt, args.guidance)
        observed = encode_image(pipe, image)
        timesteps = timesteps_from(scheduler, args.steps, args.strength)
        latents = noised(scheduler, observed, noise_like(observed, generator), timesteps[0])

        # 3. Denoise, each step followed by the data-consistency step
        with timings.phase("denoise"):
            for i, t in enumerate(timesteps):
                output = predict(pipe, scheduler, latents, t, text, args.guidance)
                latents = scheduler.step(output, t, latents, return_dict=False)[0]
                if args.consistency:
                    t_next = next_timestep(timesteps, i)
                    target = noised(scheduler, observed, noise_like(observed, generator), t_next)
                    cells = args.consistency
                    latents = latents - low_pass(latents, cells) + low_pass(target, cells)
            images = decode_latents(pipe, latents)

        # 4. Return
        return images, with_note({"sampler": "ddim", "width": image.width,
                                  "height": image.height, "denoising_steps": len(timesteps)}, note)

    def with_family_pipeline(self, image, args: RestoreArgs, generator, timings: Timings):
        """SDEdit through the family's image-to-image pipeline (SDXL, SD3, FLUX); its loop has
        no place for the data-consistency step, so only `strength` keeps the input."""
        from pipelines.reference import image_to_image, image_to_image_class

        pipe = self.models.derive(image_to_image_class())
        with timings.phase("denoise"):
            images = image_to_image(pipe, image, args, generator)
        return images, {"pipeline": "family image-to-image", "width": image.width,
                        "height": image.height, "consistency": 0,
                        "denoising_steps": max(1, int(args.steps * args.strength))}


def low_pass(latents: torch.Tensor, cells: int) -> torch.Tensor:
    """Average over `cells` x `cells` blocks, then smoothly back to full size."""
    height, width = latents.shape[-2:]
    coarse = F.adaptive_avg_pool2d(latents, (max(1, height // cells), max(1, width // cells)))
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
