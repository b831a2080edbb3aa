"""The world's edits (WORLD.md): each an exact scene -> scene' with many instruction phrasings.

An `Edit` holds everything needed to reproduce its after-scene exactly (a move carries the
new centre), so instruction-editing data and edit checks come from the same record. The
instruction names its target only in ways that pick out exactly one object of the scene.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from .check import RELATIONS, relation_holds
from .phrasings import (BACKGROUND_WORDS, COLOR_WORDS, PLACE_WORDS, RELATION_PHRASES,
                        SHAPE_WORDS, SIZE_WORDS, _Dice, article, tokenize)
from .scene import (BACKGROUNDS, CANVAS, CENTRE_RANGE, COLORS, COLUMNS, MAX_OBJECTS,
                    MIN_GAP_PX, RELATION_MARGIN, ROWS, SHAPES, SIZES, Obj, Scene, valid_layout)

EDIT_KINDS = ("recolor", "reshape", "move", "resize", "remove", "add", "swap_colors",
              "background")
STYLES = ("plain", "please", "question", "wish", "should")

# Templates per kind: (name, style, text, condition). Conditions: "pair" needs a scene of
# exactly two objects ("swap their colors"); "level" needs a left/right relation.
_T = tuple[str, str, str, str | None]
TEMPLATES: dict[str, tuple[_T, ...]] = {
    "recolor": (
        ("make", "plain", "make {ref} {color}", None),
        ("turn", "plain", "turn {ref} {color}", None),
        ("color", "plain", "color {ref} {color}", None),
        ("paint", "plain", "paint {ref} {color}", None),
        ("change_to", "plain", "change {ref} to {color}", None),
        ("change_color", "plain", "change the color of {ref} to {color}", None),
        ("recolor", "plain", "recolor {ref} {color}", None),
        ("please_make", "please", "please make {ref} {color}", None),
        ("please_paint", "please", "please paint {ref} {color}", None),
        ("can_you", "question", "can you make {ref} {color}?", None),
        ("could_you", "question", "could you color {ref} {color}?", None),
        ("want", "wish", "I want {ref} to be {color}", None),
        ("like", "wish", "I'd like {ref} in {color}", None),
        ("should", "should", "{ref} should be {color}", None),
        ("instead", "should", "{ref} should be {color} instead", None),
    ),
    "reshape": (
        ("turn_into", "plain", "turn {ref} into {shape}", None),
        ("make", "plain", "make {ref} {shape}", None),
        ("change_into", "plain", "change {ref} into {shape}", None),
        ("change_to", "plain", "change {ref} to {shape}", None),
        ("reshape", "plain", "reshape {ref} into {shape}", None),
        ("replace", "plain", "replace {ref} with {shape} of the same color", None),
        ("please_turn", "please", "please turn {ref} into {shape}", None),
        ("please_make", "please", "please make {ref} {shape}", None),
        ("can_you", "question", "can you turn {ref} into {shape}?", None),
        ("could_you", "question", "could you change {ref} to {shape}?", None),
        ("want", "wish", "I want {ref} to be {shape}", None),
        ("like", "wish", "I'd like {ref} to be {shape}", None),
        ("should", "should", "{ref} should be {shape}", None),
        ("instead", "should", "{ref} should be {shape} instead", None),
    ),
    "move_place": (
        ("move", "plain", "move {ref} {dest}", None),
        ("put", "plain", "put {ref} {loc}", None),
        ("place", "plain", "place {ref} {loc}", None),
        ("shift", "plain", "shift {ref} {dest}", None),
        ("drag", "plain", "drag {ref} {dest}", None),
        ("move_over", "plain", "move {ref} over {dest}", None),
        ("please_move", "please", "please move {ref} {dest}", None),
        ("please_put", "please", "please put {ref} {loc}", None),
        ("can_you", "question", "can you move {ref} {dest}?", None),
        ("could_you", "question", "could you put {ref} {loc}?", None),
        ("want", "wish", "I want {ref} {loc}", None),
        ("like", "wish", "I'd like {ref} moved {dest}", None),
        ("should", "should", "{ref} should be {loc}", None),
        ("should_go", "should", "{ref} should go {dest}", None),
    ),
    "move_relative": (
        ("move", "plain", "move {ref} {rel} {anchor}", None),
        ("put", "plain", "put {ref} {rel} {anchor}", None),
        ("place", "plain", "place {ref} {rel} {anchor}", None),
        ("shift", "plain", "shift {ref} so it is {rel} {anchor}", None),
        ("next_to", "plain", "put {ref} next to {anchor}, on its {side}", "level"),
        ("please_move", "please", "please move {ref} {rel} {anchor}", None),
        ("please_put", "please", "please put {ref} {rel} {anchor}", None),
        ("can_you", "question", "can you move {ref} {rel} {anchor}?", None),
        ("could_you", "question", "could you put {ref} {rel} {anchor}?", None),
        ("want", "wish", "I want {ref} {rel} {anchor}", None),
        ("like", "wish", "I'd like {ref} moved {rel} {anchor}", None),
        ("should", "should", "{ref} should be {rel} {anchor}", None),
        ("should_go", "should", "{ref} should go {rel} {anchor}", None),
    ),
    "resize": (
        ("make_comparative", "plain", "make {ref} {comparative}", None),
        ("make_size", "plain", "make {ref} {size}", None),
        ("verb", "plain", "{verb} {ref}", None),
        ("scale", "plain", "scale {ref} {updown}", None),
        ("change_size", "plain", "{change} the size of {ref}", None),
        ("size_to", "plain", "change the size of {ref} to {size}", None),
        ("too", "plain", "{ref} is too {opposite}, make it {comparative}", None),
        ("please_make", "please", "please make {ref} {comparative}", None),
        ("please_verb", "please", "please {verb} {ref}", None),
        ("can_you", "question", "can you make {ref} {comparative}?", None),
        ("could_you", "question", "could you {verb} {ref}?", None),
        ("want", "wish", "I want {ref} to be {comparative}", None),
        ("like", "wish", "I'd like {ref} {comparative}", None),
        ("should", "should", "{ref} should be {comparative}", None),
        ("should_size", "should", "{ref} should be {size}", None),
    ),
    "remove": (
        ("remove", "plain", "remove {ref}", None),
        ("delete", "plain", "delete {ref}", None),
        ("get_rid", "plain", "get rid of {ref}", None),
        ("erase", "plain", "erase {ref}", None),
        ("take_out", "plain", "take out {ref}", None),
        ("take_away", "plain", "take away {ref}", None),
        ("please_remove", "please", "please remove {ref}", None),
        ("please_delete", "please", "please delete {ref}", None),
        ("can_you", "question", "can you remove {ref}?", None),
        ("could_you", "question", "could you get rid of {ref}?", None),
        ("dont_want", "wish", "I don't want {ref}", None),
        ("like_gone", "wish", "I'd like {ref} gone", None),
        ("should_go", "should", "{ref} should go", None),
        ("has_to_go", "should", "{ref} has to go", None),
    ),
    "add": (
        ("add", "plain", "add {new}", None),
        ("also_draw", "plain", "also draw {new}", None),
        ("draw_too", "plain", "draw {new} too", None),
        ("include", "plain", "include {new}", None),
        ("insert", "plain", "insert {new}", None),
        ("now_add", "plain", "now add {new}", None),
        ("please_add", "please", "please add {new}", None),
        ("please_draw", "please", "please also draw {new}", None),
        ("can_you", "question", "can you add {new}?", None),
        ("could_you", "question", "could you also draw {new}?", None),
        ("like", "wish", "I'd like {new} as well", None),
        ("want", "wish", "I want {new} too", None),
        ("should", "should", "there should also be {new}", None),
        ("should_add", "should", "{new} should be added", None),
    ),
    "swap_colors": (
        ("swap", "plain", "swap the colors of {a} and {b}", None),
        ("switch", "plain", "switch the colors of {a} and {b}", None),
        ("exchange", "plain", "exchange the colors of {a} and {b}", None),
        ("explicit", "plain", "make {a} {color_b} and {b} {color_a}", None),
        ("vice_versa", "plain", "give {a} the color of {b} and vice versa", None),
        ("trade", "plain", "trade colors between {a} and {b}", None),
        ("their", "plain", "swap their colors", "pair"),
        ("switch_their", "plain", "switch their colors", "pair"),
        ("please_swap", "please", "please swap the colors of {a} and {b}", None),
        ("please_their", "please", "please swap their colors", "pair"),
        ("can_you", "question", "can you swap the colors of {a} and {b}?", None),
        ("could_you", "question", "could you swap their colors?", "pair"),
        ("want", "wish", "I want {a} and {b} to trade colors", None),
        ("like", "wish", "I'd like their colors swapped", "pair"),
        ("should", "should", "{a} and {b} should swap colors", None),
        ("should_their", "should", "their colors should be swapped", "pair"),
    ),
    "background": (
        ("make", "plain", "make the background {bg}", None),
        ("change", "plain", "change the background to {bg}", None),
        ("turn", "plain", "turn the background {bg}", None),
        ("use", "plain", "use a {bg} background", None),
        ("set", "plain", "set the background to {bg}", None),
        ("paint", "plain", "paint the background {bg}", None),
        ("switch", "plain", "switch to a {bg} background", None),
        ("please_make", "please", "please make the background {bg}", None),
        ("please_use", "please", "please use a {bg} background", None),
        ("can_you", "question", "can you make the background {bg}?", None),
        ("could_you", "question", "could you change the background to {bg}?", None),
        ("want", "wish", "I want a {bg} background", None),
        ("like", "wish", "I'd like the background {bg}", None),
        ("should", "should", "the background should be {bg}", None),
        ("instead", "should", "the background should be {bg} instead", None),
    ),
}
TEMPLATE_GROUPS = {"move": ("move_place", "move_relative")}

RESIZE_WORDS = {
    # To the size named by the key.
    "large": {"comparative": ("bigger", "larger"), "verb": ("enlarge", "grow"),
              "updown": ("up",), "change": ("increase",)},
    "small": {"comparative": ("smaller",), "verb": ("shrink",), "updown": ("down",),
              "change": ("reduce", "decrease")},
}
# Destination phrases: each place phrase with "to" ("at the top left" -> "to the top left").
DESTINATION_WORDS = {cell: tuple(dict.fromkeys("to " + p.split(" ", 1)[1] for p in phrases))
                     for cell, phrases in PLACE_WORDS.items()}
EXTREME_WORDS = {
    "left_of": ("the {} on the left", "the leftmost {}", "the left {}"),
    "right_of": ("the {} on the right", "the rightmost {}", "the right {}"),
    "above": ("the top {}", "the upper {}", "the topmost {}"),
    "below": ("the bottom {}", "the lower {}", "the lowest {}"),
}
GENERIC_NOUNS = ("one", "shape", "object")
SIDE_WORDS = {"left_of": "left", "right_of": "right"}


class EditError(ValueError):
    """The edit cannot be made on this scene (no room, bad target, or no change)."""


@dataclass(frozen=True)
class Edit:
    """One edit. `targets` index the before-scene's objects; `params` hold what the after-
    scene needs exactly (see `apply_edit`); `template` is "<kind group>.<name>"."""

    kind: str
    targets: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)
    instruction: str = ""
    template: str = ""

    def __post_init__(self):
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"unknown edit kind {self.kind!r}; use one of {', '.join(EDIT_KINDS)}")
        object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))

    @property
    def family(self) -> str:
        group, name = self.template.split(".") if "." in self.template else ("", "")
        for t in TEMPLATES.get(group, ()):
            if t[0] == name:
                return t[1]
        return ""

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Edit":
        return cls(data["kind"], tuple(data.get("targets", ())), dict(data.get("params", {})),
                   data.get("instruction", ""), data.get("template", ""))


# --- free spots ---------------------------------------------------------------------------

_AXIS = np.round(np.arange(CENTRE_RANGE[0], CENTRE_RANGE[1] + 1e-9, 0.01), 4)
_GX, _GY = (a.ravel() for a in np.meshgrid(_AXIS, _AXIS))
_EPS = 1e-6  # keep sampled relations clear of the margin, whatever rounding the checker does
# Sampled edits land clearly inside a cell and clearly in relation, so that an image of the
# result, read back by the detector (centres good to ~0.005), still shows what was asked.
SAMPLE_SLACK = 0.02


def free_spots(others, shape: str, size: str) -> np.ndarray:
    """Which grid centres (0.01 apart) a `shape` of `size` could take beside `others`."""
    w, h = Obj(shape, "red", size, 0.5, 0.5).extent
    gap = MIN_GAP_PX / CANVAS
    x0, x1, y0, y1 = _GX - w / 2, _GX + w / 2, _GY - h / 2, _GY + h / 2
    ok = (x0 >= 0) & (y0 >= 0) & (x1 <= 1) & (y1 <= 1)
    for o in others:
        b = o.box
        ok &= (x1 + gap <= b[0]) | (b[2] + gap <= x0) | (y1 + gap <= b[1]) | (b[3] + gap <= y0)
    return ok


def _cell_mask(row: str, column: str, inset: float = 0.0) -> np.ndarray:
    """Spots in the cell, at least `inset` from its edges."""
    rows = np.minimum((_GY * 3).astype(int), 2)
    cols = np.minimum((_GX * 3).astype(int), 2)
    mask = (rows == ROWS.index(row)) & (cols == COLUMNS.index(column))
    if inset:
        for v in (_GX, _GY):
            mask &= (np.abs(v - 1 / 3) >= inset) & (np.abs(v - 2 / 3) >= inset)
    return mask


def _relation_mask(anchor: Obj, relation: str, slack: float = 0.0) -> np.ndarray:
    """Spots in `relation` to the anchor (by `slack` more than the margin), and level with it
    on the other axis (so "left of" reads as beside it, not diagonally)."""
    m = RELATION_MARGIN + _EPS + slack
    level_y = np.abs(_GY - anchor.y) < RELATION_MARGIN - _EPS - slack
    level_x = np.abs(_GX - anchor.x) < RELATION_MARGIN - _EPS - slack
    if relation == "left_of":
        return (anchor.x - _GX >= m) & level_y
    if relation == "right_of":
        return (_GX - anchor.x >= m) & level_y
    if relation == "above":
        return (anchor.y - _GY >= m) & level_x
    if relation == "below":
        return (_GY - anchor.y >= m) & level_x
    raise ValueError(f"unknown relation {relation!r}; use one of {', '.join(RELATIONS)}")


def _cell_centre(row: str, column: str) -> tuple[float, float]:
    lo, hi = CENTRE_RANGE
    return (min(max((COLUMNS.index(column) + 0.5) / 3, lo), hi),
            min(max((ROWS.index(row) + 0.5) / 3, lo), hi))


def _nearest(mask: np.ndarray, x: float, y: float) -> tuple[float, float] | None:
    """The allowed spot nearest (x, y): how `apply_edit` places things deterministically."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    k = idx[np.argmin((_GX[idx] - x) ** 2 + (_GY[idx] - y) ** 2)]
    return float(_GX[k]), float(_GY[k])


