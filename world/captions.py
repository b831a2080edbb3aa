"""Scene -> words: the canonical caption, and the place words every other phrasing builds on."""
from __future__ import annotations

from .scene import Obj, Scene

# The nine cells of world/WORLD.md, keyed by (row, column).
PLACE_NAMES: dict[tuple[str, str], str] = {
    ("top", "left"): "top left", ("top", "center"): "top", ("top", "right"): "top right",
    ("middle", "left"): "left", ("middle", "center"): "center", ("middle", "right"): "right",
    ("bottom", "left"): "bottom left", ("bottom", "center"): "bottom",
    ("bottom", "right"): "bottom right",
}


def cell_phrase(cell: tuple[str, str]) -> str:
    """The words for a (row, column) cell: "at the top left", "in the center"."""
    name = PLACE_NAMES[cell]
    return "in the center" if name == "center" else f"at the {name}"


def place_phrase(obj: Obj) -> str:
    return cell_phrase(obj.place)


def reading_order(objects) -> list[Obj]:
    """Top to bottom by row, then left to right: the order captions list objects in."""
    return sorted(objects, key=lambda o: (o.row != "top", o.row == "bottom", o.x, o.y))


def describe(obj: Obj, with_place: bool = True) -> str:
    text = f"a {obj.size} {obj.color} {obj.shape}"
    return f"{text} {place_phrase(obj)}" if with_place else text


def caption(scene: Scene) -> str:
    """The canonical caption, e.g. "a large red circle at the top left and a small blue square
    at the bottom right, on a gray background" (a white background goes unsaid)."""
    parts = [describe(o) for o in reading_order(scene.objects)]
    if not parts:
        text = "an empty canvas"
    elif len(parts) == 1:
        text = parts[0]
    else:
        text = ", ".join(parts[:-1]) + " and " + parts[-1]
    if scene.background != "white":
        text += f", on a {scene.background} background"
    return text
