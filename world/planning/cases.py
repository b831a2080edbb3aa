"""The planner cases' generators: (planning context, request) -> expected plan semantics.

Cases come from the world's own phrasings (world/phrasings/) and edit instructions
(world/edits/), so their expected semantics are exact: a phrasing carries the constraints
it states, an edit its after-scene constraints (world.check.constraints_for_edit). Multi-turn
cases, the other operations, undo/redo and requests that must not be understood are built
here. tests/data/make_planner_cases.py draws the evaluation set from these with one seed and
adds hand-written cases; training/planner_data.py draws training cases from the "main"
templates with other seeds.

Split "heldout": whole template families the RulePlanner was not developed against (phrasing
families HELD_FAMILIES, edit styles HELD_STYLES, sentence frames HELD_FRAMES). Everything else
is "main".
"""
from __future__ import annotations

from planners.context import Exemplar, ImageInfo, PlanningContext, Turn
from planners.plan import Plan, Step
from world.captions import caption
from world.check import Background, Count, Exists, Preserved, Relation, constraints_for_edit
from world.edits import EDIT_KINDS, Edit, EditError, apply_edit, sample_edit
from world.exemplars import EXEMPLAR_OBJECTS, EXEMPLARS
from world.phrasings import phrasing_frames, phrasing_templates, sample_phrasing
from world.sample import sample_scene
from world.scene import COLORS, SHAPES, Obj, Scene

from .evaluate import Case, Expected
from .layout import padded
from .scenes import context_for_scene, reading_from_scene

HELD_FAMILIES = ("anchored", "total")
HELD_STYLES = ("question", "wish")
HELD_FRAMES = ("can_you", "give_me", "scene_where")
MAIN_FAMILIES = tuple(f for f in phrasing_templates() if f not in HELD_FAMILIES)
MAIN_FRAMES = tuple(f for f in phrasing_frames() if f not in HELD_FRAMES)
MAIN_STYLES = ("plain", "please", "should")
EDIT_OPS = [["inpaint"], ["edit"], ["invert_edit"], ["layout"]]


def compose_ops(constraints) -> list[list[str]]:
    """A single object with no place or relation may be a plain generation; anything placed
    needs boxes."""
    placed = any(isinstance(c, Relation) or (isinstance(c, Exists) and (c.row or c.column))
                 for c in constraints)
    objects = max([c.n for c in constraints if isinstance(c, Count) and c.shape is None
                   and c.color is None] + [sum(isinstance(c, Exists) for c in constraints)])
    return [["layout"]] if placed or objects > 1 else [["generate"], ["layout"]]


def phrasing_cases(rng, n: int, families, frames, split: str, with_image_every: int = 0):
    cases = []
    while len(cases) < n:
        scene = sample_scene(rng)
        family = families[len(cases) % len(families)]
        try:
            phrasing = sample_phrasing(scene, rng, families=[family], frames=frames)
        except ValueError:
            continue  # the family does not fit this scene (no relation to state ...)
        context = PlanningContext()
        if with_image_every and len(cases) % with_image_every == 0:
            # A new picture asked for while another is on the canvas.
            context = context_for_scene(sample_scene(rng))
        expect = Expected("plan", compose_ops(phrasing.constraints), list(phrasing.constraints),
                          notes={"scene": scene.to_dict()})
        cases.append(Case(f"{split}-phrase-{len(cases):03d}", split,
                          f"phrasing:{phrasing.family}:{phrasing.frame}", context,
                          phrasing.text, expect))
    return cases


def edit_cases(rng, n: int, styles, split: str):
    cases = []
    while len(cases) < n:
        kind = EDIT_KINDS[len(cases) % len(EDIT_KINDS)]
        scene = sample_scene(rng)
        try:
            edit, after = sample_edit(scene, rng, kinds=[kind], families=styles)
        except ValueError:
            continue
        expect = Expected("plan", EDIT_OPS, constraints_for_edit(scene, edit, after),
                          notes={"edit": {k: v for k, v in edit.to_dict().items()
                                          if k != "instruction"},
                                 "targets": [f"obj_{t + 1}" for t in edit.targets]})
        cases.append(Case(f"{split}-edit-{len(cases):03d}", split, f"edit:{edit.template}",
                          context_for_scene(scene), edit.instruction, expect))
    return cases


# --- multi-turn ---------------------------------------------------------------------------

def after_turn(scene: Scene, edit: Edit, after: Scene, request: str) -> PlanningContext:
    """The context after an edit turn: two images, the turn in history with a plan that
    repainted the edited object's box (where "it" now is)."""
    touched = [i for i, o in enumerate(after.objects)
               if o not in scene.objects or (edit.kind == "add" and i == len(after.objects) - 1)]
    boxes = [padded(list(after.objects[i].box)) for i in touched] or [[0.0, 0.0, 0.01, 0.01]]
    plan = Plan(rationale="earlier turn", steps=[Step(
        op="inpaint", args={"prompt": caption(after), "target": boxes}, inputs=["img_1"])])
    return PlanningContext(
        history=[Turn(request=request, plan=plan, image_id="img_2")],
        images=[ImageInfo(id="img_1", op="generate", caption=caption(scene)),
                ImageInfo(id="img_2", parent_ids=["img_1"], op="inpaint", caption=caption(after))],
        current_image="img_2", scene=reading_from_scene(after))


