"""Phrasing families: each a way to say what a scene shows (listings, counts, totals,
statements, relations, sequences), recording the constraints it states as it goes."""
from __future__ import annotations

from ..captions import reading_order
from ..check import Count, Exists, Relation, relation_holds
from ..scene import RELATION_MARGIN, Obj, Scene
from .dice import Dice, article, join_and, plural
from .vocabulary import (ANCHORED_PHRASES, COLOR_WORDS, DIAGONAL_HORIZONTAL, NEXT_TO_PHRASES,
                         NUMBER_WORDS, PLACE_WORDS, RELATION_PHRASES, SHAPE_WORDS, SIZE_WORDS,
                         THING_WORDS)


# --- pieces -------------------------------------------------------------------------------

def _np(d: Dice, o: Obj, with_size: bool, with_place: bool, claims) -> str:
    """"a big red ball at the top left", with the size and place only when asked for."""
    color, noun = d.pick(COLOR_WORDS[o.color]), d.pick(SHAPE_WORDS[o.shape])
    size = d.pick(SIZE_WORDS[o.size]) if with_size else ""
    if d.chance(0.12):
        core = f"{size} {noun} in {color}" if size else f"{noun} in {color}"
    else:
        core = f"{size} {color} {noun}" if size else f"{color} {noun}"
    text = f"{article(core)} {core}"
    if with_place:
        text += " " + d.pick(PLACE_WORDS[o.place])
    if claims is not None:
        claims.append(Exists(o.shape, o.color, o.size if with_size else None,
                             o.row if with_place else None, o.column if with_place else None))
    return text


def _order(d: Dice, objs) -> list[Obj]:
    return reading_order(objs) if d.chance(0.7) else d.shuffled(objs)


def _listing(d: Dice, objs, p_size: float, p_place: float, claims) -> str:
    return join_and(d, [_np(d, o, d.chance(p_size), d.chance(p_place), claims)
                        for o in _order(d, objs)])


def _relations_between(objs) -> list[tuple[int, int, str]]:
    return [(i, j, rel) for i, a in enumerate(objs) for j, b in enumerate(objs) if i != j
            for rel in RELATION_PHRASES if relation_holds(a, b, rel)]


def _in_line(objs, axis: str) -> bool:
    """In a row (axis "x"): left to right with the world/WORLD.md margin between neighbours, and
    level (no two objects one above the other). A column likewise, top to bottom."""
    other = "y" if axis == "x" else "x"
    values = sorted(getattr(o, axis) for o in objs)
    spread = [getattr(o, other) for o in objs]
    return (all(b - a >= RELATION_MARGIN for a, b in zip(values, values[1:]))
            and max(spread) - min(spread) < RELATION_MARGIN)


def _ordered_by(objs, axis: str) -> bool:
    values = sorted(getattr(o, axis) for o in objs)
    return all(b - a >= RELATION_MARGIN for a, b in zip(values, values[1:]))


# --- families -----------------------------------------------------------------------------
# Each takes (dice, objects, claims) and returns the body, or None when it does not apply.

def _caption_family(d, objs, claims):
    return _listing(d, objs, 1.0, 1.0, claims)


def _no_place_family(d, objs, claims):
    return _listing(d, objs, 1.0, 0.0, claims)


def _no_size_family(d, objs, claims):
    return _listing(d, objs, 0.0, 1.0, claims)


def _bare_family(d, objs, claims):
    return _listing(d, objs, 0.0, 0.0, claims)


def _count_word(d: Dice, k: int) -> str:
    return d.pick(("two", "a pair of")) if k == 2 else NUMBER_WORDS[k]


