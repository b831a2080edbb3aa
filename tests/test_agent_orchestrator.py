"""The orchestrator's event stream: order, checks, corrections, re-planning, and the two error
families (the plan's mistakes become observations; the setup's fail the turn).

Planners are the real ones: the rule planner, or the LLM planner over a scripted fake chat
model. Steps run on `WorldRunner` (tests/world_runner.py), which draws each operation's exact
result with the world's renderer and can be told to make the trained model's known mistakes,
so the corrections have something real to fix."""
from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from world_runner import WorldRunner

from agent.api import Atelier
from world.checking import WorldChecker, compose_constraints, read_composition
from agent.turn.events import Correction, ImageMade, PlanMade, TurnDone
from agent.turn.orchestrator import Corrector, Limits, attempt_seed
from planners.plan import Plan, Step
from world.check import Relation
from world.render import render
from world.scene import Scene


def shapes_models(config):
    """A model set that finds objects as the shapes world does."""
    from pipelines.models import ModelSet
    from world.grounding import WorldGrounder

    return ModelSet(config, grounder=WorldGrounder())

RIGHT_OF = "a red circle to the right of a blue square"


def scripted(*replies: dict) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=json.dumps(r)) for r in replies]))


def generate_plan(prompt: str) -> dict:
    return {"rationale": "generate it", "action": "run",
            "steps": [{"op": "generate", "args": {"prompt": prompt}}]}


def types(events) -> list[str]:
    return [e.type for e in events]


def test_one_step_turn_streams_its_events_in_order(tmp_path):
    atelier = Atelier(home=tmp_path, models=WorldRunner())
    events = list(atelier.session("s").stream("a blue square at the top right", seed=4))
    assert types(events) == ["plan_made", "step_started", "image_made", "check_result",
                             "turn_done"]
    plan_made, started, made, checked, done = events
    assert plan_made.plan.steps[0].op == "layout" and plan_made.round == 1
    assert (started.step, started.total, started.attempt, started.op) == (1, 1, 1, "layout")
    assert (made.image_id, made.seed, made.op) == ("img_1", 4, "layout")
    assert checked.passed is True and checked.method == "world" and checked.failures == ()
    assert done.image_id == "img_1" and done.checks_passed is True
    assert done.step_images == ("img_1",)
    # Every event is plain JSON.
    json.dumps([e.to_dict() for e in events])


def test_a_generate_that_misses_a_relation_becomes_a_layout(tmp_path):
    # A planner that asks a text prompt for a relation, and a runner whose generate ignores
    # places, as the trained text-to-image model does.
    runner = WorldRunner(ignore_places=True)
    atelier = Atelier(home=tmp_path, models=runner, llm=scripted(generate_plan(RIGHT_OF)))
    result = atelier.session("s").ask(RIGHT_OF, seed=9)
    assert types(result.events) == [
        "plan_made", "step_started", "image_made", "check_result", "correction",
        "step_started", "image_made", "check_result", "turn_done"]
    first, second = result.checks
    assert first.passed is False and "is not right of" in first.failures[0]
    correction = next(e for e in result.events if isinstance(e, Correction))
    assert (correction.strategy, correction.op, correction.attempt) == ("op", "layout", 2)
    assert second.passed is True and result.checks_passed is True
    assert runner.calls == [("generate", 9), ("layout", 10)]
    # Both attempts are in the store; the layout is the step's result and the current image.
    session = atelier.session("s")
    assert [(i.id, i.op, i.attempt, i.chosen) for i in session.images()] == [
        ("img_1", "generate", 1, False), ("img_2", "layout", 2, True)]
    assert session.current.id == "img_2"


def test_an_edit_that_misses_twice_becomes_a_placed_edit(tmp_path):
    # The instruction editor gives the image back unchanged; after another seed, the
    # corrector redraws the scene as a layout with the new background, every object kept.
    runner = WorldRunner(unchanged=("edit",))
    atelier = Atelier(home=tmp_path, models=runner)
    session = atelier.session("s")
    first = session.ask("a red circle left of a blue square", seed=1)
    result = session.ask("make the background gray", seed=5)
    assert result.plan.steps[0].op == "edit" and result.checks_passed is True
    corrections = [e for e in result.events if isinstance(e, Correction)]
    assert [(c.strategy, c.op, c.attempt) for c in corrections] == [("seed", "edit", 2),
                                                                     ("op", "layout", 3)]
    assert [op for op, _ in runner.calls[1:]] == ["edit", "edit", "layout"]
    before = WorldChecker().read(first.image.open()).scene
    after = WorldChecker().read(result.image.open()).scene
    assert after["background"] == "gray" and len(after["objects"]) == len(before["objects"])
    for new, old in zip(after["objects"], before["objects"]):
        assert [new[k] for k in ("shape", "color", "size")] == [old[k] for k in ("shape", "color", "size")]
        assert abs(new["x"] - old["x"]) <= 0.05 and abs(new["y"] - old["y"]) <= 0.05


