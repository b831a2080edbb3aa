"""Where an added or moved object can go: a grid of centres 0.01 apart, masked by free room, by
cell and by relation to an anchor."""
from __future__ import annotations

import numpy as np

from ..check import RELATIONS
from ..phrasings import Dice
from ..scene import CANVAS, CENTRE_RANGE, COLUMNS, MIN_GAP_PX, RELATION_MARGIN, ROWS, Obj

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


def cell_mask(row: str, column: str, inset: float = 0.0) -> np.ndarray:
    """Spots in the cell, at least `inset` from its edges."""
    rows = np.minimum((_GY * 3).astype(int), 2)
    cols = np.minimum((_GX * 3).astype(int), 2)
    mask = (rows == ROWS.index(row)) & (cols == COLUMNS.index(column))
    if inset:
        for v in (_GX, _GY):
            mask &= (np.abs(v - 1 / 3) >= inset) & (np.abs(v - 2 / 3) >= inset)
    return mask


def relation_mask(anchor: Obj, relation: str, slack: float = 0.0) -> np.ndarray:
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


def cell_centre(row: str, column: str) -> tuple[float, float]:
    lo, hi = CENTRE_RANGE
    return (min(max((COLUMNS.index(column) + 0.5) / 3, lo), hi),
            min(max((ROWS.index(row) + 0.5) / 3, lo), hi))


def nearest_spot(mask: np.ndarray, x: float, y: float) -> tuple[float, float] | None:
    """The allowed spot nearest (x, y): how `apply_edit` places things deterministically."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    k = idx[np.argmin((_GX[idx] - x) ** 2 + (_GY[idx] - y) ** 2)]
    return float(_GX[k]), float(_GY[k])


def random_spot(d: Dice, mask: np.ndarray) -> tuple[float, float] | None:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return None
    k = idx[int(d.u() * idx.size)]
    return float(_GX[k]), float(_GY[k])
