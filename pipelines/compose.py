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

from pipelines.base import Adapter, StepInputs, Timings, fit_image, reference_image, with_note
from pipelines.errors import InputError
from pipelines.inpaint import harmonised
from pipelines.placement import paste_into_box
from pipelines.families import size_multiple
from pipelines.sampling import boxes_mask
from pipelines.spec import OPERATIONS, ComposeArgs


class Compose(Adapter):
    spec = OPERATIONS["compose"]

    def apply(self, args: ComposeArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs and cut the object out of the reference
        pipe = self.models.base()
        image, note = fit_image(inputs.image, "image", size_multiple(pipe))
        reference = reference_image(inputs, args.reference).convert("RGB")
        with timings.phase("ground"):
            try:
                masks = self.models.grounder.objects(reference)
            except ValueError as error:  # a grounder that cannot read this picture says why
                raise InputError("reference", f"{args.reference}: the grounding tool cannot "
                                              f"read it ({error})") from None
        if not masks:
            raise InputError("reference", f"no object found in {args.reference} to paste; give a "
                                          "reference that shows one")
        box = boxes_mask([args.box], *image.size)

        # 2. Paste
        pasted = paste_into_box(image, reference, np.logical_or.reduce(masks), args.box)
        harmonise = int(args.steps * args.strength) >= 1
        if not harmonise:
            return [pasted], with_note({"harmonised": False}, note)

        # 3. Harmonise: SDEdit inside the box, known latents outside it
        result, steps = harmonised(self.models, pasted, box, args.prompt, args, args.strength,
                                   generator, timings)
        return [result], with_note({"harmonised": True, "sampler": "ddim",
                                    "denoising_steps": steps}, note)
