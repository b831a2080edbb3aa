"""A checker that sees through models: what a step meant, read as detector queries and box
geometry, as SLD's and LMD's evaluations read images with OWL-ViT.

- `layout`, and `inpaint` with objects: each object's phrase is a query; it must be found with
  its centre inside its box (with a margin of a quarter of the box's side), once.
- an edit of a region given as boxes (`inpaint`): every pixel outside the padded region must
  stay as it was (mean change at most 2 / 255).
- anything else is left to `fallback` (a CLIP checker, where the model set has a CLIP).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.turn.checks import Expectation, Reading, Verdict

MAX_CHANGE_OUTSIDE = 2.0     # mean absolute change per channel, out of 255
PLACE_MARGIN = 0.25          # of the box's side, around the box the centre may fall in


@dataclass(frozen=True)
class ObjectInBox:
    phrase: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class KeptOutside:
    before: np.ndarray       # H x W x 3 uint8
    region: np.ndarray       # H x W bool: where the step may change pixels


def reading_of(found) -> Reading:
    """What the detector saw, kept with the image: the planner is told it as text (objects,
    boxes, scores), as SLD tells its LLM what the detector read."""
    if not found:
        return Reading()
    objects = [{"name": d.label, "box": [round(v, 4) for v in d.box], "score": round(d.score, 3)}
               for d in found]
    return Reading({"objects": objects}, "; ".join(d.label for d in found))


def scene_reading(data: dict):
    """A stored reading (`reading_of`) as the planners' SceneReading."""
    from planners.context import SceneObject, SceneReading

    return SceneReading(objects=[
        SceneObject(id=f"obj_{i}", name=o["name"], box=o["box"], score=o.get("score"))
        for i, o in enumerate(data.get("objects", []), 1)])


def centre_in(box, point, margin: float = PLACE_MARGIN) -> bool:
    dx, dy = (box[2] - box[0]) * margin, (box[3] - box[1]) * margin
    return box[0] - dx <= point[0] <= box[2] + dx and box[1] - dy <= point[1] <= box[3] + dy


class DetectorChecker:
    method = "detector"

    def __init__(self, eyes, fallback=None):
        self.eyes = eyes
        self.fallback = fallback

    def read(self, image) -> Reading:
        return Reading()

    def expect(self, step, before) -> Expectation | None:
        args = step.args
        constraints: list = []
        if step.op in ("layout", "inpaint") and getattr(args, "objects", None):
            constraints += [ObjectInBox(o.phrase, tuple(o.box)) for o in args.objects]
        target = getattr(args, "target", None)
        if step.op == "inpaint" and before is not None and isinstance(target, list):
            from pipelines.sampling import boxes_mask

            from pipelines.detection import box_mask

            width, height = before.size
            padded = [(max(b[0] - 0.03, 0), max(b[1] - 0.03, 0), min(b[2] + 0.03, 1),
                       min(b[3] + 0.03, 1)) for b in target]
            region = boxes_mask(padded, width, height)
            for o in getattr(args, "objects", None) or []:
                region |= box_mask(o.box, width, height)
            constraints.append(KeptOutside(np.asarray(before.convert("RGB")), region))
        if not constraints:
            return self.fallback.expect(step, before) if self.fallback is not None else None
        about = "; ".join(c.phrase for c in constraints if isinstance(c, ObjectInBox))
        return Expectation(about=about or step.summary(), constraints=tuple(constraints))

    def judge(self, image, expectation: Expectation | None) -> Verdict:
        if expectation is None:
            return Verdict(None, self.method)
        if not expectation.constraints and self.fallback is not None:
            return self.fallback.judge(image, expectation)
        failures, kinds = [], set()
        wanted = [c for c in expectation.constraints if isinstance(c, ObjectInBox)]
        found = self.eyes.detect(image, sorted({c.phrase for c in wanted})) if wanted else []
        for c in wanted:
            seen = [d for d in found if d.label == c.phrase]
            if not seen:
                failures.append(f"no {c.phrase!r} found")
                kinds.add("count")
            elif not any(centre_in(c.box, d.centre) for d in seen):
                where = ", ".join(f"({d.centre[0]:.2f}, {d.centre[1]:.2f})" for d in seen)
                failures.append(f"{c.phrase!r} found at {where}, not in its box {list(c.box)}")
                kinds.add("place")
        for c in expectation.constraints:
            if isinstance(c, KeptOutside):
                after = np.asarray(image.convert("RGB"), dtype=np.int16)
                if after.shape != c.before.shape:
                    failures.append("the image changed size")
                    kinds.add("preserved")
                    continue
                outside = ~c.region
                change = float(np.abs(after - c.before)[outside].mean()) if outside.any() else 0.0
                if change > MAX_CHANGE_OUTSIDE:
                    failures.append(f"pixels outside the edited region changed by {change:.1f} "
                                    f"/ 255 on average (at most {MAX_CHANGE_OUTSIDE:g})")
                    kinds.add("preserved")
        score = max((d.score for d in found), default=None)
        return Verdict(not failures, self.method, tuple(failures), score=score,
                       kinds=frozenset(kinds), reading=reading_of(found))