def test_corrections_are_bounded_then_the_closest_attempt_is_kept(tmp_path):
    runner = WorldRunner(palette={"red": "purple"})
    atelier = Atelier(home=tmp_path, models=runner)
    result = atelier.session("s").ask("a red circle", seed=100)
    corrections = [e for e in result.events if isinstance(e, Correction)]
    assert [c.strategy for c in corrections] == ["seed", "guidance", "op"]
    assert corrections[1].args["guidance"] == 7.5
    assert [seed for _, seed in runner.calls] == [100, 101, 102, 103]
    # The rule planner re-plans the same plan: it is not run again.
    plans = [e for e in result.events if isinstance(e, PlanMade)]
    assert [(p.round, p.repeated) for p in plans] == [(1, False), (2, True)]
    assert "does not do what the step meant" in plans[1].observation
    assert types(result.events)[-2:] == ["plan_made", "turn_done"]
    done = result.events[-1]
    assert isinstance(done, TurnDone) and done.checks_passed is False
    assert any("expected a red circle" in f for f in done.failures)
    assert result.ok and result.image.id in {i.id for i in result.images}


def test_a_failed_check_is_replanned_with_the_failure_as_an_observation(tmp_path):
    model = scripted(generate_plan(RIGHT_OF), {
        "rationale": "the generator misplaced them; boxes fix the places", "action": "run",
        "steps": [{"op": "layout", "args": {"objects": [
            {"phrase": "a large red circle", "box": [0.6, 0.34, 0.92, 0.66]},
            {"phrase": "a large blue square", "box": [0.08, 0.34, 0.4, 0.66]}]}}]})
    atelier = Atelier(home=tmp_path, llm=model, models=WorldRunner(ignore_places=True),
                      limits=Limits(max_corrections=0))
    result = atelier.session("s").ask(RIGHT_OF, seed=1)
    plans = [e for e in result.events if isinstance(e, PlanMade)]
    assert [p.round for p in plans] == [1, 2] and plans[0].planner == "llm"
    assert "is not right of" in plans[1].observation
    assert result.checks_passed is True and result.plan.steps[0].op == "layout"
    assert [(i.op, i.round) for i in result.images] == [("generate", 1), ("layout", 2)]
    # Both plans are stored with the turn.
    (turn,) = atelier.session("s").history()
    assert [p["round"] for p in turn.plans] == [1, 2]


def test_the_model_mistakes_become_observations_not_crashes(tmp_path):
    atelier = Atelier(home=tmp_path, models=WorldRunner())
    session = atelier.session("s")
    unknown = Plan(rationale="edit an image that is not there", steps=[
        Step(op="edit", args={"instruction": "make it green"}, inputs=["img_42"])])
    result = session.run_plan(unknown)
    assert not result.ok and result.error_kind == "plan"
    assert "img_42" in result.error and "not an image of this session" in result.error
    too_big = Plan(rationale="huge", steps=[Step(op="generate", args={
        "prompt": "a red circle", "width": 2048, "height": 2048})])
    result = session.run_plan(too_big)
    assert not result.ok and "pixel limit" in result.error and "width=2048" in result.error
    # An argument the world cannot act on: the adapter's input error, named.
    unreadable = Plan(rationale="x", steps=[Step(op="generate", args={"prompt": "a sunset"})])
    result = session.run_plan(unreadable)
    assert not result.ok and result.error_kind == "input" and "step 1 (generate)" in result.error
    assert session.images() == [] and len(session.history()) == 3


def test_limits_bound_the_plan(tmp_path):
    plan = Plan(rationale="two steps", steps=[
        Step(op="generate", args={"prompt": "a red circle"}),
        Step(op="restore", args={"prompt": "a red circle"})])
    atelier = Atelier(home=tmp_path, models=WorldRunner(), limits=Limits(max_steps=1))
    result = atelier.session("s").run_plan(plan)
    assert not result.ok and "at most 1 are allowed" in result.error
    with pytest.raises(ValueError, match="max_corrections"):
        Limits(max_corrections=99)


