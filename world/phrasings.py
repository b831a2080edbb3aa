"""Many true ways to say what a scene shows, for planners and text encoders to learn from.

Every phrasing names every object of the scene (a request that leaves an object out would ask
for a different scene), with synonyms, optional sizes and places, counts, relations and
whole sentences. Each phrasing also carries the constraints it states (see check.py), so a
phrasing doubles as a checkable request.

A phrasing is built from random choices in one pass rather than by listing every phrasing and
picking one: training loops call `random_phrasing` about 100k times.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from .captions import caption, reading_order
from .check import Background, Constraint, Count, Exists, Relation, relation_holds
from .scene import RELATION_MARGIN, Obj, Scene

# --- vocabulary ---------------------------------------------------------------------------

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "dot", "disc", "disk", "round shape"),
    "square": ("square", "box", "block", "tile"),
    "triangle": ("triangle",),
}
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
    "purple": ("purple", "violet"), "cyan": ("cyan", "turquoise"),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "white": ("white", "light"), "gray": ("gray", "grey"), "black": ("black", "dark"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "tiny", "little"), "large": ("large", "big", "huge"),
}


def _corner(row: str, col: str, vertical: str) -> tuple[str, ...]:
    return (f"at the {row} {col}", f"in the {row} {col}", f"in the {row} {col} corner",
            f"in the {vertical} {col}", f"in the {vertical} {col} corner")


def _side(col: str) -> tuple[str, ...]:
    return (f"on the {col}", f"at the {col}", f"on the {col} side", f"at the {col} side",
            f"in the middle of the {col} side")


# Each of WORLD.md's nine cells, said several ways; every phrase names exactly that cell.
PLACE_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("top", "left"): _corner("top", "left", "upper"),
    ("top", "right"): _corner("top", "right", "upper"),
    ("bottom", "left"): _corner("bottom", "left", "lower"),
    ("bottom", "right"): _corner("bottom", "right", "lower"),
    ("top", "center"): ("at the top", "near the top", "at the top center", "in the top middle"),
    ("bottom", "center"): ("at the bottom", "near the bottom", "at the bottom center",
                           "in the bottom middle"),
    ("middle", "left"): _side("left"),
    ("middle", "right"): _side("right"),
    ("middle", "center"): ("in the center", "in the middle", "at the center",
                           "in the middle of the picture"),
}

VOCAB = {"shape": SHAPE_WORDS, "color": COLOR_WORDS, "background": BACKGROUND_WORDS,
         "size": SIZE_WORDS, "place": PLACE_WORDS}

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
THING_WORDS = ("shapes", "objects", "things")

RELATION_PHRASES = {
    "left_of": ("left of", "to the left of", "on the left of"),
    "right_of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "beneath", "under", "underneath"),
}
# "B with A to its left": the relation of A to B, said from B.
ANCHORED_PHRASES = {
    "left_of": ("to its left", "on its left"),
    "right_of": ("to its right", "on its right"),
    "above": ("above it", "over it"),
    "below": ("below it", "beneath it", "under it"),
}
NEXT_TO_PHRASES = {"left_of": "next to it, on its left", "right_of": "next to it, on its right"}
DIAGONAL_HORIZONTAL = {"left_of": "to the left of", "right_of": "to the right of"}

BACKGROUND_SUFFIXES = (", on a {} background", " on a {} background",
                       " against a {} background", ", with a {} background",
                       " with a {} background", ", on a {} backdrop")
BACKGROUND_PREFIX = "on a {} background, "
CLAUSE_BACKGROUND_SUFFIXES = (", and the background is {}", "; the background is {}",
                              " on a {} background")

# Sentence frames around a noun phrase ("np") or a clause ("there is ..."), by name.
NP_FRAMES: dict[str, str] = {
    "bare": "{}", "draw": "Draw {}.", "please_draw": "Please draw {}.",
    "can_you": "Can you draw {}?", "could_you": "Could you make {}?", "id_like": "I'd like {}.",
    "picture_of": "I would like a picture of {}.", "please_make": "Please make {}.",
    "make": "Make {}.", "show": "Show me {}.", "generate": "Generate an image of {}.",
    "create": "Create {}.", "a_picture": "A picture of {}.", "an_image": "An image with {}.",
    "paint": "Paint {}.", "render": "Render {}.", "give_me": "Give me {}.", "i_want": "I want {}.",
    "draw_me": "Draw me {}.",
}
CLAUSE_FRAMES: dict[str, str] = {
    "bare": "{}", "sentence": "{}.", "picture_where": "Draw a picture where {}.",
    "scene_where": "Make a scene in which {}.", "image_where": "Generate an image where {}.",
}

# Literal words the family builders use, kept here so `all_words` sees them all.
LITERALS = (
    "a an and the in of a pair of a single just one one two three four",
    "there is there are is in total in order from left to right from top to bottom",
    "side by side one above the other a row of a column of above and below",
    "a {} one one {} : ; , and , plus",
)

# --- random choices, cheaply --------------------------------------------------------------


class _Dice:
    """Uniform draws fetched from the numpy generator in batches: one numpy call per ~64
    choices instead of one per choice, which is what keeps a phrasing under 0.2 ms."""

    __slots__ = ("rng", "buffer", "index")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.buffer = rng.random(64).tolist()
        self.index = 0

    def u(self) -> float:
        if self.index == len(self.buffer):
            self.buffer = self.rng.random(64).tolist()
            self.index = 0
        self.index += 1
        return self.buffer[self.index - 1]

    def pick(self, options):
        return options[int(self.u() * len(options))]

    def chance(self, p: float) -> bool:
        return self.u() < p

    def shuffled(self, items) -> list:
        items = list(items)
        for i in range(len(items) - 1, 0, -1):
            j = int(self.u() * (i + 1))
            items[i], items[j] = items[j], items[i]
        return items


def plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("x", "s")) else "s")


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def join_and(d: _Dice, parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return f"{parts[0]} and {parts[1]}"
    return ", ".join(parts[:-1]) + d.pick((" and ", ", and ")) + parts[-1]


# --- pieces -------------------------------------------------------------------------------

def _np(d: _Dice, o: Obj, with_size: bool, with_place: bool, claims) -> str:
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


def _order(d: _Dice, objs) -> list[Obj]:
    return reading_order(objs) if d.chance(0.7) else d.shuffled(objs)


def _listing(d: _Dice, objs, p_size: float, p_place: float, claims) -> str:
    return join_and(d, [_np(d, o, d.chance(p_size), d.chance(p_place), claims)
                        for o in _order(d, objs)])


def _relations_between(objs) -> list[tuple[int, int, str]]:
    return [(i, j, rel) for i, a in enumerate(objs) for j, b in enumerate(objs) if i != j
            for rel in RELATION_PHRASES if relation_holds(a, b, rel)]


def _in_line(objs, axis: str) -> bool:
    """In a row (axis "x"): left to right with the WORLD.md margin between neighbours, and
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