def _random_spot(d: _Dice, mask: np.ndarray) -> tuple[float, float] | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    k = idx[int(d.u() * idx.size)]
    return float(_GX[k]), float(_GY[k])


# --- applying -----------------------------------------------------------------------------

def _target(scene: Scene, edit: Edit, k: int = 0) -> int:
    if len(edit.targets) <= k:
        raise EditError(f"a {edit.kind} edit needs {k + 1} target(s), got {list(edit.targets)}")
    i = edit.targets[k]
    if not 0 <= i < len(scene.objects):
        raise EditError(f"target {i} is not an object of a scene of {len(scene.objects)}")
    return i


def _param(edit: Edit, name: str, allowed):
    value = edit.params.get(name)
    if value not in allowed:
        raise EditError(f"a {edit.kind} edit needs {name} in {list(allowed)}, got {value!r}")
    return value


def apply_edit(scene: Scene, edit: Edit) -> Scene:
    """The exact after-scene. Objects keep their order (a removed one drops out, an added one
    comes last) and untouched objects keep their centres. Raises EditError when the result
    would break WORLD.md's placement rules (no room) or the edit does not fit the scene."""
    objs = list(scene.objects)
    kind = edit.kind
    background = scene.background
    if kind == "recolor":
        i = _target(scene, edit)
        objs[i] = objs[i].replace(color=_param(edit, "color", COLORS))
    elif kind == "reshape":
        i = _target(scene, edit)
        objs[i] = objs[i].replace(shape=_param(edit, "shape", SHAPES))
    elif kind == "resize":
        i = _target(scene, edit)
        objs[i] = objs[i].replace(size=_param(edit, "size", SIZES))
    elif kind == "swap_colors":
        i, j = _target(scene, edit, 0), _target(scene, edit, 1)
        if i == j:
            raise EditError("swap_colors needs two different objects")
        color_i, color_j = objs[i].color, objs[j].color
        objs[i], objs[j] = objs[i].replace(color=color_j), objs[j].replace(color=color_i)
    elif kind == "remove":
        i = _target(scene, edit)
        if len(objs) == 1:
            raise EditError("cannot remove the only object: a scene has 1 to 4 objects")
        del objs[i]
    elif kind == "background":
        background = _param(edit, "background", BACKGROUNDS)
    elif kind == "move":
        objs = _apply_move(scene, edit)
    elif kind == "add":
        objs = _apply_add(scene, edit)
    if not valid_layout(objs):
        raise EditError(f"no room for this {kind} edit: objects would overlap, come closer "
                        f"than {MIN_GAP_PX} px or leave the canvas")
    return Scene(tuple(objs), background)


