"""invert_edit: change what the current image shows by editing its prompt, keeping its layout.

1. DDIM inversion: the image's latents are run up the deterministic DDIM schedule under the
   source prompt, recording the latents at every level and the source's attention maps.
2. Regeneration: from the inverted noise, DDIM runs back down under the target prompt with
   prompt-to-prompt attention injection (Hertz et al.): the target pass reuses the source's
   self-attention (which holds the layout; every step by default, since the shapes-world
   model moves a recoloured object otherwise) and, when the two prompts tokenise to the same
   length (a word swap), its cross-attention (which holds where each word is drawn; every
   step by default, for the same reason).
   For the first steps it also reuses the source's decoder features at one block
   (plug-and-play, Tumanyan et al.): the words after a changed one change their meaning too,
   and without this the changed object is drawn again where the model usually puts its place
   words rather than where it was.
3. Local blend: once the changed words' attention has settled (after the first fifth of the
   steps), the latents outside the region where they attend are taken from the inversion
   trajectory at every step, so the rest of the image comes back as it was.

DDIM runs without noise both ways, so the result does not depend on the seed.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from pipelines.attention import hooked_attention
from pipelines.base import Adapter, StepInputs, Timings, fit_image, with_note
from pipelines.families import require_own_loops
from pipelines.sampling import (alpha_bar, ddim, decode_latents, encode_image, encode_text,
                                next_timestep, predict, split_prediction)
from pipelines.spec import OPERATIONS, InvertEditArgs

# Attention maps are kept across the whole inversion, so only the coarser layers are kept:
# cross-attention up to 32x32 queries, self-attention up to 16x16 (prompt-to-prompt's limit).
MAX_CROSS_QUERIES = 32 * 32
MAX_SELF_QUERIES = 16 * 16
# Attention on near-pure noise says little about where a word will be drawn, so the local
# blend starts after this fraction of the steps (prompt-to-prompt's start_blend).
BLEND_START = 0.2
# Plug-and-play's layer: the second resnet of the second decoder block, coarse enough to hold
# where each object is while the finer blocks after it draw its colour.
FEATURE_BLOCK, FEATURE_RESNET = 1, 1


class InvertEdit(Adapter):
    spec = OPERATIONS["invert_edit"]

    def apply(self, args: InvertEditArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs
        pipe = self.models.base()
        require_own_loops(pipe, "invert_edit")
        # The attention maps of every UNet level must tile the latents: sides a multiple of
        # the deepest level's cell.
        levels = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
        image, note = fit_image(inputs.image, "image", pipe.vae_scale_factor * levels)

        # 2. Prepare: prompts, which tokens changed, the attention controller
        scheduler = ddim(pipe, args.steps)
        timesteps = scheduler.timesteps
        source = encode_text(pipe, [args.source_prompt], "", guidance=1.0)
        target = encode_text(pipe, [args.target_prompt], args.negative_prompt, args.guidance)
        source_ids = pipe.tokenizer(args.source_prompt, truncation=True).input_ids
        target_ids = pipe.tokenizer(args.target_prompt, truncation=True).input_ids
        word_swap = len(source_ids) == len(target_ids)
        control = PromptToPrompt(
            cross_steps={int(t) for t in timesteps[:round(args.cross_attention_steps * args.steps)]}
            if word_swap else set(),
            self_steps={int(t) for t in timesteps[:round(args.self_attention_steps * args.steps)]},
            source_tokens=changed_tokens(source_ids, target_ids),
            target_tokens=changed_tokens(target_ids, source_ids),
            feature_steps={int(t) for t in
                           timesteps[:round(args.feature_injection_steps * args.steps)]},
        )
        feature_layer = decoder_resnet(pipe.unet) if control.feature_steps else None
        blend = args.local_blend > 0 and bool(control.source_tokens or control.target_tokens)
        control.collect = blend
        blend_from = round(BLEND_START * args.steps)

        # 3. Invert, recording the source's attention and features
        with timings.phase("invert"), hooked_attention(pipe.unet, control), \
                hooked_output(feature_layer, control.features_hook):
            # The latents stay float32 whatever the model's dtype: half-precision rounding adds
            # up over the inversion's steps, and the regeneration has to retrace them.
            trajectory = invert(pipe, scheduler, encode_image(pipe, image).float(), source, control)

        # 4. Regenerate under the target prompt, reusing the source's attention and features
        latents = trajectory[int(timesteps[0])]
        control.recording = False
        with timings.phase("denoise"), hooked_attention(pipe.unet, control), \
                hooked_output(feature_layer, control.features_hook):
            for i, t in enumerate(timesteps):
                control.timestep = int(t)
                output = predict(pipe, scheduler, latents, t, target, args.guidance)
                latents = scheduler.step(output, t, latents, return_dict=False)[0]
                if blend:
                    changed = control.blend_mask(latents.shape[-2:], args.local_blend).to(latents)
                    if i >= blend_from:
                        t_next = next_timestep(timesteps, i)
                        keep = trajectory[None if t_next is None else int(t_next)]
                        latents = changed * latents + (1 - changed) * keep
        images = decode_latents(pipe, latents)

        # 5. Return
        return images, with_note({"sampler": "ddim", "word_swap": word_swap,
                                  "local_blend_used": blend,
                                  "features_injected": feature_layer is not None,
                                  "width": image.width, "height": image.height}, note)


def invert(pipe, scheduler, latents: torch.Tensor, text, control: "PromptToPrompt") -> dict:
    """DDIM run backwards: the latents at every level of the schedule, keyed by timestep
    (None is the clean image). Each step predicts with the timestep of the level it goes to,
    from the level it is at, as diffusers' DDIMInverseScheduler and null-text inversion do."""
    trajectory = {None: latents}
    level = None
    for t in reversed(scheduler.timesteps):
        control.timestep = int(t)
        output = predict(pipe, scheduler, latents, t, text, guidance=1.0)
        clean, noise = split_prediction(scheduler, output, latents, level)
        a_next = alpha_bar(scheduler, t).to(latents)
        latents = a_next.sqrt() * clean + (1 - a_next).sqrt() * noise
        level = int(t)
        trajectory[level] = latents
    return trajectory


