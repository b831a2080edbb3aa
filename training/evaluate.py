"""Held-out figures shared by the training scripts and the model bench."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


@torch.no_grad()
def clip_figures(model, preprocess, tokenizer, n_pairs: int = 1000, n_single: int = 300,
                 seed: int = HELD_OUT_SEED) -> dict:
    """Zero-shot colour (6-way) and shape (3-way) accuracy on single objects, with prompt
    ensembling over the other attribute, and text -> image recall@5 among `n_pairs` pairs."""
    from world.captions import caption
    from world.scene import COLORS, SHAPES

    def encode_texts(texts):
        return F.normalize(model.encode_text(tokenizer(texts)), dim=-1)

    def encode_images(scenes):
        features = [model.encode_image(torch.stack([preprocess(render(s)) for s in scenes[i:i + 200]]))
                    for i in range(0, len(scenes), 200)]
        return F.normalize(torch.cat(features), dim=-1)

    rng = np.random.default_rng(seed)
    singles = [sample_scene(rng, n_objects=1) for _ in range(n_single)]
    single_features = encode_images(singles)
    figures = {}
    for attribute, names, others in (("color", list(COLORS), SHAPES), ("shape", list(SHAPES), list(COLORS))):
        classes = []
        for name in names:
            prompts = [f"a {name} {other}" if attribute == "color" else f"a {other} {name}" for other in others]
            classes.append(F.normalize(encode_texts(prompts).mean(0), dim=-1))
        predicted = (single_features @ torch.stack(classes).T).argmax(-1)
        truth = torch.tensor([names.index(getattr(s.objects[0], attribute)) for s in singles])
        figures[f"{attribute}_zero_shot"] = round((predicted == truth).float().mean().item(), 4)
    pairs = [sample_scene(rng) for _ in range(n_pairs)]
    image_features = encode_images(pairs)
    text_features = torch.cat([encode_texts([caption(s) for s in pairs[i:i + 200]])
                               for i in range(0, n_pairs, 200)])
    ranks = (text_features @ image_features.T).argsort(dim=-1, descending=True)[:, :5]
    hits = (ranks == torch.arange(n_pairs)[:, None]).any(-1)
    figures["text_to_image_recall@5"] = round(hits.float().mean().item(), 4)
    return figures
