"""Scene types of the shapes world, with the world's exact numbers.

The numbers here are the contract other tools check images against: keep them as world/WORLD.md
states them.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

CANVAS = 128

BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "gray": (128, 128, 128),
    "black": (20, 20, 20),
}

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 190),
    "cyan": (30, 180, 200),
}

SHAPES = ("circle", "square", "triangle")

# Bounding-box side as a fraction of the canvas side.
SIZES: dict[str, float] = {"small": 0.18, "large": 0.32}
SIZE_TOLERANCE = 0.10

CENTRE_RANGE = (0.15, 0.85)
MIN_GAP_PX = 4
MAX_OBJECTS = 4

COLUMNS = ("left", "center", "right")
ROWS = ("top", "middle", "bottom")
RELATION_MARGIN = 0.1
TRIANGLE_HEIGHT = math.sqrt(3) / 2  # equilateral: height per unit base


def column_of(x: float) -> str:
    return COLUMNS[min(int(x * 3), 2)]


def row_of(y: float) -> str:
    return ROWS[min(int(y * 3), 2)]


@dataclass(frozen=True)
class Obj:
    """One object: shape, colour, size and the centre of its bounding box in 0..1."""

    shape: str
    color: str
    size: str
    x: float
    y: float

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; use one of {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; use one of {', '.join(COLORS)}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; use one of {', '.join(SIZES)}")
        if not (0.0 <= self.x <= 1.0 and 0.0 <= self.y <= 1.0):
            raise ValueError(f"centre ({self.x}, {self.y}) is outside the canvas; use 0..1")

    @property
    def side(self) -> float:
        return SIZES[self.size]

    @property
    def extent(self) -> tuple[float, float]:
        """Bounding-box width and height as fractions of the canvas side."""
        s = self.side
        return (s, s * TRIANGLE_HEIGHT) if self.shape == "triangle" else (s, s)

    @property
    def box(self) -> tuple[float, float, float, float]:
        w, h = self.extent
        return (self.x - w / 2, self.y - h / 2, self.x + w / 2, self.y + h / 2)

    @property
    def column(self) -> str:
        return column_of(self.x)

    @property
    def row(self) -> str:
        return row_of(self.y)

    @property
    def place(self) -> tuple[str, str]:
        return (self.row, self.column)

    def replace(self, **changes) -> "Obj":
        return Obj(**{**asdict(self), **changes})

    def describe(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...] = field(default_factory=tuple)
    background: str = "white"

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(
                f"unknown background {self.background!r}; use one of {', '.join(BACKGROUNDS)}"
            )
        object.__setattr__(self, "objects", tuple(self.objects))

    def to_dict(self) -> dict:
        return {
            "background": self.background,
            "objects": [asdict(o) for o in self.objects],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Scene":
        if not isinstance(data, dict) or not isinstance(data.get("objects", []), list):
            raise ValueError("a scene is an object with 'background' and a list 'objects'")
        objects = []
        for item in data.get("objects", []):
            if not isinstance(item, dict):
                raise ValueError("each scene object needs shape, color, size, x and y")
            try:
                objects.append(Obj(item["shape"], item["color"], item["size"],
                                   float(item["x"]), float(item["y"])))
            except KeyError as missing:
                raise ValueError(f"scene object is missing {missing}") from None
        return cls(tuple(objects), data.get("background", "white"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Scene":
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> "Scene":
        return Scene(changes.get("objects", self.objects), changes.get("background", self.background))


def boxes_clear(a: tuple[float, float, float, float], b: tuple[float, float, float, float],
                gap: float = MIN_GAP_PX / CANVAS) -> bool:
    """True when two boxes are at least `gap` apart along some axis (so they cannot touch)."""
    return (a[2] + gap <= b[0] or b[2] + gap <= a[0] or
            a[3] + gap <= b[1] or b[3] + gap <= a[1])


def inside_canvas(box: tuple[float, float, float, float]) -> bool:
    return box[0] >= 0.0 and box[1] >= 0.0 and box[2] <= 1.0 and box[3] <= 1.0


def valid_layout(objects) -> bool:
    """world/WORLD.md's placement rules: inside the canvas, centres in range, no two objects close."""
    lo, hi = CENTRE_RANGE
    objects = list(objects)
    if not 1 <= len(objects) <= MAX_OBJECTS:
        return False
    for i, o in enumerate(objects):
        if not (lo <= o.x <= hi and lo <= o.y <= hi and inside_canvas(o.box)):
            return False
        if any(not boxes_clear(o.box, p.box) for p in objects[:i]):
            return False
    return True
