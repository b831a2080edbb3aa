"""Eyes made of models (pipelines/detection.py) and what sees through them: the model
grounder and the detector checker of the general domain.

The loading and plumbing run on tiny random OWL-ViT and SAM models saved in their real
formats (tests/tiny_eyes.py). What the checker concludes is tested with eyes whose detections
come from the shapes world's exact detector, so that what is found is known."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tiny_eyes
from agent.turn.seeing import DetectorChecker, GoneFrom, KeptOutside, ObjectInBox
from pipelines.detection import Detection, ModelEyes, deduplicate, iou
from pipelines.grounding import ModelGrounder
from planners.plan import Step
from world.render import render
from world.scene import Obj, Scene


@pytest.fixture(scope="module")
def eyes(tmp_path_factory):
    root = tmp_path_factory.mktemp("eyes")
    return ModelEyes(str(tiny_eyes.write_detector(root / "detector")),
                     str(tiny_eyes.write_segmenter(root / "segmenter")), threshold=0.0)


def test_tiny_owlvit_and_sam_load_and_answer_in_the_shared_formats(eyes):
    image = Image.new("RGB", (96, 64), (245, 245, 245))
    found = eyes.find(image, ["a red circle", "a blue square"])
    assert found and all(d.label in ("a red circle", "a blue square") for d in found)
    for d in found:
        assert all(0.0 <= v <= 1.0 for v in d.box) and d.box[0] < d.box[2]
        assert d.mask.shape == (64, 96) and d.mask.dtype == bool
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)
    # Deduplicated: no two of one label overlap much.
    for a in found:
        assert all(b is a or b.label != a.label or iou(a.box, b.box) < 0.5 for b in found)
    grounder = ModelGrounder(eyes)
    assert len(grounder.locate(image, "the red circle")) == 1
    assert len(grounder.locate(image, "all red circles")) >= 1
    assert eyes.detect(image, []) == [] and eyes.segment(image, []) == []


def test_a_missing_detector_is_a_model_error_that_names_it(tmp_path):
    from pipelines.errors import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="detector .*missing"):
        ModelEyes(str(tmp_path / "nothing-here")).detect(Image.new("RGB", (8, 8)), ["a cat"])


def test_duplicates_of_one_object_keep_the_best_score():
    a = Detection("cat", (0.1, 0.1, 0.5, 0.5), 0.9)
    b = Detection("cat", (0.12, 0.1, 0.5, 0.52), 0.4)
    c = Detection("dog", (0.12, 0.1, 0.5, 0.52), 0.3)
    assert deduplicate([b, c, a]) == [a, c]
    # A patch at an object's edge that saw part of it: its box mostly inside the better one.
    part = Detection("cat", (0.12, 0.35, 0.48, 0.58), 0.8)
    other = Detection("cat", (0.6, 0.6, 0.9, 0.9), 0.5)
    assert iou(a.box, part.box) < 0.3
    assert deduplicate([part, other, a]) == [a, other]


class WorldEyes:
    """Detections read by the shapes world's exact detector; a query names a colour and a
    shape ("a red circle")."""

    threshold = 0.5

    def detect(self, image, queries, threshold=None):
        from world.detect import detect

        found = []
        for d in detect(image).objects:
            for q in queries:
                if d.obj.color in q and d.obj.shape in q:
                    found.append(Detection(q, tuple(d.obj.box), 1.0))
        return found


SIZE = 128


def test_the_detector_checker_finds_objects_in_their_boxes_and_misses_elsewhere():
    scene = Scene((Obj("circle", "red", "small", 0.25, 0.3), Obj("square", "blue", "large", 0.7, 0.65)))
    image = render(scene, SIZE)
    checker = DetectorChecker(WorldEyes())
    right = Step(op="layout", args={"objects": [
        {"phrase": "a red circle", "box": [0.15, 0.2, 0.35, 0.4]},
        {"phrase": "a blue square", "box": [0.55, 0.5, 0.85, 0.8]}]})
    verdict = checker.judge(image, checker.expect(right, None))
    assert verdict.passed is True and verdict.method == "detector"
    wrong = Step(op="layout", args={"objects": [
        {"phrase": "a red circle", "box": [0.6, 0.6, 0.8, 0.8]},
        {"phrase": "a green triangle", "box": [0.1, 0.6, 0.3, 0.8]}]})
    verdict = checker.judge(image, checker.expect(wrong, None))
    assert verdict.passed is False and verdict.kinds == {"place", "count"}
    assert any("'a green triangle'" in f for f in verdict.failures)


def test_an_inpaint_must_leave_every_pixel_outside_its_region_as_it_was():
    before = render(Scene((Obj("circle", "red", "small", 0.25, 0.3),)), SIZE)
    step = Step(op="inpaint", args={"prompt": "a gray patch", "target": [[0.6, 0.6, 0.9, 0.9]]},
                inputs=["img_1"])
    checker = DetectorChecker(WorldEyes())
    expectation = checker.expect(step, before)
    assert any(isinstance(c, KeptOutside) for c in expectation.constraints)
    inside = np.asarray(before).copy()
    inside[90:110, 90:110] = 128
    assert checker.judge(Image.fromarray(inside), expectation).passed is True
    outside = inside.copy()
    outside[:40, :40] = 0
    verdict = checker.judge(Image.fromarray(outside), expectation)
    assert verdict.passed is False and verdict.kinds == {"preserved"}


def test_an_inpaint_that_fitted_the_image_to_the_model_is_compared_at_its_new_size():
    before = render(Scene((Obj("circle", "red", "small", 0.25, 0.3),)), SIZE)
    step = Step(op="inpaint", args={"prompt": "a gray patch", "target": [[0.6, 0.6, 0.9, 0.9]]},
                inputs=["img_1"])
    checker = DetectorChecker(WorldEyes())
    expectation = checker.expect(step, before)
    fitted = np.asarray(before.resize((120, 120), Image.Resampling.LANCZOS)).copy()
    fitted[85:100, 85:100] = 128
    assert checker.judge(Image.fromarray(fitted), expectation).passed is True
    fitted[:30, :30] = 0
    assert checker.judge(Image.fromarray(fitted), expectation).kinds == {"preserved"}


def test_a_removal_must_leave_the_object_gone_and_the_reading_keeps_the_rest():
    circle, square = Obj("circle", "red", "small", 0.25, 0.3), Obj("square", "blue", "large", 0.7, 0.65)
    before = render(Scene((circle, square)), SIZE)
    stored = {"objects": [{"name": "a red circle", "box": list(circle.box)},
                          {"name": "a blue square", "box": list(square.box)}]}
    region = [round(v, 3) for v in (circle.box[0] - 0.04, circle.box[1] - 0.04,
                                    circle.box[2] + 0.04, circle.box[3] + 0.04)]
    step = Step(op="inpaint", args={"prompt": "a blue square", "target": [region], "objects": []},
                inputs=["img_1"])
    checker = DetectorChecker(WorldEyes())
    expectation = checker.expect(step, before, scene=stored)
    assert [c.phrase for c in expectation.constraints if isinstance(c, GoneFrom)] == ["a red circle"]
    kept = checker.judge(before, expectation)
    assert kept.passed is False and "'a red circle' is still there" in kept.failures[0]
    removed = checker.judge(render(Scene((square,)), SIZE), expectation)
    assert removed.passed is True
    assert [o["name"] for o in removed.reading.scene["objects"]] == ["a blue square"]


def test_an_edit_with_nothing_to_test_still_reads_the_objects_it_had():
    square = Obj("square", "blue", "large", 0.7, 0.65)
    image = render(Scene((square,)), SIZE)
    stored = {"objects": [{"name": "a blue square", "box": list(square.box)}]}
    step = Step(op="edit", args={"instruction": "make the background gray"}, inputs=["img_1"])
    checker = DetectorChecker(WorldEyes())
    verdict = checker.judge(image, checker.expect(step, image, scene=stored))
    assert verdict.passed is None
    assert verdict.reading.scene["objects"][0]["name"] == "a blue square"


def test_a_prompt_is_checked_for_its_things_counts_places_and_relations():
    scene = Scene((Obj("circle", "red", "small", 0.2, 0.2), Obj("square", "blue", "large", 0.7, 0.7)))
    image = render(scene, SIZE)
    checker = DetectorChecker(WorldEyes())

    def verdict(prompt):
        return checker.judge(image, checker.expect(Step(op="generate", args={"prompt": prompt}),
                                                   None))

    assert verdict("a red circle at the top left and a blue square").passed is True
    assert verdict("a red circle to the left of a blue square").passed is True
    assert verdict("a blue square below and to the right of a red circle").passed is True
    for prompt, kind in (("two red circles", "count"), ("a red circle at the bottom right", "place"),
                         ("a red circle to the right of a blue square", "relation"),
                         ("a red circle and a green triangle", "count")):
        judged = verdict(prompt)
        assert judged.passed is False and judged.kinds == {kind}, (prompt, judged)


def test_a_layout_wants_each_phrase_as_often_as_it_has_boxes():
    image = render(Scene((Obj("circle", "red", "small", 0.2, 0.2),)), SIZE)
    checker = DetectorChecker(WorldEyes())
    twice = Step(op="layout", args={"objects": [
        {"phrase": "a red circle", "box": [0.1, 0.1, 0.3, 0.3]},
        {"phrase": "a red circle", "box": [0.6, 0.6, 0.8, 0.8]}]})
    judged = checker.judge(image, checker.expect(twice, None))
    assert judged.passed is False and "2 'a red circle' wanted, 1 found" in judged.failures


def test_steps_without_objects_go_to_the_fallback_or_are_not_judged():
    checker = DetectorChecker(WorldEyes())
    step = Step(op="edit", args={"instruction": "make the sky stormy"}, inputs=["img_1"])
    assert checker.expect(step, None) is None
    assert checker.judge(Image.new("RGB", (8, 8)), None).passed is None
    assert isinstance(ObjectInBox("a cat", (0, 0, 1, 1)).box, tuple)


OPERATION_CASES = {
    "generate": {"prompt": "a lighthouse at dusk"},
    "edit": {"instruction": "make the sky stormy"},
    "inpaint": {"prompt": "a sailboat on a lake", "target": "the boat",
                "objects": [{"phrase": "a sailboat", "box": [0.2, 0.3, 0.6, 0.8]}]},
    "layout": {"objects": [{"phrase": "a cat", "box": [0.05, 0.3, 0.5, 0.9]},
                           {"phrase": "a lamp", "box": [0.6, 0.1, 0.9, 0.9]}],
               "background_prompt": "a living room"},
    "reference": {"prompt": "a red car", "reference": "ref_1"},
    "compose": {"reference": "ref_1", "box": [0.55, 0.05, 0.95, 0.45], "strength": 0.5},
    "restore": {"prompt": "a harbour"},
    "invert_edit": {"source_prompt": "a harbour", "target_prompt": "a harbour at night"},
}


def test_the_general_domain_runs_every_operation_on_tiny_random_models(tmp_path, eyes):
    """Not the shapes models: a tiny random Stable Diffusion and InstructPix2Pix with the
    tiny OWL-ViT and SAM as the set's eyes; each operation runs or fails on what the models
    drew (no object found), never on a bug."""
    import tiny_diffusion

    from agent.api import Atelier
    from pipelines.base import StepInputs
    from pipelines.errors import InputError
    from pipelines.models import ModelConfig
    from pipelines.spec import OPERATIONS

    paths = tiny_diffusion.write_models(tmp_path / "models")
    config = ModelConfig(base=str(paths["base"]), edit=str(paths["edit"]), device="cpu",
                         detector=eyes.detector_name, segmenter=eyes.segmenter_name)
    with Atelier(home=tmp_path / "home", models=config, retriever=None) as atelier:
        assert atelier.domain().name == "general"
        runner = atelier.runner()
        assert type(runner.models.grounder).__name__ == "ModelGrounder"
        assert type(atelier.checker()).__name__ == "DetectorChecker"
        image = Image.new("RGB", (64, 48), (120, 140, 200))   # not square, on purpose
        reference = Image.new("RGB", (40, 64), (200, 60, 60))
        ran = []
        for name, args in OPERATION_CASES.items():
            needs = OPERATIONS[name].needs
            inputs = StepInputs(image=image if "image" in needs else None,
                                references={"ref_1": reference} if "reference" in needs else {})
            spec_args = OPERATIONS[name].validate({"steps": 2, **args})
            try:
                result = runner.run(name, spec_args, inputs, seed=3)
            except InputError as error:  # what the random models drew: named, not a crash
                assert "found" in str(error) or "match" in str(error), (name, error)
                continue
            assert result.images and result.images[0].mode == "RGB", name
            ran.append(name)
        assert {"generate", "edit", "reference", "restore"} <= set(ran), ran
        # With every box the random detector proposes taken as found, every operation runs,
        # compose included with a reference that is not square.
        runner.models.grounder.eyes.threshold = 0.0
        for name in set(OPERATION_CASES) - set(ran):
            needs = OPERATIONS[name].needs
            inputs = StepInputs(image=image if "image" in needs else None,
                                references={"ref_1": reference} if "reference" in needs else {})
            result = runner.run(name, OPERATIONS[name].validate(
                {"steps": 2, **OPERATION_CASES[name]}), inputs, seed=3)
            assert result.images[0].size == image.size, name


def test_the_planner_is_told_what_the_detector_read_in_the_current_image(tmp_path):
    """A layout checked by the detector leaves its reading with the image; the next turn's
    context gives the chat model those objects with boxes and scores."""
    import json

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from agent.api import Atelier
    from agent.domains import get_domain
    from planners.llm import LLMPlanner
    from world_runner import WorldRunner

    seen = []

    class SeenChat(GenericFakeChatModel):
        def _generate(self, messages, *args, **kwargs):
            seen.append(messages[-1].content)
            return super()._generate(messages, *args, **kwargs)

    layout = {"rationale": "two objects in their boxes", "action": "run", "steps": [
        {"op": "layout", "args": {"objects": [
            {"phrase": "a red circle", "box": [0.15, 0.2, 0.35, 0.4]},
            {"phrase": "a blue square", "box": [0.55, 0.5, 0.85, 0.8]}]}}]}
    recolour = {"rationale": "make the circle green", "action": "run", "steps": [
        {"op": "edit", "args": {"instruction": "make the circle green"}}]}
    chat = SeenChat(messages=iter([AIMessage(json.dumps(layout)), AIMessage(json.dumps(recolour))]))
    planner = LLMPlanner(chat, **get_domain("general").llm_options())
    with Atelier(home=tmp_path, models=WorldRunner(), planner=planner, retriever=None,
                 checker=DetectorChecker(WorldEyes()), domain="general") as atelier:
        session = atelier.session("s")
        first = session.ask("a red circle left of a blue square", seed=1)
        assert first.ok and first.checks_passed is True
        session.ask("make the circle green", seed=2)
    told = seen[-1]
    assert "Scene of img_1 as the detector reads it" in told
    assert "obj_1: a red circle at the top left, box [" in told and "score 1.00" in told
    assert "obj_2: a blue square" in told


def test_a_segmenter_that_sees_nothing_leaves_a_found_object_its_box(tmp_path):
    import torch
    from transformers import SamModel

    from pipelines.detection import box_mask
    from pipelines.placement import largest

    folder = tiny_eyes.write_segmenter(tmp_path / "blind")
    model = SamModel.from_pretrained(folder)
    with torch.no_grad():   # every mask's logits 0: nothing is foreground
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.zero_()
            mlp.proj_out.bias.zero_()
    model.save_pretrained(folder)
    eyes = ModelEyes("unused", str(folder))
    box = (0.2, 0.3, 0.6, 0.7)
    mask = eyes.segment(Image.new("RGB", (64, 64), (245, 245, 245)), [box])[0]
    assert (mask == box_mask(box, 64, 64)).all() and mask.any()
    # and a cut-out with nothing in it is no cut-out
    assert largest([np.zeros((8, 8), dtype=bool)]) is None
