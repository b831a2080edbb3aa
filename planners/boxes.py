"""Boxes for a description's things, as LLM-grounded diffusion lays a prompt out: each thing
(each one of a counted thing) gets a cell of the 3 x 3 grid, its stated place where it has
one, cells on the right sides of each other for its relations, and the free cells in a
balanced order for the rest.

    layout_boxes(read_description("a cat to the left of two dogs"))
    -> [("a cat", [0.0167, 0.35, 0.3167, 0.65]), ("a dog", [...]), ("a dog", [...])]
"""
from __future__ import annotations

from planners.descriptions import COLUMNS, ROWS, Description

# A box's side in image sides: size words of any vocabulary scale it.
SIDE = 0.3
SIDE_BY_WORD = {"small": 0.18, "little": 0.18, "tiny": 0.18, "large": 0.32, "big": 0.32,
                "huge": 0.32}
# Free cells, best first for each number of things: a row across the middle, then corners.
SPREAD = {1: [(1, 1)], 2: [(1, 0), (1, 2)], 3: [(1, 0), (1, 1), (1, 2)],
          4: [(0, 0), (0, 2), (2, 0), (2, 2)]}
ALL_CELLS = [(1, 1), (1, 0), (1, 2), (0, 1), (2, 1), (0, 0), (0, 2), (2, 0), (2, 2)]
MAX_THINGS = 9


def cell_box(row: int, column: int, side: float) -> list[float]:
    """A square box of `side` centred on the cell, moved inside the image where it would
    cross an edge."""
    x0 = min(max((column + 0.5) / 3 - side / 2, 0.0), 1 - side)
    y0 = min(max((row + 0.5) / 3 - side / 2, 0.0), 1 - side)
    return [round(x0, 4), round(y0, 4), round(x0 + side, 4), round(y0 + side, 4)]


def side_of(phrase: str) -> float:
    for word in phrase.split():
        if word in SIDE_BY_WORD:
            return SIDE_BY_WORD[word]
    return SIDE


def _relation_cells(description: Description) -> dict[int, tuple[int, int]]:
    """Cells for the things of relations: the first thing's row and column against the
    second's, the middle on an axis no relation speaks of."""
    cells: dict[int, list[int]] = {}
    for a, relation, b in description.relations:
        ca, cb = cells.setdefault(a, [1, 1]), cells.setdefault(b, [1, 1])
        axis, first = {"left_of": (1, 0), "right_of": (1, 2), "above": (0, 0),
                       "below": (0, 2)}[relation]
        ca[axis], cb[axis] = first, 2 - first
    return {i: (rc[0], rc[1]) for i, rc in cells.items()}


def layout_step_args(description: Description) -> dict | None:
    """A `layout` step's arguments for the description, or None (see `layout_boxes`)."""
    boxes = layout_boxes(description)
    if boxes is None:
        return None
    args: dict = {"objects": [{"phrase": p, "box": b} for p, b in boxes]}
    if description.background:
        args["background_prompt"] = f"on a {description.background} background"
    return args


def layout_boxes(description: Description) -> list[tuple[str, list[float]]] | None:
    """(phrase with its article, box) per thing, each counted thing once per count; None when
    there is nothing to lay out or more than the grid holds."""
    things = description.things
    total = sum(t.count for t in things)
    if not things or total > MAX_THINGS:
        return None
    related = _relation_cells(description)
    wanted: list[tuple[str, tuple[int, int] | None]] = []
    for i, t in enumerate(things):
        place = None
        if t.place:
            place = (ROWS.index(t.place[0]), COLUMNS.index(t.place[1]))
        elif i in related and t.count == 1:
            place = related[i]
        wanted += [(t.phrase, place)] + [(t.phrase, None)] * (t.count - 1)
    used = {p for _, p in wanted if p is not None}
    free = [c for c in SPREAD.get(len(wanted), []) + ALL_CELLS if c not in used]
    boxes = []
    for phrase, place in wanted:
        if place is None:
            place = free.pop(0)
            used.add(place)
            free = [c for c in free if c not in used]
        boxes.append((f"a {phrase}", cell_box(*place, side_of(phrase))))
    return boxes
