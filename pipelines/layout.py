"""layout: a new image with each object phrase inside its own box.

Two methods. `per_box` (the default) follows LLM-grounded Diffusion's second stage: each
phrase is drawn alone on the scene's background, the grounding tool cuts its object out, the
cut-out is placed in its box on a background cleared of objects, and a low-strength SDEdit
pass restricted to the boxes blends the pasted objects in. A model that draws an object right
but not where it is asked (a small one rarely learns places first) still gives a right layout.
An object the grounding tool cannot find is drawn again from fresh noise, `redraws` times.

`multidiffusion`: region-wise noise blending (MultiDiffusion): at every step the model
predicts the whole canvas once per prompt (the scene prompt, then each phrase) and the
predictions are blended, each phrase's inside its box and the scene prompt's elsewhere. The
scene prompt names every phrase and then the background prompt, so the area around the boxes
agrees with what they hold instead of inventing objects of its own. For the first `bootstrap`
steps each phrase sees its box alone on a flat backdrop, so its object fills the box instead
of landing anywhere. `attention_guidance` > 0 adds cross-attention guidance: the latents are
nudged down the gradient of an energy that is low when each phrase's words attend inside its
box (Chen et al.'s backward guidance).

A model trained with GLIGEN's grounding layers (the UNet has a `position_net`) uses diffusers'
GLIGEN pipeline instead.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.attention import hooked_attention, map_shape, token_span
from pipelines.base import Adapter, StepInputs, Timings
from pipelines.compose import paste_into_box
from pipelines.grounding import dilate
from pipelines.inpaint import repaint
from pipelines.sampling import (boxes_mask, ddim, decode_latents, encode_image, encode_text,
                                initial_noise, keep_outside, latent_mask, native_size, noise_like,
                                noised, predict, require_sd_family, timesteps_from)
from pipelines.spec import OPERATIONS, LayoutArgs

# Guide the first quarter of the steps: the layout is settled by then (Chen et al. guide
# the first 10 of 50).
GUIDED_FRACTION = 0.25
# Each object alone is drawn as `generate` draws, on its default sampler.
OBJECT_SAMPLER = "dpm++2m"
# A cut-out takes this many pixels around its mask, so its antialiased edge comes along; the
# hole an object leaves in the background is cleared this much wider.
CUTOUT_MARGIN = 1
HOLE_MARGIN = 2


def gligen_class():
    from diffusers import StableDiffusionGLIGENPipeline
    return StableDiffusionGLIGENPipeline


def has_gligen(pipe) -> bool:
    return getattr(pipe.unet, "position_net", None) is not None


class Layout(Adapter):
    spec = OPERATIONS["layout"]

    def ready(self) -> None:
        if has_gligen(self.models.base()):
            self.models.derive(gligen_class())

    def apply(self, args: LayoutArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings):
        # 1. Check inputs
        base = self.models.base()
        if has_gligen(base):
            return self.gligen(args, generator, timings)
        require_sd_family(base, "layout")
        if args.method == "per_box":
            return self.per_box(base, args, generator, timings)
        size = native_size(base)
        factor = base.vae_scale_factor
        phrases = [o.phrase for o in args.objects]

        # 2. Prepare: prompts, per-region blending weights, flat backdrops
        scheduler = ddim(base, args.steps)
        scene_prompt = scene_description(phrases, args.background_prompt)
        text = encode_text(base, [scene_prompt] + phrases, args.negative_prompt, args.guidance)
        shape = (1, base.unet.config.in_channels, size // factor, size // factor)
        latents = initial_noise(base, shape, generator) * scheduler.init_noise_sigma
        pixel_boxes = [boxes_mask([o.box], size, size) for o in args.objects]
        inside = torch.cat([latent_mask(m, factor, latents) for m in pixel_boxes])  # n,1,h,w
        weights = region_weights(pixel_boxes, factor).to(latents)
        backdrops = self.flat_backdrops(base, len(phrases), size, generator)
        bootstrap_steps = round(args.bootstrap * args.steps)
        guided_steps = math.ceil(GUIDED_FRACTION * args.steps) if args.attention_guidance > 0 else 0
        spans = [token_span(base.tokenizer, p) for p in phrases]

        # 3. Denoise, blending the regions' predictions
        with timings.phase("denoise"):
            for i, t in enumerate(scheduler.timesteps):
                if i < guided_steps:
                    with timings.phase("attention_guidance"):
                        latents = steer_toward_boxes(base, scheduler, latents, t, text.cond[1:],
                                                     spans, pixel_boxes, args.attention_guidance)
                regions = latents.repeat(len(phrases) + 1, 1, 1, 1)
                if i < bootstrap_steps:
                    backdrop = noised(scheduler, backdrops, noise_like(backdrops, generator), t)
                    regions[1:] = inside * latents + (1 - inside) * backdrop
                output = predict(base, scheduler, regions, t, text, args.guidance)
                blended = (weights * output).sum(0, keepdim=True)
                latents = scheduler.step(blended, t, latents, return_dict=False)[0]
            images = decode_latents(base, latents)

        # 4. Return
        return images, {"mechanism": "multidiffusion", "scene_prompt": scene_prompt,
                        "sampler": "ddim", "width": size, "height": size,
                        "bootstrap_steps": bootstrap_steps, "guided_steps": guided_steps}

    def per_box(self, base, args: LayoutArgs, generator: torch.Generator, timings: Timings):
        size = native_size(base)
        phrases = [o.phrase for o in args.objects]

        # 1. Draw each object alone until the grounding tool finds it (or redraws run out)
        pipe = self.models.with_sampler(OBJECT_SAMPLER)
        drawn: list[Image.Image | None] = [None] * len(phrases)
        cutouts: list[np.ndarray | None] = [None] * len(phrases)
        draws, first_image = 0, None
        for _ in range(1 + args.redraws):
            missing = [i for i, cut in enumerate(cutouts) if cut is None]
            if not missing:
                break
            with timings.phase("denoise"):
                images = pipe(prompt=[alone(phrases[i], args.background_prompt) for i in missing],
                              negative_prompt=[args.negative_prompt] * len(missing),
                              num_inference_steps=args.steps, guidance_scale=args.guidance,
                              width=size, height=size, generator=generator).images
            draws += len(missing)
            if first_image is None:
                first_image = images[0]
            with timings.phase("ground"):
                for i, image in zip(missing, images):
                    drawn[i], cutouts[i] = image, self.find(image, phrases[i])
        with timings.phase("ground"):
            # What the tool cannot match to its phrase, it may still see as an object.
            unmatched = [i for i, cut in enumerate(cutouts) if cut is None]
            for i in unmatched:
                cutouts[i] = largest(self.models.grounder.objects(drawn[i]))

            # 2. Compose: the background cleared of objects, each cut-out in its box
            canvas, hole = cleared(first_image, self.models.grounder.objects(first_image))
        composed = canvas
        for obj, image, cut in zip(args.objects, drawn, cutouts):
            if cut is not None:
                composed = paste_into_box(composed, image, dilate(cut, CUTOUT_MARGIN), obj.box)
        params = {"mechanism": "per_box_composition", "sampler": OBJECT_SAMPLER,
                  "scene_prompt": scene_description(phrases, args.background_prompt),
                  "width": size, "height": size, "object_draws": draws,
                  "unmatched": [phrases[i] for i in unmatched],
                  "missing": [p for p, cut in zip(phrases, cutouts) if cut is None]}
        if int(args.steps * args.harmonise) < 1:
            return [composed], {**params, "harmonised": False}

        # 3. Harmonise: SDEdit inside the boxes and the cleared hole, known latents elsewhere
        region_pixels = boxes_mask([o.box for o in args.objects], size, size) | hole
        scheduler = ddim(base, args.steps)
        text = encode_text(base, [params["scene_prompt"]], args.negative_prompt, args.guidance)
        known = encode_image(base, composed)
        region = latent_mask(region_pixels, base.vae_scale_factor, known)
        timesteps = timesteps_from(scheduler, args.steps, args.harmonise)
        with timings.phase("denoise"):
            start = noised(scheduler, known, noise_like(known, generator), timesteps[0])
            latents = repaint(base, scheduler, timesteps, start, text, args.guidance, known,
                              region, generator)
            generated = decode_latents(base, latents)[0]
        return [keep_outside(generated, composed, region_pixels)], {
            **params, "harmonised": True, "denoising_steps": len(timesteps)}

    def find(self, image: Image.Image, phrase: str) -> np.ndarray | None:
        """The one object of `image` that the grounding tool matches to `phrase`, or None."""
        try:
            masks = self.models.grounder.locate(image, phrase)
        except ValueError:  # nothing matches, several do, or the phrase names nothing it knows
            return None
        return masks[0] if len(masks) == 1 else None

    def flat_backdrops(self, pipe, count: int, size: int, generator) -> torch.Tensor:
        """Latents of `count` single-colour images, a random colour each (MultiDiffusion)."""
        colours = torch.rand(count, 3, generator=generator)
        flats = [Image.new("RGB", (size, size), tuple(int(v) for v in (c * 255).round()))
                 for c in colours]
        return torch.cat([encode_image(pipe, flat) for flat in flats])

    def gligen(self, args: LayoutArgs, generator, timings: Timings):
        pipe = self.models.derive(gligen_class())
        phrases = [o.phrase for o in args.objects]
        prompt = scene_description(phrases, args.background_prompt)
        size = native_size(pipe)
        with timings.phase("denoise"):
            images = pipe(
                prompt=prompt,
                gligen_phrases=phrases,
                gligen_boxes=[o.box for o in args.objects],
                negative_prompt=args.negative_prompt,
                num_inference_steps=args.steps,
                guidance_scale=args.guidance,
                height=size,
                width=size,
                generator=generator,
            ).images
        return images, {"mechanism": "gligen", "prompt": prompt, "width": size, "height": size}


def region_weights(pixel_boxes, factor: int) -> torch.Tensor:
    """Per latent cell, how much each prediction counts (scene prompt first, then each
    phrase): a phrase by how much of the cell its box covers, the scene prompt for the rest;
    they sum to one."""
    coverage = torch.cat([F.avg_pool2d(torch.from_numpy(m).float()[None, None], factor)
                          for m in pixel_boxes])
    around = (1 - coverage.sum(0, keepdim=True)).clamp(min=1e-3)
    weights = torch.cat([around, coverage])
    return weights / weights.sum(0, keepdim=True)


def alone(phrase: str, background_prompt: str) -> str:
    """The prompt that draws one object by itself: "a red circle, on a gray background"."""
    return f"{phrase}, {background_prompt}" if background_prompt else phrase


def largest(masks: list[np.ndarray]) -> np.ndarray | None:
    return max(masks, key=lambda m: int(m.sum()), default=None)


def cleared(image: Image.Image, masks: list[np.ndarray]) -> tuple[Image.Image, np.ndarray]:
    """`image` with its objects painted over in the median colour of the rest, and the
    painted area: the background that the objects are placed on."""
    pixels = np.asarray(image.convert("RGB")).copy()
    hole = np.zeros(pixels.shape[:2], dtype=bool)
    for mask in masks:
        hole |= dilate(mask, HOLE_MARGIN)
    if hole.any() and not hole.all():
        pixels[hole] = np.median(pixels[~hole], axis=0).astype(np.uint8)
    return Image.fromarray(pixels), hole


def scene_description(phrases: list[str], background_prompt: str) -> str:
    """"a red circle and a blue square, on a gray background"."""
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"{listed}, {background_prompt}" if background_prompt else listed


def steer_toward_boxes(pipe, scheduler, latents, t, phrase_states, spans, pixel_boxes,
                       strength: float) -> torch.Tensor:
    """One step of backward guidance: latents minus `strength` times the gradient of
    sum_i (1 - attention of phrase i inside box i / its attention everywhere)^2."""
    maps: list[torch.Tensor] = []

    def keep_cross(name, probs, is_cross):
        if is_cross:
            maps.append(probs)
        return probs

    count = len(spans)
    height, width = latents.shape[-2:]
    with torch.enable_grad(), hooked_attention(pipe.unet, keep_cross):
        x = latents.detach().requires_grad_(True)
        model_input = scheduler.scale_model_input(x, t).expand(count, -1, -1, -1)
        pipe.unet(model_input, t, encoder_hidden_states=phrase_states, return_dict=False)
        energy = x.new_zeros(())
        for probs in maps:  # count, heads, queries, keys
            h, w = map_shape(probs.shape[2], height, width)
            for j, (span, box) in enumerate(zip(spans, pixel_boxes)):
                attention = probs[j][:, :, span].mean(0).sum(-1)  # queries
                box_here = F.adaptive_avg_pool2d(torch.from_numpy(box).float()[None, None], (h, w))
                box_here = box_here.flatten().to(attention)
                energy = energy + (1 - (attention * box_here).sum() / attention.sum()) ** 2
        energy = energy / max(len(maps), 1)
        gradient = torch.autograd.grad(energy, x)[0]
    return latents - strength * gradient
