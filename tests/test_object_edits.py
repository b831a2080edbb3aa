"""Reading a change to the objects of the current image in any vocabulary
(planners/object_edits.py): which object a request names, and what it becomes."""
from __future__ import annotations

import pytest

from planners.context import ImageInfo, PlanningContext, SceneObject, SceneReading
from planners.instructions import InstructionPlanner
from planners.object_edits import becomes, find_object

SCENE = [SceneObject(id="obj_1", name="a small brown dog", box=[0.05, 0.4, 0.25, 0.6]),
         SceneObject(id="obj_2", name="a large red barn", box=[0.5, 0.3, 0.85, 0.65]),
         SceneObject(id="obj_3", name="a small red barn", box=[0.1, 0.05, 0.25, 0.2])]


def context(objects=SCENE):
    return PlanningContext(images=[ImageInfo(id="img_1")], current_image="img_1",
                           scene=SceneReading(objects=objects))


@pytest.mark.parametrize("reference, wanted", [
    ("the dog", "obj_1"), ("the large barn", "obj_2"), ("the small barn", "obj_3"),
    ("the barn at the top left", "obj_3"), ("the rightmost barn", "obj_2"),
    ("the barn", None), ("the cat", None),
])
def test_a_reference_names_one_object_or_none(reference, wanted):
    found = find_object(reference, SCENE)
    assert (found.id if found else None) == wanted


def test_it_names_the_only_object():
    assert find_object("it", SCENE[:1]).id == "obj_1"
    assert find_object("it", SCENE) is None


def test_a_new_word_replaces_words_and_a_new_noun_the_noun():
    assert becomes("a small brown dog", "black") == "black dog"
    assert becomes("a small brown dog", "a fox") == "brown fox"
    assert becomes("a lighthouse at dusk", "red") == "red lighthouse"


def plan(request, objects=SCENE):
    return InstructionPlanner().plan(request, context(objects))


def test_changes_become_inpaints_of_the_named_object_only():
    recolour = plan("Please paint the dog black").steps
    assert [s.op for s in recolour] == ["inpaint"] and recolour[0].inputs == ["img_1"]
    assert [o.phrase for o in recolour[0].args.objects] == ["black dog"]
    assert recolour[0].args.objects[0].box == SCENE[0].box
    assert recolour[0].args.prompt == "a black dog and a red barn and a red barn"
    gone = plan("remove the small barn").steps[0].args
    assert gone.objects == [] and gone.prompt == "a brown dog and a red barn"
    moved = plan("move the dog to the bottom right").steps[0].args.objects[0]
    assert moved.box[0] > 0.6 and moved.box[1] > 0.6
    bigger = plan("make the dog bigger").steps[0].args.objects[0].box
    assert bigger[2] - bigger[0] == pytest.approx(0.35, abs=1e-3)
    reshaped = plan("turn the small barn into a silo").steps[0].args.objects[0]
    assert reshaped.phrase == "red silo"
    side = pytest.approx(0.15, abs=1e-4)
    assert reshaped.box[2] - reshaped.box[0] == side and reshaped.box[3] - reshaped.box[1] == side
    added = plan("add a white goose at the bottom left").steps[0].args
    assert added.objects[0].phrase == "white goose" and added.objects[0].box[0] < 0.2


def test_a_new_background_lays_the_same_objects_out_again():
    step = plan("Change the background to snowy").steps[0]
    assert step.op == "layout" and step.args.background_prompt == "on a snowy background"
    assert [o.box for o in step.args.objects] == [o.box for o in SCENE]


def test_what_it_cannot_read_goes_to_the_instruction_editor():
    assert plan("make it look like autumn").steps[0].op == "edit"
    assert plan("paint the barn green").steps[0].op == "edit"     # two barns: which one?
