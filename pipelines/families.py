"""Model families, read from a loaded pipeline's own components and configs (never its name).

    family = family_of(pipe)          # SD 1.x/2.x, SDXL, SD3 or FLUX
    width, height, note = fit_size(pipe, 1000, 700)

- SD 1.x/2.x: a UNet over one CLIP text encoder; every operation runs on it, the hand-written
  sampling loops (inversion, attention control, RePaint, multidiffusion) included.
- SDXL: a UNet conditioned on two text encoders and added time ids (`addition_embed_type`
  "text_time").
- SD3: an MMDiT (`SD3Transformer2DModel`: a `joint_attention_dim` and pooled projections, no
  rotary axes) over three encoders, sampled by flow matching with its scheduler's shift.
- FLUX: a transformer with rotary axes (`axes_dims_rope`) over CLIP and T5, on 2 x 2-packed
  latents, flow matching; `guidance_embeds` marks a guidance-distilled model (FLUX.1-dev),
  which takes its guidance as an input instead of a second, unconditional pass.

On SDXL, SD3 and FLUX the operations run through diffusers' own pipelines for the family
(text-to-image, image-to-image, inpainting from the same components); the operations whose
loops are written for one text encoder and a UNet refuse in one line that names the family
and what does run on it.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipelines.errors import ModelUnavailable, NotOnThisFamily

# What runs through the family's own diffusers pipelines, on every family.
EVERY_FAMILY = ("generate", "inpaint", "reference", "layout", "compose", "restore")


@dataclass(frozen=True)
class Family:
    key: str                     # sd, sdxl, sd3, flux
    name: str                    # as people say it
    flow: bool                   # flow matching (velocity), not noise prediction
    steps: int                   # the project's default number of steps
    guidance: float              # the project's default guidance
    operations: tuple[str, ...]  # what runs on it
    distilled_guidance: bool = False

    def refuse(self, operation: str) -> NotOnThisFamily:
        return NotOnThisFamily(
            f"{operation} does not run on {self.name} models (its sampling loop is written for "
            f"Stable Diffusion 1.x/2.x); on {self.name} these run: {', '.join(self.operations)}")


SD = Family("sd", "Stable Diffusion 1.x/2.x", False, 20, 5.0,
            EVERY_FAMILY + ("edit", "invert_edit"))
SDXL = Family("sdxl", "SDXL", False, 30, 5.0, EVERY_FAMILY + ("edit",))
SD3 = Family("sd3", "SD3", True, 28, 7.0, EVERY_FAMILY)
FLUX_DEV = Family("flux", "FLUX", True, 28, 3.5, EVERY_FAMILY, distilled_guidance=True)
# FLUX.1-schnell: timestep-distilled, no guidance input, a few steps.
FLUX_SCHNELL = Family("flux", "FLUX", True, 4, 0.0, EVERY_FAMILY)


def family_of(pipe) -> Family:
    """The family of a loaded pipeline, from its denoiser's config."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is not None:
        return family_from_config("transformer", transformer.config)
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise ModelUnavailable(f"the base model, a {type(pipe).__name__}, has neither a UNet nor "
                               "a transformer; give a text-to-image model")
    return family_from_config("unet", unet.config)


def family_from_config(denoiser: str, config) -> Family:
    """The family a denoiser's config (`unet` or `transformer`) says."""
    if denoiser == "transformer":
        if "axes_dims_rope" in config:
            return FLUX_DEV if config.get("guidance_embeds", False) else FLUX_SCHNELL
        if "pooled_projection_dim" in config and "joint_attention_dim" in config:
            return SD3
        raise ModelUnavailable("the base model's transformer is not one of the families "
                               "Atelier runs (SD 1.x/2.x, SDXL, SD3, FLUX)")
    return SDXL if config.get("addition_embed_type") == "text_time" else SD


def family_of_checkpoint(location: str) -> Family:
    """The family of a checkpoint folder or hub id, read from its config files alone (no
    weights are loaded)."""
    import json
    from pathlib import Path

    def read(name: str) -> dict:
        folder = Path(location)
        if folder.is_dir():
            return json.loads((folder / name).read_text())
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(location, name)).read_text())

    index = read("model_index.json")
    denoiser = "transformer" if "transformer" in index else "unet"
    return family_from_config(denoiser, read(f"{denoiser}/config.json"))


def uses_own_loops(pipe) -> bool:
    """Do the project's hand-written sampling loops (one text encoder, a UNet) serve this
    pipeline? Otherwise an operation goes through the family's diffusers pipelines."""
    return family_of(pipe) is SD


def require_own_loops(pipe, operation: str) -> None:
    """A refusal, naming the family and what runs on it, of an operation whose loop is written
    for SD 1.x/2.x's UNet and one text encoder, on any other family."""
    if not uses_own_loops(pipe):
        raise family_of(pipe).refuse(operation)


def size_multiple(pipe) -> int:
    """Pixels per latent cell times the denoiser's patch: 8 for SD and SDXL, 16 for SD3 and
    FLUX (2 x 2 patches or packed latents)."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        return pipe.vae_scale_factor
    patch = transformer.config.get("patch_size", 1)
    if "axes_dims_rope" in transformer.config:
        patch = 2          # FLUX packs 2 x 2 latent cells into one token
    return pipe.vae_scale_factor * patch


def native_size(pipe) -> int:
    """The side the model was trained at, in pixels."""
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        return unet.config.sample_size * pipe.vae_scale_factor
    transformer = pipe.transformer
    if "sample_size" in transformer.config and "axes_dims_rope" not in transformer.config:
        return transformer.config.sample_size * pipe.vae_scale_factor
    # FLUX's transformer has no size of its own; its autoencoder's is the training size.
    return pipe.vae.config.get("sample_size", 1024)


def fit_size(pipe, width: int, height: int) -> tuple[int, int, str | None]:
    """`width` x `height` brought to the nearest multiples the family takes (at least one),
    with a note saying so when it changed."""
    multiple = size_multiple(pipe)
    fitted = [max(multiple, round(v / multiple) * multiple) for v in (width, height)]
    if fitted == [width, height]:
        return width, height, None
    return fitted[0], fitted[1], (f"{width}x{height} is not a multiple of {multiple} as "
                                  f"{family_of(pipe).name} models need; made {fitted[0]}x"
                                  f"{fitted[1]}")


def sampling_defaults(pipe, args) -> dict:
    """The family's steps and guidance for the arguments a step left at their defaults; on
    SD 1.x/2.x the operations' own defaults stand (measured on the shipped model)."""
    family = family_of(pipe)
    if family is SD:
        return {}
    given = args.model_fields_set
    chosen = {}
    if "steps" in type(args).model_fields and "steps" not in given:
        chosen["steps"] = family.steps
    if "guidance" in type(args).model_fields and "guidance" not in given:
        chosen["guidance"] = family.guidance
    return chosen


def accepted(pipe, **arguments) -> dict:
    """The arguments the pipeline's call takes (not every family's takes a negative prompt),
    leaving out those that are None."""
    import inspect

    takes = inspect.signature(type(pipe).__call__).parameters
    return {k: v for k, v in arguments.items() if k in takes and v is not None}
