"""RulePlanner: the deterministic, offline default planner.

It reads a request in two passes: `interpret` turns words into an intent in the world's terms
(objects with attributes, places and relations to compose; or an edit of named objects of the
current scene), and `compile_intent` turns the intent into steps, choosing operations from
`CHOICES`, the one table that says which operation serves which kind of request. The table is
a constructor argument so a benchmark can re-measure other choices.

It plans for correctness: boxes satisfy every stated place and relation with a margin, and an
edit repaints only the boxes of the objects it names, with the whole after-scene as the
prompt, so everything else stays exactly as it was.

The grammar, by file: intents.py (what a request is read into) and words.py (the grammar's
own words); reading.py (request -> intent, and undo, repair, reference and paste),
reading_composition.py (a new picture) and reading_edits.py (a change to the current scene),
with references.py (which objects of the scene a request means); compiling.py (intent ->
plan), compiling_edits.py (edits applied to the scene, then to steps) and placing.py (free
room for added and moved objects); planner.py (RulePlanner and CHOICES).
"""
from .compiling import compile_intent, layout_boxes
from .compiling_edits import EditOutcome, apply_intents, compile_edits, edit_boxes
from .intents import Compose, EditIntent, NotRead, ObjSpec, Special
from .planner import CHOICE_OPTIONS, CHOICES, RulePlanner
from .reading import interpret
from .reading_composition import read_compose
from .references import EXTREME_WORDS, Reference, focus, mention_words, resolve, resolve_text
from .words import (ADD_WORDS, GENERATE_VERBS, MOVE_WORDS, PASTE_WORDS, REDO_WORDS,
                    REFERENCE_WORDS, RELATION_WORDS, REMOVE_WORDS, RESIZE_VERBS, RESTORE_WORDS,
                    SWAP_WORDS, UNDO_PHRASES, UNDO_WORDS)


__all__ = [
    # the planner and its operation table
    "CHOICES", "CHOICE_OPTIONS", "RulePlanner",
    # intents
    "Compose", "EditIntent", "NotRead", "ObjSpec", "Special",
    # reading
    "interpret", "read_compose",
    # references to the current scene
    "EXTREME_WORDS", "Reference", "focus", "mention_words", "resolve", "resolve_text",
    # compiling
    "EditOutcome", "apply_intents", "compile_edits", "compile_intent", "edit_boxes",
    "layout_boxes",
    # the grammar's own words
    "ADD_WORDS", "GENERATE_VERBS", "MOVE_WORDS", "PASTE_WORDS", "REDO_WORDS", "REFERENCE_WORDS",
    "RELATION_WORDS", "REMOVE_WORDS", "RESIZE_VERBS", "RESTORE_WORDS", "SWAP_WORDS",
    "UNDO_PHRASES", "UNDO_WORDS",
]
