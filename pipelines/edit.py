"""edit: instruction editing with an InstructPix2Pix-format model (a base model fine-tuned to
take the input image's latents as extra UNet channels), guided separately toward the
instruction (`guidance`) and toward the input image (`image_guidance`)."""
from __future__ import annotations

import torch

from pipelines.base import Adapter, StepInputs, Timings, check_image
from pipelines.spec import OPERATIONS, EditArgs


class Edit(Adapter):
    spec = OPERATIONS["edit"]

    def ready(self) -> None:
        self.models.edit()

    def apply(self, args: EditArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs
        pipe = self.models.edit()
        image = check_image(inputs.image, "image", pipe.vae_scale_factor)

        # 2-3. Prepare and run: the pipeline encodes the image and applies both guidances
        with timings.phase("denoise"):
            images = pipe(
                prompt=args.instruction,
                image=image,
                negative_prompt=args.negative_prompt,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                image_guidance_scale=args.image_guidance,
                generator=generator,
            ).images

        # 4. Return
        return images, {"width": image.width, "height": image.height}
