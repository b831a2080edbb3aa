"""A step runner that makes each operation's exact result in the shapes world, for tests of
the agent where the diffusion model is not the point.

It is a real executor, not a mock: the scene an operation should produce comes from the
planners' simulator (world.planning.evaluate.simulate, the same definition of "exact" the planner
benchmark uses) and is drawn by the world's renderer (world.render), so the world's detector
and checker judge its images exactly as they judge a model's. Tests can switch on two
failure modes the trained text-to-image model is known to have (shared/NOTES.md: places are
what text conditioning learns last), so the correction loop has something real to correct:

- `ignore_places`: `generate` draws the prompt's objects in a row across the middle, in the
  order the prompt names them, whatever places or relations it states;
- `palette`: colours swapped on the way out ({"red": "purple"}: asked for red, drew purple);
- `unchanged`: operations that give back their input image as it was, as the trained
  instruction editor often does.

An inpaint whose target is a mask image (one the user drew) has no exact scene to simulate;
its result is the input image with the mask's white pixels taken from the rendering of the
prompt, which is what a perfect inpainting model would make of them.
"""
from __future__ import annotations

from pipelines.base import StepResult
from pipelines.errors import InputError
from world.planning.scenes import context_for_scene


class WorldRunner:
    domain = "shapes"  # its images are the shapes world's, so the world checker judges them

    def __init__(self, ignore_places: bool = False, palette: dict[str, str] | None = None,
                 unchanged: tuple[str, ...] = ()):
        self.ignore_places = ignore_places
        self.palette = dict(palette or {})
        self.unchanged = set(unchanged)
        self.calls: list[tuple[str, int]] = []

    def model_ids(self) -> dict[str, str]:
        return {"base": "world-renderer"}

    def run(self, op, args, inputs, seed):
        from planners.context import PlanningContext
        from world.planning.evaluate import SimulationError, simulate
        from planners.plan import Plan, Step
        from world.detect import detect
        from world.render import render
        from world.scene import Scene

        self.calls.append((op, seed))
        if op in self.unchanged and inputs.image is not None:
            return StepResult(images=[inputs.image.copy()], seed=seed,
                              params_used={**args.model_dump(), "seed": seed},
                              timings={"total": 0.0})
        if op == "inpaint" and inputs.mask is not None:
            return self._masked(args, inputs, seed)
        context = (context_for_scene(detect(inputs.image).scene)
                   if inputs.image is not None else PlanningContext())
        step = Step(op=op, args=args.model_dump())
        try:
            scene = simulate(Plan.model_construct(rationale="", action="run", steps=[step]),
                             context)
        except SimulationError as error:
            raise InputError(op, str(error)) from None
        objects = list(scene.objects)
        if op == "generate" and self.ignore_places:
            n = len(objects)
            objects = [o.replace(x=round((i + 1) / (n + 1), 4), y=0.5)
                       for i, o in enumerate(objects)]
        objects = [o.replace(color=self.palette.get(o.color, o.color)) for o in objects]
        image = render(Scene(tuple(objects), scene.background))
        params = {**args.model_dump(), "seed": seed}
        return StepResult(images=[image], seed=seed, params_used=params, timings={"total": 0.0})

    def _masked(self, args, inputs, seed):
        from PIL import Image

        from planners.context import PlanningContext
        from world.planning.evaluate import SimulationError, simulate
        from planners.plan import Plan, Step
        from world.render import render

        step = Step(op="generate", args={"prompt": args.prompt})
        try:
            scene = simulate(Plan.model_construct(rationale="", action="run", steps=[step]),
                             PlanningContext())
        except SimulationError as error:  # a prompt the world cannot draw
            raise InputError("prompt", str(error)) from None
        painted = render(scene).resize(inputs.image.size)
        mask = inputs.mask.convert("L").point(lambda value: 255 if value > 127 else 0)
        image = Image.composite(painted, inputs.image, mask)
        params = {**args.model_dump(), "seed": seed}
        return StepResult(images=[image], seed=seed, params_used=params, timings={"total": 0.0})