def _cell(edit: Edit) -> tuple[str, str]:
    place = edit.params.get("place")
    if (not isinstance(place, (list, tuple)) or len(place) != 2 or place[0] not in ROWS
            or place[1] not in COLUMNS):
        raise EditError(f"a place is [row, column] with a row in {ROWS} and a column in "
                        f"{COLUMNS}, got {place!r}")
    return place[0], place[1]


def _apply_move(scene: Scene, edit: Edit) -> list[Obj]:
    objs = list(scene.objects)
    i = _target(scene, edit)
    t, p = objs[i], edit.params
    others = objs[:i] + objs[i + 1:]
    if p.get("place"):
        row, column = _cell(edit)
        region, prefer = _cell_mask(row, column), _cell_centre(row, column)
    elif p.get("relation") is not None:
        relation = _param(edit, "relation", RELATIONS)
        a = p.get("anchor")
        if not isinstance(a, int) or not 0 <= a < len(objs) or a == i:
            raise EditError(f"a relative move needs an anchor other than the target, got {a!r}")
        region, prefer = _relation_mask(objs[a], relation), (objs[a].x, objs[a].y)
    else:
        raise EditError("a move needs a place [row, column] or a relation and an anchor")
    if "x" in p and "y" in p:
        moved = t.replace(x=float(p["x"]), y=float(p["y"]))
    else:
        spot = _nearest(region & free_spots(others, t.shape, t.size), *prefer)
        if spot is None:
            raise EditError(f"no room to move the {t.describe()} there")
        moved = t.replace(x=spot[0], y=spot[1])
    if p.get("place") and (moved.row, moved.column) != tuple(p["place"]):
        raise EditError(f"the new centre ({moved.x}, {moved.y}) is not in the {p['place']} cell")
    if p.get("relation") is not None and not relation_holds(moved, objs[p["anchor"]],
                                                            p["relation"]):
        raise EditError(f"the new centre is not {p['relation']} the anchor")
    objs[i] = moved
    return objs


