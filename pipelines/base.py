"""The adapter contract every operation follows.

    result = Adapter(models).run(args, StepInputs(image=..., references={...}))

`run` validates the arguments against the operation's spec, checks that the inputs it needs
are there, builds the one `torch.Generator` all randomness comes from (picking and recording
a seed when none is given), and times the call; the operation's own `apply` does the rest:
check inputs, prepare, run, return.

    results = adapter.run_batch([(args_1, inputs_1), (args_2, inputs_2)])

`run_batch` runs calls that share a `batch_key` as one batched pipeline call (what a
scheduler serving several sessions does), each call with its own generator from its own seed,
so each result is the image `run` makes for that seed, up to float rounding.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Hashable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from PIL import Image
from pydantic import ValidationError

from pipelines.errors import InputError
from pipelines.models import ModelSet
from pipelines.spec import OpArgs, OpSpec, problems

MAX_SEED = 2**32 - 1


@dataclass
class StepInputs:
    """The images a step works on. `image` is the current image; `mask` is a mask image that a
    `target` id names, already looked up; `references` maps the image ids the arguments name
    (references, masks) to images."""

    image: Image.Image | None = None
    mask: Image.Image | None = None
    references: Mapping[str, Image.Image] = field(default_factory=dict)


@dataclass
class StepResult:
    images: list[Image.Image]
    seed: int
    params_used: dict[str, Any]
    timings: dict[str, float]
    check: Any = None  # filled in by whoever judges the result


class Timings(dict):
    """Seconds per named phase of one call."""

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self[name] = round(self.get(name, 0.0) + time.perf_counter() - start, 4)


class Adapter:
    """One conditioning operation over diffusers. Subclasses set `spec`, load what they need in
    `ready` and do the work in `apply`."""

    spec: ClassVar[OpSpec]

    def __init__(self, models: ModelSet):
        self.models = models

    def ready(self) -> None:
        """Load every model and pipeline this operation uses (the first call pays for it)."""
        self.models.base()

    def apply(self, args: OpArgs, inputs: StepInputs, generator: torch.Generator,
              timings: Timings) -> tuple[list[Image.Image], dict[str, Any]]:
        """The operation itself: returns the images and the parameters it chose on its own."""
        raise NotImplementedError

    def batch_key(self, args: OpArgs, inputs: StepInputs) -> Hashable | None:
        """What calls must have in common to run as one batched pipeline call (the settings
        a pipeline takes once per call); None when this call runs alone."""
        return None

    def apply_batch(self, args: list[OpArgs], inputs: list[StepInputs],
                    generators: list[torch.Generator], timings: Timings
                    ) -> list[tuple[list[Image.Image], dict[str, Any]]]:
        """Several calls with one batch key; operations without a batched form run them one
        after another."""
        return [self.apply(a, i, g, timings) for a, i, g in zip(args, inputs, generators)]

    def run(self, args: OpArgs | Mapping[str, Any], inputs: StepInputs | None = None, *,
            generator: torch.Generator | None = None) -> StepResult:
        """Run the operation. The seed is `args.seed`, else a given generator's initial seed,
        else a new one; the result records it either way."""
        args, inputs, seed = self._prepare(args, inputs, generator)
        # On the CPU, so a seed gives the same noise on every device.
        generator = torch.Generator("cpu").manual_seed(seed)

        timings = Timings()
        loaded_before = self.models.load_seconds
        with timings.phase("total"):
            self.ready()
            with torch.no_grad():
                images, chosen = self.apply(args, inputs, generator, timings)
        timings["load"] = round(self.models.load_seconds - loaded_before, 4)
        params = {**args.model_dump(), "seed": seed, **chosen}
        return StepResult(images=images, seed=seed, params_used=params, timings=dict(timings))

    def run_batch(self, calls: list[tuple[OpArgs | Mapping[str, Any], StepInputs | None]]
                  ) -> list[StepResult]:
        """Calls that share a batch key, as one batched call; each result as `run` gives it
        (the same seed and parameters, the same image up to float rounding), in order."""
        prepared = [self._prepare(args, inputs, None) for args, inputs in calls]
        keys = {self.batch_key(args, inputs) for args, inputs, _ in prepared}
        if None in keys or len(keys) != 1:
            raise ValueError(f"{self.spec.name}: these calls cannot share one batched call "
                             f"(batch keys {sorted(map(str, keys))}); run them one at a time")
        generators = [torch.Generator("cpu").manual_seed(seed) for _, _, seed in prepared]

        timings = Timings()
        loaded_before = self.models.load_seconds
        with timings.phase("total"):
            self.ready()
            with torch.no_grad():
                outputs = self.apply_batch([a for a, _, _ in prepared],
                                           [i for _, i, _ in prepared], generators, timings)
        timings["load"] = round(self.models.load_seconds - loaded_before, 4)
        timings["batch"] = len(calls)  # every call of the batch reports the batch's times
        return [StepResult(images=images, seed=seed, timings=dict(timings),
                           params_used={**args.model_dump(), "seed": seed, **chosen})
                for (images, chosen), (args, _, seed) in zip(outputs, prepared)]

    def _prepare(self, args, inputs, generator) -> tuple[OpArgs, StepInputs, int]:
        """Validated arguments, the inputs checked against what the operation needs, and the
        seed: `args.seed`, else `generator`'s initial seed, else a new one."""
        args = self.validate(args)
        inputs = inputs or StepInputs()
        for need in sorted(self.spec.needs):
            if need == "image" and inputs.image is None:
                raise InputError("image", f"{self.spec.name} works on the current image; "
                                          "supply one")
            if need == "reference" and not inputs.references:
                raise InputError("reference", f"{self.spec.name} needs a reference image; "
                                              "supply one")
        # The seed is always recorded, so any result can be made again.
        if args.seed is not None:
            seed = args.seed
        elif generator is not None:
            seed = generator.initial_seed()
        else:
            seed = secrets.randbelow(MAX_SEED + 1)
        return args, inputs, seed

    def validate(self, args: OpArgs | Mapping[str, Any]) -> OpArgs:
        schema = self.spec.args_schema
        if isinstance(args, OpArgs) and not isinstance(args, schema):
            raise InputError("args", f"{type(args).__name__} given; {self.spec.name} takes "
                                     f"{schema.__name__}")
        try:
            return schema.model_validate(args if isinstance(args, Mapping) else args.model_dump())
        except ValidationError as error:
            (argument, message), *others = problems(error)
            message = "; ".join([message] + [f"{name}: {text}" for name, text in others])
            raise InputError(argument, message) from None