def test_not_understood_fails_the_turn_with_the_planner_words(tmp_path):
    atelier = Atelier(home=tmp_path, models=WorldRunner())
    result = atelier.session("s").ask("a flibbertigibbet")
    assert types(result.events) == ["turn_failed"]
    assert result.error_kind == "not_understood" and "flibbertigibbet" in result.error


def test_an_llm_that_never_gives_a_valid_plan_fails_the_turn(tmp_path):
    bad = {"rationale": "?", "action": "run", "steps": [{"op": "teleport", "args": {}}]}
    atelier = Atelier(home=tmp_path, llm=scripted(bad, bad, bad, bad), models=WorldRunner())
    result = atelier.session("s").ask("a red circle")
    assert not result.ok and result.error_kind == "plan" and "teleport" in result.error
    assert atelier.session("s").images() == []


def test_a_missing_model_fails_the_turn_with_the_fix(tmp_path):
    from pipelines.models import ModelConfig

    atelier = Atelier(home=tmp_path / "home",
                      models=ModelConfig(base=str(tmp_path / "shapes-sd"), device="cpu"))
    result = atelier.session("s").ask("a red circle", seed=1)
    assert not result.ok and result.error_kind == "model"
    assert "is missing" in result.error


def test_a_multi_step_plan_chains_its_images(tmp_path):
    plan = Plan(rationale="make, then edit", steps=[
        Step(op="layout", args={"objects": [
            {"phrase": "a large red circle", "box": [0.1, 0.34, 0.42, 0.66]},
            {"phrase": "a large blue square", "box": [0.58, 0.34, 0.9, 0.66]}]}),
        Step(op="inpaint", args={"prompt": "a large green circle at the left and a large blue "
                                           "square at the right", "target": "the red circle"})])
    atelier = Atelier(home=tmp_path, models=WorldRunner())
    result = atelier.session("s").run_plan(plan, seed=3)
    assert result.ok and result.checks_passed is True
    made = [e for e in result.events if isinstance(e, ImageMade)]
    assert [(m.image_id, m.parent_ids, m.seed) for m in made] == [
        ("img_1", (), 3), ("img_2", ("img_1",), 3 + 1000)]
    assert result.image.id == "img_2"


def test_exemplars_are_retrieved_for_a_step_that_asks(tmp_path, tmp_path_factory):
    import tiny_clip
    from index.collection import Collection, read_captions
    from world.demo_collection import write_demo_collection
    from index.embedder import Embedder
    from index.store import IndexStore
    from retrieval.retriever import Retriever

    embedder = Embedder.shipped(tiny_clip.shared_models(tmp_path_factory), progress=False)
    folder = tmp_path / "collection"
    paths = write_demo_collection(folder, 6, seed=1)
    store = IndexStore(tmp_path / "index", embedder.name, embedder.dim)
    Collection(store, embedder).add_files(paths, read_captions(folder))
    atelier = Atelier(home=tmp_path / "home", models=WorldRunner(),
                      retriever=Retriever(store, embedder))
    result = atelier.session("s").ask("a red circle like the examples", seed=2)
    retrieved = [e for e in result.events if e.type == "exemplars_retrieved"]
    assert len(retrieved) == 1 and [h["id"] for h in retrieved[0].hits] == [
        "ref_1", "ref_2", "ref_3", "ref_4"]
    assert all(h["path"] in map(str, paths) for h in retrieved[0].hits)
    assert result.ok and result.image.op == "reference"

    # Without an index, the step's planner hears why.
    plain = Atelier(home=tmp_path / "other", models=WorldRunner(), retriever=None)
    result = plain.session("s").ask("a red circle like the examples", seed=2)
    assert not result.ok and "no image index is set up" in result.error


def test_seeds_are_derived_per_round_step_and_attempt():
    assert attempt_seed(7, 1, 1, 1) == 7
    assert attempt_seed(7, 1, 2, 3) == 7 + 1000 + 2
    assert attempt_seed(2**32 - 1, 1, 1, 2) == 0
    assert attempt_seed(7, 2, 1, 1) == 100_007


