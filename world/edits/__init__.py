"""The world's edits (world/WORLD.md): each an exact scene -> scene' with many instruction phrasings.

An `Edit` holds everything needed to reproduce its after-scene exactly (a move carries the
new centre), so instruction-editing data and edit checks come from the same record. The
instruction names its target only in ways that pick out exactly one object of the scene.

By file: templates.py (edit kinds, instruction templates and their words), record.py (`Edit`
and `EditError`), spots.py (where an added or moved object can go), applying.py
(`apply_edit`), referring.py (naming one object so no other fits) and sampling.py
(`sample_edit`).
"""
from .applying import apply_edit
from .record import Edit, EditError
from .referring import refer, referring_expressions
from .sampling import sample_edit
from .spots import SAMPLE_SLACK, free_spots
from .templates import (DESTINATION_WORDS, EDIT_KINDS, EXTREME_WORDS, GENERIC_NOUNS, RESIZE_WORDS,
                        SIDE_WORDS, STYLES, TEMPLATE_GROUPS, TEMPLATES, edit_template_ids,
                        edit_templates, edit_words)

__all__ = [
    # edits and their results
    "EDIT_KINDS", "Edit", "EditError", "apply_edit", "sample_edit",
    # instruction templates and their words
    "DESTINATION_WORDS", "EXTREME_WORDS", "GENERIC_NOUNS", "RESIZE_WORDS", "SIDE_WORDS", "STYLES",
    "TEMPLATES", "TEMPLATE_GROUPS", "edit_template_ids", "edit_templates", "edit_words",
    # naming objects, and room for them
    "refer", "referring_expressions", "SAMPLE_SLACK", "free_spots",
]
