"""The model cards of the shipped eyes (models/shapes-detector, models/shapes-segmenter)."""
from __future__ import annotations

from pathlib import Path

from training.card import write_card


def write_detector_card(folder: Path, figures: dict) -> None:
    threshold = figures["threshold"]
    write_card(
        folder, "shapes-detector",
        "An open-vocabulary object detector for the shapes world in OWL-ViT's format: text "
        "queries in, boxes and scores out. It answers queries that name a shape, a colour, a "
        f"size or any of them together, in the world's words and their synonyms. Score "
        f"threshold: **{threshold:g}** (recall and precision below are measured at it).",
        'from transformers import pipeline\n'
        'detector = pipeline("zero-shot-object-detection", model="models/shapes-detector")\n'
        f'detector(image, candidate_labels=["red circle", "small blue square"], '
        f'threshold={threshold:g})',
        {"Architecture": "OwlViTForObjectDetection: the shapes CLIP's ViT (64 px input, 8 px "
                         "patches, width 128, 4 layers) and text transformer, converted weight for "
                         "weight, with OWL-ViT's box and class heads on every patch.",
         "Training": "`python -m training.detector`: scenes of one to four objects (a fifth "
                     "with objects 4 to 10 px apart, some with one shape and colour repeated), "
                     "pixels jittered as a generator draws them. Every step asks 70 queries in "
                     "fresh words (each attribute combination, synonyms, four templates). Every "
                     "patch inside an object answers for it (FCOS's assignment, focal loss) and "
                     "learns its box (L1 and generalised IoU), except the grid's last row and "
                     "column, whose box centres OWL-ViT pins to the image's edge. The CLIP towers "
                     "learn at a tenth of the heads' rate. Shipped: 5,784 steps of batch 64 at "
                     "lr 1e-3 (65 minutes, one CPU thread; that run still let the edge patches "
                     "answer), then 1,138 steps from its export with `--init` at lr 3e-4 "
                     "(11 minutes), which took precision at threshold 0.5 on 150 tuning scenes "
                     "from 0.94 to 0.996.",
         "Measured": "`python -m training.evaluate_eyes`: held-out scenes of every background "
                     "(a third with objects near each other). Per scene each shape-and-colour and "
                     "size-shape-colour combination present is asked for, and two near misses "
                     "that are absent (a colour the shape does not have there, the other size); a "
                     "detection is right at IoU >= 0.5 with an unclaimed object its query names. "
                     "The threshold was chosen on 300 other scenes."},
        {k: v for k, v in figures.items() if k != "every_threshold"})


def write_segmenter_card(folder: Path, figures: dict) -> None:
    write_card(
        folder, "shapes-segmenter",
        "A promptable segmenter for the shapes world in SAM's format: an image and boxes in, "
        "one mask per box out, as Grounded-SAM prompts SAM with a detector's boxes.",
        'from transformers import SamModel, SamProcessor\n'
        'model = SamModel.from_pretrained("models/shapes-segmenter")\n'
        'processor = SamProcessor.from_pretrained("models/shapes-segmenter")\n'
        'inputs = processor(image, input_boxes=[[[x0, y0, x1, y1]]], return_tensors="pt")\n'
        'masks = processor.image_processor.post_process_masks(\n'
        '    model(**inputs, multimask_output=False).pred_masks, inputs["original_sizes"],\n'
        '    inputs["reshaped_input_sizes"])',
        {"Architecture": "SamModel: a ViT image encoder (128 px input, 8 px patches, width 96, 4 "
                         "layers, windowed and global attention), SAM's prompt encoder and two-way "
                         "mask decoder at width 64; masks at 64 x 64, upsampled by the processor.",
         "Training": "`python -m training.segmenter`, from scratch: scenes drawn as training goes "
                     "(a fifth with objects 4 to 10 px apart), each object's box moved by up to a "
                     "tenth of its side per edge as its prompt, cross-entropy and dice on the mask "
                     "at 128 px, and the IoU head's squared error. Positions are SAM's random "
                     "Fourier features at scale 1 (the config's default of half the width "
                     "aliases, and a model trained from scratch then ignores its box). Shipped: "
                     "3,973 steps of batch 16 at lr 8e-4 (52 minutes, one CPU thread).",
         "Measured": "`python -m training.evaluate_eyes`: mean mask IoU of every object of "
                     "held-out "
                     "scenes of every background, prompted with its exact box and with its box "
                     "moved by up to 5% of its side per edge."},
        figures)