def test_the_corrector_ladder():
    from agent.turn.checks import Verdict
    from world.correcting import WorldCorrections

    shapes = WorldCorrections()

    step = Step(op="generate", args={"prompt": "a red circle", "guidance": 5.0})
    failed = Verdict(False, "world", ("colour",), kinds=frozenset({"attribute"}))
    assert Corrector(corrections=shapes).next(step, 2, failed, {"generate"})[0] == "seed"
    strategy, stronger, _ = Corrector(corrections=shapes).next(step, 3, failed, {"generate"})
    assert strategy == "guidance" and stronger.args.guidance == 7.5
    strategy, layout, _ = Corrector(corrections=shapes).next(step, 4, failed, {"generate"})
    assert strategy == "op" and layout.op == "layout"
    assert layout.args.objects[0].phrase == "a large red circle"
    misplaced = Verdict(False, "world", ("place",), kinds=frozenset({"place"}))
    assert Corrector(corrections=shapes).next(step, 2, misplaced, {"generate"})[0] == "op"
    # A count miss: laid out at once for several objects, after seed and guidance for one.
    miscounted = Verdict(False, "world", ("count",), kinds=frozenset({"count"}))
    three = Step(op="generate", args={"prompt": "three red circles", "guidance": 5.0})
    assert Corrector(corrections=shapes).next(three, 2, miscounted, {"generate"})[0] == "op"
    assert Corrector(corrections=shapes).next(step, 2, miscounted, {"generate"})[0] == "seed"
    assert Corrector(corrections=shapes).next(step, 3, miscounted, {"generate"})[0] == "guidance"
    assert Corrector(corrections=shapes).next(step, 4, miscounted, {"generate"})[1].op == "layout"
    count_and_place = Verdict(False, "world", ("count", "place"),
                              kinds=frozenset({"count", "place"}))
    assert Corrector(corrections=shapes).next(step, 2, count_and_place, {"generate"})[0] == "op"
    # An edit the checker can read the scene of switches to a placed inpaint at attempt 3.
    scene = {"objects": [{"shape": "circle", "color": "red", "size": "small", "x": 0.3, "y": 0.3}]}
    edit = Step(op="edit", args={"instruction": "make the red circle green"}, inputs=["img_1"])
    assert Corrector(corrections=shapes).next(edit, 2, failed, {"edit"}, scene)[0] == "seed"
    strategy, placed, _ = Corrector(corrections=shapes).next(edit, 3, failed, {"edit"}, scene)
    assert strategy == "op" and placed.op == "inpaint" and placed.inputs == ["img_1"]
    assert placed.args.objects[0].phrase == "a small green circle"
    assert Corrector(corrections=shapes).next(edit, 3, failed, {"edit"}, None)[0] == "guidance"
    # Guidance already at its bound: another seed instead.
    capped = Step(op="generate", args={"prompt": "a red circle", "guidance": 30.0})
    assert Corrector(corrections=shapes).next(capped, 3, failed, {"generate"})[0] == "seed"
    # Without a domain's reader, only seeds and guidance: no switch of operation.
    assert Corrector().next(step, 4, misplaced, {"generate"})[0] == "seed"
    assert Corrector().next(edit, 3, failed, {"edit"}, scene)[0] == "guidance"


def test_world_expectations_follow_the_planner_reading():
    compose = read_composition(RIGHT_OF)
    constraints = compose_constraints(compose)
    relation = [c for c in constraints if isinstance(c, Relation)]
    assert len(relation) == 1 and relation[0].relation == "right_of"
    assert read_composition("a photo of a cat") is None
    step = Step(op="generate", args={"prompt": "a photo of a cat"})
    assert WorldChecker().expect(step, None) is None
    verdict = WorldChecker().judge(render(Scene()), None)
    assert verdict.passed is None and verdict.reading.caption == "an empty canvas"


def test_events_of_a_turn_are_the_stream_the_store_keeps(tmp_path):
    atelier = Atelier(home=tmp_path, models=WorldRunner(ignore_places=True),
                      llm=scripted(generate_plan(RIGHT_OF)))
    session = atelier.session("s")
    streamed = [e.to_dict() for e in session.stream(RIGHT_OF, seed=1)]
    assert session.events(1) == json.loads(json.dumps(streamed))


def test_clip_checker_scores_the_step_text(tmp_path_factory):
    import tiny_clip

    from agent.turn.checks import ClipChecker
    from pipelines.models import ModelConfig

    root = tiny_clip.shared_models(tmp_path_factory)
    models = shapes_models(ModelConfig(base="unused", clip=str(root / "shapes-clip"), device="cpu"))
    step = Step(op="generate", args={"prompt": "a red circle"})
    image = render(Scene())
    lenient = ClipChecker(models.clip, threshold=-1.0)
    verdict = lenient.judge(image, lenient.expect(step, None))
    assert verdict.passed is True and verdict.method == "clip" and -1 <= verdict.score <= 1
    strict = ClipChecker(models.clip, threshold=1.01)
    verdict = strict.judge(image, strict.expect(step, None))
    assert verdict.passed is False and "below 1.01" in verdict.failures[0]
    assert strict.expect(Step(op="restore", args={}), None) is None
