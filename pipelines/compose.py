"""compose: place a reference's object into a box of the current image and harmonise it.

The grounding tool cuts the object(s) out of the reference; the cut-out is scaled to fit the
box (keeping its proportions), centred in it and pasted. Harmonising is a low-strength SDEdit
restricted to the box: the pasted image is diffused to `strength` and denoised under the
prompt while the latents outside the box are put back at every step, so only the box is
redrawn and everything outside it stays exactly as it was.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from pipelines.base import Adapter, StepInputs, Timings, check_image, reference_image
from pipelines.errors import InputError
from pipelines.inpaint import repaint
from pipelines.sampling import (boxes_mask, ddim, decode_latents, encode_image, encode_text,
                                keep_outside, latent_mask, noise_like, noised, require_sd_family,
                                timesteps_from)
from pipelines.spec import OPERATIONS, ComposeArgs


class Compose(Adapter):
    spec = OPERATIONS["compose"]

    def apply(self, args: ComposeArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs and cut the object out of the reference
        pipe = self.models.base()
        require_sd_family(pipe, "compose")
        image = check_image(inputs.image, "image", pipe.vae_scale_factor)
        reference = reference_image(inputs, args.reference).convert("RGB")
        with timings.phase("ground"):
            masks = self.models.grounder.objects(reference)
        if not masks:
            raise InputError("reference", f"no object found in {args.reference} to paste; give a "
                                          "reference that shows one")
        box = boxes_mask([args.box], *image.size)

        # 2. Paste
        pasted = paste_into_box(image, reference, np.logical_or.reduce(masks), args.box)
        harmonise = int(args.steps * args.strength) >= 1
        if not harmonise:
            return [pasted], {"harmonised": False}

        # 3. Harmonise: SDEdit inside the box, known latents outside it
        scheduler = ddim(pipe, args.steps)
        text = encode_text(pipe, [args.prompt], args.negative_prompt, args.guidance)
        known = encode_image(pipe, pasted)
        region = latent_mask(box, pipe.vae_scale_factor, known)
        timesteps = timesteps_from(scheduler, args.steps, args.strength)
        with timings.phase("denoise"):
            start = noised(scheduler, known, noise_like(known, generator), timesteps[0])
            latents = repaint(pipe, scheduler, timesteps, start, text, args.guidance, known,
                              region, generator)
            generated = decode_latents(pipe, latents)[0]

        # 4. Return, with everything outside the box as it was
        return [keep_outside(generated, pasted, box)], {"harmonised": True, "sampler": "ddim",
                                                        "denoising_steps": len(timesteps)}


def paste_into_box(image: Image.Image, source: Image.Image, cutout: np.ndarray, box) -> Image.Image:
    """`source`'s pixels under `cutout`, scaled to fit `box` of `image` and centred in it."""
    ys, xs = np.nonzero(cutout)
    crop = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    piece = source.crop(crop)
    alpha = Image.fromarray(cutout.astype(np.uint8) * 255).crop(crop)
    width, height = image.size
    x0, y0 = int(np.floor(box[0] * width)), int(np.floor(box[1] * height))
    x1, y1 = int(np.ceil(box[2] * width)), int(np.ceil(box[3] * height))
    scale = min((x1 - x0) / piece.width, (y1 - y0) / piece.height)
    size = (max(1, round(piece.width * scale)), max(1, round(piece.height * scale)))
    piece = piece.resize(size, Image.Resampling.LANCZOS)
    # A smooth alpha keeps the pasted edge antialiased, like the objects around it.
    alpha = alpha.resize(size, Image.Resampling.BILINEAR)
    corner = (x0 + (x1 - x0 - size[0]) // 2, y0 + (y1 - y0 - size[1]) // 2)
    result = image.copy()
    result.paste(piece, corner, alpha)
    return result
