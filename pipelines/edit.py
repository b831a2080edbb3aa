"""edit: instruction editing with an InstructPix2Pix-format model (a base model fine-tuned to
take the input image's latents as extra UNet channels), guided separately toward the
instruction (`guidance`) and toward the input image (`image_guidance`). Calls with the same
settings and image size batch into one pipeline call, one generator per instruction."""
from __future__ import annotations

import torch

from pipelines.base import Adapter, StepInputs, Timings, fit_image, with_note
from pipelines.spec import OPERATIONS, EditArgs


class Edit(Adapter):
    spec = OPERATIONS["edit"]

    def ready(self) -> None:
        self.models.edit()

    def batch_key(self, args: EditArgs, inputs: StepInputs):
        size = inputs.image.size if inputs.image is not None else None
        return (args.steps, args.guidance, args.image_guidance, size)

    def apply(self, args: EditArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        return self.apply_batch([args], [inputs], [generator], timings)[0]

    def apply_batch(self, args: list[EditArgs], inputs: list[StepInputs],
                    generators: list[torch.Generator], timings: Timings):
        # 1. Check inputs
        pipe = self.models.edit()
        fitted = [fit_image(i.image, "image", pipe.vae_scale_factor) for i in inputs]
        images = [image for image, _ in fitted]
        first, single = args[0], len(args) == 1

        # 2-3. Prepare and run: the pipeline encodes the images and applies both guidances
        with timings.phase("denoise"):
            outputs = pipe(
                prompt=first.instruction if single else [a.instruction for a in args],
                image=images[0] if single else images,
                negative_prompt=(first.negative_prompt if single
                                 else [a.negative_prompt for a in args]),
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                image_guidance_scale=first.image_guidance,
                generator=generators[0] if single else generators,
            ).images

        # 4. Return
        return [([output], with_note({"width": image.width, "height": image.height}, note))
                for output, (image, note) in zip(outputs, fitted)]
