"""edit_objects: changes that name the scene's objects by id, expanded into registered
operations by the rule planner's own edit code before a plan is validated."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from planners.context import PlanningContext
from world.planning.evaluate import compare, load_cases
from planners.json_reply import read_reply
from planners.llm import LLMPlanner
from planners.plan import PlanError, plan_json_schema
from world.planning.rules import RulePlanner
from world.planning.notes import llm_options
from world.planning.scene_edits import EDIT_OBJECTS, PLANNER_OPERATIONS, edit_objects_reply, expand
from world.scene import Obj, Scene
from world.planning.scenes import context_for_scene

CASES = Path(__file__).resolve().parent / "data" / "planner_cases.jsonl"
SCENE = Scene((Obj("circle", "red", "small", 0.25, 0.3), Obj("square", "blue", "large", 0.7, 0.65)))


def read_shapes_reply(data, request, context):
    """A reply read as the shapes domain reads it: edit_objects expanded."""
    return read_reply(data, request, context, None, PLANNER_OPERATIONS)


def reply(*changes: dict, **step) -> dict:
    return {"rationale": "r", "action": "run",
            "steps": [{"op": EDIT_OBJECTS, "args": {"changes": list(changes)}, **step}]}


def context() -> PlanningContext:
    return context_for_scene(SCENE, request="edit")


def test_every_rule_planned_edit_reads_back_as_the_same_steps():
    """Each edit case of the evaluation set written as edit_objects expands into exactly the
    rule planner's steps, and so passes the case's semantic check. Nearly all name their
    objects as the request did (words or a pronoun), not by id."""
    planner = RulePlanner()
    checked = by_id = 0
    for case in load_cases(CASES):
        if not case.source.startswith(("edit", "turn")):
            continue
        ctx = case.context.for_request(case.request)
        plan = planner.plan(case.request, case.context)
        compact = edit_objects_reply(plan, case.request, ctx)
        if compact is None:  # a not-understood case, or a new picture asked in a turn
            continue
        read = read_shapes_reply(compact, case.request, ctx)
        assert read.steps == plan.steps, case.id
        if not compare(plan, case.expect, ctx):
            assert not compare(read, case.expect, ctx), case.id
        checked += 1
        by_id += "obj_" in json.dumps(compact)
    assert checked >= 200
    assert by_id <= 0.05 * checked


def test_a_recolour_becomes_an_inpaint_of_that_object_alone():
    plan = read_shapes_reply(reply({"do": "change", "object": "obj_1", "color": "green"}), "edit", context())
    (step,) = plan.steps
    assert step.op == "inpaint" and step.inputs == ["img_1"]
    assert step.args.prompt.startswith("a small green circle")
    assert "blue square" in step.args.prompt
    (box,) = step.args.target
    assert box[0] < 0.25 - 0.09 and box[2] > 0.25 + 0.09 and box[2] < 0.5  # the circle's, padded
    assert step.args.objects[0].phrase == "a small green circle"


def test_sampling_arguments_pass_on_to_the_step_that_makes_the_edit():
    data = reply({"do": "remove", "object": "obj_2"})
    data["steps"][0]["args"].update(seed=7, guidance=3.0)
    (step,) = read_shapes_reply(data, "edit", context()).steps
    assert (step.args.seed, step.args.guidance) == (7, 3.0)
    assert step.args.objects == []


def test_a_move_and_a_new_background_compile_to_their_own_operations():
    move = read_shapes_reply(reply({"do": "move", "object": "obj_1", "relation": "below",
                             "anchor": "obj_2"}), "edit", context())
    assert len(move.steps[0].args.target) == 2  # the old box and the new one
    background = read_shapes_reply(reply({"do": "background", "background": "black"}), "edit", context())
    assert background.steps[0].op == "edit" and "black" in background.steps[0].args.instruction


@pytest.mark.parametrize("changes, step, words", [
    ([{"do": "change", "object": "obj_5", "color": "green"}], {}, ["obj_5", "obj_1, obj_2"]),
    ([{"do": "change", "object": "obj_1"}], {}, ["at least one of color, shape, size"]),
    ([{"do": "change", "object": "obj_1", "color": "pink"}], {}, ["color", "'red'"]),
    ([{"do": "move", "object": "obj_1"}], {}, ["'move' needs `to`"]),
    ([{"do": "move", "object": "obj_1", "relation": "above", "anchor": "obj_1"}], {},
     ["relative to itself"]),
    ([{"do": "remove", "object": "obj_1"}, {"do": "remove", "object": "obj_2"}], {},
     ["removes every object"]),
    ([{"do": "add", "shape": "circle", "color": "red", "size": "large", "to": "bottom right"}],
     {}, ["no free room"]),
    ([{"do": "swap_colors", "object": "obj_1"}], {}, ["needs two objects", "give `other`"]),
    ([{"do": "remove", "object": "obj_1"}], {"inputs": ["img_2"]}, ["current image (img_1)"]),
    ([{"do": "remove", "object": "obj_1"}], {"mask": "x"}, ["not mask"]),
])
def test_bad_changes_are_refused_in_words_the_model_can_act_on(changes, step, words):
    with pytest.raises(PlanError) as error:
        read_shapes_reply(reply(*changes, **step), "edit", context())
    for word in words:
        assert word in str(error.value)


def test_one_edit_objects_step_per_plan_and_only_with_a_current_image():
    two = reply({"do": "remove", "object": "obj_1"})
    two["steps"] *= 2
    with pytest.raises(PlanError, match="one edit_objects step"):
        expand(two, context())
    with pytest.raises(PlanError, match="no current image yet"):
        expand(reply({"do": "remove", "object": "obj_1"}), PlanningContext(request="x"))


def test_the_llm_planner_shows_edit_objects_and_expands_it_after_a_repair():
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content=json.dumps(reply({"do": "change", "object": "obj_9", "shape": "square"}))),
        AIMessage(content=json.dumps(reply({"do": "change", "object": "obj_1", "shape": "square"}))),
    ]))
    planner = LLMPlanner(model, **llm_options())
    assert "- edit_objects: Change objects of the current image" in planner.system_prompt()
    assert '"edit_objects"' in planner.system_prompt()  # the worked edit example uses it
    plan = planner.plan("make the circle a square", context())
    assert plan.steps[0].op == "inpaint" and "small red square" in plan.steps[0].args.prompt
    assert "obj_9" in " ".join(planner.attempts[0].problems)
    ops = [v["properties"]["op"]["const"]
           for v in plan_json_schema({**planner.operations,
                                      **{n: o.spec for n, o in PLANNER_OPERATIONS.items()}})
           ["properties"]["steps"]["items"]["oneOf"]]
    assert EDIT_OBJECTS in ops and EDIT_OBJECTS in [
        v["properties"]["op"]["const"] for v in planner.schema["properties"]["steps"]["items"]["oneOf"]]


def test_without_planner_operations_edit_objects_is_an_unknown_operation():
    model = GenericFakeChatModel(messages=iter([
        AIMessage(content=json.dumps(reply({"do": "remove", "object": "obj_1"})))] * 2))
    planner = LLMPlanner(model, **llm_options(edit_objects=False))
    assert "edit_objects" not in planner.system_prompt().split("Rules:")[0]
    with pytest.raises(PlanError, match="unknown operation 'edit_objects'"):
        planner.plan("remove the circle", context())


def test_objects_are_named_as_the_request_named_them_and_found_here():
    """The reply names an object in the scene listing's words (synonyms read, "top" of
    several kept as a pick), never by reading an id off the listing; Atelier finds the object
    and makes the same plan the RulePlanner makes."""
    squares = Scene((Obj("square", "yellow", "small", 0.54, 0.62), Obj("square", "red", "small", 0.46, 0.31),
                     Obj("circle", "blue", "large", 0.2, 0.75)))
    ctx = context_for_scene(squares, request="edit")
    planner = RulePlanner()
    for request, name in [("make the top square green", {"shape": "square", "pick": "top"}),
                          ("make the disc green", {"shape": "circle"})]:
        ctx_now = ctx.for_request(request)
        expected = planner.plan(request, ctx)
        compact = edit_objects_reply(expected, request, ctx_now)
        assert compact["steps"][0]["args"]["changes"] == [
            {"do": "change", "object": name, "color": "green"}]
        assert "obj_" not in json.dumps(compact)
        plan = read_shapes_reply(compact, request, ctx_now)
        assert [s.model_dump(exclude={"reason"}) for s in plan.steps] == [
            s.model_dump(exclude={"reason"}) for s in expected.steps]
    assert edit_objects_reply(planner.plan("make the top square green", ctx), "make the top square green",
                              ctx.for_request("make the top square green"))["rationale"] == (
        "the top square becomes green.")


@pytest.mark.parametrize("name, words", [
    ({"shape": "square"}, ["could be", "say which"]),
    ({"shape": "triangle"}, ["no triangle"]),
    ("it", ["which object 'it' is"]),
])
def test_an_object_name_that_does_not_pick_one_object_is_refused_in_words(name, words):
    squares = Scene((Obj("square", "yellow", "small", 0.54, 0.62), Obj("square", "red", "small", 0.46, 0.31),
                     Obj("circle", "blue", "large", 0.2, 0.75)))
    ctx = context_for_scene(squares, request="edit")
    with pytest.raises(PlanError) as error:
        read_shapes_reply(reply({"do": "change", "object": name, "color": "green"}), "edit", ctx)
    assert str(error.value).startswith("step 1 (edit_objects): ")
    for word in words:
        assert word in str(error.value)