def _same_kind_group(d, group, claims) -> str:
    """"two red circles", "a pair of small red balls, one at the top and one at the bottom"."""
    first = group[0]
    same_size = all(o.size == first.size for o in group)
    with_size = same_size and d.chance(0.5)
    noun = plural(d.pick(SHAPE_WORDS[first.shape]))
    color = d.pick(COLOR_WORDS[first.color])
    size = d.pick(SIZE_WORDS[first.size]) + " " if with_size else ""
    text = f"{_count_word(d, len(group))} {size}{color} {noun}"
    if claims is not None:
        claims.append(Count(len(group), first.shape, first.color,
                            first.size if with_size else None))
    detail = d.pick(("none", "places", "sizes", "both"))
    if detail == "sizes" and same_size:
        detail = "none"
    if detail == "none":
        return text
    members = []
    for o in reading_order(group):
        said_size, said_place = detail in ("sizes", "both"), detail in ("places", "both")
        member = f"a {d.pick(SIZE_WORDS[o.size])} one" if said_size else "one"
        if said_place:
            member += " " + d.pick(PLACE_WORDS[o.place])
        members.append(member)
        if claims is not None:
            claims.append(Exists(o.shape, o.color, o.size if said_size else None,
                                 o.row if said_place else None,
                                 o.column if said_place else None))
    return f"{text}, {join_and(d, members)}"


def _group(d, group, key, claims) -> str:
    shapes = {o.shape for o in group}
    colors = {o.color for o in group}
    if len(shapes) == 1 and len(colors) == 1:
        return _same_kind_group(d, group, claims)
    k = len(group)
    subgroups: dict[str, list[Obj]] = {}
    if key == "shape":  # "two circles, one red and one blue"
        shape = group[0].shape
        head = f"{_count_word(d, k)} {plural(d.pick(SHAPE_WORDS[shape]))}"
        if claims is not None:
            claims.append(Count(k, shape=shape))
        for o in group:
            subgroups.setdefault(o.color, []).append(o)
        parts = []
        for color, members in subgroups.items():
            word = d.pick(COLOR_WORDS[color])
            if len(members) == 1:
                parts.append(d.pick((f"one {word}", f"a {word} one")))
            else:
                parts.append(f"{NUMBER_WORDS[len(members)]} {word}")
            if claims is not None:
                claims.append(Count(len(members), shape, color))
    else:  # "two red shapes: a circle and a square"
        color = group[0].color
        head = f"{_count_word(d, k)} {d.pick(COLOR_WORDS[color])} {d.pick(THING_WORDS)}"
        if claims is not None:
            claims.append(Count(k, color=color))
        for o in group:
            subgroups.setdefault(o.shape, []).append(o)
        parts = []
        for shape, members in subgroups.items():
            word = d.pick(SHAPE_WORDS[shape])
            if len(members) == 1:
                parts.append(f"{article(word)} {word}")
            else:
                parts.append(f"{NUMBER_WORDS[len(members)]} {plural(word)}")
            if claims is not None:
                claims.append(Count(len(members), shape, color))
    return head + d.pick((", ", ": ")) + join_and(d, parts)


def _count_family(d, objs, claims):
    key = d.pick(("kind", "kind", "shape", "color"))
    groups: dict = {}
    for o in reading_order(objs):
        k = (o.color, o.shape) if key == "kind" else o.shape if key == "shape" else o.color
        groups.setdefault(k, []).append(o)
    parts = []
    for group in groups.values():
        if len(group) > 1:
            parts.append(_group(d, group, key, claims))
        elif d.chance(0.5):  # "a single red circle", "one blue square"
            o = group[0]
            with_place = d.chance(0.4)
            text = (f"{d.pick(('one', 'a single', 'just one'))} {d.pick(COLOR_WORDS[o.color])} "
                    f"{d.pick(SHAPE_WORDS[o.shape])}")
            if with_place:
                text += " " + d.pick(PLACE_WORDS[o.place])
            if claims is not None:
                claims.append(Count(1, o.shape, o.color))
                if with_place:
                    claims.append(Exists(o.shape, o.color, None, o.row, o.column))
            parts.append(text)
        else:
            parts.append(_np(d, group[0], d.chance(0.5), d.chance(0.4), claims))
    return join_and(d, parts)


