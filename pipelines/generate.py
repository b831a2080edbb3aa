"""generate: text-to-image with classifier-free guidance, on the chosen sampler.

The sampler is built from the loaded scheduler's config, so a v-prediction, zero-terminal-SNR
model keeps those settings under DDIM, DPM-Solver++ 2M, Euler or Euler ancestral alike.
"""
from __future__ import annotations

import torch

from pipelines.base import Adapter, StepInputs, Timings
from pipelines.sampling import native_size
from pipelines.spec import OPERATIONS, GenerateArgs


class Generate(Adapter):
    spec = OPERATIONS["generate"]

    def apply(self, args: GenerateArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs: the size defaults to what the model was trained on
        base = self.models.base()
        width = args.width or native_size(base)
        height = args.height or native_size(base)

        # 2. Prepare: the same components under the chosen sampler
        pipe = self.models.with_sampler(args.sampler)

        # 3. Run
        with timings.phase("denoise"):
            images = pipe(
                prompt=args.prompt,
                negative_prompt=args.negative_prompt,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                width=width,
                height=height,
                num_images_per_prompt=args.num_images,
                generator=generator,
            ).images

        # 4. Return
        return images, {"width": width, "height": height,
                        "scheduler": type(pipe.scheduler).__name__}
