"""Free room on the canvas for an object that is added or moved: in a named cell, or beside an
anchor object, clear of every other object."""
from __future__ import annotations

from world.scene import RELATION_MARGIN, Obj, Scene

from ..layout import MARGINS, Slot, box_at, relation_ok, solve


def free_spot(scene: Scene, shape, size, place=None, others=None, relation=None):
    """A centre for a new or moved object: in `place` (a cell) or in `relation` to an anchor
    object, clear of `others` by more than the world's gap."""
    others = list(scene.objects if others is None else others)
    slot = Slot(shape, size, *(place or (None, None)))
    if relation is not None:
        rel, anchor = relation
        return _solve_beside(slot, anchor, rel, [o for o in others if o is not anchor])
    points = solve([slot], fixed=others, step=0.01)  # one object: a fine grid is cheap
    return points[0] if points else None


def _solve_beside(slot: Slot, anchor: Obj, rel: str, fixed) -> tuple[float, float] | None:
    """A centre in `rel` to a fixed anchor, level with it where possible and near it; roomy
    gaps first, then tighter ones that still meet world/WORLD.md."""
    rels = ["left_of", "right_of"] if rel == "beside" else [rel]
    for slack, gap in MARGINS:
        best = None
        for dx in range(-28, 29):
            for dy in range(-28, 29):
                x, y = round(anchor.x + dx * 0.025, 4), round(anchor.y + dy * 0.025, 4)
                if not (0.15 <= x <= 0.85 and 0.15 <= y <= 0.85):
                    continue
                if not any(relation_ok((x, y), (anchor.x, anchor.y), r, RELATION_MARGIN + slack)
                           for r in rels):
                    continue
                box = box_at(slot.shape, slot.size, x, y)
                if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
                    continue
                if any(not (box[2] + gap <= o.box[0] or o.box[2] + gap <= box[0] or
                            box[3] + gap <= o.box[1] or o.box[3] + gap <= box[1])
                       for o in list(fixed) + [anchor]):
                    continue
                level = abs(y - anchor.y) if rel in ("left_of", "right_of", "beside") else abs(x - anchor.x)
                score = (round(level, 4), abs(dx) + abs(dy))
                if best is None or score < best[0]:
                    best = (score, (x, y))
        if best is not None:
            return best[1]
    return None
