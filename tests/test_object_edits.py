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


def test_a_new_background_is_an_instruction_edit_that_keeps_the_objects():
    for request in ("Change the background to snowy", "I'd like the background snowy",
                    "The background should be snowy instead", "use a snowy background"):
        step = plan(request).steps[0]
        assert step.op == "edit" and step.inputs == ["img_1"]
        assert step.args.instruction == "make the background snowy"


@pytest.mark.parametrize("request_, wanted", [
    ("I don't want the dog", "obj_1"), ("the large barn should go", "obj_2"),
    ("the dog should be removed", "obj_1"), ("get rid of the barn at the top left", "obj_3"),
])
def test_a_removal_is_read_however_it_is_said(request_, wanted):
    step = plan(request_).steps[0]
    box = next(o.box for o in SCENE if o.id == wanted)
    assert step.op == "inpaint" and step.args.objects == []
    region = step.args.target[0]
    assert region[0] <= box[0] and region[2] >= box[2]


@pytest.mark.parametrize("request_", ["a white goose should be added at the bottom left",
                                      "I want a white goose at the bottom left too"])
def test_an_addition_is_read_however_it_is_said(request_):
    added = plan(request_).steps[0].args.objects[0]
    assert added.phrase == "white goose" and added.box[0] < 0.2 and added.box[1] > 0.6


def test_the_size_words_of_a_reference_do_not_say_which_way_it_changes():
    grown = plan("the small barn should be larger").steps[0].args.objects[0].box
    assert grown[2] - grown[0] == pytest.approx(0.15 * 1.75, abs=1e-3)
    shrunk = plan("it is too big, make it smaller", SCENE[1:2]).steps[0].args.objects[0].box
    assert shrunk[2] - shrunk[0] == pytest.approx(0.35 * 0.57, abs=1e-3)


def test_a_move_beside_another_object_puts_it_on_that_side():
    box = plan("move the dog left of the large barn").steps[0].args.objects[0].box
    assert box[2] == pytest.approx(SCENE[1].box[0] - 0.1)
    assert (box[1] + box[3]) / 2 == pytest.approx((SCENE[1].box[1] + SCENE[1].box[3]) / 2)


def test_a_colour_swap_redraws_both_objects_with_the_other_colour():
    steps = plan("swap the colours of the dog and the large barn").steps
    assert [s.op for s in steps] == ["inpaint", "inpaint"]
    assert steps[0].inputs == ["img_1"] and steps[1].inputs == []
    assert [s.args.objects[0].phrase for s in steps] == ["red dog", "brown barn"]


def test_a_word_the_reading_does_not_use_still_finds_the_one_object_placed_so():
    assert find_object("the rightmost building", SCENE).id == "obj_2"
    assert find_object("the hound", SCENE[:1]).id == "obj_1"


@pytest.mark.parametrize("request_, op", [
    ("the barn at the top left should be blue", "inpaint"), ("a kite", "generate"),
    ("draw two kites at the top", "layout"), ("it is too dark", "edit"),
    ("a new picture of a kite", "generate"),
])
def test_with_a_current_image_only_a_description_asks_for_a_new_picture(request_, op):
    assert plan(request_).steps[0].op == op


def test_what_it_cannot_read_goes_to_the_instruction_editor():
    assert plan("make it look like autumn").steps[0].op == "edit"
    assert plan("paint the barn green").steps[0].op == "edit"     # two barns: which one?
