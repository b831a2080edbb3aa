"""Operation specs: what each conditioning operation is called, takes and needs.

Planners read these (names, descriptions, argument schemas) and the agent validates plans
against them; neither needs torch or weights, so nothing here imports them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

# Session images and retrieved exemplars are referred to by id, never by path.
IMAGE_ID_PATTERN = r"^(img|ref)_[0-9]{1,9}$"
ImageId = Annotated[str, Field(pattern=IMAGE_ID_PATTERN, description="an image id such as img_3 or ref_1")]
Box = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]],
                Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in 0..1, y down")]
Prompt = Annotated[str, Field(min_length=1, max_length=500)]
SAMPLERS = ("dpm++2m", "ddim", "euler", "euler_a")
LAYOUT_METHODS = ("per_box", "multidiffusion")


def check_box(box: list[float]) -> list[float]:
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box {box} is empty: it needs x0 < x1 and y0 < y1")
    return box


class OpArgs(BaseModel):
    """Arguments every sampling operation takes."""

    # NaN and infinities pass no sampler sensibly; refuse them with their own message.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="same seed, same image")
    steps: int = Field(20, ge=1, le=200, description="denoising steps")
    guidance: float = Field(5.0, ge=0.0, le=30.0, description="classifier-free guidance scale")
    negative_prompt: str = Field("", max_length=500, description="what to steer away from")

    @field_validator("guidance")
    @classmethod
    def finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("guidance must be a finite number")
        return value


class GenerateArgs(OpArgs):
    prompt: Prompt = Field(description="what to draw")
    # The fewest steps within one point of 50-step DDIM on 120 compositional prompts
    # (bench/sampling.py, shipped shapes-sd): DPM-Solver++ 2M at 20 (72.5% vs 73.3%); DDIM
    # and Euler stay 1.6 points short even at 30, and reach 70.0% at 10.
    sampler: Literal[SAMPLERS] = Field(
        "dpm++2m", description="DPM-Solver++ 2M, DDIM, Euler or Euler ancestral")
    steps: int = Field(20, ge=1, le=200, description="denoising steps")
    # None means the model's native size (128 for the shapes model, 512 for SD 1.x), so the
    # same plan runs on any base model; any other size is brought to the family's multiple
    # (8, or 16 for SD3 and FLUX) with a note (pipelines/families.py).
    width: int | None = Field(None, ge=64, le=2048,
                              description="pixels; default: the model's native size")
    height: int | None = Field(None, ge=64, le=2048,
                               description="pixels; default: the model's native size")
    num_images: int = Field(1, ge=1, le=8, description="images to make in one batch")


class EditArgs(OpArgs):
    instruction: Prompt = Field(description="what to change, e.g. 'make the circle green'")
    image_guidance: float = Field(1.5, ge=0.0, le=10.0, description="how closely to keep the input image")


class LayoutObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phrase: Prompt = Field(description="the object, e.g. 'a red circle'")
    box: Box

    @field_validator("box")
    @classmethod
    def valid_box(cls, value):
        return check_box(value)


class InpaintArgs(OpArgs):
    prompt: Prompt = Field(description="the whole image as it should look afterwards")
    target: Union[ImageId, list[Box], Prompt] = Field(
        description="where to repaint: a mask image id (white = repaint), a list of boxes, or an "
                    "object description such as 'the red circle'")
    resample: int = Field(1, ge=1, le=10, description="RePaint resampling rounds per step")
    objects: list[LayoutObject] | None = Field(
        None, max_length=8, description="objects to put in the region, each {phrase, box}: each "
        "is drawn alone and placed in its box, the rest of the region filled from around it; "
        "[] only clears the region")
    redraws: int = Field(2, ge=0, le=8, description="with objects: more draws of an object that "
                                                    "the grounding tool cannot find in its image")
    harmonise: float = Field(0.0, ge=0.0, le=1.0, description="with objects: how much of the region "
                             "to redraw under the prompt so the placed objects blend in")

    @field_validator("target")
    @classmethod
    def boxes_not_empty(cls, value):
        if isinstance(value, list):
            if not value:
                raise ValueError("target boxes must not be empty")
            return [check_box(b) for b in value]
        return value


class LayoutArgs(OpArgs):
    objects: list[LayoutObject] = Field(min_length=1, max_length=8,
                                        description="objects, each {phrase, box}")
    background_prompt: str = Field("", max_length=500,
                                   description="the rest of the image, e.g. 'on a gray background'")
    method: Literal[LAYOUT_METHODS] = Field(
        "per_box", description="per_box: each object drawn alone, cut out and placed in its box; "
                               "multidiffusion: one canvas, each box's prediction blended in")
    redraws: int = Field(2, ge=0, le=8, description="per_box: more draws of an object that the "
                                                    "grounding tool cannot find in its image")
    # 0 by default: the shapes model redraws small squares as circles even at 0.15.
    harmonise: float = Field(0.0, ge=0.0, le=1.0, description="per_box: how much of the boxes "
                             "to redraw so the pasted objects blend in (photographs); 0 pastes only")
    attention_guidance: float = Field(0.0, ge=0.0, le=50.0, description="multidiffusion: strength "
                                      "of cross-attention guidance toward the boxes")
    bootstrap: float = Field(0.2, ge=0.0, le=1.0,
                             description="multidiffusion: fraction of the first steps in which each "
                                         "box is drawn alone on a flat backdrop, so its object "
                                         "fills the box")

    @field_validator("attention_guidance")
    @classmethod
    def guidance_needs_one_canvas(cls, value, info):
        if value > 0 and info.data.get("method") != "multidiffusion":
            raise ValueError("guides a single canvas; set method to 'multidiffusion' with it, or "
                             "leave it at 0")
        return value


class ReferenceArgs(OpArgs):
    prompt: Prompt = Field(description="what to draw")
    reference: ImageId
    strength: float = Field(0.6, ge=0.0, le=1.0, description="0 keeps the reference, 1 ignores it")


class ComposeArgs(OpArgs):
    reference: ImageId
    box: Box
    prompt: str = Field("", max_length=500, description="the whole image, to guide harmonising")
    strength: float = Field(0.3, ge=0.0, le=1.0, description="how much to re-draw when harmonising")

    @field_validator("box")
    @classmethod
    def valid_box(cls, value):
        return check_box(value)


class RestoreArgs(OpArgs):
    prompt: str = Field("", max_length=500, description="what the image shows, if known")
    strength: float = Field(0.5, ge=0.0, le=1.0, description="how much to re-draw")
    upscale: int = Field(1, ge=1, le=8,
                         description="enlarge a low-resolution image by this factor first")
    consistency: int = Field(4, ge=0, le=16,
                             description="data consistency: the result keeps the input's content "
                                         "coarser than this many latent pixels; 0 turns it off")


class InvertEditArgs(OpArgs):
    source_prompt: Prompt = Field(description="what the current image shows")
    target_prompt: Prompt = Field(description="what it should show instead")
    # Every step by default: on the shapes world, handing the target its own word-to-region
    # attention for the last fifth of the steps moved or misshaped the recoloured object
    # (recolour success 65.0% at 0.8, 72.5% at 1.0 on 40 tuning scenes).
    cross_attention_steps: float = Field(
        1.0, ge=0.0, le=1.0, description="fraction of the steps that reuse the source's "
                                         "word-to-region attention (prompt-to-prompt)")
    self_attention_steps: float = Field(1.0, ge=0.0, le=1.0,
                                        description="fraction of the steps that reuse the source's "
                                                    "self-attention, which holds its layout")
    # A third: on the shapes world, fewer steps let the recoloured object drift toward where
    # the model draws its place words, more kept its old colour (recolour success 77.5, 85.0,
    # 82.5 and 72.5% at 0.15, 0.3, 0.4 and 0.5 on 40 tuning scenes; 72.5% without).
    feature_injection_steps: float = Field(
        0.3, ge=0.0, le=1.0, description="fraction of the first steps that reuse the source's "
                                         "decoder features, which hold where each object is "
                                         "(plug-and-play); 0 turns it off")
    local_blend: float = Field(0.3, ge=0.0, le=1.0,
                               description="keep everything outside the changed words' attention "
                                           "above this level as it was; 0 turns it off")


@dataclass(frozen=True)
class OpSpec:
    name: str
    description: str
    args_schema: type[OpArgs]
    needs: frozenset[str] = frozenset()  # of "image", "mask", "reference"

    def validate(self, args: dict) -> OpArgs:
        return self.args_schema.model_validate(args)


def _spec(name, description, schema, *needs) -> OpSpec:
    return OpSpec(name, description, schema, frozenset(needs))


OPERATIONS: dict[str, OpSpec] = {spec.name: spec for spec in (
    _spec("generate", "Make a new image from a text prompt (classifier-free guidance).", GenerateArgs),
    _spec("edit", "Change the current image as an instruction says, keeping the rest "
                  "(instruction-tuned editing).", EditArgs, "image"),
    _spec("inpaint", "Redraw only a region of the current image (a mask, boxes, or an object "
                     "description) from a prompt; everything outside stays as it was.", InpaintArgs, "image"),
    _spec("layout", "Make a new image with each object phrase inside its own box (each object "
                    "drawn alone and placed, or region-wise noise blending).", LayoutArgs),
    _spec("reference", "Make a new image that follows a reference image's look and layout, "
                       "guided by a prompt (SDEdit from the reference).", ReferenceArgs, "reference"),
    _spec("compose", "Paste a reference object into a box of the current image and "
                     "harmonise it.", ComposeArgs, "image", "reference"),
    _spec("restore", "Repair a noisy, blurred or low-resolution current image.", RestoreArgs, "image"),
    _spec("invert_edit", "Invert the current image, then regenerate it with an edited prompt, "
                         "keeping its structure.", InvertEditArgs, "image"),
)}


def explain(error: ValidationError) -> str:
    """One line naming each bad argument and what it needs, e.g.
    "steps: input should be less than or equal to 200 (got 500)"."""
    return "; ".join(f"{name}: {message}" for name, message in problems(error))


def problems(error: ValidationError) -> list[tuple[str, str]]:
    """(argument, what is wrong and what it needs) for each error."""
    found = []
    for item in error.errors():
        name = ".".join(str(p) for p in item["loc"]) or "arguments"
        if not name.isprintable() or len(name) > 60:  # an unknown key is the caller's text
            name = repr(name[:57])
        if item["type"] == "missing":
            found.append((name, "required; set it"))
        elif item["type"] == "extra_forbidden":
            found.append((name, "not an argument of this operation; remove it"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            given = repr(item["input"])
            if len(given) > 60:  # a 10,000-character prompt need not be echoed back whole
                given = given[:57] + "..."
            found.append((name, f"{message[0].lower()}{message[1:]} (got {given})"))
    return found


def describe_arguments(spec: OpSpec) -> list[dict]:
    """Each argument's name, type, default (absent when required) and description."""
    rows = []
    for name, field in spec.args_schema.model_fields.items():
        is_image_id = any(getattr(m, "pattern", None) == IMAGE_ID_PATTERN for m in field.metadata)
        row = {"name": name, "type": "image id" if is_image_id else _type_name(field.annotation),
               "description": field.description or ""}
        if not field.is_required():
            row["default"] = field.get_default(call_default_factory=True)
        rows.append(row)
    return rows


def _type_name(annotation) -> str:
    for alias, name in ((ImageId, "image id"), (Box, "box"), (Prompt, "text")):
        if annotation == alias:
            return name
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is list:
        return f"list[{_type_name(args[0])}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def get_spec(name: str) -> OpSpec:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}; known: {', '.join(OPERATIONS)}") from None