def _total_family(d, objs, claims):
    n = len(objs)
    things = d.pick(THING_WORDS) if n > 1 else d.pick(("shape", "object", "thing"))
    count = NUMBER_WORDS[n] if n > 1 else d.pick(("one", "a single"))
    listing = _listing(d, objs, 0.6, 0.6, claims)
    if d.chance(0.7):
        return f"{count} {things}: {listing}"
    return f"{listing}, {count} {things} in total"


def _statement_family(d, objs, claims):
    """Clauses: "there is a red circle at the top left", "at the bottom is a blue square"."""
    n = len(objs)
    form = d.pick(("there_is", "there_are", "place_first", "is_at"))
    if form == "there_are" and n > 1:
        return (f"there are {NUMBER_WORDS[n]} {d.pick(THING_WORDS)}: "
                f"{_listing(d, objs, 0.6, 0.6, claims)}")
    if form in ("there_is", "there_are"):
        return "there is " + _listing(d, objs, 0.6, 0.6, claims)
    parts = []
    for o in _order(d, objs):
        noun_phrase = _np(d, o, d.chance(0.6), False, claims)
        place = d.pick(PLACE_WORDS[o.place])
        if claims is not None:
            claims[-1] = Exists(o.shape, o.color, claims[-1].size, o.row, o.column)
        if form == "place_first":
            parts.append(d.pick((f"{place} there is {noun_phrase}", f"{place} is {noun_phrase}")))
        else:
            parts.append(f"{noun_phrase} is {place}")
    return parts[0] if n == 1 else d.pick(("; ", ", and ")).join(parts)


def _relation_phrase(d, a_obj, b_obj, rel) -> tuple[str, list]:
    """The words between A and B for A `rel` B, sometimes diagonal ("above and to the left
    of") when both a horizontal and a vertical relation hold; and the relations said."""
    rels = [rel]
    if rel in ("above", "below"):
        horizontal = [r for r in DIAGONAL_HORIZONTAL if relation_holds(a_obj, b_obj, r)]
        if horizontal and d.chance(0.3):
            rels.append(horizontal[0])
            return f"{rel} and {DIAGONAL_HORIZONTAL[horizontal[0]]}", rels
    return d.pick(RELATION_PHRASES[rel]), rels


def _with_others(d, said: str, objs, used, claims) -> str:
    others = [o for k, o in enumerate(objs) if k not in used]
    if not others:
        return said
    rest = _listing(d, others, 0.5, 0.7, claims)
    return d.pick((f"{said}, and {rest}", f"{said}, plus {rest}", f"{rest}, and {said}"))


def _relation_family(d, objs, claims):
    """"a red circle to the left of a blue square", other objects listed after."""
    pairs = _relations_between(objs)
    if not pairs:
        return None
    i, j, rel = d.pick(pairs)
    a = _np(d, objs[i], d.chance(0.4), False, claims)
    words, rels = _relation_phrase(d, objs[i], objs[j], rel)
    b = _np(d, objs[j], d.chance(0.4), False, claims)
    if claims is not None:
        desc_a, desc_b = claims[-2], claims[-1]
        claims.extend(Relation(desc_a, r, desc_b) for r in rels)
    return _with_others(d, f"{a} {words} {b}", objs, (i, j), claims)


def _anchored_family(d, objs, claims):
    """"a blue square with a red circle to its left", "a blue square, and next to it, on its
    right, a red circle"."""
    pairs = _relations_between(objs)
    if not pairs:
        return None
    i, j, rel = d.pick(pairs)
    a_obj, b_obj = objs[i], objs[j]
    b = _np(d, b_obj, d.chance(0.4), d.chance(0.3), claims)
    a = _np(d, a_obj, d.chance(0.4), False, claims)
    level = not (relation_holds(a_obj, b_obj, "above") or relation_holds(a_obj, b_obj, "below"))
    if rel in NEXT_TO_PHRASES and level and d.chance(0.5):
        said = f"{b}, and {NEXT_TO_PHRASES[rel]}, {a}"
    elif d.chance(0.5):
        said = f"{b} with {a} {d.pick(ANCHORED_PHRASES[rel])}"
    else:
        said = f"{b}, and {d.pick(ANCHORED_PHRASES[rel])}, {a}"
    if claims is not None:
        desc_b, desc_a = claims[-2], claims[-1]
        claims.append(Relation(desc_a, rel, desc_b))
    return _with_others(d, said, objs, (i, j), claims)


