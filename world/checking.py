"""The shapes world's checker: the world's detector reads each image back as a scene and the
world's checker tests constraints derived from the step.

A `generate` or `reference` prompt is read with the rule planner's own reading (objects,
places, relations, background); a `layout` wants each phrase's object in its box; an edit
(`inpaint`, `edit`, `invert_edit`, `compose`, `restore`) wants the scene that an exact executor
would make from the input (world.planning.evaluate.simulate): the changed objects as asked,
every other object preserved per world/WORLD.md.
"""
from __future__ import annotations

from agent.turn.checks import Expectation, Reading, Verdict

from .planning.scenes import context_for_scene

# An object the step moves or adds may land this far (in canvas sides) from where the exact
# executor puts it; objects the step leaves alone get world/WORLD.md's 0.05.
CHANGED_TOLERANCE = 0.1


# --- the shapes world -------------------------------------------------------------------

def compose_constraints(compose) -> list:
    """What a composition read by the rule planner states, as world.check constraints."""
    from .check import RELATIONS, Background, Count, Exists, Relation

    objects = compose.objects
    constraints: list = [Count(len(objects))]
    for o in objects:
        constraints.append(Exists(o.shape, o.color, o.size, o.row, o.column))
    for a, relation, b in compose.relations:
        if relation in RELATIONS:  # "beside" is either side: no single constraint says it
            ends = [Exists(objects[i].shape, objects[i].color, objects[i].size) for i in (a, b)]
            constraints.append(Relation(ends[0], relation, ends[1]))
    constraints.append(Background(compose.background or "white"))
    return constraints


def read_composition(text: str):
    """The rule planner's reading of a text that describes a new image, or None."""
    from planners.context import PlanningContext
    from .planning.rules import Compose, NotRead, interpret

    try:
        intent, _ = interpret(text, PlanningContext())
    except (NotRead, ValueError):
        return None
    return intent if isinstance(intent, Compose) and intent.objects else None


def read_background(text: str) -> str | None:
    from .planning import language as lang

    for item in lang.chunk(lang.tokenize(text)):
        if item.kind == "background" and item.value:
            return item.value
    return None


def layout_constraints(args) -> list | None:
    from .planning import language as lang
    from .check import Background, Count, Exists

    constraints: list = [Count(len(args.objects))]
    for item in args.objects:
        mentions = [i.value for i in lang.chunk(lang.tokenize(item.phrase)) if i.kind == "mention"]
        if len(mentions) != 1 or (mentions[0].shape is None and mentions[0].color is None):
            return None  # a phrase the world cannot read: nothing to check it against
        m = mentions[0]
        x0, y0, x1, y1 = item.box
        # The centre inside the box, give or take the world's preservation slack.
        tolerance = max(min(x1 - x0, y1 - y0) / 2, 0.05)
        constraints.append(Exists(m.shape, m.color, m.size, x=(x0 + x1) / 2, y=(y0 + y1) / 2,
                                  tolerance=round(tolerance, 4)))
    constraints.append(Background(read_background(args.background_prompt) or "white"))
    return constraints


def edit_constraints(step, before_scene) -> list | None:
    """The exact executor's result of `step` on `before_scene`: objects it leaves alone are
    preserved, the others must appear where it puts them."""
    from .planning.evaluate import SimulationError, simulate
    from planners.plan import Plan
    from .check import Background, Count, Exists, Preserved

    # The step alone, working on the image it was given.
    single = Plan.model_construct(rationale="", action="run",
                                  steps=[step.model_copy(update={"inputs": []})])
    try:
        after = simulate(single, context_for_scene(before_scene))
    except (SimulationError, ValueError, KeyError):
        return None
    kept = list(before_scene.objects)
    constraints: list = [Count(len(after.objects)), Background(after.background)]
    for o in after.objects:
        if o in kept:
            kept.remove(o)
            constraints.append(Preserved.of(o))
        else:
            constraints.append(Exists(o.shape, o.color, o.size, x=o.x, y=o.y,
                                      tolerance=CHANGED_TOLERANCE))
    return constraints


def failing_kinds(scene, constraints) -> frozenset[str]:
    """Which kinds of constraint fail, each judged on its own."""
    from .check import Background, Count, Exists, Preserved, Relation, check

    kinds = set()
    for c in constraints:
        if not check(scene, [c]):
            continue
        if isinstance(c, Relation):
            kinds.add("relation")
        elif isinstance(c, Exists):
            placed = c.row is not None or c.column is not None or c.x is not None
            bare = Exists(c.shape, c.color, c.size)
            kinds.add("place" if placed and not check(scene, [bare]) else "attribute")
        elif isinstance(c, Count):
            kinds.add("count")
        elif isinstance(c, Background):
            kinds.add("background")
        elif isinstance(c, Preserved):
            kinds.add("preserved")
    return frozenset(kinds)


class WorldChecker:
    """Judges images of the shapes world with the world's detector and checker."""

    method = "world"
    EDIT_OPS = ("inpaint", "edit", "invert_edit", "compose", "restore")

    def read(self, image) -> Reading:
        from .captions import caption
        from .detect import detect

        try:
            scene = detect(image).scene
        except ValueError:
            return Reading()
        return Reading(scene.to_dict(), caption(scene))

    def expect(self, step, before, scene: dict | None = None) -> Expectation | None:
        # The world's detector reads every object of `before` itself: `scene` adds nothing.
        op, args = step.op, step.args
        if op in ("generate", "reference"):
            compose = read_composition(args.prompt)
            constraints = compose_constraints(compose) if compose is not None else None
            about = args.prompt
        elif op == "layout":
            constraints = layout_constraints(args)
            about = "; ".join(o.phrase for o in args.objects)
        elif op in self.EDIT_OPS and before is not None:
            from .detect import detect

            try:
                before_scene = detect(before).scene
            except ValueError:
                return None
            constraints = edit_constraints(step, before_scene)
            about = step.summary()
        else:
            return None
        if constraints is None:
            return None
        return Expectation(about=about, constraints=tuple(constraints))

    def judge(self, image, expectation: Expectation | None) -> Verdict:
        from .captions import caption
        from .check import check
        from .detect import detect

        try:
            scene = detect(image).scene
        except ValueError as error:
            return Verdict(False if expectation else None, self.method,
                           (f"the detector cannot read the image: {error}",))
        reading = Reading(scene.to_dict(), caption(scene))
        if expectation is None:
            return Verdict(None, self.method, reading=reading)
        failures = check(scene, list(expectation.constraints))
        kinds = failing_kinds(scene, expectation.constraints) if failures else frozenset()
        return Verdict(not failures, self.method, tuple(failures), kinds=kinds, reading=reading)
