"""RulePlanner, and CHOICES: the one table that says which operation serves which kind of
request."""
from __future__ import annotations

from planners.context import PlanningContext
from planners.plan import NotUnderstood, Plan, PlanResult

from .. import language as lang
from .compiling import compile_intent
from .intents import NotRead
from .reading import interpret

# Which operation serves which kind of request. Edits of objects use inpaint with the new
# objects placed: the mask keeps every other pixel as it was, which instruction editing can
# only approximate (others kept: inpaint 96.7%, invert_edit 93.3%, edit 43.3%;
# bench.pipelines quality --only one_of_several), and each changed object is drawn alone and
# placed in its box (recolour made 100% of 30, against 27% redrawn from the caption; --only
# inpaint). A new background is everywhere but the objects: an instruction edit, which keeps
# a photograph's own pixels; where it misses on the shapes world, the agent's corrector
# redraws the scene as a layout with every object in its old box (agent/orchestrator.py).
# Re-measure with bench/planner.py --choices.
CHOICES: dict[str, str] = {
    "compose_single": "generate",   # one object, no place or relation stated
    "compose": "layout",            # anything with several objects, places or relations
    "recolor": "inpaint",
    "reshape": "inpaint",
    "resize": "inpaint",
    "change": "inpaint",            # several attributes at once
    "move": "inpaint",
    "remove": "inpaint",
    "add": "inpaint",
    "swap_colors": "inpaint",
    "change_all": "inpaint",        # the same change to every object of the scene
    "background": "edit",
}
CHOICE_OPTIONS = {key: (("generate", "layout") if key.startswith("compose")
                        else ("inpaint", "edit", "invert_edit", "layout")) for key in CHOICES}


class RulePlanner:
    """Deterministic planner over the shapes world's vocabulary. `plan` returns a Plan, or a
    NotUnderstood saying what it could not read; it never raises for any request text."""

    name = "rules"

    def __init__(self, choices: dict[str, str] | None = None):
        self.choices = dict(CHOICES)
        for key, op in (choices or {}).items():
            if key not in CHOICES:
                raise ValueError(f"unknown choice {key!r}; known: {', '.join(CHOICES)}")
            if op not in CHOICE_OPTIONS[key]:
                raise ValueError(f"choice {key!r} can be {' or '.join(CHOICE_OPTIONS[key])}, "
                                 f"not {op!r}")
            self.choices[key] = op

    def plan(self, request: str, context: PlanningContext | None = None) -> PlanResult:
        context = (context or PlanningContext()).for_request(request)
        try:
            intent, why = interpret(request, context)
            result = compile_intent(intent, context, self.choices, why)
        except NotRead as problem:
            return NotUnderstood(request=request, message=str(problem), unknown=problem.unknown)
        # Colour names the world has no word for were read as its nearest colour: say so.
        notes = lang.color_notes(lang.tokenize(request))
        if notes and isinstance(result, Plan):
            rationale = f"Colours read as the world's: {'; '.join(notes)}. {result.rationale}"
            result = result.model_copy(update={"rationale": rationale[:4000]})
        return result
