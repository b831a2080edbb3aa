"""`apply_edit`: the exact after-scene of an edit, or EditError when it does not fit."""
from __future__ import annotations

from ..check import RELATIONS, relation_holds
from ..scene import (BACKGROUNDS, COLORS, COLUMNS, MAX_OBJECTS, MIN_GAP_PX, ROWS, SHAPES, SIZES,
                     Obj, Scene, valid_layout)
from .record import Edit, EditError
from .spots import cell_centre, cell_mask, free_spots, nearest_spot, relation_mask


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
    would break world/WORLD.md's placement rules (no room) or the edit does not fit the scene."""
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
        region, prefer = cell_mask(row, column), cell_centre(row, column)
    elif p.get("relation") is not None:
        relation = _param(edit, "relation", RELATIONS)
        a = p.get("anchor")
        if not isinstance(a, int) or not 0 <= a < len(objs) or a == i:
            raise EditError(f"a relative move needs an anchor other than the target, got {a!r}")
        region, prefer = relation_mask(objs[a], relation), (objs[a].x, objs[a].y)
    else:
        raise EditError("a move needs a place [row, column] or a relation and an anchor")
    if "x" in p and "y" in p:
        moved = t.replace(x=float(p["x"]), y=float(p["y"]))
    else:
        spot = nearest_spot(region & free_spots(others, t.shape, t.size), *prefer)
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
            region = region & cell_mask(*_cell(edit))
            prefer = cell_centre(*_cell(edit))
        spot = nearest_spot(region, *prefer)
        if spot is None:
            raise EditError(f"no room to add a {size} {color} {shape} there")
        new = Obj(shape, color, size, *spot)
    if p.get("place") and (new.row, new.column) != tuple(p["place"]):
        raise EditError(f"the new centre ({new.x}, {new.y}) is not in the {p['place']} cell")
    return objs + [new]
