"""Train the shapes world's promptable segmenter, in SAM's format (SamModel / SamProcessor).

    python -m training.segmenter --out checkpoints/segmenter

Prompted with a box, as Grounded-SAM prompts SAM with a detector's boxes: the boxes it learns
from are each object's own, moved by up to a tenth of its side per edge, so a detector's
imperfect box still gives the object's whole mask and nothing of its neighbours. Loss: cross-entropy
and dice on the mask, mean squared error of the predicted IoU. The export is a folder
`SamModel.from_pretrained` and `SamProcessor.from_pretrained` load like `facebook/sam-vit-base`.
"""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from training.data import (Checkpointer, TimeBudget, add_run_arguments, after_step,
                           apply_gradients, export_and_measure, export_transformers,
                           schedule_learning_rate, start_run)
from training.eye_data import augment, sample_training_scene
from world.render import render, render_mask
from world.scene import CANVAS, MAX_OBJECTS

BOX_JITTER = 0.1


def segmenter_config(width: int = 96, layers: int = 4):
    from transformers import SamConfig

    embedding = 64
    return SamConfig(
        vision_config=dict(hidden_size=width, intermediate_size=width * 4, num_hidden_layers=layers,
                           num_attention_heads=4, image_size=CANVAS, patch_size=8,
                           output_channels=embedding, window_size=8,
                           global_attn_indexes=list(range(1, layers, 2)),
                           num_pos_feats=embedding // 2, mlp_dim=width * 4,
                           # SAM's random Fourier features of positions at frequency scale 1,
                           # as the original model has them; the config's default (half the
                           # width) aliases so badly that a model trained from scratch cannot
                           # tell one box from another and segments every object at once.
                           scale=1.0),
        prompt_encoder_config=dict(hidden_size=embedding, image_size=CANVAS, patch_size=8,
                                   mask_input_channels=16),
        mask_decoder_config=dict(hidden_size=embedding, num_hidden_layers=2, num_attention_heads=4,
                                 mlp_dim=embedding * 4, iou_head_hidden_dim=embedding))


def processor_for():
    from transformers import SamImageProcessor, SamProcessor

    return SamProcessor(SamImageProcessor(
        size={"longest_edge": CANVAS}, pad_size={"height": CANVAS, "width": CANVAS},
        mask_size={"longest_edge": CANVAS // 2}, mask_pad_size={"height": CANVAS // 2,
                                                                "width": CANVAS // 2}))


def training_batch(rng: np.random.Generator, batch: int, processor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixels as the processor gives them, MAX_OBJECTS jittered boxes per image (in pixels; a
    scene with fewer objects repeats them) and each box's true mask."""
    scenes = [sample_training_scene(rng) for _ in range(batch)]
    images = [render(s) for s in scenes]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    boxes = np.zeros((batch, MAX_OBJECTS, 4), dtype=np.float32)
    masks = np.zeros((batch, MAX_OBJECTS, CANVAS, CANVAS), dtype=np.float32)
    for i, scene in enumerate(scenes):
        for j in range(MAX_OBJECTS):
            o = scene.objects[j % len(scene.objects)]
            w, h = o.box[2] - o.box[0], o.box[3] - o.box[1]
            moved = np.array(o.box) + rng.uniform(-BOX_JITTER, BOX_JITTER, 4) * [w, h, w, h]
            boxes[i, j] = np.clip(moved, 0, 1) * CANVAS
            masks[i, j] = np.asarray(render_mask(o), dtype=np.float32) / 255.0
    return pixels, torch.from_numpy(boxes), torch.from_numpy(masks)


def mask_loss(logits: torch.Tensor, iou_predicted: torch.Tensor, truth: torch.Tensor) -> dict:
    """At the image's own size: cross-entropy and dice on the mask (MedSAM's pair; SAM's own
    20 : 1 focal weighting kept a model trained from scratch at all-background), and the IoU
    head's squared error against the mask's true IoU."""
    logits = F.interpolate(logits, size=truth.shape[-2:], mode="bilinear", align_corners=False)
    logits, truth = logits.flatten(0, 1), truth.flatten(0, 1)      # one row per prompt
    probability = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, truth)
    flat_p, flat_t = probability.flatten(1), truth.flatten(1)
    dice = (1 - (2 * (flat_p * flat_t).sum(1) + 1) / (flat_p.sum(1) + flat_t.sum(1) + 1)).mean()
    hard = (logits > 0).float().flatten(1)
    true_iou = (hard * flat_t).sum(1) / ((hard + flat_t).clamp(max=1).sum(1) + 1e-6)
    iou = F.mse_loss(iou_predicted.flatten(), true_iou.detach())
    return {"loss": ce + dice + iou, "ce": ce, "dice": dice, "iou_head": iou,
            "train_iou": true_iou.mean().detach()}


def main(argv=None) -> None:
    from transformers import SamModel

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, steps=6000, batch=16, lr=8e-4, warmup=200, dataset=0,
                      out="checkpoints/segmenter")
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=500)
    args = parser.parse_args(argv)
    device = start_run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    processor = processor_for()
    model = SamModel(segmenter_config(args.width, args.layers))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    checkpoints = Checkpointer(out)
    step = checkpoints.resume(model, optimizer)
    model.to(device).train()
    # Scenes are drawn as training goes (a scene and its masks cost far less than a step).
    rng = np.random.default_rng(args.seed * 1_000_003 + step)
    budget = TimeBudget(args.steps, args.minutes, args.deadline)
    log = open(out / "log.jsonl", "a")

    def measure() -> dict:
        from training.evaluate_eyes import segmenter_figures

        return export_and_measure(model, processor, out / "export", partial(
            segmenter_figures, scenes=60, seed=7_500_000, box_jitter=0.05))

    while not budget.finished(step):
        pixels, boxes, masks = training_batch(rng, args.batch, processor)
        # augment works on [-1, 1] images: SAM's normalisation is undone around it.
        mean = torch.tensor(processor.image_processor.image_mean)[None, :, None, None]
        std = torch.tensor(processor.image_processor.image_std)[None, :, None, None]
        unit = augment((pixels * std + mean) * 2 - 1, rng)
        pixels = ((unit + 1) / 2 - mean) / std
        schedule_learning_rate(optimizer, args.lr, args.warmup, budget, step)
        output = model(pixel_values=pixels.to(device), input_boxes=boxes.to(device),
                       multimask_output=False)
        losses = mask_loss(output.pred_masks[:, :, 0].cpu(), output.iou_scores[:, :, 0].cpu(),
                           masks)
        apply_gradients(model, optimizer, losses["loss"])
        step += 1
        after_step(step, budget, losses, log=log, every=args.eval_every, measure=measure,
                   checkpoints=checkpoints, model=model, optimizer=optimizer)
    export_transformers(model, processor, out / "export")


if __name__ == "__main__":
    main()
