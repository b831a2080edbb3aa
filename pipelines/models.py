"""Which models the operations run on, and loading each of them once.

Every role is a hub id or a local folder: `base` (text-to-image, Stable Diffusion format),
`edit` (InstructPix2Pix format), `clip` (open_clip), and the optional `ip_adapter` and
`controlnet`. `ModelSet` loads a role the first time an operation asks for it, once, however
many threads ask at that moment (pipelines/once.py); every other pipeline is built on the base
model's components with `from_pipe`, so all operations share one copy of the weights. Nothing
is loaded when this module is imported.
"""
from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import ModelUnavailable
from pipelines.once import Once, OnceMap, building

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline

    from pipelines.grounding import Grounder

# The shapes-world models Atelier ships, by role.
SHIPPED = {"base": "shapes-sd", "edit": "shapes-ip2p", "clip": "shapes-clip",
           "detector": "shapes-detector", "segmenter": "shapes-segmenter"}
# Settings the shipped models come with: the detector's threshold from its model card.
SHIPPED_SETTINGS = {"detector_threshold": 0.5}
SHIPPED_DOMAIN = "shapes"
SHIPPED_HINT = ("it ships in the models/ folder of Atelier's source tree (or set ATELIER_MODELS "
                "to a folder that holds it); or choose another model by hub id or local folder")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
DTYPES = ("float16", "bfloat16", "float32")
# Components an InstructPix2Pix model takes over unchanged from its base (its training
# leaves the VAE and text encoders frozen), so they are loaded once.
SHAREABLE = ("vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2")


@dataclass(frozen=True)
class ModelConfig:
    base: str
    edit: str | None = None
    # An inpainting-trained checkpoint (a 9-channel UNet, FLUX Fill); without one, inpaint
    # runs on the base model with a masked sampling loop.
    inpaint: str | None = None
    clip: str | None = None
    ip_adapter: str | None = None
    # Inside the ip_adapter repo or folder: "subfolder/weight file".
    ip_adapter_weight: str = "models/ip-adapter_sd15.safetensors"
    ip_adapter_scale: float = 0.6
    controlnet: str | None = None
    # Eyes for a domain without a reader of its own: an open-vocabulary detector
    # (zero-shot-object-detection, e.g. OWLv2) and a SAM-format segmenter, folders or hub ids.
    detector: str | None = None
    segmenter: str | None = None
    # The detector's score threshold: its model card's (None: OWL-ViT's usual 0.1).
    detector_threshold: float | None = None
    device: str | None = None   # None: CUDA, else MPS, else CPU
    dtype: str | None = None    # None: float16 on CUDA, float32 elsewhere
    cpu_offload: bool = False   # keep models on the CPU, moving each to the GPU while it runs
    share_edit_components: bool = True
    # The kind of picture the set makes, naming a domain (agent/domains): "shapes" for the
    # shipped models; None for any other set (the general domain).
    domain: str | None = None

    def __post_init__(self):
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")

    @classmethod
    def shipped(cls, root: str | Path, **overrides) -> "ModelConfig":
        """The shipped shapes-world models in `root`, with any role or setting overridden."""
        root = Path(root)
        config = cls(**{role: str(root / name) for role, name in SHIPPED.items()},
                     **SHIPPED_SETTINGS, domain=SHIPPED_DOMAIN)
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def locate(role: str, reference: str, marker: str | None = "model_index.json") -> str:
    """A local folder (checked for `marker`) or a hub id; anything else is a missing folder."""
    path = Path(reference).expanduser()
    if path.is_dir():
        if marker and not (path / marker).is_file():
            raise ModelUnavailable(
                f"{role} model folder {path} has no {marker}; give a folder saved with "
                "diffusers' save_pretrained, or a hub id", role)
        return str(path)
    # "models/x" that does not exist is a wrong path, not a hub repository.
    first = Path(path.parts[0]) if path.parts else path
    if HUB_ID.match(reference) and not first.exists():
        return reference
    hint = SHIPPED_HINT if path.name in SHIPPED.values() else \
        "check the path, or give a hub id such as 'owner/name'"
    raise ModelUnavailable(f"{role} model {path} is missing; {hint}", role)


def resolve_device(name: str | None) -> "torch.device":
    import torch

    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if not available.get(device.type, False):
        raise ModelUnavailable(f"device {name!r} is not available here; use cpu, or leave the "
                               "device unset to pick the best one")
    return device


def resolve_dtype(device: "torch.device", name: str | None) -> "torch.dtype":
    import torch

    if name is None:
        # Half precision halves memory and time on CUDA; elsewhere float32 is the safe choice.
        name = "float16" if device.type == "cuda" else "float32"
    return getattr(torch, name)


