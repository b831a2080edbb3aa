"""A model set written as a TOML file, for the command line (`--models FILE`, or ATELIER_MODELS
naming the file):

    base = "stabilityai/stable-diffusion-xl-base-1.0"     # a hub id or a folder
    edit = "diffusers/sdxl-instructpix2pix-768"
    inpaint = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    clip = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
    detector = "google/owlv2-base-patch16-ensemble"
    segmenter = "facebook/sam-vit-base"
    dtype = "float16"
    device = "cuda"
    offload = false
    domain = "general"

Each role is a hub id or a folder; a relative folder is read from the file's own folder. Every
key is checked: a key that is not one of these, or a value of the wrong kind, is named with
what is wanted.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pipelines.errors import ModelUnavailable
from pipelines.models import DTYPES, HUB_ID, ModelConfig

ROLES = ("base", "edit", "inpaint", "clip", "detector", "segmenter", "controlnet", "ip_adapter")
# Key in the file -> (ModelConfig field, the kind of value, what to say when it is wrong).
SETTINGS = {
    "domain": ("domain", str, "a domain name such as \"general\""),
    "dtype": ("dtype", str, f"one of {', '.join(DTYPES)}"),
    "device": ("device", str, "a torch device such as \"cuda\", \"cuda:1\", \"mps\" or \"cpu\""),
    "offload": ("cpu_offload", bool, "true or false"),
    "detector_threshold": ("detector_threshold", float, "a number between 0 and 1"),
    "ip_adapter_weight": ("ip_adapter_weight", str, "\"subfolder/weights.safetensors\""),
    "ip_adapter_scale": ("ip_adapter_scale", float, "a number such as 0.6"),
}


class ModelFileError(ModelUnavailable):
    """A model file that cannot be read, or says something wrong."""


def read_model_file(path: str | Path) -> ModelConfig:
    path = Path(path).expanduser()
    where = f"model file {path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFileError(f"{where} does not exist; give a TOML file that names at least "
                             "`base`") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(f"{where} cannot be read ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise ModelFileError(f"{where} is not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(ROLES) - set(SETTINGS))
    if unknown:
        raise ModelFileError(f"{where}: unknown key {unknown[0]!r}; the keys are "
                             f"{', '.join(ROLES + tuple(SETTINGS))}")
    if "base" not in data:
        raise ModelFileError(f"{where} names no `base`; every set needs a text-to-image model")
    fields: dict[str, Any] = {}
    for role in ROLES:
        if role in data:
            fields[role] = _reference(data[role], role, path.parent, where)
    for key, (field, kind, wanted) in SETTINGS.items():
        if key not in data:
            continue
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is str and not value.strip()):
            raise ModelFileError(f"{where}: {key} = {value!r} should be {wanted}")
        fields[field] = value
    try:
        return ModelConfig(**fields)
    except ValueError as error:
        raise ModelFileError(f"{where}: {error}") from None


def _reference(value: Any, role: str, folder: Path, where: str) -> str:
    """A hub id as it is; a folder, relative to the file's own folder."""
    if not isinstance(value, str) or not value.strip():
        raise ModelFileError(f"{where}: {role} = {value!r} should be a hub id (\"owner/name\") "
                             "or a folder")
    local = Path(value).expanduser()
    if not local.is_absolute():
        beside = folder / local
        if beside.exists() or not HUB_ID.match(value):
            return str(beside)
    return str(local) if local.is_absolute() else value
