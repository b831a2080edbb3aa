"""Eyes made of models: an open-vocabulary detector and a promptable segmenter.

    eyes = ModelEyes(detector="google/owlv2-base-patch16-ensemble",      # or a local folder
                     segmenter="facebook/sam-vit-base")                   # optional
    found = eyes.detect(image, ["a red car", "a lighthouse"])            # [Detection, ...]
    masks = eyes.segment(image, [d.box for d in found])                  # one mask per box

The detector is anything `transformers.pipeline("zero-shot-object-detection", model=...)`
loads (OWL-ViT, OWLv2, Grounding DINO), the segmenter a SAM-format model (SamModel and
SamProcessor, prompted with boxes, as Grounded-SAM uses it). Without a segmenter an object's
mask is its box. Both load on first use, once, whichever thread asks (pipelines/once.py).
Boxes are (x0, y0, x1, y1) in 0..1 of the image, y down.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pipelines.once import Once, building

# Detections of one label that overlap this much are one object seen twice (OWL-ViT answers
# per image patch); the higher score stands for both. 0.3 is OWL-ViT's own suppression
# threshold (its image-guided post-processing).
SAME_OBJECT_IOU = 0.3
# A detection whose box lies mostly (this much) inside a better one of its label saw part
# of it: the answer of a patch at the object's edge.
PART_OF_OBJECT = 0.6


@dataclass(frozen=True)
class Detection:
    label: str
    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


def area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def intersection(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def iou(a, b) -> float:
    inter = intersection(a, b)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def inside_share(a, b) -> float:
    """How much of the smaller of two boxes lies inside the other."""
    smaller = min(area(a), area(b))
    return intersection(a, b) / smaller if smaller > 0 else 0.0


def deduplicate(found: list[Detection]) -> list[Detection]:
    """Highest score first; a detection of a kept one's label that overlaps it, or lies mostly
    inside it (a patch at an object's edge that saw part of it), is dropped."""
    kept: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(k.label != d.label or (iou(k.box, d.box) < SAME_OBJECT_IOU and
                                      inside_share(k.box, d.box) < PART_OF_OBJECT)
               for k in kept):
            kept.append(d)
    return kept


# Of a box's side, on each edge: how far outside its box a segmenter's mask is kept.
MASK_BOX_MARGIN = 0.15


def grown(box, margin: float) -> tuple[float, float, float, float]:
    dx, dy = (box[2] - box[0]) * margin, (box[3] - box[1]) * margin
    return (max(box[0] - dx, 0.0), max(box[1] - dy, 0.0), min(box[2] + dx, 1.0),
            min(box[3] + dy, 1.0))


def box_mask(box, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    x0, y0 = int(round(box[0] * width)), int(round(box[1] * height))
    x1, y1 = int(round(box[2] * width)), int(round(box[3] * height))
    mask[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)] = True
    return mask


# OWL-ViT's usual score threshold, for a detector whose card names none.
DEFAULT_THRESHOLD = 0.1


class ModelEyes:
    def __init__(self, detector: str, segmenter: str | None = None, *,
                 threshold: float | None = None, device: str | None = None):
        threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in 0..1, got {threshold!r}")
        self.detector_name = detector
        self.segmenter_name = segmenter
        self.threshold = threshold
        self.device = device
        self._detector: Once = Once()
        self._segmenter: Once = Once()

    # --- loading ------------------------------------------------------------------------

    def detector(self):
        """The zero-shot-object-detection pipeline, loaded once."""
        return self._detector.get(self._load_detector)

    def segmenter(self) -> tuple:
        """The segmenter and its processor, loaded once."""
        return self._segmenter.get(self._load_segmenter)

    def _load_detector(self):
        from transformers import pipeline

        from pipelines.models import locate

        location = locate("detector", self.detector_name, marker="config.json")
        with building():
            try:
                return pipeline("zero-shot-object-detection", model=location,
                                device=self.device or "cpu")
            except (OSError, ValueError) as error:
                from pipelines.errors import ModelUnavailable

                raise ModelUnavailable(f"detector {self.detector_name}: could not load it as a "
                                       f"zero-shot object detector ({error})", "detector") from None

    def _load_segmenter(self):
        from transformers import SamModel, SamProcessor

        from pipelines.models import locate

        location = locate("segmenter", self.segmenter_name, marker="config.json")
        with building():
            try:
                return SamModel.from_pretrained(location).eval(), SamProcessor.from_pretrained(
                    location)
            except (OSError, ValueError) as error:
                from pipelines.errors import ModelUnavailable

                raise ModelUnavailable(f"segmenter {self.segmenter_name}: could not load it as a "
                                       f"SAM-format model ({error})", "segmenter") from None

    # --- seeing -------------------------------------------------------------------------

    def detect(self, image: Image.Image, queries: list[str],
               threshold: float | None = None) -> list[Detection]:
        """Every object the detector finds for any of `queries`, above `threshold` (default:
        the eyes' own), one detection per object and label, best first."""
        queries = [q.strip() for q in queries if q and q.strip()]
        if not queries:
            return []
        threshold = self.threshold if threshold is None else threshold
        detector = self.detector()
        image = image.convert("RGB")
        width, height = image.size
        found = []
        for item in detector(image, candidate_labels=queries, threshold=threshold):
            b = item["box"]
            box = (min(max(b["xmin"] / width, 0.0), 1.0), min(max(b["ymin"] / height, 0.0), 1.0),
                   min(max(b["xmax"] / width, 0.0), 1.0), min(max(b["ymax"] / height, 0.0), 1.0))
            if box[2] > box[0] and box[3] > box[1]:
                found.append(Detection(item["label"], box, float(item["score"])))
        return deduplicate(found)

    def segment(self, image: Image.Image, boxes: list) -> list[np.ndarray]:
        """One H x W bool mask per box: the segmenter's, or the box itself without one."""
        width, height = image.size
        if not boxes:
            return []
        if self.segmenter_name is None:
            return [box_mask(b, width, height) for b in boxes]
        import torch

        model, processor = self.segmenter()
        pixels = [[[b[0] * width, b[1] * height, b[2] * width, b[3] * height] for b in boxes]]
        inputs = processor(image.convert("RGB"), input_boxes=pixels, return_tensors="pt")
        with torch.inference_mode():
            out = model(**inputs, multimask_output=False)
        masks = processor.image_processor.post_process_masks(
            out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"])[0]
        # A mask is kept near its own box: SAM may spill onto a neighbour of the same colour.
        # The box is grown first, since a detector's box may cut an object's edge off.
        # A segmenter that sees nothing in a found object's box leaves it its box.
        kept = [masks[i, 0].numpy().astype(bool) & box_mask(grown(b, MASK_BOX_MARGIN),
                                                            width, height)
                for i, b in enumerate(boxes)]
        return [m if m.any() else box_mask(b, width, height) for m, b in zip(kept, boxes)]

    def find(self, image: Image.Image, queries: list[str],
             threshold: float | None = None) -> list[Detection]:
        """`detect` with each detection's mask."""
        found = self.detect(image, queries, threshold)
        masks = self.segment(image, [d.box for d in found])
        return [Detection(d.label, d.box, d.score, m) for d, m in zip(found, masks)]
