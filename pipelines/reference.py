"""reference: a new image that follows a reference image, guided by a prompt.

SDEdit: the reference is diffused part-way (`strength`) and denoised under the prompt, so its
layout and colours carry over while the prompt decides the rest. When an IP-Adapter is
configured, the reference's image embedding conditions every step as well.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from pipelines.base import Adapter, StepInputs, Timings, fit_image, reference_image, with_note
from pipelines.errors import InputError
from pipelines.families import accepted, size_multiple
from pipelines.spec import OPERATIONS, ReferenceArgs


def image_to_image_class():
    from diffusers import AutoPipelineForImage2Image
    return AutoPipelineForImage2Image


def image_to_image(pipe, image, args, generator, **extra) -> list:
    """One image-to-image call of `pipe` (SDEdit at `args.strength`) under `args`' prompt,
    negative prompt, steps and guidance, in the image's own size."""
    return pipe(**accepted(
        pipe,
        prompt=args.prompt,
        image=image,
        width=image.width,      # FLUX's takes its size from these, not the image
        height=image.height,
        strength=args.strength,
        negative_prompt=args.negative_prompt or None,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance,
        generator=generator,
        **extra,
    )).images


class Reference(Adapter):
    spec = OPERATIONS["reference"]

    def ready(self) -> None:
        self.models.derive(image_to_image_class())

    def apply(self, args: ReferenceArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs
        pipe = self.models.derive(image_to_image_class())
        reference, note = fit_image(reference_image(inputs, args.reference), "reference",
                                    size_multiple(pipe))
        if int(args.steps * args.strength) < 1:
            raise InputError("strength", f"{args.strength} of {args.steps} steps leaves no step to "
                                         "run; raise strength or steps")

        # 2. Prepare: the IP-Adapter, when configured, only for this call
        use_ip_adapter = self.models.config.ip_adapter is not None
        extra = {"ip_adapter_image": reference} if use_ip_adapter else {}
        with self.models.ip_adapter(pipe) if use_ip_adapter else nullcontext():
            # 3. Run
            with timings.phase("denoise"):
                images = image_to_image(pipe, reference, args, generator, **extra)

        # 4. Return
        return images, with_note({"width": reference.width, "height": reference.height,
                                  "ip_adapter": use_ip_adapter}, note)
