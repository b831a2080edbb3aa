"""Which objects of the current scene a request refers to: `resolve` for a referring expression
("the red circle", "the other one", "it"), `focus` for what the conversation last talked
about."""
from __future__ import annotations

from dataclasses import dataclass

from world.captions import caption, place_phrase
from world.scene import Obj, Scene

from planners.context import PlanningContext

from .. import language as lang
from ..layout import cell_centre
from ..scenes import scene_of
from .intents import NotRead


def focus(context: PlanningContext) -> list[int]:
    """The objects of the current scene the conversation last talked about: those in the
    region the latest plan repainted or made ("it", "them", "the other one" read from here)."""
    scene = scene_of(context)
    if scene is None:
        return []
    objs = scene.objects
    for turn in reversed(context.history):
        plan = turn.plan
        if plan is None or plan.action != "run":
            continue
        step = plan.steps[-1]
        if step.op in ("generate", "layout", "reference", "invert_edit"):
            return list(range(len(objs)))
        if step.op == "edit":
            if "background" in step.args.instruction.lower():
                continue
            return list(range(len(objs)))
        if step.op == "inpaint":
            target = step.args.target
            if isinstance(target, list):
                return [i for i, o in enumerate(objs)
                        if any(b[0] <= o.x <= b[2] and b[1] <= o.y <= b[3] for b in target)]
            try:
                return resolve_text(target, scene, [])
            except NotRead:
                return []
        if step.op == "compose":
            b = step.args.box
            return [i for i, o in enumerate(objs) if b[0] <= o.x <= b[2] and b[1] <= o.y <= b[3]]
        # restore and unknown operations change nothing anyone talks about: look further back
    return []


def resolve_text(text: str, scene: Scene, focused: list[int]) -> list[int]:
    items = lang.chunk(lang.tokenize(text))
    mention = next((i for i in items if i.kind == "mention"), None)
    if mention is None:
        raise NotRead(f"I cannot tell which object {text!r} means")
    place = next((i.value for i in items if i.kind == "place"), None)
    return resolve(mention.value, place, scene, focused)


def resolve(m: lang.Mention, place, scene: Scene, focused: list[int],
            found: list[Reference] | None = None) -> list[int]:
    """The objects a referring expression picks out, or NotRead saying why it cannot.
    `found`, when given, receives a Reference for each expression resolved: the words that
    picked the objects out, so a plan can name them by what they are rather than by id."""
    objs = scene.objects
    n = len(objs)
    if m.pronoun == "it":
        if len(focused) == 1:
            chosen = focused
        elif n == 1:
            chosen = [0]
        else:
            raise NotRead("I cannot tell which object 'it' is; name it, e.g. 'the red circle'")
        if found is not None:
            found.append(Reference(m, None, chosen))
        return chosen
    if m.pronoun in ("them", "all"):
        if m.pronoun == "them" and len(focused) >= 2:
            chosen = focused
        else:
            chosen = list(range(n))
        if m.count and len(chosen) != m.count:
            raise NotRead(f"I see {len(chosen)} objects, not {m.count}; say which ones")
        if found is not None:
            found.append(Reference(m, None, chosen))
        return chosen
    wanted = m.attrs()
    candidates = [i for i, o in enumerate(objs) if all(getattr(o, a) == v for a, v in wanted.items())]
    if not candidates and "size" in wanted:
        # Sizes are judged by eye: "the tiny blue shape" means the one blue shape even when it
        # came out large. Only when that leaves a single object; the plan's notes name it.
        others = {a: v for a, v in wanted.items() if a != "size"}
        loose = [i for i, o in enumerate(objs) if all(getattr(o, a) == v for a, v in others.items())]
        candidates = loose if len(loose) == 1 else []
    what = mention_words(m)
    if m.other:
        candidates = [i for i in candidates if i not in focused]
        if not focused:
            raise NotRead(f"'the other {what}' needs an object we talked about first")
    if place is not None:
        row, column = place
        in_cell = [i for i in candidates if objs[i].place == (row, column)]
        if in_cell:
            candidates = in_cell
        else:
            directions = ([] if column == "center" else ["left_of" if column == "left" else "right_of"])
            directions += [] if row == "middle" else ["above" if row == "top" else "below"]
            if not directions:  # "the one in the middle": nearest the centre
                directions = []
                candidates = sorted(candidates, key=lambda i: (objs[i].x - .5) ** 2 + (objs[i].y - .5) ** 2)[:1]
            for direction in directions:
                candidates = _extreme(candidates, objs, direction)
    for direction in m.extremes:
        candidates = _extreme(candidates, objs, direction)
    if not candidates:
        raise NotRead(f"I see no {what}{place_suffix(place)} in the image; it has "
                      f"{_scene_words(scene)}")
    if len(candidates) > 1 and not (m.plural or (m.count or 0) > 1):
        options = " or ".join(f"the {objs[i].describe()} {place_phrase(objs[i])}"
                              for i in candidates)
        raise NotRead(f"'{what}' could be {options}; say which")
    if m.count and m.count > 1 and len(candidates) != m.count:
        raise NotRead(f"I see {len(candidates)} {what}s, not {m.count}")
    if found is not None:
        found.append(Reference(m, place, candidates))
    return candidates


EXTREME_WORDS = {"left_of": "leftmost", "right_of": "rightmost", "above": "top", "below": "bottom"}


@dataclass
class Reference:
    """A referring expression as resolve read it: the mention, its place (row, column) or
    None, and the indices of the objects it picked out."""

    mention: lang.Mention
    place: tuple[str, str] | None
    chosen: list[int]


def _extreme(candidates: list[int], objs, direction: str) -> list[int]:
    """Of the candidates, the one furthest in `direction` (ties within the world's margin
    all stay, so an unclear "the left one" is reported, not guessed)."""
    if len(candidates) <= 1:
        return candidates
    key = {"left_of": lambda o: o.x, "right_of": lambda o: -o.x,
           "above": lambda o: o.y, "below": lambda o: -o.y}[direction]
    best = min(key(objs[i]) for i in candidates)
    return [i for i in candidates if key(objs[i]) - best < 0.1 - 1e-9]


def mention_words(m: lang.Mention) -> str:
    noun = m.shape or "one"
    return " ".join(w for w in (m.size, m.color, noun) if w)


def place_suffix(place) -> str:
    if place is None:
        return ""
    return " " + place_phrase(Obj("circle", "red", "small", *cell_centre(*place)))


def _scene_words(scene: Scene) -> str:
    return caption(scene)
