"""InstructionPlanner: the offline planner for any picture, with no grammar of its own.

A request for a new picture becomes one `generate` step with the request as its prompt; a
request that changes the current image (it starts with a verb of change, or talks about "it"
or "the ...") becomes one instruction `edit` of that image, the form instruction-tuned
editors (InstructPix2Pix) are trained on; "undo" and "redo" move back and forth. It reads no
objects or places: a domain that knows its words plans better (the shapes world's rule
planner), and an LLM planner better still.
"""
from __future__ import annotations

import re

from .context import PlanningContext
from .plan import NotUnderstood, Plan, PlanResult, Step

UNDO = re.compile(r"^\s*(undo|revert|go back|take (that|it) back|step back)\b", re.I)
REDO = re.compile(r"^\s*(redo|do (that|it) again)\b", re.I)
# The first word of a request that changes what is there rather than asking for a picture.
CHANGE_VERBS = frozenset("""
make change turn replace remove delete erase add put place move shift swap recolor recolour
paint color colour give let convert transform set enlarge shrink rotate flip brighten darken
""".split())
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class InstructionPlanner:
    name = "instructions"

    def plan(self, request: str, context: PlanningContext | None = None) -> PlanResult:
        context = context or PlanningContext()
        text = " ".join(request.split())
        words = [w.lower() for w in WORD.findall(text)]
        if not words:
            return NotUnderstood(request=request, message="the request has no words to draw "
                                 "from; say what the picture should show or what to change")
        if UNDO.match(text):
            return Plan(rationale="You asked to undo the last change.", action="undo")
        if REDO.match(text):
            return Plan(rationale="You asked to redo the change that was undone.",
                        action="redo")
        if context.current_image is not None and self._changes_current(words):
            return Plan(rationale=(
                f"{context.current_image} is the current image and the request says how to "
                "change it, so the instruction editor changes it as the request says."),
                steps=[Step(op="edit", args={"instruction": text},
                            inputs=[context.current_image],
                            reason="an instruction edit keeps what the request does not name")])
        return Plan(rationale="The request describes a new picture; it becomes the prompt of "
                              "one text-to-image step.",
                    steps=[Step(op="generate", args={"prompt": text},
                                reason="text to image from the request as written")])

    @staticmethod
    def _changes_current(words: list[str]) -> bool:
        return (words[0] in CHANGE_VERBS or words[0] in ("now", "then", "and")
                or any(w in ("it", "its", "them", "this", "that") for w in words[:4]))
