"""The shapes world's grounding tool: a description ("the small red circle at the top left")
read in the world's words, matched against what the world's detector finds."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

@dataclass(frozen=True)
class Query:
    shape: str | None = None
    color: str | None = None
    size: str | None = None
    row: str | None = None
    column: str | None = None
    plural: bool = False

    def matches(self, obj) -> bool:
        return all(want is None or want == have for want, have in (
            (self.shape, obj.shape), (self.color, obj.color), (self.size, obj.size),
            (self.row, obj.row), (self.column, obj.column)))


ROW_WORDS = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
COLUMN_WORDS = {"left": "left", "right": "right"}
CENTRE_WORDS = ("center", "centre", "middle")
ALL_WORDS = ("all", "every", "both", "each")


def parse_description(text: str) -> Query:
    """Attributes and place of "the small red circle at the top left", "the blue squares", ..."""
    from .phrasings import COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS

    words = re.findall(r"[a-z]+", text.lower())
    found: dict[str, str] = {}
    plural = any(w in ALL_WORDS for w in words)
    for key, table in (("shape", SHAPE_WORDS), ("color", COLOR_WORDS), ("size", SIZE_WORDS)):
        for name, synonyms in table.items():
            for synonym in synonyms:
                if " " in synonym:
                    continue  # "round shape" adds nothing the single words miss
                forms = {synonym, synonym + "s", synonym + "es"} if key == "shape" else {synonym}
                hit = forms & set(words)
                if hit:
                    found[key] = name
                    plural |= key == "shape" and any(h != synonym for h in hit)
    row = next((ROW_WORDS[w] for w in words if w in ROW_WORDS), None)
    column = next((COLUMN_WORDS[w] for w in words if w in COLUMN_WORDS), None)
    if any(w in CENTRE_WORDS for w in words):
        # "in the center" is the middle cell; "top center" only fixes the column.
        column = column or "center"
        row = row or ("middle" if column == "center" else None)
    return Query(found.get("shape"), found.get("color"), found.get("size"), row, column, plural)


class WorldGrounder:
    """The shapes world's grounding tool: the world's detector, read against a description."""

    def locate(self, image: Image.Image, description: str) -> list[np.ndarray]:
        from .detect import detect

        query = parse_description(description)
        if query == Query(plural=query.plural):
            raise ValueError("names no shape, colour, size or place; describe the object, "
                             "e.g. 'the red circle'")
        detection = detect(image)
        matches = [d for d in detection.objects if query.matches(d.obj)]
        seen = ", ".join(d.obj.describe() + " at the " + " ".join(d.obj.place)
                         for d in detection.objects) or "nothing"
        if not matches:
            raise ValueError(f"no object in the image matches it (the image shows: {seen})")
        if len(matches) > 1 and not query.plural:
            raise ValueError(f"{len(matches)} objects match it (the image shows: {seen}); add a "
                             "size, colour or place to pick one, or say 'all'")
        return [d.mask for d in matches]

    def objects(self, image: Image.Image) -> list[np.ndarray]:
        from .detect import detect

        return detect(image).masks
