"""InstructionPlanner: the offline planner for any picture, with no grammar of its own.

A request for a new picture becomes one `generate` step with the request as its prompt, or,
when its words say where things go or how many there are (several things, a place, a relation,
a count: planners/descriptions.py), a `layout` with each thing in its own box
(planners/boxes.py), as LLM-grounded diffusion lays a prompt out; a request that changes the
current image names objects that the current image's reading lists, and becomes an inpaint of
each one's box (planners/object_edits.py), or, where it cannot be read that way, becomes one
instruction `edit` of that image, the form instruction-tuned editors (InstructPix2Pix) are
trained on. A request made while there is a current image is about that image unless it
describes things anew ("a kite", "draw two dogs", "a new picture of ..."). "undo" and "redo"
move back and forth. A domain that knows its words plans better (the shapes world's rule
planner), and an LLM planner better still.
"""
from __future__ import annotations

import re

from .context import PlanningContext
from .plan import NotUnderstood, Plan, PlanResult, Step

UNDO = re.compile(r"^\s*(undo|revert|go back|take (that|it) back|step back)\b", re.I)
REDO = re.compile(r"^\s*(redo|do (that|it) again)\b", re.I)
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# A request that asks for a picture opens, once its framing is read off ("please draw",
# "give me": planners/descriptions.FRAME), with things: "a kite at dusk", "two dogs".
OPENS_WITH_THINGS = re.compile(r"^(?:a|an|one|two|three|four|five|six|seven|eight|some|several|"
                               r"\d+)\s")
ARTICLE_AT_END = re.compile(r"(?:^|\s)(?:a|an|one)\s+$")
NEW_PICTURE = re.compile(r"\b(?:new|another|different|fresh) (?:picture|image|scene|drawing|"
                         r"painting|photo)\b|\bstart (?:over|again)\b")
# "a red square should be added", "a dot too": a thing added to the current picture.
ALSO = re.compile(r"\b(?:too|as well|also|should be added|to it|to the (?:picture|image|scene))"
                  r"\b|\b(?:should|must|needs to) be (?:added|included|drawn|put|placed)\b")


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
        if context.current_image is not None:
            from .object_edits import plan_steps

            steps = plan_steps(text, context)
            if steps is not None:
                return Plan(rationale=(
                    f"The request changes objects of {context.current_image} that its reading "
                    "lists; each is redrawn in its own box, so the rest stays as it was."),
                    steps=[Step(**step) for step in steps])
        if context.current_image is not None and not self._asks_for_new(text):
            return Plan(rationale=(
                f"{context.current_image} is the current image and the request says how to "
                "change it, so the instruction editor changes it as the request says."),
                steps=[Step(op="edit", args={"instruction": text},
                            inputs=[context.current_image],
                            reason="an instruction edit keeps what the request does not name")])
        laid_out = self._layout(text)
        if laid_out is not None:
            return laid_out
        return Plan(rationale="The request describes a new picture; it becomes the prompt of "
                              "one text-to-image step.",
                    steps=[Step(op="generate", args={"prompt": text},
                                reason="text to image from the request as written")])

    @staticmethod
    def _layout(text: str) -> Plan | None:
        from .boxes import layout_step_args
        from .descriptions import read_description

        description = read_description(text)
        things = description.things
        if not (len(things) > 1 or description.relations
                or any(t.place or t.count > 1 for t in things)):
            return None
        args = layout_step_args(description)
        if args is None:
            return None
        named = ", ".join(o["phrase"] for o in args["objects"])
        return Plan(rationale=f"The request places things: {named}; a layout gives each its own "
                              "box, where a text prompt would leave places and counts to chance.",
                    steps=[Step(op="layout", args=args, reason="each thing in its own box")])

    @staticmethod
    def _asks_for_new(text: str) -> bool:
        """Does a request made while there is a current image ask for a new picture ("a
        kite", "draw two dogs", "a new picture of ...")? Anything else is about the current
        one: "the square should be green", "i don't want the dog", "it is too dark"."""
        lowered = text.lower()
        if NEW_PICTURE.search(lowered):
            return True
        from .descriptions import FRAME

        framing = FRAME.match(lowered)
        # The framing takes a leading "a" along with it ("draw a kite"): that counts as things.
        described = (ARTICLE_AT_END.search(framing.group(0))
                     or OPENS_WITH_THINGS.match(lowered[framing.end():]))
        return described is not None and not ALSO.search(lowered)