def dtype_argument(dtype: "torch.dtype") -> dict:
    """diffusers renamed `torch_dtype` to `dtype`; speak whichever the installed one knows."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401  (new name)
    except ImportError:
        return {"torch_dtype": dtype}
    return {"dtype": dtype}


class ModelSet:
    """The models of one configuration, each loaded once on first use.

    `base()` is the text-to-image pipeline; `derive(cls)` builds another pipeline class on its
    components (img2img, GLIGEN, ...); `edit()` loads the InstructPix2Pix model, sharing the
    base's VAE and text encoder. `load_seconds` adds up the time spent loading.
    """

    def __init__(self, config: ModelConfig, grounder: "Grounder | None" = None):
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(self.device, config.dtype)
        if config.cpu_offload and self.device.type != "cuda":
            raise ModelUnavailable("cpu_offload moves models to a CUDA GPU while they run; "
                                   f"this device is {self.device.type}: turn cpu_offload off")
        self._grounder = Once()
        if grounder is not None:
            self._grounder.get(lambda: grounder)
        self._base: Once[DiffusionPipeline] = Once()
        self._edit: Once[DiffusionPipeline] = Once()
        self._inpaint: Once[DiffusionPipeline] = Once()
        self._family: Once = Once()
        self._derived: OnceMap[DiffusionPipeline] = OnceMap()
        self._hooked: DiffusionPipeline | None = None
        self._clip: Once[tuple] = Once()
        self.load_seconds = 0.0

    # -- pipelines --------------------------------------------------------------------------

    def base(self) -> "DiffusionPipeline":
        return self._activate(self._base.get(lambda: self._load("base", self.config.base)))

    def derive(self, pipeline_class) -> "DiffusionPipeline":
        """A `pipeline_class` pipeline on the base's components: no new weights."""
        def make():
            return self._prepare(self._from_pipe(pipeline_class, self.base()))

        return self._activate(self._derived.get(pipeline_class, make))

    def with_sampler(self, sampler: str) -> "DiffusionPipeline":
        """The base pipeline with a `sampler` scheduler (see sampling.make_scheduler) in place of
        the loaded one, which stays as it was for the other pipelines."""
        from pipelines.families import family_of
        from pipelines.sampling import make_scheduler

        base = self.base()
        if family_of(base).flow:
            # The samplers are solvers for noise-predicting models; a flow-matching model
            # keeps its own scheduler, with the shift it was trained with.
            return base

        def make():
            scheduler = make_scheduler(base.scheduler.config, sampler)
            return self._prepare(self._from_pipe(type(base), base, scheduler=scheduler))

        return self._activate(self._derived.get((type(base), sampler), make))

    def edit(self) -> "DiffusionPipeline":
        return self._activate(self._edit.get(self._load_edit))

    def family(self):
        """The base model's family (pipelines/families.py), from its config files when they
        can be read, so that knowing it loads no weights; else from the loaded model."""
        def read():
            from pipelines.families import family_of, family_of_checkpoint

            try:
                return family_of_checkpoint(locate("base", self.config.base))
            except (OSError, ValueError, KeyError):
                return family_of(self.base())

        return self._family.get(read)

    def operations(self) -> tuple[str, ...]:
        """The operations this set can run: those of the base model's family
        (pipelines/families.py) that the set has the parts for."""
        missing = self.missing_parts()
        return tuple(op for op in self.family().operations if op not in missing)

    def missing_parts(self) -> dict[str, str]:
        """Each operation of the base model's family that this set lacks a part for, and the
        part."""
        from pipelines.grounding import NoGrounder

        family = self.family()
        missing = {}
        if self.config.edit is None:
            missing["edit"] = "InstructPix2Pix-format edit model"
        if isinstance(self.grounder, NoGrounder):
            missing["compose"] = "grounding model (a detector)"
            # Without one a layout is one canvas, which SD alone runs.
            if family.key != "sd":
                missing["layout"] = "grounding model (a detector) for per-box layout"
        return {op: part for op, part in missing.items() if op in family.operations}

    def inpainting(self) -> "DiffusionPipeline":
        """The set's inpainting checkpoint, else the family's inpainting pipeline on the base
        model's components (it blends the known latents back outside the mask each step)."""
        if self.config.inpaint is None:
            from diffusers import AutoPipelineForInpainting

            return self.derive(AutoPipelineForInpainting)
        return self._activate(self._inpaint.get(
            lambda: self._load("inpaint", self.config.inpaint)))

    def _load_edit(self) -> "DiffusionPipeline":
        if self.config.edit is None:
            raise ModelUnavailable("no edit model is configured; give an InstructPix2Pix-"
                                   "format model (hub id or folder) as the edit model", "edit")
        shared = {}
        if self.config.share_edit_components:
            base = self.base()
            shared = {name: getattr(base, name) for name in SHAREABLE
                      if getattr(base, name, None) is not None}
        pipe = self._load("edit", self.config.edit, **shared)
        channels = pipe.unet.config.in_channels
        if channels != 2 * pipe.vae.config.latent_channels:
            raise ModelUnavailable(
                f"edit model {self.config.edit} is not in InstructPix2Pix format: its UNet "
                f"takes {channels} input channels, not noisy + image latents "
                f"({2 * pipe.vae.config.latent_channels})", "edit")
        encoders = (pipe.text_encoder, getattr(pipe, "text_encoder_2", None))
        width = sum(e.config.hidden_size for e in encoders if e is not None)
        attends = pipe.unet.config.cross_attention_dim
        if shared and attends != width:
            raise ModelUnavailable(
                f"edit model {self.config.edit} attends to {attends}-wide text states but the "
                f"base's text encoder gives {width}: it was not fine-tuned from this base; "
                "set share_edit_components=False to load its own", "edit")
        return pipe

    def clip(self):
        """The open_clip model, its image transform and tokenizer."""
        return self._clip.get(self._load_clip)

    def _load_clip(self) -> tuple:
        import open_clip

        if self.config.clip is None:
            raise ModelUnavailable("no clip model is configured; give an open_clip model "
                                   "folder or hub id", "clip")
        location = locate("clip", self.config.clip, marker="open_clip_config.json")
        name = f"local-dir:{location}" if Path(location).is_dir() else f"hf-hub:{location}"
        start = time.perf_counter()
        with building():
            model, _, preprocess = open_clip.create_model_and_transforms(name, device=self.device)
        self.load_seconds += time.perf_counter() - start
        return model.eval(), preprocess, open_clip.get_tokenizer(name)

    @contextmanager
    def ip_adapter(self, pipeline: "DiffusionPipeline"):
        """`pipeline` with the configured IP-Adapter loaded, for the length of a `with` block.

        Loading changes the shared UNet's attention processors, which every other operation
        would then need image embeddings for; so it lives only as long as the call using it.
        """
        location = locate("ip_adapter", self.config.ip_adapter, marker=None)
        subfolder, _, weight_name = self.config.ip_adapter_weight.rpartition("/")
        start = time.perf_counter()
        try:
            with building():
                pipeline.load_ip_adapter(location, subfolder=subfolder or None,
                                         weight_name=weight_name)
        except (OSError, ValueError) as error:
            raise ModelUnavailable(f"ip_adapter {self.config.ip_adapter}: could not load "
                                   f"{self.config.ip_adapter_weight} ({error})",
                                   "ip_adapter") from error
        self.load_seconds += time.perf_counter() - start
        pipeline.set_ip_adapter_scale(self.config.ip_adapter_scale)
        try:
            yield pipeline
        finally:
            pipeline.unload_ip_adapter()

    @property
    def grounder(self) -> "Grounder":
        """The grounding tool the set was given (its domain's); without one, a NoGrounder
        that says what is missing."""
        def make():
            from pipelines.grounding import NoGrounder
            return NoGrounder()

        return self._grounder.get(make)

    # -- loading ----------------------------------------------------------------------------

    def _load(self, role: str, reference: str, **components) -> "DiffusionPipeline":
        from diffusers import DiffusionPipeline

        location = locate(role, reference)
        start = time.perf_counter()
        with building():
            try:
                pipe = DiffusionPipeline.from_pretrained(location, **dtype_argument(self.dtype),
                                                         **components)
            except (OSError, ValueError) as error:
                raise ModelUnavailable(f"{role} model {reference}: could not load it ({error})",
                                       role) from error
            if not self.config.cpu_offload:
                pipe.to(self.device)
        self.load_seconds += time.perf_counter() - start
        return self._prepare(pipe)

    def _from_pipe(self, pipeline_class, pipeline, **components):
        from diffusers import DiffusionPipeline

        # from_pipe builds the modules the new class has and the base lacks (GLIGEN's
        # position net), so it counts as a build.
        with building():
            if issubclass(pipeline_class, DiffusionPipeline):
                # DiffusionPipeline.from_pipe casts to float32 unless told the dtype.
                return pipeline_class.from_pipe(pipeline, **dtype_argument(self.dtype),
                                                **components)
            return pipeline_class.from_pipe(pipeline, **components)  # AutoPipeline classes

    @staticmethod
    def _prepare(pipe: "DiffusionPipeline") -> "DiffusionPipeline":
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _activate(self, pipe: "DiffusionPipeline") -> "DiffusionPipeline":
        # Offload hooks live on the shared modules, so they are re-chained for whichever
        # pipeline is about to run.
        if self.config.cpu_offload and self._hooked is not pipe:
            pipe.enable_model_cpu_offload(device=self.device)
            self._hooked = pipe
        return pipe
