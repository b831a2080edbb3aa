"""The two reference images (exemplars) of the planner cases' reference and compose requests:
ref_1 is the first. EXEMPLARS says what each shows, as the caption a planner reads;
EXEMPLAR_OBJECTS the (shape, colour) of its one object, what pasting it adds to a picture."""
from __future__ import annotations

EXEMPLARS = ("a large red circle in the center", "a small blue square at the top left")
EXEMPLAR_OBJECTS = (("circle", "red"), ("square", "blue"))
