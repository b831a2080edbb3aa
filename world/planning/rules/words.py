"""The rule grammar's own words: what marks an undo, a repair, a reference, a swap, a removal,
an addition, a move or a resize. The world's vocabulary (shapes, colours, places ...) is
language.py's."""
from __future__ import annotations

UNDO_WORDS = {"undo", "revert"}
REDO_WORDS = {"redo"}
UNDO_PHRASES = (("go", "back"), ("take", "that", "back"), ("step", "back"), ("undo",),
                ("never", "mind"), ("change", "it", "back"), ("put", "it", "back"))
RESTORE_WORDS = {"restore", "repair", "denoise", "sharpen", "deblur", "upscale", "enhance",
                 "sharper", "clearer", "blurry", "noisy", "noise", "blur"}
REFERENCE_WORDS = {"like", "style", "based", "similar", "reference", "following", "version",
                   "resembling", "resembles"}
PASTE_WORDS = {"paste", "pasted", "copy", "drop", "insert", "put", "place", "add"}
SWAP_WORDS = {"swap", "switch", "exchange", "trade", "swapped", "switched", "exchanged",
              "traded", "versa"}
REMOVE_WORDS = {"remove", "delete", "erase", "rid", "gone", "removed", "deleted", "erased",
                "without"}
ADD_WORDS = {"add", "include", "insert", "added", "included", "inserted", "too", "also",
             "well", "another", "extra", "additional"}
MOVE_WORDS = {"move", "shift", "drag", "moved", "shifted", "dragged", "put", "place",
              "placed", "go", "relocate", "position"}
RESIZE_VERBS = {"enlarge": "large", "grow": "large", "shrink": "small", "enlarged": "large",
                "shrunk": "small", "increase": "large", "reduce": "small",
                "decrease": "small", "magnify": "large"}
GENERATE_VERBS = {"draw", "make", "create", "render", "paint", "generate", "show", "give",
                  "picture", "image", "want", "like", "need"}
RELATION_WORDS = {"left_of": "to the left of", "right_of": "to the right of",
                  "above": "above", "below": "below", "beside": "next to"}


def has_phrase(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    """Whether `phrase` occurs in `tokens` as consecutive words."""
    n = len(phrase)
    return any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1))