def after_generate(scene: Scene, request: str) -> PlanningContext:
    boxes = [{"phrase": f"a {o.size} {o.color} {o.shape}", "box": list(o.box)}
             for o in scene.objects]
    plan = Plan(rationale="earlier turn", steps=[Step(op="layout", args={"objects": boxes})])
    return PlanningContext(history=[Turn(request=request, plan=plan, image_id="img_1")],
                           images=[ImageInfo(id="img_1", op="layout", caption=caption(scene))],
                           current_image="img_1", scene=reading_from_scene(scene))


FOLLOW_UPS = {
    "recolor": ("make it {color}", "now make it {color}", "actually, make it {color} instead",
                "paint it {color}", "it should be {color}", "turn it {color}"),
    "resize": ("make it {comparative}", "now make it {comparative} please", "it should be {size}"),
    "reshape": ("turn it into a {shape}", "make it a {shape}", "now change it to a {shape}"),
    "remove": ("remove it", "now delete it", "get rid of it", "actually, remove it"),
    "move": ("move it to the {place}", "now put it in the {place}", "shift it to the {place}"),
}
OTHER_FOLLOW_UPS = ("make the other one {color}", "now make the other one {color}",
                    "paint the other one {color}")
THEM_FOLLOW_UPS = ("make them {color}", "now paint them {color}", "make them all {color}",
                   "turn them all {color}")
PLACE_CELLS = {"top left": ("top", "left"), "bottom right": ("bottom", "right"),
               "top right": ("top", "right"), "bottom left": ("bottom", "left")}


def multi_turn_cases(rng, n: int, split: str):
    cases = []
    tries = 0
    while len(cases) < n and tries < 5000:
        tries += 1
        form = ("it", "it", "it", "other", "them")[len(cases) % 5]
        if form == "them":
            scene = sample_scene(rng, n_objects=int(rng.integers(2, 4)))
            color = str(rng.choice(list(COLORS)))
            if all(o.color == color for o in scene.objects):
                continue
            options = THEM_FOLLOW_UPS + (("make both of them {color}",) if len(scene.objects) == 2 else ())
            request = str(rng.choice(options)).format(color=color)
            context = after_generate(scene, caption(scene))
            targets = [i for i, o in enumerate(scene.objects) if o.color != color]
            constraints = [Count(len(scene.objects)), Background(scene.background)]
            constraints += [Exists(o.shape, color, o.size, x=o.x, y=o.y) for o in scene.objects]
            cases.append(Case(f"{split}-turn-{len(cases):03d}", split, "turn:them", context,
                              request, Expected("plan", EDIT_OPS, constraints,
                                                notes={"targets": [f"obj_{t + 1}" for t in targets]})))
            continue
        scene = sample_scene(rng, n_objects=int(rng.integers(2, 4)) if form != "other" else 2)
        first_kind = str(rng.choice(["recolor", "reshape", "move", "add", "resize"]))
        try:
            first, middle = sample_edit(scene, rng, kinds=[first_kind], families=["plain"])
        except ValueError:
            continue
        context = after_turn(scene, first, middle, first.instruction)
        # The object the first turn talked about, in the middle scene.
        if first.kind == "add":
            focus_index = len(middle.objects) - 1
        else:
            focus_index = first.targets[0]
        if form == "other":
            if len(middle.objects) != 2:
                continue
            index = 1 - focus_index
            color = str(rng.choice([c for c in COLORS if c != middle.objects[index].color]))
            second = Edit("recolor", (index,), {"color": color})
            request = str(rng.choice(OTHER_FOLLOW_UPS)).format(color=color)
        else:
            index = focus_index
            kind = str(rng.choice(list(FOLLOW_UPS)))
            o = middle.objects[index]
            template = str(rng.choice(FOLLOW_UPS[kind]))
            if kind == "recolor":
                color = str(rng.choice([c for c in COLORS if c != o.color]))
                second, request = Edit("recolor", (index,), {"color": color}), template.format(color=color)
            elif kind == "resize":
                size = "large" if o.size == "small" else "small"
                second = Edit("resize", (index,), {"size": size})
                request = template.format(comparative="bigger" if size == "large" else "smaller",
                                          size=size)
            elif kind == "reshape":
                shape = str(rng.choice([s for s in SHAPES if s != o.shape]))
                second, request = Edit("reshape", (index,), {"shape": shape}), template.format(shape=shape)
            elif kind == "remove":
                second, request = Edit("remove", (index,)), template
            else:
                name = str(rng.choice([p for p, cell in PLACE_CELLS.items() if cell != o.place]))
                second = Edit("move", (index,), {"place": list(PLACE_CELLS[name])})
                request = template.format(place=name)
        try:
            final = apply_edit(middle, second)
        except EditError:
            continue
        expect = Expected("plan", EDIT_OPS, constraints_for_edit(middle, second, final),
                          notes={"edit": second.to_dict(), "targets": [f"obj_{index + 1}"]})
        cases.append(Case(f"{split}-turn-{len(cases):03d}", split, f"turn:{form}", context,
                          request, expect))
    return cases