def _count_word(d: _Dice, k: int) -> str:
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


def phrasing_frames() -> tuple[str, ...]:
    """Names of the sentence frames ("Draw ...", "Can you draw ...?"); pass a subset as
    `frames` to hold others out."""
    return tuple(dict.fromkeys([*NP_FRAMES, *CLAUSE_FRAMES]))


def applicable_families(scene: Scene) -> list[str]:
    objs = scene.objects
    return [f for f in FAMILIES
            if not ((f in ("relation", "anchored") and not _relations_between(objs))
                    or (f == "ordered" and not _ordered_options(objs)))]


# --- phrasings ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Phrasing:
    text: str
    family: str
    frame: str
    constraints: tuple[Constraint, ...]


def _check_names(kind: str, given, known) -> list[str]:
    names = list(given)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; use some of {', '.join(known)}")
    return names


def _build(scene: Scene, d: _Dice, families, frames, claims) -> tuple[str, str, str]:
    objs = scene.objects
    if not objs:
        raise ValueError("a scene to phrase needs at least one object")
    allowed = (list(FAMILY_WEIGHTS) if families is None
               else _check_names("phrasing families", families, FAMILIES))
    frame_names = None if frames is None else set(_check_names("frames", frames,
                                                               phrasing_frames()))
    candidates = []
    for f in allowed:
        table = CLAUSE_FRAMES if f in CLAUSE_FAMILIES else NP_FRAMES
        names = list(table) if frame_names is None else [n for n in table if n in frame_names]
        if names:
            candidates.append((f, names, table))
    while candidates:
        weights = [FAMILY_WEIGHTS[c[0]] for c in candidates]
        r, k = d.u() * sum(weights), 0
        while r >= weights[k] and k < len(weights) - 1:
            r -= weights[k]
            k += 1
        family, names, table = candidates[k]
        if claims is not None:  # every phrasing names every object: the count is stated
            claims[:] = [Count(len(objs))]
        body = FAMILIES[family](d, objs, claims)
        if body is None:
            candidates.pop(k)
            continue
        frame = d.pick(names)
        text = _with_background(d, scene, body, family in CLAUSE_FAMILIES, frame, claims)
        text = table[frame].format(text)
        if frame != "bare" and text[0].islower():
            text = text[0].upper() + text[1:]
        return text, family, frame
    raise ValueError(f"none of the phrasing families {allowed} (with frames {frames}) "
                     f"fits a scene of {len(objs)} object(s)")


