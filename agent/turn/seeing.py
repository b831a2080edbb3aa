"""A checker that sees through models: what a step meant, read as detector queries and box
geometry, as SLD's and LMD's evaluations read images with OWL-ViT.

- `generate` and `reference`: the prompt read as things (planners/descriptions.py); each
  thing's phrase is a query, found as many times as the prompt counts it, in its grid cell
  where it has one, and in its relations to the others (centres at least a tenth of the side
  apart, as "left of" means it).
- `layout`: each object's phrase is a query; it must be found with its centre inside its box
  (with a margin of a quarter of the box's side), and each phrase as many times as the layout
  has it. `inpaint` with objects: each object in its box.
- an edit of a region given as boxes (`inpaint`): every pixel outside the padded region must
  stay as it was (mean change at most 2 / 255), and an object of the image before that the
  region removes (an inpaint drawing nothing there) must be gone from it.
- every step that works on an image also reads the objects that image had (its stored
  reading), so the reading of the result lists the whole scene for the next turn.
- anything else is left to `fallback` (a CLIP checker, where the model set has a CLIP).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from agent.turn.checks import Expectation, Reading, Verdict
from planners.descriptions import cell_of
from planners.object_edits import centre

MAX_CHANGE_OUTSIDE = 2.0     # mean absolute change per channel, out of 255
PLACE_MARGIN = 0.25          # of the box's side, around the box the centre may fall in
RELATION_MARGIN = 0.1        # of the image side between two centres, for "left of" and the rest


@dataclass(frozen=True)
class ObjectInBox:
    phrase: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class PhraseCount:
    phrase: str
    count: int


@dataclass(frozen=True)
class PhraseAt:
    phrase: str
    row: str
    column: str


@dataclass(frozen=True)
class PhraseRelation:
    phrase: str
    relation: str        # left_of, right_of, above, below
    other: str


@dataclass(frozen=True)
class GoneFrom:
    phrase: str
    box: tuple[float, float, float, float]     # the region it must no longer stand in


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


def related(a, relation: str, b) -> bool:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return {"left_of": dx >= RELATION_MARGIN, "right_of": -dx >= RELATION_MARGIN,
            "above": dy >= RELATION_MARGIN, "below": -dy >= RELATION_MARGIN}[relation]


def description_constraints(text: str) -> list:
    """A prompt's things, counts, places and relations as constraints; [] when it names no
    thing a detector could be asked for."""
    from collections import Counter

    from planners.descriptions import read_description

    description = read_description(text)
    things = description.things
    counts = Counter()
    for t in things:
        counts[t.phrase] += t.count
    constraints: list = [PhraseCount(phrase, n) for phrase, n in counts.items()]
    constraints += [PhraseAt(t.phrase, *t.place) for t in things if t.place]
    constraints += [PhraseRelation(things[a].phrase, r, things[b].phrase)
                    for a, r, b in description.relations if things[a].phrase != things[b].phrase]
    return constraints


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

    def expect(self, step, before, scene: dict | None = None) -> Expectation | None:
        from collections import Counter

        args = step.args
        known = [o for o in (scene or {}).get("objects", []) if o.get("name")]
        constraints: list = []
        if step.op in ("generate", "reference") and getattr(args, "prompt", None):
            constraints += description_constraints(args.prompt)
        if step.op in ("layout", "inpaint") and getattr(args, "objects", None):
            constraints += [ObjectInBox(o.phrase, tuple(o.box)) for o in args.objects]
        if step.op == "layout":
            counts = Counter(o.phrase for o in args.objects)
            constraints += [PhraseCount(phrase, n) for phrase, n in counts.items()]
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
            if not getattr(args, "objects", None):
                constraints += [GoneFrom(o["name"], tuple(o["box"])) for o in known
                                if any(centre_in(b, centre(o["box"]), 0) for b in target)]
        read_also = tuple(sorted({o["name"] for o in known} if before is not None else ()))
        if not constraints:
            fallen = self.fallback.expect(step, before) if self.fallback is not None else None
            if not read_also:
                return fallen
            # Nothing to test here, but the scene is still read for the next turn.
            return (replace(fallen, read_also=read_also) if fallen is not None
                    else Expectation(about=step.summary(), read_also=read_also))
        about = "; ".join(sorted({c.phrase for c in constraints if hasattr(c, "phrase")}))
        return Expectation(about=about or step.summary(), constraints=tuple(constraints),
                           read_also=read_also)

    def judge(self, image, expectation: Expectation | None) -> Verdict:
        if expectation is None:
            return Verdict(None, self.method)
        if not expectation.constraints:
            verdict = (self.fallback.judge(image, expectation)
                       if self.fallback is not None and expectation.text is not None
                       else Verdict(None, self.method))
            return replace(verdict, reading=reading_of(self._also(image, expectation, [])))
        failures, kinds = [], set()
        phrases = set()
        for c in expectation.constraints:
            phrases |= {getattr(c, "phrase", None), getattr(c, "other", None)}
        phrases.discard(None)
        found = self.eyes.detect(image, sorted(phrases)) if phrases else []
        seen = {p: [d for d in found if d.label == p] for p in phrases}
        for c in expectation.constraints:
            failure = self._failure(c, seen)
            if failure:
                failures.append(failure[0])
                kinds.add(failure[1])
        for c in expectation.constraints:
            if isinstance(c, KeptOutside):
                after = np.asarray(image.convert("RGB"), dtype=np.int16)
                before, region = c.before, c.region
                if after.shape != before.shape:
                    # The operation fitted the image to the model's sides (pipelines.base.
                    # fit_image): compare with the input resized the same way.
                    from pipelines.base import FIT_RESAMPLING

                    size = (after.shape[1], after.shape[0])
                    before = np.asarray(Image.fromarray(before).resize(size, FIT_RESAMPLING))
                    region = np.asarray(Image.fromarray(region).resize(
                        size, Image.Resampling.NEAREST))
                outside = ~region
                change = float(np.abs(after - before)[outside].mean()) if outside.any() else 0.0
                if change > MAX_CHANGE_OUTSIDE:
                    failures.append(f"pixels outside the edited region changed by {change:.1f} "
                                    f"/ 255 on average (at most {MAX_CHANGE_OUTSIDE:g})")
                    kinds.add("preserved")
        score = min((max((d.score for d in ds), default=0.0) for ds in seen.values()),
                    default=None)
        return Verdict(not failures, self.method, tuple(failures), score=score,
                       kinds=frozenset(kinds),
                       reading=reading_of(found + self._also(image, expectation, found)))

    def _also(self, image, expectation: Expectation, found: list) -> list:
        """The objects of the scene before that the step's own phrases did not find: asked
        for apart, so that old names never change what the step's check sees."""
        from pipelines.detection import SAME_OBJECT_IOU, iou

        if not expectation.read_also:
            return []
        kept: list = []
        for d in sorted(self.eyes.detect(image, list(expectation.read_also)),
                        key=lambda d: -d.score):
            if all(iou(d.box, k.box) < SAME_OBJECT_IOU for k in [*found, *kept]):
                kept.append(d)
        return kept

    @staticmethod
    def _failure(c, seen: dict) -> tuple[str, str] | None:
        """What is wrong with one constraint, and its kind; None when it holds."""
        mine = seen.get(getattr(c, "phrase", None), [])
        where = lambda ds: ", ".join(f"({d.centre[0]:.2f}, {d.centre[1]:.2f})"  # noqa: E731
                                     for d in ds)
        if isinstance(c, ObjectInBox):
            if not mine:
                return f"no {c.phrase!r} found", "count"
            if not any(centre_in(c.box, d.centre) for d in mine):
                return f"{c.phrase!r} found at {where(mine)}, not in its box {list(c.box)}", "place"
        elif isinstance(c, GoneFrom) and any(centre_in(c.box, d.centre, 0) for d in mine):
            return f"{c.phrase!r} is still there, where it should be gone", "count"
        elif isinstance(c, PhraseCount) and len(mine) != c.count:
            return f"{c.count} {c.phrase!r} wanted, {len(mine)} found", "count"
        elif isinstance(c, PhraseAt) and mine and not any(
                cell_of(d.centre) == (c.row, c.column) for d in mine):
            return (f"{c.phrase!r} found at {where(mine)}, not at the {c.row} {c.column}",
                    "place")
        elif isinstance(c, PhraseRelation):
            others = seen.get(c.other, [])
            if mine and others and not any(related(a.centre, c.relation, b.centre)
                                           for a in mine for b in others if a is not b):
                return (f"{c.phrase!r} is not {c.relation.replace('_', ' ')} {c.other!r}",
                        "relation")
        return None
