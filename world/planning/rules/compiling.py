"""Turning an intent into a plan: `compile_intent` lays out new pictures and answers special
requests here, and hands edits of the current scene to compiling_edits.py."""
from __future__ import annotations

from world.captions import caption, place_phrase
from world.scene import SIZES, Obj

from planners.context import PlanningContext
from planners.plan import Plan, PlanResult, Step

from .. import language as lang
from ..layout import Slot, box_at, cell_centre, solve
from ..scenes import scene_of
from .compiling_edits import compile_edits
from .intents import Compose, NotRead, ObjSpec, Special
from .placing import free_spot
from .references import place_suffix
from .words import RELATION_WORDS


def compile_intent(intent, context: PlanningContext, choices: dict[str, str],
                   why: list[str]) -> PlanResult:
    if isinstance(intent, Special):
        return _compile_special(intent, context)
    if isinstance(intent, Compose):
        return _compile_compose(intent, choices, why)
    intents = intent if isinstance(intent, list) else [intent]
    return compile_edits(intents, context, choices, why)


def _sizes(compose: Compose) -> list[str]:
    """Stated sizes, and for the rest large when there is room, small otherwise."""
    n = len(compose.objects)
    default = "large" if n <= 2 else "small"
    return [o.size or default for o in compose.objects]


def layout_boxes(compose: Compose) -> list[list[float]] | None:
    sizes = _sizes(compose)
    for attempt in range(2):
        slots = [Slot(o.shape, s, o.row, o.column) for o, s in zip(compose.objects, sizes)]
        points = solve(slots, compose.relations)
        if points is not None:
            return [box_at(o.shape, s, *p) for o, s, p in zip(compose.objects, sizes, points)]
        # No room: unstated sizes become small, then try once more.
        sizes = [o.size or "small" for o in compose.objects]
    return None


def _describe_spec(o: ObjSpec, size: str | None = None) -> str:
    text = o.phrase(size)
    if o.row or o.column:
        centre = cell_centre(o.row or "middle", o.column or "center")
        text += " " + place_phrase(Obj("circle", "red", "small", *centre))
    return text


def _background_suffix(name: str | None) -> str:
    return f", on a {name} background" if name else ""


def _compose_prompt(compose: Compose, sizes: list[str | None] | None = None) -> str:
    """What a Compose shows as one prompt: its objects joined by "and", then its background."""
    sizes = sizes or [None] * len(compose.objects)
    return (" and ".join(_describe_spec(o, size) for o, size in zip(compose.objects, sizes))
            + _background_suffix(compose.background))


def _compile_compose(compose: Compose, choices, why) -> PlanResult:
    objects = compose.objects
    single = len(objects) == 1 and not (objects[0].row or objects[0].column)
    op = choices["compose_single"] if single else choices["compose"]
    listing = "; ".join(_describe_spec(o) for o in objects)
    notes = [f"You asked for {len(objects)} object(s): {listing}"
             + (f", on a {compose.background} background" if compose.background else "") + "."]
    if op == "generate":
        sizes = _sizes(compose) if not single else [objects[0].size]
        prompt = _compose_prompt(compose, sizes)
        notes.append("One object with no place to keep: a plain text-to-image generation "
                     "is enough." if single else "Generated from the prompt alone.")
        step = Step(op="generate", args={"prompt": prompt}, reason="make the picture")
        return Plan(rationale=" ".join(notes), steps=[step])
    boxes = layout_boxes(compose)
    if boxes is None:
        raise NotRead("I cannot fit all of that on the canvas: the places and relations "
                      "asked for leave no room; try fewer or smaller objects")
    sizes = [_size_of_box(b) for b in boxes]
    layout_objects = [{"phrase": o.phrase(s), "box": b}
                      for o, s, b in zip(objects, sizes, boxes)]
    if compose.relations:
        said = ", ".join(f"#{a + 1} {RELATION_WORDS[r]} #{b + 1}" for a, r, b in compose.relations)
        notes.append(f"Relations to keep: {said}; the boxes keep them with room to spare "
                     "beyond world/WORLD.md's 0.1 margin.")
    notes.append("A text prompt cannot pin objects to places, so a layout gives each object "
                 "its own box, sized per world/WORLD.md (small 0.18, large 0.32) and centred in its "
                 "named cell.")
    args = {"objects": layout_objects}
    if compose.background:
        args["background_prompt"] = f"a plain {compose.background} background"
    return Plan(rationale=" ".join(notes),
                steps=[Step(op="layout", args=args, reason="place every object in its box")])


def _size_of_box(box) -> str:
    side = box[2] - box[0]
    return min(SIZES, key=lambda s: abs(SIZES[s] - side))


def _compile_special(intent: Special, context: PlanningContext) -> PlanResult:
    if intent.kind in ("undo", "redo"):
        return Plan(rationale=f"You asked to {intent.kind} the last change; no new image is "
                              "made.", action=intent.kind)
    scene = scene_of(context)
    if intent.kind == "restore":
        told = intent.compose
        if told is not None and told.objects:
            prompt = _compose_prompt(told)
            guide = "what you say it shows"
        else:
            prompt = caption(scene) if scene is not None else ""
            guide = "what the detector reads in it"
        return Plan(rationale="You asked to repair the current image; restore denoises and "
                              f"sharpens it, guided by {guide}.",
                    steps=[Step(op="restore", args={"prompt": prompt},
                                reason="repair noise and blur")])
    if intent.kind == "paste":
        caption_text = _caption_of(intent.reference, context)
        size, shape = "large", None
        words = lang.tokenize(caption_text)
        if "small" in words and "large" not in words:
            size = "small"
        shape = next((lang.SHAPE_OF[w] for w in words if w in lang.SHAPE_OF), None)
        spot = free_spot(scene, shape, size, tuple(intent.place)) if scene else None
        if spot is None:
            raise NotRead("there is no room for it there; choose another place")
        box = box_at(shape, size, *spot)
        return Plan(rationale=f"You asked to paste {intent.reference} into the current image "
                              f"{place_suffix(intent.place).strip()}; compose pastes it into a "
                              "free box there and harmonises the edges.",
                    steps=[Step(op="compose", args={"reference": intent.reference, "box": box,
                                                    "prompt": caption_text[:500]},
                                reason="paste the reference object")])
    # reference
    compose = intent.compose
    if compose is not None and compose.objects:
        prompt = _compose_prompt(compose)
    elif intent.reference:
        prompt = _caption_of(intent.reference, context) or "the same picture"
        if compose is not None and compose.background:
            prompt += _background_suffix(compose.background)
    else:
        raise NotRead("say what the new image should show, e.g. 'a red circle like the "
                      "examples'")
    if intent.exemplars:
        step = Step(op="reference", args={"prompt": prompt, "reference": "ref_1"},
                    exemplars={"query": prompt, "k": 4},
                    reason="follow the best retrieved exemplar")
        why = "retrieval finds exemplars for the prompt and the first one guides the result"
    else:
        step = Step(op="reference", args={"prompt": prompt, "reference": intent.reference},
                    reason=f"follow {intent.reference}")
        why = f"{intent.reference} guides the look and layout while the prompt says what to show"
    return Plan(rationale=f"You asked for an image like an earlier one: {why}.", steps=[step])


def _caption_of(image_id: str, context: PlanningContext) -> str:
    for image in context.images:
        if image.id == image_id:
            return image.caption
    for exemplar in context.exemplars:
        if exemplar.id == image_id:
            return exemplar.caption
    return ""
