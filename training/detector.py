"""Train the shapes world's open-vocabulary detector, in OWL-ViT's format.

    python -m training.detector --clip models/shapes-clip --out checkpoints/detector

OWL-ViT's recipe at world size: both towers start from the shapes CLIP (an open_clip ViT and
text transformer, converted weight for weight), then the whole model learns detection. Each
image patch predicts a box and a class embedding; a text query's score at a patch is their
scaled cosine. Every patch inside an object answers for it and learns its box (FCOS's
assignment); the eyes keep the best of the answers that overlap (pipelines/detection.py). The
export is a folder that `transformers.pipeline("zero-shot-object-detection", model=PATH)`
loads, exactly as it loads `google/owlvit-base-patch32`.
"""
from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.data import (Checkpointer, TimeBudget, add_run_arguments, after_step,
                           apply_gradients, cached_dataset, export_and_measure,
                           export_transformers, parallel_chunks, schedule_learning_rate,
                           start_run)
from training.eye_data import (augment, object_table, query_bank, query_matches,
                               sample_training_scene)
from world.render import render

IMAGE_SIZE = 64          # the shapes CLIP's input; the processor resizes the 128 px canvas
QUERY_LENGTH = 16


def detector_config(clip_folder: Path):
    from transformers import OwlViTConfig

    clip = json.loads((Path(clip_folder) / "open_clip_config.json").read_text())["model_cfg"]
    vision, text = clip["vision_cfg"], clip["text_cfg"]
    from transformers import CLIPTokenizerFast

    tokenizer = CLIPTokenizerFast.from_pretrained(clip_folder)
    return OwlViTConfig(
        text_config=dict(vocab_size=text["vocab_size"], hidden_size=text["width"],
                         intermediate_size=int(text["width"] * text["mlp_ratio"]),
                         num_hidden_layers=text["layers"], num_attention_heads=text["heads"],
                         max_position_embeddings=text["context_length"], hidden_act="gelu",
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=vision["width"], image_size=vision["image_size"],
                           patch_size=vision["patch_size"],
                           intermediate_size=int(vision["width"] * vision["mlp_ratio"]),
                           num_hidden_layers=vision["layers"],
                           num_attention_heads=vision["width"] // vision["head_width"],
                           hidden_act="gelu"),
        projection_dim=clip["embed_dim"]), tokenizer


