"""Training data from the world's sampler and renderer: images as [-1, 1] tensors."""
from __future__ import annotations

import numpy as np
import torch

from world.render import render
from world.sample import sample_scene
from world.scene import BACKGROUNDS, Scene


def image_tensor(image) -> torch.Tensor:
    """PIL RGB -> 3 x H x W float tensor in [-1, 1], the range diffusers' VAEs use."""
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def scene_batch(rng: np.random.Generator, batch_size: int) -> tuple[list[Scene], torch.Tensor]:
    scenes = [sample_scene(rng) for _ in range(batch_size)]
    return scenes, torch.stack([image_tensor(render(s)) for s in scenes])


def object_weights(images: torch.Tensor, scenes: list[Scene], object_weight: float) -> torch.Tensor:
    """Per-pixel loss weights: objects cover little of a flat canvas, so weigh them up."""
    background = torch.tensor([BACKGROUNDS[s.background] for s in scenes], dtype=torch.float32)
    background = (background / 127.5 - 1.0)[:, :, None, None]
    is_object = ((images - background).abs().amax(dim=1, keepdim=True) > 0.02).float()
    return 1.0 + (object_weight - 1.0) * is_object


class Checkpointer:
    """Keeps `latest.pt` (model, optimiser, step, rng state) so training resumes where it stopped."""

    def __init__(self, folder):
        from pathlib import Path
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "latest.pt"

    def load(self):
        if self.path.exists():
            return torch.load(self.path, map_location="cpu", weights_only=False)
        return None

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.path)
