"""The general domain: any model set that is not the shapes world's.

It plans offline with the instruction planner (planners/instructions.py), which lays out a
request's things when its words place or count them. It sees through the model set's own
eyes: with a `detector` (and optionally a `segmenter`) in the set, objects are found and
checked by model (agent/turn/seeing.py, pipelines/detection.py), and a prompt whose image
misses a thing, a count, a place or a relation is laid out again thing by thing
(`DescriptionCorrections`); without one it judges images by CLIP similarity where the set has
a CLIP, per-box layouts fall back to one canvas, and operations that must find objects
(inpaint by description, compose) say a grounding model is missing.
Every turn's report says how little was checked. It never reads images with the shapes
world's detector.
"""
from __future__ import annotations

from agent.domains import Domain
from pipelines.once import OnceMap

NOTES = """\
Notes on the images: photographs or artwork at the model's native size, anything a text
prompt can describe. Boxes are [x0, y0, x1, y1] in 0..1 with y growing downward; places are
the cells of a 3 x 3 grid (top left ... bottom right).
- A new picture of one subject, or with no stated places: generate, with the request as a
  rich prompt (subject, setting, light, style).
- Several objects at stated places: layout, one phrase and box per object.
- Changing some objects of the current image: edit_objects, naming each by its phrase or by
  its id in the detector's reading; only their boxes are redrawn.
- Changing the whole look of the current image: edit with an instruction ("make the sky
  stormy").
- Nothing to draw can be read from the request: ask (action clarify).
"""


def _examples() -> list[tuple[str, str]]:
    """Worked examples for photographs: (context as the model reads it, reply)."""
    import json

    from planners.context import ImageInfo, PlanningContext, SceneObject, SceneReading

    cases = [
        (PlanningContext(), "a lighthouse at dusk", {
            "rationale": "One subject with no stated places: a text prompt is enough, written "
                         "out with the setting and the light.",
            "action": "run", "steps": [{"op": "generate", "args": {
                "prompt": "a lighthouse on a rocky coast at dusk, warm light in the lamp room, "
                          "calm sea, photograph"}}]}),
        (PlanningContext(), "a cat on a sofa and a lamp to its right", {
            "rationale": "Two objects and a relation: a layout gives each its own box, the lamp "
                         "right of the cat, both standing on the same floor line.",
            "action": "run", "steps": [{"op": "layout", "args": {
                "objects": [{"phrase": "a cat sitting on a sofa", "box": [0.08, 0.35, 0.58, 0.9]},
                            {"phrase": "a floor lamp", "box": [0.66, 0.12, 0.9, 0.9]}],
                "background_prompt": "a cosy living room"}}]}),
    ]
    current = PlanningContext(
        images=[ImageInfo(id="img_1", op="generate", caption="a red sailboat on a lake")],
        current_image="img_1", scene=SceneReading(objects=[SceneObject(
            id="obj_1", name="sailboat", box=[0.3, 0.35, 0.62, 0.8], score=0.91)]))
    cases += [
        (current, "make the sails white", {
            "rationale": "img_1 is the current image and the request changes one part of it; "
                         "an instruction edit keeps the rest.",
            "action": "run", "steps": [{"op": "edit", "args": {"instruction": "make the sails "
                                                                "white"}, "inputs": ["img_1"]}]}),
        (current, "put a small red flag on top of the boat", {
            "rationale": "One object is added above obj_1, the sailboat the detector found; "
                         "edit_objects redraws only its box, so the lake and the boat stay.",
            "action": "run", "steps": [{"op": "edit_objects", "args": {
                "caption": "a sailboat with a small red flag on top, on a lake",
                "changes": [{"do": "add", "becomes": "a small red flag",
                             "box": [0.42, 0.22, 0.52, 0.36]}]}}]}),
        (current, "undo that", {"rationale": "You asked to undo the last change.",
                                "action": "undo", "steps": []}),
        (PlanningContext(), "make it look nicer", {
            "rationale": "The request does not say what to draw or what to change.",
            "action": "clarify", "steps": [],
            "question": "What should the picture show, or what should change in it?"}),
    ]
    return [(context.for_request(request).render(), json.dumps(reply))
            for context, request, reply in cases]