def _apply_add(scene: Scene, edit: Edit) -> list[Obj]:
    objs = list(scene.objects)
    p = edit.params
    if len(objs) >= MAX_OBJECTS:
        raise EditError(f"a scene holds at most {MAX_OBJECTS} objects")
    shape, color = _param(edit, "shape", SHAPES), _param(edit, "color", COLORS)
    size = _param(edit, "size", SIZES)
    if "x" in p and "y" in p:
        new = Obj(shape, color, size, float(p["x"]), float(p["y"]))
    else:
        region = free_spots(objs, shape, size)
        prefer = (0.5, 0.5)
        if p.get("place"):
            region = region & _cell_mask(*_cell(edit))
            prefer = _cell_centre(*_cell(edit))
        spot = _nearest(region, *prefer)
        if spot is None:
            raise EditError(f"no room to add a {size} {color} {shape} there")
        new = Obj(shape, color, size, *spot)
    if p.get("place") and (new.row, new.column) != tuple(p["place"]):
        raise EditError(f"the new centre ({new.x}, {new.y}) is not in the {p['place']} cell")
    return objs + [new]


# --- referring to objects -----------------------------------------------------------------

_ATTRIBUTE_SETS = (("shape",), ("color",), ("size",), ("color", "shape"), ("size", "shape"),
                   ("size", "color"), ("size", "color", "shape"))