def _blocks(prefix: str, hf_prefix: str, weights: dict, layers: int) -> dict:
    state = {}
    for i in range(layers):
        src, dst = f"{prefix}transformer.resblocks.{i}.", f"{hf_prefix}encoder.layers.{i}."
        for name, (w, b) in zip("qkv", zip(weights[src + "attn.in_proj_weight"].chunk(3),
                                           weights[src + "attn.in_proj_bias"].chunk(3))):
            state[dst + f"self_attn.{name}_proj.weight"] = w
            state[dst + f"self_attn.{name}_proj.bias"] = b
        pairs = {"self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1",
                 "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
        for hf_name, clip_name in pairs.items():
            for kind in ("weight", "bias"):
                state[f"{dst}{hf_name}.{kind}"] = weights[f"{src}{clip_name}.{kind}"]
    return state


def init_from_clip(model, clip_folder: Path) -> None:
    """The open_clip towers' weights in OWL-ViT's names (q, k, v split apart, projections
    transposed); the detection heads keep their fresh initialisation."""
    from safetensors.torch import load_file

    w = {k: v.float() for k, v in load_file(str(Path(clip_folder) /
                                                 "open_clip_model.safetensors")).items()}
    config = model.config
    state = {
        "owlvit.text_model.embeddings.token_embedding.weight": w["token_embedding.weight"],
        "owlvit.text_model.embeddings.position_embedding.weight": w["positional_embedding"],
        "owlvit.text_model.final_layer_norm.weight": w["ln_final.weight"],
        "owlvit.text_model.final_layer_norm.bias": w["ln_final.bias"],
        "owlvit.text_projection.weight": w["text_projection"].T,
        "owlvit.vision_model.embeddings.class_embedding": w["visual.class_embedding"],
        "owlvit.vision_model.embeddings.patch_embedding.weight": w["visual.conv1.weight"],
        "owlvit.vision_model.embeddings.position_embedding.weight":
            w["visual.positional_embedding"],
        "owlvit.vision_model.pre_layernorm.weight": w["visual.ln_pre.weight"],
        "owlvit.vision_model.pre_layernorm.bias": w["visual.ln_pre.bias"],
        "owlvit.vision_model.post_layernorm.weight": w["visual.ln_post.weight"],
        "owlvit.vision_model.post_layernorm.bias": w["visual.ln_post.bias"],
        "owlvit.visual_projection.weight": w["visual.proj"].T,
    }
    state.update(_blocks("", "owlvit.text_model.", w, config.text_config.num_hidden_layers))
    state.update(_blocks("visual.", "owlvit.vision_model.", w,
                         config.vision_config.num_hidden_layers))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert all(not m.startswith("owlvit.") or "position_ids" in m or "logit_scale" in m
               for m in missing), missing


def processor_for(tokenizer):
    from transformers import OwlViTImageProcessor, OwlViTProcessor

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    return OwlViTProcessor(image_processor=OwlViTImageProcessor(
        size=size, crop_size=size, image_mean=[0.5] * 3, image_std=[0.5] * 3),
        tokenizer=tokenizer)


def scene_chunk(processor, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` training scenes: the processor's pixels stored as bytes (its normalisation,
    (x - 0.5) / 0.5, undone exactly) and each scene's object table."""
    rng = np.random.default_rng(seed)
    scenes = [sample_training_scene(rng) for _ in range(count)]
    pixels = processor.image_processor([render(s) for s in scenes],
                                       return_tensors="pt")["pixel_values"]
    pixels = ((pixels * 0.5 + 0.5) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    return pixels, np.stack([object_table(s) for s in scenes])


def detection_outputs(model, pixels: torch.Tensor, query_ids: torch.Tensor,
                      query_attention: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (batch x patches x queries) and boxes (batch x patches x 4, centre and size in
    0..1), through the model's own heads as its forward runs them, with one set of queries
    shared by the whole batch (the text tower runs once a step)."""
    feature_map, _ = model.image_embedder(pixel_values=pixels)
    batch, rows, cols, width = feature_map.shape
    features = feature_map.reshape(batch, rows * cols, width)
    text = model.owlvit.get_text_features(input_ids=query_ids,
                                          attention_mask=query_attention).pooler_output
    logits, _ = model.class_predictor(features, text[None].expand(batch, -1, -1), None)
    return logits, model.box_predictor(features, feature_map)


def patch_targets(table: torch.Tensor, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per scene: the patch holding each object's centre (-1 for no object), and for every
    patch the object whose box holds the patch's centre (-1 for background)."""
    boxes, valid = table[..., :4], table[..., 7] > 0
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    centre_patch = ((cy * grid).long().clamp(0, grid - 1) * grid
                    + (cx * grid).long().clamp(0, grid - 1))
    centre_patch = torch.where(valid, centre_patch, -1)
    ticks = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid
    py, px = torch.meshgrid(ticks, ticks, indexing="ij")
    px, py = px.flatten()[None, :, None], py.flatten()[None, :, None]
    inside = ((px >= boxes[:, None, :, 0]) & (px <= boxes[:, None, :, 2])
              & (py >= boxes[:, None, :, 1]) & (py <= boxes[:, None, :, 3]) & valid[:, None, :])
    owner = torch.where(inside.any(-1), inside.float().argmax(-1), -1)
    return centre_patch, owner


def edge_patches(grid: int) -> torch.Tensor:
    """Patches on the grid's last row or column, as a flat boolean mask."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return ((rows == grid - 1) | (cols == grid - 1)).flatten()


def xyxy(cxcywh: torch.Tensor) -> torch.Tensor:
    cx, cy, w, h = cxcywh.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def giou_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU of matching rows of two x0, y0, x1, y1 box tensors."""
    lo, hi = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = lambda t: (t[:, 2:] - t[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    union = area(a) + area(b) - inter
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(-1)
    return (1 - inter / union + (hull - union) / hull).mean()


def detection_loss(logits, boxes, table, query_attributes, grid: int) -> dict:
    centre_patch, owner = patch_targets(table, grid)
    matches = query_matches(table, query_attributes)              # batch x objects x queries
    # FCOS's assignment: every patch inside an object answers for it (and the patch holding its
    # centre, so the smallest object has one); the eyes keep one answer per object by overlap.
    batch = torch.arange(len(table))
    target = torch.zeros_like(logits)
    inside = owner >= 0
    rows = batch[:, None].expand_as(owner)
    target[inside] = matches[rows[inside], owner[inside]].float()
    has = centre_patch >= 0
    centre_rows = batch[:, None].expand_as(centre_patch)
    target[centre_rows[has], centre_patch[has]] = matches[has].float()
    # OWL-ViT biases a patch's box centre to the patch's far corner, clipped to the image:
    # on the last row and column that is the image's edge itself, where the sigmoid leaves
    # the box head no gradient to pull it back. Those patches answer for nothing.
    edge = edge_patches(grid)
    target[:, edge] = 0
    inside = inside & ~edge[None, :]
    count = max(int((target.amax(-1) > 0).sum()), 1)
    # Focal loss (RetinaNet, as OWL-ViT trains): the many easy background patches weigh little.
    probability = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = probability * target + (1 - probability) * (1 - target)
    alpha = 0.25 * target + 0.75 * (1 - target)
    classification = (alpha * ce * (1 - p_t) ** 2).sum() / count
    wanted = table[rows[inside], owner[inside], :4]
    predicted = xyxy(boxes[inside])
    l1 = F.l1_loss(predicted, wanted)
    giou = giou_loss(predicted, wanted)
    return {"loss": classification + 5 * l1 + 2 * giou, "class": classification, "l1": l1,
            "giou": giou}


def tokenize_queries(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = tokenizer(texts, padding="max_length", max_length=QUERY_LENGTH, truncation=True,
                       return_tensors="pt")
    return tokens["input_ids"], tokens["attention_mask"]


def main(argv=None) -> None:
    from transformers import OwlViTForObjectDetection

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, steps=6000, batch=64, lr=3e-4, warmup=200, dataset=40_000,
                      out="checkpoints/detector")
    parser.add_argument("--clip", type=Path, default=Path("models/shapes-clip"),
                        help="open_clip folder whose towers the detector starts from")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--init", type=Path,
                        help="a detector folder to go on from: its weights, a fresh optimiser "
                             "(ignored when resuming)")
    args = parser.parse_args(argv)
    device = start_run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config, tokenizer = detector_config(args.clip)
    processor = processor_for(tokenizer)
    data = cached_dataset(out / "dataset.pt", lambda: {
        key: torch.from_numpy(np.concatenate(part)) for key, part in zip(
            ("pixels", "tables"),
            zip(*parallel_chunks(partial(scene_chunk, processor), args.seed + 1, args.dataset,
                                 args.workers)))})
    pixels, tables = data["pixels"], data["tables"]
    model = OwlViTForObjectDetection(config)
    grid = config.vision_config.image_size // config.vision_config.patch_size
    # The CLIP towers learn at a tenth of the heads' rate (OWL-ViT fine-tunes its backbone
    # gently): at the full rate the text tower forgot which words are alike.
    groups = {}
    for name, p in model.named_parameters():
        tower = name.startswith("owlvit.")
        decay = p.ndim >= 2 and "embedding" not in name
        groups.setdefault((tower, decay), []).append(p)
    optimizer = torch.optim.AdamW(
        [{"params": ps, "weight_decay": 0.05 if decay else 0.0, "rate": 0.1 if tower else 1.0}
         for (tower, decay), ps in groups.items()], lr=args.lr)
    checkpoints = Checkpointer(out)
    step = checkpoints.resume(model, optimizer)
    if step == 0 and args.init is not None:
        model.load_state_dict(OwlViTForObjectDetection.from_pretrained(
            args.init, dtype=torch.float32).state_dict())
    elif step == 0:
        init_from_clip(model, args.clip)
        # A query's logit at a patch is (cosine + shift) x scale. A scale near 1 (a fresh
        # head's) leaves cosines too little room to tell queries apart; start it at 10, and the
        # shift at RetinaNet's prior: every patch says "not this" with probability 0.99.
        torch.nn.init.zeros_(model.class_head.logit_scale.weight)
        torch.nn.init.constant_(model.class_head.logit_scale.bias, 9.0)    # elu(9) + 1 = 10
        torch.nn.init.zeros_(model.class_head.logit_shift.weight)
        torch.nn.init.constant_(model.class_head.logit_shift.bias, -0.46)
        # Boxes start as the patch grid itself (the head's bias), not saturated sigmoids.
        torch.nn.init.zeros_(model.box_head.dense2.weight)
        torch.nn.init.zeros_(model.box_head.dense2.bias)
    model.to(device).train()
    rng = np.random.default_rng(args.seed + step)
    budget = TimeBudget(args.steps, args.minutes, args.deadline)
    log = open(out / "log.jsonl", "a")

    def measure() -> dict:
        from training.evaluate_eyes import detector_figures

        return export_and_measure(model, processor, out / "export",
                                  partial(detector_figures, scenes=150, seed=7_000_000))

    while not budget.finished(step):
        index = torch.randint(0, len(pixels), (args.batch,))
        images = augment(pixels[index].float() / 127.5 - 1.0, rng).to(device)
        texts, attributes = query_bank(rng)
        query_ids, query_attention = tokenize_queries(tokenizer, texts)
        schedule_learning_rate(optimizer, args.lr, args.warmup, budget, step)
        logits, boxes = detection_outputs(model, images, query_ids.to(device),
                                          query_attention.to(device))
        losses = detection_loss(logits.cpu(), boxes.cpu(), tables[index].float(), attributes, grid)
        apply_gradients(model, optimizer, losses["loss"])
        step += 1
        after_step(step, budget, losses, log=log, every=args.eval_every, measure=measure,
                   checkpoints=checkpoints, model=model, optimizer=optimizer)
    export_transformers(model, processor, out / "export")


if __name__ == "__main__":
    main()