def decoder_resnet(unet):
    """Plug-and-play's feature layer, or None when the UNet's decoder has no such block."""
    blocks = getattr(unet, "up_blocks", [])
    if len(blocks) <= FEATURE_BLOCK or len(blocks[FEATURE_BLOCK].resnets) <= FEATURE_RESNET:
        return None
    return blocks[FEATURE_BLOCK].resnets[FEATURE_RESNET]


@contextmanager
def hooked_output(module, hook):
    """`hook(module, inputs, output)` on `module`'s forward while inside; nothing when None."""
    handle = None if module is None else module.register_forward_hook(hook)
    try:
        yield
    finally:
        if handle is not None:
            handle.remove()


def changed_tokens(ids: list[int], other: list[int]) -> list[int]:
    """Positions of `ids` whose token the other prompt does not have there (same length) or at
    all (different lengths); start and end tokens excluded."""
    inner = range(1, len(ids) - 1)
    if len(ids) == len(other):
        return [i for i in inner if ids[i] != other[i]]
    return [i for i in inner if ids[i] not in other]


class PromptToPrompt:
    """Attention hook: records the source's maps during inversion, then hands them to the
    target's prompt pass and collects where the changed words attend (for the local blend).
    Its `features_hook` does the same for one decoder layer's output, at `feature_steps`."""

    def __init__(self, cross_steps: set[int], self_steps: set[int], source_tokens: list[int],
                 target_tokens: list[int], feature_steps: set[int] = frozenset()):
        self.cross_steps, self.self_steps = cross_steps, self_steps
        self.feature_steps = feature_steps
        self.features: dict[int, torch.Tensor] = {}
        self.source_tokens, self.target_tokens = source_tokens, target_tokens
        self.recording = True
        self.collect = True
        self.timestep: int | None = None
        self.maps: dict[tuple[int, str], torch.Tensor] = {}
        self.changed_sum: torch.Tensor | None = None
        self.changed_steps = 0
        self.current: list[torch.Tensor] = []

    def __call__(self, name: str, probs: torch.Tensor, is_cross: bool) -> torch.Tensor:
        queries = probs.shape[2]
        key = (self.timestep, name)
        if self.recording:
            if (is_cross and queries <= MAX_CROSS_QUERIES) or \
                    (self.timestep in self.self_steps and queries <= MAX_SELF_QUERIES):
                self.maps[key] = probs[-1:].detach()
            return probs
        # The prompt's pass is the last of the batch (after the negative prompt's).
        if self.collect and is_cross and queries <= MAX_CROSS_QUERIES:
            self.current.append(self.changed_map(self.maps[key], probs[-1:]))
        inject = self.cross_steps if is_cross else self.self_steps
        if self.timestep in inject and key in self.maps:
            probs = torch.cat([probs[:-1], self.maps[key].to(probs)])
        return probs

    def features_hook(self, module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        if self.timestep not in self.feature_steps:
            return None
        if self.recording:
            self.features[self.timestep] = output[-1:].detach()
            return None
        # Every pass of the batch, the negative prompt's too, as plug-and-play does (recolour
        # success 85.0% of 40 tuning scenes, against 75.0% with the prompt's pass alone).
        return self.features[self.timestep].to(output).expand_as(output).clone()

    def changed_map(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Attention to the changed words, summed over them and averaged over heads: queries."""
        total = source[0, :, :, self.source_tokens].sum(-1).mean(0)
        if self.target_tokens:
            total = total + target[0, :, :, self.target_tokens].sum(-1).mean(0)
        return total

    def blend_mask(self, size: tuple[int, int], threshold: float) -> torch.Tensor:
        """Where the changed words have attended so far (averaged over layers and steps),
        scaled from its lowest to its peak, above `threshold` and grown by a cell: 1 =
        regenerate. Scaled from the lowest rather than from zero because a small model's
        attention to a word has a floor over the whole image (about half its peak on the shapes
        world), which put every cell above the threshold."""
        height, width = size
        layers = []
        for queries in self.current:
            factor = round((height * width / queries.numel()) ** 0.5)
            grid = queries.float().view(1, 1, height // factor, width // factor)
            layers.append(F.interpolate(grid, size=size, mode="bilinear", align_corners=False))
        self.current = []
        step = torch.cat(layers).mean(0, keepdim=True)
        self.changed_sum = step if self.changed_sum is None else self.changed_sum + step
        self.changed_steps += 1
        average = self.changed_sum / self.changed_steps
        average = F.max_pool2d(average, 3, stride=1, padding=1)
        low, high = average.min(), average.max()
        return ((average - low) / (high - low).clamp(min=1e-8) > threshold).float()
