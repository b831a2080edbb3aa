"""The shapes world's corrections: when a step's check fails, the rule planner reads its words
again, a generate prompt as boxes for a `layout` and an edit instruction as placed changes
(agent/turn/orchestrator.py, `Corrector`)."""
from __future__ import annotations

from planners.context import PlanningContext
from planners.plan import Plan, Step

from .planning.scenes import context_for_scene
from .scene import Scene


class WorldCorrections:
    """agent.turn.orchestrator.Corrections for the shapes world, through its rule planner."""

    def layout_for(self, step: Step) -> Step | None:
        """The rule planner's layout for a generate step's prompt, with the step's sampling
        settings; None when the prompt is not one it can lay out."""
        from .planning.rules import RulePlanner

        planner = RulePlanner(choices={"compose_single": "layout", "compose": "layout"})
        plan = planner.plan(step.args.prompt, PlanningContext())
        if not isinstance(plan, Plan) or [s.op for s in plan.steps] != ["layout"]:
            return None
        args = plan.steps[0].args.model_dump()
        original = step.args
        args.update(steps=original.steps, guidance=original.guidance,
                    negative_prompt=original.negative_prompt)
        return Step(op="layout", args=args, reason=f"layout for {original.prompt!r}")

    def placed_edit_for(self, step: Step, before: dict) -> Step | None:
        """The rule planner's inpaint (or, for a background, layout) for an edit step's
        instruction read against the scene it edits; None when it cannot read the instruction."""
        from .planning.rules import CHOICES, RulePlanner

        choices = {kind: "layout" if kind == "background" else "inpaint"
                   for kind in CHOICES if not kind.startswith("compose")}
        plan = RulePlanner(choices=choices).plan(step.args.instruction,
                                                  context_for_scene(Scene.from_dict(before)))
        if not isinstance(plan, Plan) or len(plan.steps) != 1:
            return None
        placed = plan.steps[0]
        if placed.op not in ("inpaint", "layout"):
            return None
        return Step(op=placed.op, args=placed.args.model_dump(), inputs=step.inputs,
                    reason=f"{placed.op} for {step.args.instruction!r}")
