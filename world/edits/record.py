"""`Edit`, the record of one edit, and `EditError`, for an edit that does not fit its scene."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .templates import EDIT_KINDS, TEMPLATES


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