def _with_background(d, scene, body, clause, frame, claims) -> str:
    if claims is not None:
        claims.append(Background(scene.background))
    # White is the default and goes unsaid most of the time; the others are always said.
    if scene.background == "white" and not d.chance(0.2):
        return body
    word = d.pick(BACKGROUND_WORDS[scene.background])
    if frame in ("bare", "sentence") and d.chance(0.25):
        return BACKGROUND_PREFIX.format(word) + body
    suffixes = CLAUSE_BACKGROUND_SUFFIXES if clause else BACKGROUND_SUFFIXES
    return body + d.pick(suffixes).format(word)


def random_phrasing(scene: Scene, rng: np.random.Generator, families=None,
                    frames=None) -> str:
    """One random true phrasing of `scene`, from the given families and frames (all when
    None)."""
    return _build(scene, _Dice(rng), families, frames, None)[0]


def sample_phrasing(scene: Scene, rng: np.random.Generator, families=None,
                    frames=None) -> Phrasing:
    """Like `random_phrasing`, with the family, the frame and the constraints the text
    states (check(scene, phrasing.constraints) is empty)."""
    claims: list = []
    text, family, frame = _build(scene, _Dice(rng), families, frames, claims)
    return Phrasing(text, family, frame, tuple(claims))


def phrasings(scene: Scene, limit: int = 40) -> list[str]:
    """Up to `limit` distinct phrasings of `scene` (the canonical caption first), every
    applicable family represented; deterministic for a given scene."""
    rng = np.random.default_rng(zlib.crc32(scene.to_json().encode()))
    d = _Dice(rng)
    found = dict.fromkeys([caption(scene)])
    families = applicable_families(scene)
    for attempt in range(limit * 10):
        if len(found) >= limit:
            break
        family = families[attempt % len(families)]
        found.setdefault(_build(scene, d, [family], None, None)[0])
    return list(found)


# --- words --------------------------------------------------------------------------------

TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[^\sa-z]")


def tokenize(text: str) -> list[str]:
    """Lower-case words (with their apostrophe: "i'd", "don't") and punctuation marks."""
    return TOKEN.findall(text.lower())


def phrasing_words() -> set[str]:
    texts: list[str] = [*LITERALS, *NUMBER_WORDS.values(), *THING_WORDS,
                        "shape object thing", *NP_FRAMES.values(), *CLAUSE_FRAMES.values(),
                        *BACKGROUND_SUFFIXES, BACKGROUND_PREFIX, *CLAUSE_BACKGROUND_SUFFIXES,
                        *NEXT_TO_PHRASES.values(), *DIAGONAL_HORIZONTAL.values()]
    for table in (SHAPE_WORDS, COLOR_WORDS, BACKGROUND_WORDS, SIZE_WORDS, PLACE_WORDS,
                  RELATION_PHRASES, ANCHORED_PHRASES):
        for words in table.values():
            texts.extend(words)
    texts.extend(plural(w) for words in SHAPE_WORDS.values() for w in words)
    words: set[str] = set()
    for text in texts:
        words.update(tokenize(text.replace("{}", " ")))
    return words


def all_words() -> list[str]:
    """Every token any phrasing or edit instruction can produce, sorted (a tokenizer's
    vocabulary): lower-case words and the punctuation marks , . : ; ?"""
    from .edits import edit_words  # edits builds on this module; imported when asked
    return sorted(phrasing_words() | edit_words())


def __getattr__(name: str):
    # WORDS needs edits.py, which imports this module: build it on first use.
    if name == "WORDS":
        words = all_words()
        globals()["WORDS"] = words
        return words
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
