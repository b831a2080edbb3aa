"""Held-out figures shared by the training scripts and the model bench."""
from __future__ import annotations

import numpy as np
import torch

from training.data import image_tensor
from world.detect import detect
from world.render import render
from world.sample import sample_scene
from world.scene import Scene

HELD_OUT_SEED = 10_000  # training streams use small seeds; held-out scenes come from here on


def scenes_match(expected: Scene, found: Scene, centre_tolerance: float = 0.02) -> bool:
    """Exact per the detector: same background, and a one-to-one match of objects with the
    same shape, colour and size and centres within the tolerance."""
    if expected.background != found.background or len(expected.objects) != len(found.objects):
        return False
    unused = list(found.objects)
    for obj in expected.objects:
        match = next((o for o in unused if (o.shape, o.color, o.size) == (obj.shape, obj.color, obj.size)
                      and abs(o.x - obj.x) <= centre_tolerance and abs(o.y - obj.y) <= centre_tolerance), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def tensor_to_uint8(images: torch.Tensor) -> np.ndarray:
    """N x 3 x H x W in [-1, 1] -> N x H x W x 3 uint8."""
    array = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return array.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def vae_round_trip_accuracy(vae, n: int = 200, batch: int = 50, seed: int = HELD_OUT_SEED) -> float:
    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng) for _ in range(n)]
    exact = 0
    for i in range(0, n, batch):
        chunk = scenes[i:i + batch]
        images = torch.stack([image_tensor(render(s)) for s in chunk])
        recon = vae.decode(vae.encode(images).latent_dist.mode()).sample
        exact += sum(scenes_match(s, detect(r).scene) for s, r in zip(chunk, tensor_to_uint8(recon)))
    return exact / n