def _llm_options() -> dict:
    from planners.phrase_edits import PLANNER_OPERATIONS

    return {"domain_notes": NOTES, "examples": _examples(),
            "planner_operations": PLANNER_OPERATIONS}


def _rule_planner():
    from planners.instructions import InstructionPlanner

    return InstructionPlanner()


def _checker(runner):
    from agent.turn.checks import ClipChecker, NoChecker

    models = getattr(runner(), "models", None)
    clip = ClipChecker(models.clip) if models is not None and models.config.clip else None
    eyes = _eyes(models.config) if models is not None else None
    if eyes is not None:
        from agent.turn.seeing import DetectorChecker

        return DetectorChecker(eyes, fallback=clip)
    return clip if clip is not None else NoChecker()


class DescriptionCorrections:
    """What the corrector may switch a failing step to, read from words of any vocabulary: a
    `generate` whose image misses a thing, a count, a place or a relation becomes a `layout` of
    the prompt's things in grid cells (planners/boxes.py), as LLM-grounded diffusion lays a
    prompt out; an instruction `edit` that misses becomes an inpaint of the objects it names,
    found in the detector's reading of the image."""

    def layout_for(self, step):
        from planners.boxes import layout_step_args
        from planners.descriptions import read_description
        from planners.plan import Step

        if step.op != "generate":
            return None
        args = layout_step_args(read_description(step.args.prompt))
        if args is None:
            return None
        sampling = {k: getattr(step.args, k) for k in ("steps", "guidance", "negative_prompt")}
        return Step(op="layout", args={**args, **sampling}, inputs=step.inputs,
                    reason="each thing of the prompt in its own box")

    def placed_edit_for(self, step, before):
        """An instruction edit read as object changes (planners/object_edits.py) against the
        detector's reading of the image it edits: an inpaint of each changed object's box."""
        from planners.context import ImageInfo, PlanningContext
        from planners.object_edits import plan_steps
        from planners.plan import Step

        from agent.turn.seeing import scene_reading

        if step.op != "edit":
            return None
        source = step.inputs[0] if step.inputs else "img_0"
        context = PlanningContext(images=[ImageInfo(id=source)], current_image=source,
                                  scene=scene_reading(before))
        steps = plan_steps(step.args.instruction, context)
        if steps is None or len(steps) != 1 or steps[0]["op"] != "inpaint":
            return None
        return Step(op="inpaint", args=steps[0]["args"], inputs=step.inputs,
                    reason=f"inpaint for {step.args.instruction!r}")


def _eyes(config):
    """The set's detector and segmenter, one pair per configuration."""
    if config is None or not getattr(config, "detector", None):
        return None
    from pipelines.detection import ModelEyes

    # The checker and the grounder ask from different threads: one pair of models for both.
    threshold = config.detector_threshold
    return _EYES.get((config.detector, config.segmenter, config.device, threshold),
                     lambda: ModelEyes(config.detector, config.segmenter, device=config.device,
                                       threshold=threshold))


_EYES = OnceMap()


def _scene_reading(data: dict):
    from agent.turn.seeing import scene_reading

    return scene_reading(data)


def _grounder(config):
    from pipelines.grounding import ModelGrounder

    eyes = _eyes(config)
    return ModelGrounder(eyes) if eyes is not None else None


def domain() -> Domain:
    return Domain(
        name="general", description="any model set: photographs and art at the model's size",
        rule_planner=_rule_planner, llm_options=_llm_options,
        checker=_checker, grounder=_grounder, scene_reading=_scene_reading,
        corrections=DescriptionCorrections,
        checks_notice=("checked by the model set's own eyes: a detector finds the things, "
                       "counts, places and relations a prompt or a layout names; without one, "
                       "and for instruction edits, only CLIP similarity is measured, and "
                       "backgrounds are not checked"))
