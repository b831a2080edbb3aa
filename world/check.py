"""The checker: does a scene (usually one the detector read from an image) satisfy a request?

A request is a list of constraints in world/WORLD.md's terms: counts, objects with attributes and
places, relations between two objects, the background, and, after an edit, preservation of
every object the edit did not name. `check` returns the failures in words; an empty list means
the image is correct for the request.

Object-claiming constraints (`Exists`, `Preserved`) are matched to scene objects jointly, as an
assignment: two claims can never be satisfied by the same object.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, ClassVar, Union

from .captions import cell_phrase
from .scene import (BACKGROUNDS, COLORS, COLUMNS, RELATION_MARGIN, ROWS, SHAPES, SIZES, Obj,
                    Scene)

if TYPE_CHECKING:  # edits imports this module; only the type is needed here
    from .edits import Edit

PRESERVE_TOLERANCE = 0.05
RELATIONS = ("left_of", "right_of", "above", "below")
RELATION_WORDS = {"left_of": "left of", "right_of": "right of", "above": "above",
                  "below": "below"}


def relation_holds(a: Obj, b: Obj, relation: str) -> bool:
    """world/WORLD.md: `A left of B` when A's centre is left of B's by at least 0.1 of the side
    (with a hair of slack, so 0.3 -> 0.4 counts despite float rounding)."""
    margin = RELATION_MARGIN - 1e-9
    if relation == "left_of":
        return b.x - a.x >= margin
    if relation == "right_of":
        return a.x - b.x >= margin
    if relation == "above":  # y grows downward
        return b.y - a.y >= margin
    if relation == "below":
        return a.y - b.y >= margin
    raise ValueError(f"unknown relation {relation!r}; use one of {', '.join(RELATIONS)}")


def _check_choice(name: str, value, allowed) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(allowed)}")


def _noun_phrase(shape, color, size, plural: bool = False) -> str:
    noun = shape or "object"
    if plural:
        noun += "s"
    return " ".join(w for w in (size, color, noun) if w)


def _place_words(row, column) -> str:
    if row and column:
        return cell_phrase((row, column))
    if row:
        return f"in the {row} row"
    if column:
        return f"in the {column} column"
    return ""


@dataclass(frozen=True)
class Count:
    """Exactly `n` objects (of this shape / colour / size where given)."""

    type: ClassVar[str] = "count"
    n: int
    shape: str | None = None
    color: str | None = None
    size: str | None = None

    def __post_init__(self):
        if not isinstance(self.n, int) or self.n < 0:
            raise ValueError(f"a count needs a whole number >= 0, got {self.n!r}")
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("colour", self.color, COLORS)
        _check_choice("size", self.size, SIZES)

    def matches(self, obj: Obj) -> bool:
        return ((self.shape is None or obj.shape == self.shape)
                and (self.color is None or obj.color == self.color)
                and (self.size is None or obj.size == self.size))

    def words(self, n: int | None = None) -> str:
        n = self.n if n is None else n
        return f"{n} {_noun_phrase(self.shape, self.color, self.size, plural=n != 1)}"


@dataclass(frozen=True)
class Exists:
    """An object with the given attributes; optionally in a place cell (row and/or column) and
    optionally with its centre within `tolerance` of (x, y). Also describes relation ends."""

    type: ClassVar[str] = "exists"
    shape: str | None = None
    color: str | None = None
    size: str | None = None
    row: str | None = None
    column: str | None = None
    x: float | None = None
    y: float | None = None
    tolerance: float = PRESERVE_TOLERANCE

    def __post_init__(self):
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("colour", self.color, COLORS)
        _check_choice("size", self.size, SIZES)
        _check_choice("row", self.row, ROWS)
        _check_choice("column", self.column, COLUMNS)
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y for a position, or neither")

    def matches(self, obj: Obj) -> bool:
        if self.shape is not None and obj.shape != self.shape:
            return False
        if self.color is not None and obj.color != self.color:
            return False
        if self.size is not None and obj.size != self.size:
            return False
        if self.row is not None and obj.row != self.row:
            return False
        if self.column is not None and obj.column != self.column:
            return False
        if self.x is not None and math.hypot(obj.x - self.x, obj.y - self.y) > self.tolerance:
            return False
        return True

    def words(self, article: str = "a") -> str:
        noun_phrase = _noun_phrase(self.shape, self.color, self.size)
        if article == "a" and noun_phrase[0] in "aeiou":
            article = "an"
        text = f"{article} {noun_phrase}"
        place = _place_words(self.row, self.column)
        if place:
            text += " " + place
        if self.x is not None:
            text += f" near ({self.x:.2f}, {self.y:.2f})"
        return text


@dataclass(frozen=True)
class Relation:
    """Some object described by `a` stands in `relation` to a different one described by `b`."""

    type: ClassVar[str] = "relation"
    a: Exists
    relation: str
    b: Exists

    def __post_init__(self):
        _check_choice("relation", self.relation, RELATIONS)
        # Accept plain dicts too, so a constraint read from JSON is whole.
        for name in ("a", "b"):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, Exists(**{k: v for k, v in value.items()
                                                         if k != "type"}))

    def words(self) -> str:
        return f"{self.a.words()} {RELATION_WORDS[self.relation]} {self.b.words()}"


@dataclass(frozen=True)
class Background:
    type: ClassVar[str] = "background"
    name: str

    def __post_init__(self):
        _check_choice("background", self.name, BACKGROUNDS)


@dataclass(frozen=True)
class Preserved:
    """After an edit: an object the edit did not name is still there with the same shape,
    colour and size, its centre moved by at most `tolerance` of the side."""

    type: ClassVar[str] = "preserved"
    shape: str
    color: str
    size: str
    x: float
    y: float
    tolerance: float = PRESERVE_TOLERANCE

    def __post_init__(self):
        _check_choice("shape", self.shape, SHAPES)
        _check_choice("colour", self.color, COLORS)
        _check_choice("size", self.size, SIZES)

    @classmethod
    def of(cls, obj: Obj, tolerance: float = PRESERVE_TOLERANCE) -> "Preserved":
        return cls(obj.shape, obj.color, obj.size, obj.x, obj.y, tolerance)

    def same_kind(self, obj: Obj) -> bool:
        return obj.shape == self.shape and obj.color == self.color and obj.size == self.size

    def matches(self, obj: Obj) -> bool:
        return (self.same_kind(obj)
                and math.hypot(obj.x - self.x, obj.y - self.y) <= self.tolerance)

    def words(self) -> str:
        return (f"the {_noun_phrase(self.shape, self.color, self.size)} "
                f"at ({self.x:.2f}, {self.y:.2f})")


Constraint = Union[Count, Exists, Relation, Background, Preserved]
CONSTRAINT_TYPES = {cls.type: cls for cls in (Count, Exists, Relation, Background, Preserved)}


# --- JSON ---------------------------------------------------------------------------------

def constraint_to_dict(constraint: Constraint) -> dict:
    data = {"type": constraint.type}
    for f in fields(constraint):
        value = getattr(constraint, f.name)
        data[f.name] = constraint_to_dict(value) if isinstance(value, Exists) else value
    return data


def constraint_from_dict(data: dict) -> Constraint:
    if not isinstance(data, dict) or data.get("type") not in CONSTRAINT_TYPES:
        raise ValueError(f"a constraint needs a 'type', one of {', '.join(CONSTRAINT_TYPES)}")
    cls = CONSTRAINT_TYPES[data["type"]]
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known - {"type"}
    if unknown:
        raise ValueError(f"unknown field(s) for a {cls.type} constraint: {sorted(unknown)}")
    return cls(**{k: v for k, v in data.items() if k != "type"})


def constraints_to_json(constraints) -> str:
    return json.dumps([constraint_to_dict(c) for c in constraints], sort_keys=True)


def constraints_from_json(text: str) -> list[Constraint]:
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("constraints are a JSON list")
    return [constraint_from_dict(item) for item in data]


# --- checking -----------------------------------------------------------------------------

def _assign(claims, objects) -> list[int | None]:
    """A maximum assignment of claims to distinct objects (augmenting paths; sizes are tiny).
    Returns, per claim, the index of its object or None."""
    owner: list[int | None] = [None] * len(objects)  # object -> claim
    options = [[j for j, o in enumerate(objects) if c.matches(o)] for c in claims]

    def augment(i: int, seen: set[int]) -> bool:
        for j in options[i]:
            if j not in seen:
                seen.add(j)
                if owner[j] is None or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(len(claims)):
        augment(i, set())
    result: list[int | None] = [None] * len(claims)
    for j, i in enumerate(owner):
        if i is not None:
            result[i] = j
    return result


def _preserved_failure(claim: Preserved, objects) -> str:
    same = [o for o in objects if claim.same_kind(o)]
    if not same:
        kind = _noun_phrase(claim.shape, claim.color, claim.size)
        return f"{claim.words()} is gone (no {kind} left)"
    nearest = min(math.hypot(o.x - claim.x, o.y - claim.y) for o in same)
    if nearest > claim.tolerance:
        return (f"{claim.words()} was not kept in place: the nearest one moved "
                f"{nearest:.2f} (at most {claim.tolerance:.2f})")
    return f"{claim.words()} is missing (its match is another object's)"


def _relation_failure(rel: Relation, objects) -> str | None:
    a_objs = [o for o in objects if rel.a.matches(o)]
    b_objs = [o for o in objects if rel.b.matches(o)]
    for i, a in enumerate(objects):
        if not rel.a.matches(a):
            continue
        for j, b in enumerate(objects):
            if i != j and rel.b.matches(b) and relation_holds(a, b, rel.relation):
                return None
    if not a_objs:
        return f"expected {rel.a.words()} ({rel.words()}), found none"
    if not b_objs:
        return f"expected {rel.b.words()} ({rel.words()}), found none"
    return (f"{rel.a.words('the')} is not {RELATION_WORDS[rel.relation]} "
            f"{rel.b.words('the')}")


def check(scene, constraints) -> list[str]:
    """The constraints `scene` fails, in words; an empty list means it satisfies them all.
    `scene` is a Scene or anything with a `.scene` (a detector's Detection)."""
    scene = getattr(scene, "scene", scene)
    if not isinstance(scene, Scene):
        raise TypeError(f"check needs a Scene or a Detection, got {type(scene).__name__}")
    objects = list(scene.objects)
    failures: list[str] = []
    claims = [c for c in constraints if isinstance(c, (Exists, Preserved))]
    assignment = _assign(claims, objects)
    claim_failures: list[str | None] = []
    for claim, match in zip(claims, assignment):
        if match is not None:
            claim_failures.append(None)
        elif isinstance(claim, Preserved):
            claim_failures.append(_preserved_failure(claim, objects))
        elif any(claim.matches(o) for o in objects):
            claim_failures.append(f"expected {claim.words('another')}, found only objects "
                                  "another constraint needs")
        else:
            claim_failures.append(f"expected {claim.words()}, found none")
    claim_failures.reverse()
    # Report in the order the constraints were given.
    for c in constraints:
        if isinstance(c, (Exists, Preserved)):
            message = claim_failures.pop()
        elif isinstance(c, Count):
            found = sum(1 for o in objects if c.matches(o))
            message = None if found == c.n else f"expected {c.words()}, found {found}"
        elif isinstance(c, Relation):
            message = _relation_failure(c, objects)
        elif isinstance(c, Background):
            message = (None if scene.background == c.name else
                       f"expected a {c.name} background, found {scene.background}")
        else:
            raise TypeError(f"not a constraint: {c!r}")
        if message:
            failures.append(message)
    return failures


# --- what requests state ------------------------------------------------------------------

def constraints_for_scene(scene: Scene) -> list[Constraint]:
    """What the canonical caption of `scene` states: how many objects, each object's shape,
    colour, size and place cell, and the background (white when the caption leaves it out)."""
    result: list[Constraint] = [Count(len(scene.objects))]
    result += [Exists(o.shape, o.color, o.size, o.row, o.column) for o in scene.objects]
    result.append(Background(scene.background))
    return result


def _near(obj: Obj, **changes) -> Exists:
    """The edited object: its new attributes, its centre where it was."""
    attrs = {"shape": obj.shape, "color": obj.color, "size": obj.size, **changes}
    return Exists(attrs["shape"], attrs["color"], attrs["size"], x=obj.x, y=obj.y)


def constraints_for_edit(before: Scene, edit: "Edit", after: Scene | None = None
                         ) -> list[Constraint]:
    """What a correct result of `edit` on `before` satisfies: the asked change made, every
    object the edit did not name preserved, the background kept unless the edit changes it.
    `after` (the exact result) is only consulted for what the instruction left open."""
    objs = before.objects
    kind, targets, params = edit.kind, tuple(edit.targets), edit.params
    named = set(targets) if kind != "add" else set()
    result: list[Constraint] = [Preserved.of(o) for i, o in enumerate(objs) if i not in named]
    if kind == "background":
        result.append(Background(params["background"]))
    else:
        result.append(Background(before.background))
    n_after = len(objs) + (1 if kind == "add" else -1 if kind == "remove" else 0)
    result.append(Count(n_after))

    if kind == "recolor":
        result.append(_near(objs[targets[0]], color=params["color"]))
    elif kind == "reshape":
        result.append(_near(objs[targets[0]], shape=params["shape"]))
    elif kind == "resize":
        result.append(_near(objs[targets[0]], size=params["size"]))
    elif kind == "swap_colors":
        i, j = targets
        result.append(_near(objs[i], color=objs[j].color))
        result.append(_near(objs[j], color=objs[i].color))
    elif kind == "move":
        t = objs[targets[0]]
        moved = Exists(t.shape, t.color, t.size)
        if params.get("place"):
            row, column = params["place"]
            result.append(Exists(t.shape, t.color, t.size, row, column))
        else:
            anchor = objs[params["anchor"]]
            result.append(moved)
            result.append(Relation(moved, params["relation"],
                                   Exists(anchor.shape, anchor.color, anchor.size,
                                          x=anchor.x, y=anchor.y)))
    elif kind == "remove":
        t = objs[targets[0]]
        same = sum(1 for o in objs if (o.shape, o.color, o.size) == (t.shape, t.color, t.size))
        result.append(Count(same - 1, t.shape, t.color, t.size))
    elif kind == "add":
        size = params["size"] if params.get("size_stated", True) else None
        place = params.get("place") or (None, None)
        result.append(Exists(params["shape"], params["color"], size, place[0], place[1]))
    elif kind != "background":
        raise ValueError(f"unknown edit kind {kind!r}")
    return result
