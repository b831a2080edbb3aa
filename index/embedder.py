"""Images and texts -> L2-normalised float32 vectors with an open_clip model.

    Embedder.shipped(models_dir())                      # Atelier's shapes-clip
    Embedder("local-dir:/path/to/folder")               # any open_clip hub-layout folder
    Embedder("ViT-B-32", "laion2b_s34b_b79k")           # a model name and pretrained tag
    Embedder("ViT-B-32", "/path/to/checkpoint.pt")      # a model name and a weights file

Constructing one loads no model: `name` and `dim` come from the config and a hash of the
weights file (for a local folder, without importing torch), so an index's sidecar is checked
before any model loads. `load()` (or the first encode) builds the model.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from pipelines.once import Once

from .errors import IndexInputError, ModelNotFound

SHIPPED_MODEL = "shapes-clip"
LOCAL_PREFIX = "local-dir:"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# On two CPU cores batches of 32 embed 2.7x faster than one image at a time, 64 only 2.4x
# (bench/index.py); larger batches fall out of cache.
BATCH_SIZE = 32


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def default_open_image(path):
    """Open an image file as RGB, refusing what cannot be decoded with the file named."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise IndexInputError(f"{path}: not an image that can be read ({error})") from None


def batched_preprocess(preprocess) -> Callable | None:
    """open_clip's per-image preprocessing as one call on a batch of same-size images, or None
    where it holds a step this cannot replay on a tensor.

    Resizing, cropping and normalising a (n, 3, h, w) uint8 tensor at once costs a fraction of
    doing it image by image in PIL, and at the shipped model's size that per-image work is
    about a third of embedding an image. torchvision resizes uint8 tensors with PIL's
    antialiased kernels, so the result matches the per-image path to 1/255 at nearly every
    pixel (rounding differs at a few)."""
    import torch
    from open_clip.transform import MaybeConvertMode, MaybeToTensor
    from torchvision import transforms as T

    if not isinstance(preprocess, T.Compose):
        return None
    steps = []
    for step in preprocess.transforms:
        if isinstance(step, (T.Resize, T.CenterCrop, T.Normalize)):
            steps.append(step)
        elif isinstance(step, (MaybeToTensor, T.ToTensor)):
            steps.append(lambda x: x.float().div_(255))
        elif not isinstance(step, MaybeConvertMode):
            return None

    def run(pictures) -> torch.Tensor:
        array = np.stack([np.asarray(p.convert("RGB")) for p in pictures])
        batch = torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()
        for step in steps:
            batch = step(batch)
        return batch

    return run