def _sequence(d, objs, axis, claims) -> str:
    """The objects listed along an axis, with each neighbour relation stated."""
    ordered = sorted(objs, key=lambda o: getattr(o, axis))
    start = len(claims) if claims is not None else 0
    parts = [_np(d, o, d.chance(0.5), False, claims) for o in ordered]
    if claims is not None:
        rel = "left_of" if axis == "x" else "above"
        descs = claims[start:]
        claims.extend(Relation(a, rel, b) for a, b in zip(descs, descs[1:]))
    return join_and(d, parts)


def _ordered_options(objs) -> list[tuple]:
    options = []
    if len(objs) > 1:
        if _ordered_by(objs, "x"):
            options.append(("sequence", "x", None))
        if _ordered_by(objs, "y"):
            options.append(("sequence", "y", None))
    groups: dict = {}
    for o in objs:
        groups.setdefault((o.color, o.shape), []).append(o)
    for group in groups.values():
        if len(group) > 1:
            for axis in ("x", "y"):
                if _in_line(group, axis):
                    options.append(("group", axis, group))
    return options


def _ordered_family(d, objs, claims):
    """"from left to right: ...", "a row of three red circles", "two blue squares side by
    side", "two red balls, one above the other"; only when the objects really lie so."""
    options = _ordered_options(objs)
    if not options:
        return None
    form, axis, group = d.pick(options)
    if form == "sequence":
        n = len(objs)
        if axis == "x" and n > 2 and _in_line(objs, "x") and d.chance(0.4):
            return (f"a row of {NUMBER_WORDS[n]} {d.pick(THING_WORDS)}, from left to right: "
                    f"{_sequence(d, objs, axis, claims)}")
        direction = "from left to right" if axis == "x" else "from top to bottom"
        listing = _sequence(d, objs, axis, claims)
        return d.pick((f"{listing}, {direction}", f"{listing}, in order {direction}"))
    first, k = group[0], len(group)
    color, noun = d.pick(COLOR_WORDS[first.color]), plural(d.pick(SHAPE_WORDS[first.shape]))
    if claims is not None:
        claims.append(Count(k, first.shape, first.color))
    if k > 2:
        line = "a row" if axis == "x" else "a column"
        said = f"{line} of {NUMBER_WORDS[k]} {color} {noun}"
    elif axis == "x":
        said = f"{_count_word(d, 2)} {color} {noun} side by side"
    else:
        said = f"{_count_word(d, 2)} {color} {noun}, one above the other"
    members = {id(o) for o in group}
    used = [k for k, o in enumerate(objs) if id(o) in members]
    return _with_others(d, said, objs, used, claims)


FAMILIES = {
    "caption": _caption_family, "no_place": _no_place_family, "no_size": _no_size_family,
    "bare": _bare_family, "count": _count_family, "total": _total_family,
    "statement": _statement_family, "relation": _relation_family,
    "anchored": _anchored_family, "ordered": _ordered_family,
}
CLAUSE_FAMILIES = frozenset({"statement"})
# How often each family is drawn when all are allowed.
FAMILY_WEIGHTS = {"caption": 2, "no_place": 1, "no_size": 1, "bare": 1, "count": 2, "total": 1,
                  "statement": 1, "relation": 2, "anchored": 1, "ordered": 1}


def phrasing_templates() -> tuple[str, ...]:
    """Names of the phrasing families; pass a subset as `families` to hold others out."""
    return tuple(FAMILIES)


def applicable_families(scene: Scene) -> list[str]:
    objs = scene.objects
    return [f for f in FAMILIES
            if not ((f in ("relation", "anchored") and not _relations_between(objs))
                    or (f == "ordered" and not _ordered_options(objs)))]