# --- other operations, undo/redo, not understood ------------------------------------------

def with_images(scene: Scene, exemplars=()) -> PlanningContext:
    """Two images, `scene` the current one, and reference images as ref_1, ref_2 ... (their
    captions `exemplars`: EXEMPLARS for the reference and compose cases)."""
    other = Scene((Obj("square", "green", "large", 0.5, 0.5),))
    return PlanningContext(
        images=[ImageInfo(id="img_1", op="layout", caption=caption(other)),
                ImageInfo(id="img_2", parent_ids=["img_1"], op="inpaint", caption=caption(scene))],
        current_image="img_2", scene=reading_from_scene(scene),
        exemplars=[Exemplar(id=f"ref_{k}", caption=c) for k, c in enumerate(exemplars, 1)])


def other_cases(rng, split: str):
    cases = []

    def add(source, context, request, expect):
        cases.append(Case(f"{split}-other-{len(cases):03d}", split, source, context, request,
                          expect))

    for request in ("fix the noise", "the image is blurry, please sharpen it",
                    "restore the picture", "clean it up", "denoise the image",
                    "can you repair this image?", "upscale it", "make it sharper"):
        add("op:restore", with_images(sample_scene(rng)), request,
            Expected("plan", [["restore"]]))
    for request, ref in (("make something like img_1 but with a red circle at the top left", "img_1"),
                         ("a blue triangle in the style of img_1", "img_1"),
                         ("draw a picture like ref_1", "ref_1"),
                         ("use ref_2 as a reference for two yellow squares", "ref_2"),
                         ("a green ball, similar to ref_1", "ref_1"),
                         ("based on img_2, draw a small purple triangle", "img_2")):
        scene = sample_scene(rng)
        context = with_images(scene, EXEMPLARS)
        add("op:reference", context, request, Expected("plan", [["reference"]], reference=ref))
    for request in ("a red circle like the examples", "draw two blue squares similar to the "
                    "exemplars", "make a yellow triangle in the style of the examples"):
        add("op:exemplars", PlanningContext(), request,
            Expected("plan", [["reference"]], exemplars=True))
    for request, ref, cell in (("paste ref_1 at the top left", "ref_1", ("top", "left")),
                               ("put ref_2 in the bottom right corner", "ref_2", ("bottom", "right")),
                               ("insert ref_1 at the top right", "ref_1", ("top", "right")),
                               ("paste ref_2 in the lower left corner", "ref_2", ("bottom", "left"))):
        scene = Scene((Obj("triangle", "green", "small", 0.5, 0.5),))
        shape, color = EXEMPLAR_OBJECTS[int(ref[-1]) - 1]
        add("op:compose", with_images(scene, EXEMPLARS), request,
            Expected("plan", [["compose"]], [Exists(shape, color, None, *cell),
                                               Preserved.of(scene.objects[0])], reference=ref))
    for request, result in (("undo", "undo"), ("undo that", "undo"), ("go back", "undo"),
                            ("take that back", "undo"), ("please undo the last change", "undo"),
                            ("redo", "redo"), ("redo that please", "redo"),
                            ("never mind, go back", "undo")):
        add("history", with_images(sample_scene(rng)), request, Expected(result))
    for request, context in (
            ("make an orange hexagon", PlanningContext()),
            ("asdf qwerty", PlanningContext()),
            ("make it prettier", with_images(sample_scene(rng))),
            ("remove the red circle", PlanningContext()),
            ("draw red circles", PlanningContext()),
            ("", PlanningContext()),
            ("draw five red circles", PlanningContext()),
            ("make the purple square blue",
             with_images(Scene((Obj("circle", "red", "small", 0.3, 0.3),
                                Obj("square", "blue", "large", 0.7, 0.7))))),
            ("make the circle green", with_images(Scene((Obj("circle", "red", "small", 0.3, 0.3),
                                                         Obj("circle", "blue", "small", 0.7, 0.7))))),
            ("make it bigger", with_images(Scene((Obj("circle", "red", "small", 0.3, 0.3),
                                                  Obj("square", "blue", "small", 0.7, 0.7))))),
            ("a picture of a horse", PlanningContext()),
            ("make the sky blue", with_images(sample_scene(rng)))):
        add("not_understood", context, request, Expected("not_understood"))
    return cases