class Embedder:
    """An open_clip model that embeds images and texts into one cosine space."""

    def __init__(self, model: str, pretrained: str | None = None, *, device: str | None = None,
                 batch_size: int = BATCH_SIZE, progress: bool | None = None,
                 open_image: Callable = default_open_image):
        self.model_name = model
        self.pretrained = pretrained
        self.device = device
        self.batch_size = int(batch_size)
        # None: tqdm decides, showing bars only on a terminal.
        self.progress = progress
        self.open_image = open_image
        self._model = self._preprocess = self._tokenizer = self._batched_preprocess = None
        self._loaded = Once()
        self.name, self.dim = self._identify()

    @classmethod
    def shipped(cls, models_dir: Path, **options) -> "Embedder":
        """Atelier's own CLIP, trained on the shapes world, in `models_dir/shapes-clip`."""
        return cls(f"{LOCAL_PREFIX}{Path(models_dir) / SHIPPED_MODEL}", **options)

    def _identify(self) -> tuple[str, int]:
        """A name that changes whenever the vectors would (other weights, other model), and the
        embedding width."""
        if self.model_name.startswith(LOCAL_PREFIX):
            folder = Path(self.model_name[len(LOCAL_PREFIX):]).expanduser()
            config_path = folder / "open_clip_config.json"
            weights = next((folder / w for w in WEIGHT_FILES if (folder / w).is_file()), None)
            if not config_path.is_file() or weights is None:
                raise ModelNotFound(
                    f"{folder}: not an open_clip model folder (it needs open_clip_config.json "
                    f"and {WEIGHT_FILES[0]}); give a folder that has them, or set "
                    "ATELIER_MODELS to the folder that holds shapes-clip")
            if self.pretrained:
                raise IndexInputError("a local-dir: model takes its weights from its folder; "
                                      "leave out the pretrained tag")
            config = json.loads(config_path.read_text(encoding="utf-8"))
            dim = config.get("model_cfg", config)["embed_dim"]
            self.model_name = f"{LOCAL_PREFIX}{folder.resolve()}"
            return f"{folder.name}@{file_sha256(weights)[:16]}", int(dim)

        import open_clip

        if self.model_name.startswith("hf-hub:"):
            # The hub repository holds config and weights; its name is the model's name.
            config = open_clip.get_model_config(self.model_name)
            return self.model_name, int(config["embed_dim"])
        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise IndexInputError(
                f"open_clip has no model {self.model_name!r}; see open_clip.list_models(), or "
                f"give a model folder as {LOCAL_PREFIX}PATH")
        if not self.pretrained:
            raise IndexInputError(
                f"model {self.model_name!r} needs a pretrained tag or a weights file; tags: "
                f"{', '.join(open_clip.list_pretrained_tags_by_model(self.model_name)) or 'none'}")
        weights = Path(self.pretrained).expanduser()
        if weights.is_file():
            self.pretrained = str(weights.resolve())
            return f"{self.model_name}@{file_sha256(weights)[:16]}", int(config["embed_dim"])
        if self.pretrained not in open_clip.list_pretrained_tags_by_model(self.model_name):
            raise IndexInputError(f"{self.pretrained!r} is neither a weights file nor a "
                                  f"pretrained tag of {self.model_name}")
        return f"{self.model_name}/{self.pretrained}", int(config["embed_dim"])

    def load(self) -> "Embedder":
        """Build the model, its preprocessing and tokenizer (once, whichever threads ask)."""
        self._loaded.get(self._build)
        return self

    def _build(self) -> bool:
        import open_clip
        import torch

        from pipelines.once import building

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        with building():
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name, pretrained=self.pretrained, device=device)
        self._model = model.eval()
        self._preprocess = preprocess
        self._batched_preprocess = batched_preprocess(preprocess)
        self._tokenizer = open_clip.get_tokenizer(self.model_name)
        self.device = device
        return True

    # --- encoding -----------------------------------------------------------------------

    def encode_images(self, images: Sequence, progress: bool | None = None) -> np.ndarray:
        """Images (PIL images or file paths, opened a batch at a time) -> (n, dim) vectors."""
        def batch_tensor(batch):
            import torch
            pictures = [self.open_image(i) if isinstance(i, (str, Path)) else i for i in batch]
            if self._batched_preprocess and len({p.size for p in pictures}) == 1:
                return self._batched_preprocess(pictures)
            return torch.stack([self._preprocess(p.convert("RGB")) for p in pictures])

        return self._encode(images, batch_tensor, lambda m, x: m.encode_image(x), "images",
                            progress)

    def encode_texts(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        """Texts -> (n, dim) vectors."""
        for text in texts:
            if not isinstance(text, str):
                raise IndexInputError(f"texts must be strings, got {type(text).__name__}")
        return self._encode(texts, self._tokenizer_call, lambda m, x: m.encode_text(x), "texts",
                            progress)

    def encode_image(self, image) -> np.ndarray:
        return self.encode_images([image], progress=False)[0]

    def encode_text(self, text: str) -> np.ndarray:
        return self.encode_texts([text], progress=False)[0]

    def _tokenizer_call(self, batch):
        return self._tokenizer(list(batch))

    def _encode(self, items: Sequence, to_tensor: Callable, forward: Callable, unit: str,
                progress: bool | None) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        self.load()
        out = np.empty((len(items), self.dim), dtype=np.float32)
        show = self.progress if progress is None else progress
        # Bars only for work of more than one batch; None lets tqdm hide them off a terminal.
        disable = True if len(items) <= self.batch_size else (None if show is None else not show)
        with torch.inference_mode(), tqdm(total=len(items), unit=unit, desc="embedding",
                                          disable=disable, leave=False) as bar:
            for start in range(0, len(items), self.batch_size):
                batch = items[start:start + self.batch_size]
                features = forward(self._model, to_tensor(batch).to(self.device))
                features = torch.nn.functional.normalize(features.float(), dim=-1)
                out[start:start + len(batch)] = features.cpu().numpy()
                bar.update(len(batch))
        return out

    def __repr__(self) -> str:
        return f"Embedder({self.name!r}, dim={self.dim})"

