"""layout: a new image with each object phrase inside its own box.

Two methods. `per_box` (the default) follows LLM-grounded Diffusion's second stage: each
phrase is drawn alone on the scene's background, the grounding tool cuts its object out, the
cut-out is placed in its box on a background cleared of objects (pipelines/placement.py).
With `harmonise` > 0 an SDEdit pass restricted to the boxes blends the pasted objects in
(photographs want it; the shapes model redraws small squares as circles even at 0.15, so it
is off by default). A model that draws an object right but not where it is asked (a small one
learns places last) still gives a right layout. An object the grounding tool cannot find is
drawn again from fresh noise, `redraws` times.

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

import torch
import torch.nn.functional as F
from PIL import Image

from pipelines.attention import hooked_attention, map_shape, token_span
from pipelines.base import Adapter, StepInputs, Timings
from pipelines.inpaint import harmonised
from pipelines.placement import CUTOUT_MARGIN, OBJECT_SAMPLER, Job, cleared, draw_alone, place
from pipelines.families import native_size, require_own_loops
from pipelines.sampling import (boxes_mask, ddim, decode_latents, encode_image, encode_text,
                                initial_noise, latent_mask, noise_like, noised, predict)
from pipelines.spec import OPERATIONS, LayoutArgs

# Guide the first quarter of the steps: the layout is settled by then (Chen et al. guide
# the first 10 of 50).
GUIDED_FRACTION = 0.25


def gligen_class():
    from diffusers import StableDiffusionGLIGENPipeline
    return StableDiffusionGLIGENPipeline


def has_gligen(pipe) -> bool:
    return getattr(getattr(pipe, "unet", None), "position_net", None) is not None


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
        if self.per_box(args):  # apply_batch checks the model family itself
            return self.apply_batch([args], [inputs], [generator], timings)[0]
        require_own_loops(base, "layout's multidiffusion method (per_box runs everywhere)")
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
        fallback = {"fallback": "per_box needs a grounding model to cut objects out; none is "
                                "configured"} if args.method == "per_box" else {}
        return images, {"mechanism": "multidiffusion", **fallback, "scene_prompt": scene_prompt,
                        "sampler": "ddim", "width": size, "height": size,
                        "bootstrap_steps": bootstrap_steps, "guided_steps": guided_steps}

    def per_box(self, args: LayoutArgs) -> bool:
        """Per-box placement cuts each drawn object out with the set's grounding model; a set
        without one lays the boxes out on one canvas (multidiffusion) instead."""
        from pipelines.grounding import NoGrounder

        return args.method == "per_box" and not isinstance(self.models.grounder, NoGrounder)

    def batch_key(self, args: LayoutArgs, inputs: StepInputs):
        # Per-box layouts of several calls draw their objects in one batched call per round.
        if not self.per_box(args) or args.harmonise > 0 or has_gligen(self.models.base()):
            return None
        return ("per_box", args.steps, args.guidance, args.redraws)

    def apply_batch(self, args: list[LayoutArgs], inputs: list[StepInputs],
                    generators: list[torch.Generator], timings: Timings):
        """Per-box layouts: each call's objects drawn alone (all calls in one batch), cut out
        and placed on the first draw of its own, cleared."""
        base = self.models.base()
        size = native_size(base)
        jobs = [Job([o.phrase for o in a.objects], a.background_prompt, a.negative_prompt, g)
                for a, g in zip(args, generators)]
        first = args[0]
        drawn = draw_alone(self.models, jobs, first.steps, first.guidance, size, first.redraws,
                           timings)
        return [self.placed(base, a, d, size, generator, timings)
                for a, d, generator in zip(args, drawn, generators)]

    def placed(self, base, args: LayoutArgs, drawn, size: int, generator: torch.Generator,
               timings: Timings):
        phrases = [o.phrase for o in args.objects]
        boxes = [o.box for o in args.objects]
        first = drawn.images[0]
        with timings.phase("ground"):
            canvas, hole = cleared(first, self.models.grounder.objects(first))
        composed = place(canvas, boxes, drawn, CUTOUT_MARGIN)
        params = {"mechanism": "per_box_composition", "sampler": OBJECT_SAMPLER,
                  "scene_prompt": scene_description(phrases, args.background_prompt),
                  "width": size, "height": size, **drawn.params(phrases)}
        if int(args.steps * args.harmonise) < 1:
            return [composed], {**params, "harmonised": False}

        # Harmonise inside the boxes and the cleared hole; the rest stays as composed
        region = boxes_mask(boxes, size, size) | hole
        result, steps = harmonised(self.models, composed, region, params["scene_prompt"], args,
                                   args.harmonise, generator, timings)
        return [result], {**params, "harmonised": True, "denoising_steps": steps}

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
