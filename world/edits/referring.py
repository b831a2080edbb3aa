"""Naming one object of a scene so that no other fits: by attributes, by place, by both."""
from __future__ import annotations

from ..check import RELATIONS, relation_holds
from ..phrasings import COLOR_WORDS, PLACE_WORDS, SHAPE_WORDS, SIZE_WORDS, Dice
from ..scene import Obj, Scene
from .record import EditError
from .templates import EXTREME_WORDS, GENERIC_NOUNS

_ATTRIBUTE_SETS = (("shape",), ("color",), ("size",), ("color", "shape"), ("size", "shape"),
                   ("size", "color"), ("size", "color", "shape"))


def _description(d: Dice, o: Obj, attrs) -> str:
    words = []
    if "size" in attrs:
        words.append(d.pick(SIZE_WORDS[o.size]))
    if "color" in attrs:
        words.append(d.pick(COLOR_WORDS[o.color]))
    words.append(d.pick(SHAPE_WORDS[o.shape]) if "shape" in attrs else d.pick(GENERIC_NOUNS))
    return " ".join(words)


def _extreme(objs, i: int, among) -> list[str]:
    """The directions in which object i stands apart from all of `among` by the margin."""
    return [rel for rel in RELATIONS
            if all(relation_holds(objs[i], objs[k], rel) for k in among if k != i)]


def referring_expressions(scene: Scene, i: int, d: Dice) -> list[str]:
    """Ways to name object i that fit no other object of the scene: by attributes ("the red
    circle"), by place ("the one on the left", "the one in the top left corner"), by both
    ("the upper red circle"), or "it" when the scene has just that one object."""
    objs = scene.objects
    t = objs[i]
    n = len(objs)
    found = []
    if n == 1:
        found += ["it", "it", "it", "the shape", "the object"]
    for attrs in ((),) + _ATTRIBUTE_SETS:
        same = [k for k, o in enumerate(objs) if all(getattr(o, a) == getattr(t, a)
                                                     for a in attrs)]
        if same == [i]:
            if attrs:
                found.append(f"the {_description(d, t, attrs)}")
        elif len(same) > 1:
            for rel in _extreme(objs, i, same):
                found.append(d.pick(EXTREME_WORDS[rel]).format(_description(d, t, attrs)))
    # By cell: alone in its cell, and for an edge cell also the furthest that way, so that
    # "the one at the top" cannot be read as another object nearer the top.
    alone = all(o.place != t.place for k, o in enumerate(objs) if k != i)
    if alone and n > 1:
        row, column = t.place
        needed = ([] if column == "center" else ["left_of" if column == "left" else "right_of"])
        needed += [] if row == "middle" else ["above" if row == "top" else "below"]
        corner_or_centre = len(needed) != 1
        extremes = _extreme(objs, i, range(n))
        if corner_or_centre or needed[0] in extremes:
            place = d.pick(PLACE_WORDS[t.place])
            found.append(f"the one {place}")
            found.append(f"the {_description(d, t, d.pick(_ATTRIBUTE_SETS))} {place}")
    return found


def refer(scene: Scene, i: int, d: Dice) -> str:
    options = referring_expressions(scene, i, d)
    if not options:
        raise EditError(f"object {i} cannot be told apart from the others")
    return d.pick(options)