def _description(d: _Dice, o: Obj, attrs) -> str:
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


def referring_expressions(scene: Scene, i: int, d: _Dice) -> list[str]:
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


def refer(scene: Scene, i: int, d: _Dice) -> str:
    options = referring_expressions(scene, i, d)
    if not options:
        raise EditError(f"object {i} cannot be told apart from the others")
    return d.pick(options)


# --- sampling -----------------------------------------------------------------------------

def edit_templates() -> tuple[str, ...]:
    """Instruction template families (styles); pass a subset as `families` to hold the rest
    out. `edit_template_ids` names single templates."""
    return STYLES


def edit_template_ids(kind: str | None = None) -> tuple[str, ...]:
    groups = TEMPLATE_GROUPS.get(kind, (kind,)) if kind else tuple(TEMPLATES)
    return tuple(f"{g}.{t[0]}" for g in groups for t in TEMPLATES[g])


def _choose_template(d: _Dice, group: str, n_objects: int, level: bool, families,
                     templates) -> tuple[str, str] | None:
    options = [t for t in TEMPLATES[group]
               if (families is None or t[1] in families)
               and (templates is None or f"{group}.{t[0]}" in templates)
               and (t[3] != "pair" or n_objects == 2) and (t[3] != "level" or level)]
    if not options:
        return None
    t = d.pick(options)
    return f"{group}.{t[0]}", t[2]


