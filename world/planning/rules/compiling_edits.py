"""Edit intents applied to the current scene (`apply_intents`: the exact after-scene), then
compiled into one step that repaints only what changes, or redraws, inverts or instructs as
CHOICES says."""
from __future__ import annotations

from dataclasses import dataclass

from world.captions import caption, describe, place_phrase
from world.scene import Obj, Scene

from planners.plan import Plan, PlanResult, Step

from ..layout import cell_centre, on_canvas, padded, union
from ..scenes import scene_of
from .intents import EditIntent, NotRead
from .placing import free_spot
from .references import place_suffix
from .words import RELATION_WORDS


@dataclass
class EditOutcome:
    """What a list of edit intents does to a scene: the after-scene, and per changed object
    its (index in the before-scene or None when added, before, after)."""

    before: Scene
    after: Scene
    touched: list[tuple[int | None, Obj | None, Obj | None]]
    kinds: list[str]
    notes: list[str]


def apply_intents(intents: list[EditIntent], scene: Scene) -> EditOutcome:
    objs = list(scene.objects)
    after = list(objs)
    removed: set[int] = set()
    added: list[Obj] = []
    background = scene.background
    touched: list[tuple[int | None, Obj | None, Obj | None]] = []
    kinds: list[str] = []
    notes: list[str] = []

    def others_than(i=None):
        return [o for j, o in enumerate(after) if j != i and j not in removed] + added

    for intent in intents:
        kind = intent.kind
        if kind == "background":
            background = intent.params["background"]
            kinds.append("background")
            notes.append(f"The background becomes {background}; every object stays as it is.")
        elif kind == "change":
            (i,) = intent.targets
            new = after[i].replace(**intent.params)
            name = next(iter(intent.params)) if len(intent.params) == 1 else "change"
            kinds.append({"color": "recolor", "shape": "reshape", "size": "resize"}.get(name, name))
            if new.size != objs[i].size and not _fits(new, others_than(i)):
                raise NotRead(f"there is no room to make the {objs[i].describe()} larger "
                              "without touching its neighbours")
            after[i] = new
            touched.append((i, objs[i], new))
            notes.append(f"obj_{i + 1} ({objs[i].describe()} {place_phrase(objs[i])}) becomes "
                         f"{new.describe()}.")
        elif kind == "swap_colors":
            i, j = intent.targets
            a, b = after[i], after[j]
            after[i], after[j] = a.replace(color=b.color), b.replace(color=a.color)
            touched += [(i, objs[i], after[i]), (j, objs[j], after[j])]
            kinds.append("swap_colors")
            notes.append(f"obj_{i + 1} and obj_{j + 1} trade colours ({a.color} <-> {b.color}).")
        elif kind == "remove":
            for i in intent.targets:
                removed.add(i)
                touched.append((i, objs[i], None))
                notes.append(f"obj_{i + 1} ({objs[i].describe()} {place_phrase(objs[i])}) is "
                             "removed; the background shows through.")
            kinds.append("remove")
        elif kind == "move":
            (i,) = intent.targets
            t = objs[i]
            if "place" in intent.params:
                place = tuple(intent.params["place"])
                spot = free_spot(scene, t.shape, t.size, place, others_than(i))
                where = place_suffix(place).strip().replace("at the", "to the")
            else:
                anchor = after[intent.params["anchor"]]
                spot = free_spot(scene, t.shape, t.size, None, others_than(i),
                                  (intent.params["relation"], anchor))
                where = f"{RELATION_WORDS[intent.params['relation']]} the {anchor.describe()}"
            if spot is None:
                raise NotRead(f"there is no free room {where} for the {t.describe()}")
            new = t.replace(x=spot[0], y=spot[1])
            after[i] = new
            touched.append((i, t, new))
            kinds.append("move")
            notes.append(f"obj_{i + 1} ({t.describe()}) moves {where}, into a free box there.")
        elif kind == "add":
            p = intent.params
            shape, color = p["shape"], p["color"]
            if color is None:
                raise NotRead(f"which colour should the new {shape} be?")
            place = tuple(p["place"]) if p.get("place") else None
            relation = (p["relation"], after[p["anchor"]]) if p.get("relation") else None
            sizes = [p["size"]] if p["size"] else ["large", "small"]
            spot = None
            for size in sizes:
                spot = free_spot(scene, shape, size, place, others_than(), relation)
                if spot is not None:
                    break
            if spot is None:
                raise NotRead(f"there is no free room for a {color} {shape} there")
            new = Obj(shape, color, size, *spot)
            added.append(new)
            touched.append((None, None, new))
            kinds.append("add")
            notes.append(f"A new {new.describe()} goes {place_phrase(new)}, in a free box.")
    after_scene = Scene(tuple(o for j, o in enumerate(after) if j not in removed) + tuple(added),
                        background)
    return EditOutcome(scene, after_scene, touched, kinds, notes)