def check_image(image: Image.Image, argument: str, multiple: int) -> Image.Image:
    """An RGB image whose sides the model's latent grid divides; no silent resizing."""
    if not isinstance(image, Image.Image):
        raise InputError(argument, f"expected a PIL image, got {type(image).__name__}")
    width, height = image.size
    if width % multiple or height % multiple:
        raise InputError(argument, f"image is {width}x{height}; this model needs sides that are "
                                   f"multiples of {multiple}: crop or resize it first")
    return image.convert("RGB")


# How an image of other sides is brought to the model's: as diffusers' image processors do.
FIT_RESAMPLING = Image.Resampling.LANCZOS


def fit_image(image: Image.Image, argument: str, multiple: int
              ) -> tuple[Image.Image, str | None]:
    """An RGB image whose sides the model's latent grid divides: one that is not is resized to
    the nearest multiples (as diffusers' image processors do), with a note saying so."""
    image = check_image(image, argument, 1)
    width, height = image.size
    fitted = tuple(max(multiple, round(v / multiple) * multiple) for v in (width, height))
    if fitted == (width, height):
        return image, None
    return image.resize(fitted, FIT_RESAMPLING), (
        f"{argument} {width}x{height} resized to {fitted[0]}x{fitted[1]}, the nearest sides "
        f"this model takes (multiples of {multiple})")


def with_note(params: dict, *notes: str | None) -> dict:
    """`params` with the notes that apply joined under "note"."""
    said = [n for n in notes if n]
    return {**params, "note": "; ".join(said)} if said else params


def check_same_size(image: Image.Image, other: Image.Image, argument: str) -> None:
    if other.size != image.size:
        raise InputError(argument, f"is {other.size[0]}x{other.size[1]} but the current image is "
                                   f"{image.size[0]}x{image.size[1]}; give one of the same size")


def reference_image(inputs: StepInputs, image_id: str, argument: str = "reference") -> Image.Image:
    try:
        return inputs.references[image_id]
    except KeyError:
        known = ", ".join(inputs.references) or "none"
        raise InputError(argument, f"image {image_id} was not supplied with the step "
                                   f"(supplied: {known}); supply it or name another") from None