def _finish(text: str) -> str:
    return text[0].upper() + text[1:]


def _sample_one(scene: Scene, d: _Dice, kind: str, families, templates):
    """(targets, params, template id, instruction) for one random edit, or None."""
    objs = scene.objects
    n = len(objs)
    group = kind
    slots: dict[str, str] = {}
    targets: tuple[int, ...] = ()
    params: dict = {}
    level = False
    if kind in ("recolor", "reshape", "resize", "move", "remove"):
        if n == 0 or (kind == "remove" and n == 1):
            return None
        refs = [referring_expressions(scene, k, d) for k in range(n)]
        nameable = [k for k in range(n) if refs[k]]
        if not nameable:
            return None
        i = d.pick(nameable)
        t = objs[i]
        targets = (i,)
        slots["ref"] = d.pick(refs[i])
    if kind == "recolor":
        params["color"] = d.pick([c for c in COLORS if c != t.color])
        slots["color"] = d.pick(COLOR_WORDS[params["color"]])
    elif kind == "reshape":
        params["shape"] = d.pick([s for s in SHAPES if s != t.shape])
        word = d.pick(SHAPE_WORDS[params["shape"]])
        slots["shape"] = f"{article(word)} {word}"
    elif kind == "resize":
        size = params["size"] = "large" if t.size == "small" else "small"
        words = RESIZE_WORDS[size]
        slots.update({k: d.pick(v) for k, v in words.items()})
        slots["size"] = d.pick(SIZE_WORDS[size])
        slots["opposite"] = d.pick(SIZE_WORDS[t.size])
    elif kind == "move":
        others = objs[:i] + objs[i + 1:]
        free = free_spots(others, t.shape, t.size)
        twin = any((o.shape, o.color, o.size) == (t.shape, t.color, t.size) for o in others)
        if n > 1 and not twin and d.chance(0.4):
            group = "move_relative"
            anchors = [k for k in nameable if k != i]
            if not anchors:
                return None
            a = d.pick(anchors)
            relation = d.pick([r for r in RELATIONS if not relation_holds(t, objs[a], r)])
            spot = _random_spot(d, free & _relation_mask(objs[a], relation, SAMPLE_SLACK))
            if spot is None:
                return None
            params.update(relation=relation, anchor=a, x=spot[0], y=spot[1])
            slots["rel"] = d.pick(RELATION_PHRASES[relation])
            slots["anchor"] = d.pick(refs[a])
            slots["side"] = SIDE_WORDS.get(relation, "")
            level = relation in SIDE_WORDS
        else:
            group = "move_place"
            cells = [c for c in PLACE_WORDS if c != t.place]
            cell = d.pick(cells)
            spot = _random_spot(d, free & _cell_mask(*cell, SAMPLE_SLACK))
            if spot is None:
                return None
            params.update(place=list(cell), x=spot[0], y=spot[1])
            slots["dest"] = d.pick(DESTINATION_WORDS[cell])
            slots["loc"] = d.pick(PLACE_WORDS[cell])
    elif kind == "add":
        if n >= MAX_OBJECTS:
            return None
        shape, color = d.pick(SHAPES), d.pick(list(COLORS))
        size = d.pick(list(SIZES))
        free = free_spots(objs, shape, size)
        place = d.pick(list(PLACE_WORDS)) if d.chance(0.6) else None
        spot = _random_spot(d, free & _cell_mask(*place, SAMPLE_SLACK) if place else free)
        if spot is None:
            return None
        size_stated = d.chance(0.7)
        params.update(shape=shape, color=color, size=size, x=spot[0], y=spot[1],
                      place=list(place) if place else None, size_stated=size_stated)
        words = [d.pick(SIZE_WORDS[size])] if size_stated else []
        words += [d.pick(COLOR_WORDS[color]), d.pick(SHAPE_WORDS[shape])]
        new = f"{article(words[0])} {' '.join(words)}"
        slots["new"] = f"{new} {d.pick(PLACE_WORDS[place])}" if place else new
    elif kind == "swap_colors":
        refs = [referring_expressions(scene, k, d) for k in range(n)]
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)
                 if objs[i].color != objs[j].color and refs[i] and refs[j]]
        if not pairs:
            return None
        i, j = d.pick(pairs)
        if d.chance(0.5):
            i, j = j, i
        targets = (i, j)
        slots.update(a=d.pick(refs[i]), b=d.pick(refs[j]),
                     color_a=d.pick(COLOR_WORDS[objs[i].color]),
                     color_b=d.pick(COLOR_WORDS[objs[j].color]))
    elif kind == "background":
        params["background"] = d.pick([b for b in BACKGROUNDS if b != scene.background])
        slots["bg"] = d.pick(BACKGROUND_WORDS[params["background"]])
    chosen = _choose_template(d, group, n, level, families, templates)
    if chosen is None:
        return None
    template_id, text = chosen
    return targets, params, template_id, _finish(text.format(**slots))


