"""What the rule grammar reads a request into: objects to compose (`Compose` of `ObjSpec`s), an
edit of the current scene (`EditIntent`), or a `Special` request (undo, redo, restore,
reference, paste); and `NotRead`, which stops reading with a message for the person."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ObjSpec:
    shape: str | None = None
    color: str | None = None
    size: str | None = None
    row: str | None = None
    column: str | None = None

    def phrase(self, size: str | None = None) -> str:
        words = [w for w in (size or self.size, self.color, self.shape or "shape") if w]
        text = " ".join(words)
        return f"{'an' if text[0] in 'aeiou' else 'a'} {text}"


@dataclass
class Compose:
    objects: list[ObjSpec]
    relations: list[tuple[int, str, int]] = field(default_factory=list)
    background: str | None = None
    counts: list[tuple[int, dict]] = field(default_factory=list)


@dataclass
class EditIntent:
    """An edit of the current scene in world.edits' terms: kind, target indices, params."""

    kind: str
    targets: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)


@dataclass
class Special:
    kind: str                     # undo, redo, restore, reference, paste
    reference: str | None = None
    compose: Compose | None = None
    place: tuple[str, str] | None = None
    exemplars: bool = False


class NotRead(Exception):
    """Raised inside interpretation to stop with a NotUnderstood message."""

    def __init__(self, message: str, unknown: list[str] | None = None):
        super().__init__(message)
        self.unknown = unknown or []
