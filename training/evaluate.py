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
# What training logs and tuning look at: kept apart from the held-out scenes the bench reports.
VALIDATION_SEED = 20_000


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

    device = next(model.parameters()).device

    def encode_texts(texts):
        return F.normalize(model.encode_text(tokenizer(texts).to(device)), dim=-1).cpu()

    def encode_images(scenes):
        features = [model.encode_image(torch.stack([preprocess(render(s)) for s in scenes[i:i + 200]]).to(device))
                    for i in range(0, len(scenes), 200)]
        return F.normalize(torch.cat(features), dim=-1).cpu()

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
    figures["count_zero_shot"] = count_zero_shot(encode_texts, encode_images, n_single, seed)
    return figures


def count_zero_shot(encode_texts, encode_images, n: int, seed: int) -> float:
    """3-way: does "two / three / four red squares" pick the count of a scene's repeated
    kind? Scenes repeat one shape and colour two to four times among other objects."""
    from world.phrasings import NUMBER_WORDS
    from world.sample import sample_group_scene

    rng = np.random.default_rng(seed + 7)  # its own stream: the other figures stay comparable
    scenes, kinds = [], []
    while len(scenes) < n:
        scene = sample_group_scene(rng)
        shape, color = scene.objects[0].shape, scene.objects[0].color
        count = sum((o.shape, o.color) == (shape, color) for o in scene.objects)
        if 2 <= count <= 4:
            scenes.append(scene)
            kinds.append((shape, color, count))
    image_features = encode_images(scenes)
    names = sorted({(shape, color) for shape, color, _ in kinds})
    texts = encode_texts([f"{NUMBER_WORDS[c]} {color} {shape}s"
                          for shape, color in names for c in (2, 3, 4)]).view(len(names), 3, -1)
    right = 0
    for features, (shape, color, count) in zip(image_features, kinds):
        right += int((texts[names.index((shape, color))] @ features).argmax()) + 2 == count
    return round(right / n, 4)


def single_object_prompts(n: int, seed: int = HELD_OUT_SEED + 1):
    """Canonical one-object captions (shape, colour, size, place) with their constraints, on
    the default white background."""
    from world.check import constraints_for_scene
    from world.captions import caption

    rng = np.random.default_rng(seed)
    scenes = [sample_scene(rng, n_objects=1, background="white") for _ in range(n)]
    return [(caption(s), constraints_for_scene(s)) for s in scenes]


def object_prompts(n: int, seed: int = HELD_OUT_SEED + 4):
    """One object named by size, colour and shape with no place ("a small red circle"): what
    the model draws, apart from where it draws it."""
    from world.check import Count, Exists

    rng = np.random.default_rng(seed)
    prompts = []
    for _ in range(n):
        obj = sample_scene(rng, n_objects=1, background="white").objects[0]
        prompts.append((f"a {obj.size} {obj.color} {obj.shape}",
                        [Count(1), Exists(shape=obj.shape, color=obj.color, size=obj.size)]))
    return prompts


def relation_prompts(n: int, seed: int = HELD_OUT_SEED + 2):
    """Two-object prompts stating a relation ("a red circle left of a blue square")."""
    from world.phrasings import sample_phrasing

    rng = np.random.default_rng(seed)
    prompts = []
    while len(prompts) < n:
        scene = sample_scene(rng, n_objects=2, background="white")
        phrasing = sample_phrasing(scene, rng, families=["relation"], frames=["bare"])
        prompts.append((phrasing.text, list(phrasing.constraints)))
    return prompts


@torch.no_grad()
def prompt_accuracy(pipe, prompts, steps: int = 20, guidance: float = 5.0, batch: int = 10,
                    seed: int = 0) -> float:
    """Share of prompts whose image satisfies every constraint, read by the world's detector."""
    from world.check import check

    correct = 0
    for start in range(0, len(prompts), batch):
        chunk = prompts[start:start + batch]
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(len(chunk))]
        images = pipe([p for p, _ in chunk], num_inference_steps=steps, guidance_scale=guidance,
                      generator=generators, height=128, width=128).images
        correct += sum(not check(detect(image).scene, constraints)
                       for image, (_, constraints) in zip(images, chunk))
    return correct / len(prompts)


@torch.no_grad()
def edit_accuracy(pipe, n: int = 300, steps: int = 20, guidance: float = 5.0,
                  image_guidance: float = 1.5, seed: int = HELD_OUT_SEED + 3, batch: int = 10,
                  kinds: list[str] | None = None) -> dict:
    """Edit success per world/WORLD.md (the asked change made, everything else kept), per kind
    (all of the world's edit kinds in turn, or only `kinds`)."""
    from world.check import check, constraints_for_edit
    from world.edits import EDIT_KINDS, sample_edit

    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        kind = (kinds or EDIT_KINDS)[len(cases) % len(kinds or EDIT_KINDS)]
        scene = sample_scene(rng, n_objects=int(rng.integers(1, 4)))
        try:
            edit, after = sample_edit(scene, rng, kinds=[kind])
        except ValueError:
            continue
        cases.append((scene, edit, after))
    results: dict[str, list[bool]] = {}
    for start in range(0, n, batch):
        chunk = cases[start:start + batch]
        generators = [torch.Generator().manual_seed(start + i) for i in range(len(chunk))]
        images = pipe([e.instruction for _, e, _ in chunk], image=[render(s) for s, _, _ in chunk],
                      num_inference_steps=steps, guidance_scale=guidance,
                      image_guidance_scale=image_guidance, generator=generators).images
        for image, (scene, edit, after) in zip(images, chunk):
            ok = not check(detect(image).scene, constraints_for_edit(scene, edit, after))
            results.setdefault(edit.kind, []).append(ok)
    figures = {kind: round(sum(v) / len(v), 3) for kind, v in results.items()}
    figures["all"] = round(sum(sum(v) for v in results.values()) / n, 3)
    return figures


def load_for_validation(pipeline_class, folder, device):
    """An exported folder as a quiet pipeline on `device`, to judge it while training goes on."""
    pipe = pipeline_class.from_pretrained(folder).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
