"""Boxes that satisfy what a request says about where things are.

Objects are sized per world/WORLD.md (small 0.18, large 0.32 of the side; a triangle's box is
shorter by its height ratio), centred in their named cell when one is given, kept inside the
canvas with the world's gap between any two, and placed so that every stated relation holds
with a safety margin beyond world/WORLD.md's 0.1: a generator lands objects near, not exactly on,
their boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

from world.scene import (CANVAS, CENTRE_RANGE, COLUMNS, MIN_GAP_PX, RELATION_MARGIN, ROWS,
                         SIZES, TRIANGLE_HEIGHT, Obj)

# Relations are planned with this much more than world/WORLD.md's margin, gaps likewise.
RELATION_SLACK = 0.08
GAP = MIN_GAP_PX / CANVAS + 0.02
GRID_STEP = 0.025
# Around an object's box when it is the region to repaint: antialiased edges, a little drift.
INPAINT_PAD = 0.012
MAX_NODES = 3000


def extent(shape: str | None, size: str) -> tuple[float, float]:
    side = SIZES[size]
    return (side, side * TRIANGLE_HEIGHT) if shape == "triangle" else (side, side)


def box_at(shape: str | None, size: str, x: float, y: float) -> list[float]:
    w, h = extent(shape, size)
    return on_canvas([x - w / 2, y - h / 2, x + w / 2, y + h / 2])


def on_canvas(box) -> list[float]:
    """A box cut to the canvas, rounded: a model may draw an object closer to the edge than
    the world's sampler puts one, and an operation's boxes lie in 0..1."""
    return [round(min(max(v, 0.0), 1.0), 4) for v in box]


def cell_centre(row: str, column: str) -> tuple[float, float]:
    lo, hi = CENTRE_RANGE
    return (min(max((COLUMNS.index(column) + 0.5) / 3, lo), hi),
            min(max((ROWS.index(row) + 0.5) / 3, lo), hi))


def padded(box, pad: float = INPAINT_PAD) -> list[float]:
    return [round(max(box[0] - pad, 0.0), 4), round(max(box[1] - pad, 0.0), 4),
            round(min(box[2] + pad, 1.0), 4), round(min(box[3] + pad, 1.0), 4)]


def union(a, b) -> list[float]:
    return [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]


@dataclass
class Slot:
    """One object to place: its shape and size (for the box), an optional cell, and the
    point it prefers when nothing else decides."""

    shape: str | None
    size: str
    row: str | None = None
    column: str | None = None
    prefer: tuple[float, float] | None = None


def _clear(a, b, gap: float) -> bool:
    return (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def relation_ok(a: tuple[float, float], b: tuple[float, float], relation: str,
                margin: float = RELATION_MARGIN + RELATION_SLACK) -> bool:
    (ax, ay), (bx, by) = a, b
    if relation == "left_of":
        return bx - ax >= margin
    if relation == "right_of":
        return ax - bx >= margin
    if relation == "above":
        return by - ay >= margin
    if relation == "below":
        return ay - by >= margin
    if relation == "beside":  # either side, level
        return abs(ax - bx) >= margin and abs(ay - by) < RELATION_MARGIN
    raise ValueError(f"unknown relation {relation!r}")


def _in_cell(x: float, y: float, row: str | None, column: str | None) -> bool:
    return ((row is None or ROWS[min(int(y * 3), 2)] == row)
            and (column is None or COLUMNS[min(int(x * 3), 2)] == column))


def default_points(n: int) -> list[tuple[float, float]]:
    """Where unplaced objects go when nothing else decides: spread out, in reading order."""
    if n == 1:
        return [(0.5, 0.5)]
    if n == 2:
        return [(0.3, 0.5), (0.7, 0.5)]
    if n == 3:
        return [(0.25, 0.3), (0.75, 0.3), (0.5, 0.72)]
    return [(0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73)][:n] + [(0.5, 0.5)] * (n - 4)


def _ranks(n: int, edges: list[tuple[int, int]]) -> dict[int, int]:
    """Longest-path rank of each object in the order the edges (a before b) ask for; only
    objects on some edge get one."""
    rank = {k: 0 for e in edges for k in e}
    for _ in range(n):  # relaxation; a cycle simply stops changing nothing useful
        changed = False
        for a, b in edges:
            if rank[b] < rank[a] + 1 and rank[a] + 1 < n:
                rank[b] = rank[a] + 1
                changed = True
        if not changed:
            break
    return rank


def _spread(rank: int, top: int) -> float:
    lo, hi = (0.3, 0.7) if top == 1 else (0.2, 0.8) if top == 2 else (0.15, 0.85)
    return lo + (hi - lo) * rank / max(top, 1)


def preferred_points(slots: list[Slot], relations) -> list[tuple[float, float]]:
    """Where each slot would like to be: its cell's centre; along an axis that relations
    order, spread out in that order; otherwise a default spot that leaves room for the rest."""
    n = len(slots)
    defaults = default_points(n)
    x_edges = [(a, b) if r in ("left_of", "beside") else (b, a)
               for a, r, b in relations if r in ("left_of", "right_of", "beside")]
    y_edges = [(a, b) if r == "above" else (b, a) for a, r, b in relations
               if r in ("above", "below")]
    x_rank, y_rank = _ranks(n, x_edges), _ranks(n, y_edges)
    points = []
    for k, slot in enumerate(slots):
        x, y = defaults[k]
        if k in x_rank:
            x = _spread(x_rank[k], max(x_rank.values()))
            if k not in y_rank:
                y = 0.5
        if k in y_rank:
            y = _spread(y_rank[k], max(y_rank.values()))
            if k not in x_rank:
                x = 0.5
        if slot.row or slot.column:
            cx, cy = cell_centre(slot.row or "middle", slot.column or "center")
            x = cx if slot.column else x
            y = cy if slot.row else y
        points.append((x, y))
    return points


# Tried in order: the roomy margins first, then tighter ones that still meet world/WORLD.md.
MARGINS = ((RELATION_SLACK, GAP), (0.04, MIN_GAP_PX / CANVAS + 0.01), (0.005, MIN_GAP_PX / CANVAS))


def solve(slots: list[Slot], relations: list[tuple[int, str, int]] = (),
          fixed: list[Obj] = (), gap: float | None = None,
          step: float = GRID_STEP) -> list[tuple[float, float]] | None:
    """Centres for `slots`, or None when no placement satisfies everything. `relations` are
    (i, relation, j) between slots; `fixed` are objects already on the canvas to keep clear
    of. Roomy margins first, tighter ones (still within world/WORLD.md) when those leave no room."""
    levels = MARGINS if gap is None else ((RELATION_SLACK, gap),)
    for slack, level_gap in levels:
        points = _solve(slots, relations, fixed, level_gap, RELATION_MARGIN + slack, step)
        if points is not None:
            return points
    return None


def _axis(step: float) -> list[float]:
    lo, hi = CENTRE_RANGE
    return [round(lo + k * step, 4) for k in range(int(round((hi - lo) / step)) + 1)]


def _solve(slots, relations, fixed, gap, margin, step=GRID_STEP):
    """Depth-first over grid candidates nearest each slot's preferred point."""
    defaults = preferred_points(slots, relations)
    candidates = []
    for k, slot in enumerate(slots):
        prefer = slot.prefer or defaults[k]
        options = []
        axis = _axis(step)
        for x in axis:
            for y in axis:
                if not _in_cell(x, y, slot.row, slot.column):
                    continue
                box = box_at(slot.shape, slot.size, x, y)
                if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
                    continue
                if any(not _clear(box, o.box, gap) for o in fixed):
                    continue
                options.append((round((x - prefer[0]) ** 2 + (y - prefer[1]) ** 2, 6), x, y))
        options.sort()
        candidates.append([(x, y) for _, x, y in options])
    # Depth-first with forward checking: after each placement every unplaced slot keeps only
    # the candidates still consistent, and the slot with the fewest goes next.
    boxes_of = [{p: box_at(slot.shape, slot.size, *p) for p in options}
                for slot, options in zip(slots, candidates)]
    chosen: dict[int, tuple[float, float]] = {}
    nodes = 0

    def compatible(k: int, point, other: int, other_point) -> bool:
        if not _clear(boxes_of[k][point], boxes_of[other][other_point], gap):
            return False
        for a, rel, b in relations:
            if a == k and b == other and not relation_ok(point, other_point, rel, margin):
                return False
            if a == other and b == k and not relation_ok(other_point, point, rel, margin):
                return False
        return True

    def place(domains: dict[int, list]) -> bool:
        nonlocal nodes
        if not domains:
            return True
        k = min(domains, key=lambda j: len(domains[j]))
        rest = {j: d for j, d in domains.items() if j != k}
        for point in domains[k]:
            nodes += 1
            if nodes > MAX_NODES:
                return False
            pruned = {}
            for j, options in rest.items():
                kept = [q for q in options if compatible(j, q, k, point)]
                if not kept:
                    break
                pruned[j] = kept
            else:
                chosen[k] = point
                if place(pruned):
                    return True
                del chosen[k]
        return False

    if not place(dict(enumerate(candidates))):
        return None
    return [chosen[k] for k in range(len(slots))]