def edit_boxes(outcome: EditOutcome) -> list[list[float]]:
    """The regions to repaint: each changed object's box before and after, padded for its
    antialiased edge. A change in place (same centre) is one box; a move keeps its old and
    new boxes apart and in that order, so the new one reads as where the object goes."""
    boxes = []
    for _, before, new in outcome.touched:
        if before is not None and new is not None and (before.x, before.y) == (new.x, new.y):
            boxes.append(union(padded(before.box), padded(new.box)))
            continue
        boxes.extend(padded(o.box) for o in (before, new) if o is not None)
    return [[round(v, 4) for v in b] for b in boxes]


def compile_edits(intents: list[EditIntent], context, choices, why) -> PlanResult:
    scene = scene_of(context)
    outcome = apply_intents(intents, scene)
    kinds = outcome.kinds
    kind = kinds[0] if len(set(kinds)) == 1 else "change"
    n = len(scene.objects)
    changed = sorted(i for i, _, _ in outcome.touched if i is not None)
    all_changed = n > 1 and kind in ("recolor", "reshape", "resize", "change") and changed == list(range(n))
    op = choices["change_all" if all_changed else kind]
    untouched = n - len(set(changed))
    rationale = " ".join(outcome.notes)
    if op == "inpaint":
        boxes = edit_boxes(outcome)
        placed = [{"phrase": describe(new, with_place=False), "box": on_canvas(new.box)}
                  for _, _, new in outcome.touched if new is not None]
        rationale += (f" Inpainting only {'this box' if len(boxes) == 1 else 'these boxes'}, "
                      f"{'with each new object drawn alone and placed in its box, ' if placed else 'cleared, '}"
                      f"keeps the other {untouched} object(s) exactly as they are.")
        step = Step(op="inpaint", args={"prompt": caption(outcome.after), "target": boxes,
                                        "objects": placed},
                    inputs=[context.current_image], reason=f"{kind}: repaint only what changes")
    elif op == "layout":
        rationale += (" Every object is drawn again in its own box on the new scene, so each "
                      "keeps its shape, colour, size and place.")
        args = {"objects": [{"phrase": describe(o, with_place=False),
                             "box": on_canvas(o.box)} for o in outcome.after.objects]}
        if outcome.after.background != "white":
            args["background_prompt"] = f"a plain {outcome.after.background} background"
        step = Step(op="layout", args=args, reason=f"{kind}: redraw the scene as it should be")
    elif op == "invert_edit":
        rationale += (" The change touches the whole picture, so the image is inverted and "
                      "regenerated with the new caption, which keeps its layout.")
        step = Step(op="invert_edit", args={"source_prompt": caption(scene),
                                            "target_prompt": caption(outcome.after)},
                    inputs=[context.current_image], reason=f"{kind}: keep the structure")
    else:
        instruction = "; ".join(_instruction(i, scene.objects, outcome.after) for i in intents)
        rationale += " An instruction edit makes the change and keeps the rest."
        step = Step(op="edit", args={"instruction": instruction},
                    inputs=[context.current_image], reason=f"{kind}: edit as instructed")
    return Plan(rationale=rationale, steps=[step])


def _fits(obj: Obj, others) -> bool:
    box = obj.box
    if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
        return False
    return all(box[2] + 0.031 <= o.box[0] or o.box[2] + 0.031 <= box[0] or
               box[3] + 0.031 <= o.box[1] or o.box[3] + 0.031 <= box[1] for o in others)


def _the(o: Obj) -> str:
    return f"the {o.describe()} {place_phrase(o)}"


def _instruction(intent: EditIntent, objs, after_scene: Scene) -> str:
    """A plain instruction in the world's edit phrasing for the instruction editor."""
    kind, p = intent.kind, intent.params
    if kind == "background":
        return f"make the background {p['background']}"
    if kind == "change":
        (i,) = intent.targets
        if set(p) == {"color"}:
            return f"make {_the(objs[i])} {p['color']}"
        if set(p) == {"size"}:
            return f"make {_the(objs[i])} {p['size']}"
        if set(p) == {"shape"}:
            return f"turn {_the(objs[i])} into a {p['shape']}"
        new = objs[i].replace(**p)
        return f"turn {_the(objs[i])} into a {new.describe()}"
    if kind == "swap_colors":
        i, j = intent.targets
        return f"swap the colors of {_the(objs[i])} and {_the(objs[j])}"
    if kind == "remove":
        return "; ".join(f"remove {_the(objs[i])}" for i in intent.targets)
    if kind == "move":
        (i,) = intent.targets
        if "place" in p:
            where = place_phrase(Obj("circle", "red", "small", *cell_centre(*p["place"])))
            return f"move {_the(objs[i])} {where.replace('at the', 'to the')}"
        return (f"move {_the(objs[i])} {RELATION_WORDS[p['relation']]} "
                f"{_the(objs[p['anchor']])}")
    if kind == "add":
        new = after_scene.objects[-1]
        return f"add a {new.describe()} {place_phrase(new)}"
    raise ValueError(f"no instruction for edit kind {kind!r}")
