"""generate: text-to-image with classifier-free guidance, on the chosen sampler.

The sampler is built from the loaded scheduler's config, so a v-prediction, zero-terminal-SNR
model keeps those settings under DDIM, DPM-Solver++ 2M, Euler or Euler ancestral alike.
Calls with the same settings batch into one pipeline call, one generator per prompt.
"""
from __future__ import annotations

import torch

from pipelines.base import Adapter, StepInputs, Timings, with_note
from pipelines.families import family_of, fit_size, native_size, sampling_defaults
from pipelines.spec import OPERATIONS, GenerateArgs


class Generate(Adapter):
    spec = OPERATIONS["generate"]

    def batch_key(self, args: GenerateArgs, inputs: StepInputs):
        # Several images per call draw their noise from one generator; batching would
        # change which noise each image gets.
        if args.num_images != 1:
            return None
        # Steps and guidance left unset take the family's defaults, so unset is part of the key.
        return (args.sampler, args.steps, args.guidance, args.width, args.height,
                frozenset(args.model_fields_set & {"steps", "guidance"}))

    def apply(self, args: GenerateArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        return self.apply_batch([args], [inputs], [generator], timings)[0]

    def apply_batch(self, args: list[GenerateArgs], inputs: list[StepInputs],
                    generators: list[torch.Generator], timings: Timings):
        # 1. Check inputs: the size defaults to what the model was trained on, any other is
        # brought to the family's multiple; steps and guidance left unset are the family's
        first = args[0]
        base = self.models.base()
        family = family_of(base)
        width, height, size_note = fit_size(base, first.width or native_size(base),
                                            first.height or native_size(base))
        sampling = {"steps": first.steps, "guidance": first.guidance,
                    **sampling_defaults(base, first)}

        # 2. Prepare: the same components under the chosen sampler (a flow-matching model
        # keeps its own)
        pipe = self.models.with_sampler(first.sampler)
        single = len(args) == 1

        # 3. Run: one call for every prompt, each prompt's noise from its own generator
        with timings.phase("denoise"):
            images = pipe(
                prompt=first.prompt if single else [a.prompt for a in args],
                negative_prompt=(first.negative_prompt if single
                                 else [a.negative_prompt for a in args]),
                num_inference_steps=sampling["steps"],
                guidance_scale=sampling["guidance"],
                width=width,
                height=height,
                num_images_per_prompt=first.num_images,
                generator=generators[0] if single else generators,
            ).images

        # 4. Return
        chosen = {"width": width, "height": height, "scheduler": type(pipe.scheduler).__name__,
                  "family": family.key, **sampling}
        n = first.num_images
        return [(images[i * n:(i + 1) * n],
                 with_note(chosen, size_note, unused_negative(family, a)))
                for i, a in enumerate(args)]


def unused_negative(family, args: GenerateArgs) -> str | None:
    """FLUX's pipeline uses a negative prompt only with true classifier-free guidance (a second
    pass per step), which generate does not run: say so rather than drop it unseen."""
    if family.key == "flux" and args.negative_prompt:
        return ("FLUX runs without classifier-free guidance here, so the negative prompt was "
                "not used")
    return None