def sample_edit(scene: Scene, rng: np.random.Generator, kinds=None, families=None,
                templates=None) -> tuple[Edit, Scene]:
    """A random edit that fits `scene` and its exact result, with an instruction from the
    given families (styles) / template ids (all when None). Raises ValueError when no edit
    of the given kinds fits the scene."""
    kinds = list(EDIT_KINDS if kinds is None else kinds)
    for k in kinds:
        if k not in EDIT_KINDS:
            raise ValueError(f"unknown edit kind {k!r}; use some of {', '.join(EDIT_KINDS)}")
    if families is not None:
        families = set(families)
        if not families <= set(STYLES):
            raise ValueError(f"unknown edit families {sorted(families - set(STYLES))}; "
                             f"use some of {', '.join(STYLES)}")
    templates = None if templates is None else set(templates)
    d = _Dice(rng)
    misses = {k: 0 for k in kinds}
    while misses:
        kind = d.pick(list(misses))
        try:
            sampled = _sample_one(scene, d, kind, families, templates)
            if sampled is not None:
                targets, params, template_id, instruction = sampled
                edit = Edit(kind, targets, params, instruction, template_id)
                return edit, apply_edit(scene, edit)
        except EditError:
            pass
        misses[kind] += 1
        if misses[kind] >= 8:  # this kind does not fit the scene (no room, one object ...)
            del misses[kind]
    raise ValueError(f"no edit of kinds {kinds} fits this scene of {len(scene.objects)} "
                     "object(s)")


def edit_words() -> set[str]:
    texts = [t[2] for group in TEMPLATES.values() for t in group]
    texts += [w for words in RESIZE_WORDS.values() for v in words.values() for w in v]
    texts += [w for phrases in DESTINATION_WORDS.values() for w in phrases]
    texts += [w for forms in EXTREME_WORDS.values() for w in forms]
    texts += [*GENERIC_NOUNS, *SIDE_WORDS.values(), "it the a an", "the shape the object"]
    for table in (SHAPE_WORDS, COLOR_WORDS, BACKGROUND_WORDS, SIZE_WORDS, PLACE_WORDS,
                  RELATION_PHRASES):
        for words in table.values():
            texts.extend(words)
    words: set[str] = set()
    for text in texts:
        words.update(tokenize(re.sub(r"\{\w*\}", " ", text)))
    return words
