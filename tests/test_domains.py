"""Domains are plugins (agent/domains): the shapes world is one, found by name; the general
domain serves any other model set and runs with the world unable to load."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api import Atelier
from agent.domains import available, choose, get_domain
from agent.errors import UsageError
from pipelines.models import ModelConfig
from planners.context import PlanningContext, ImageInfo
from planners.instructions import InstructionPlanner
from planners.plan import NotUnderstood, Plan

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"


def test_both_domains_are_registered_and_unknown_names_are_refused():
    assert {"shapes", "general"} <= set(available())
    assert get_domain("shapes").name == "shapes" and get_domain("general").name == "general"
    with pytest.raises(UsageError, match="domain 'photos' is not known; the domains are: "
                                         "general, shapes"):
        get_domain("photos")


def test_the_domain_is_asked_for_else_from_the_environment_else_the_model_sets(tmp_path,
                                                                                monkeypatch):
    monkeypatch.delenv("ATELIER_DOMAIN", raising=False)
    assert choose(None, None) == "general" and choose(None, "shapes") == "shapes"
    assert choose("general", "shapes") == "general"
    monkeypatch.setenv("ATELIER_DOMAIN", "general")
    assert choose(None, "shapes") == "general" and choose("shapes", None) == "shapes"
    monkeypatch.delenv("ATELIER_DOMAIN")
    # The shipped models declare their domain; any other set is general, whatever its folder.
    assert ModelConfig.shipped(MODELS).domain == "shapes"
    elsewhere = ModelConfig(base=str(MODELS / "shapes-sd"), clip=str(MODELS / "shapes-clip"))
    with Atelier(home=tmp_path / "a", models=elsewhere, retriever=None) as atelier:
        assert atelier.domain().name == "general"
        assert type(atelier.checker()).__name__ == "ClipChecker"
        assert type(atelier.planner()).__name__ == "InstructionPlanner"
    with Atelier(home=tmp_path / "b", retriever=None) as atelier:
        assert atelier.domain().name == "shapes"
        assert type(atelier.checker()).__name__ == "WorldChecker"
    with Atelier(home=tmp_path / "c", retriever=None, domain="general") as atelier:
        assert atelier.domain().name == "general"
        # The shipped set brings eyes: its detector checks and its grounder finds objects.
        assert type(atelier.checker()).__name__ == "DetectorChecker"
        assert type(atelier.runner().models.grounder).__name__ == "ModelGrounder"
    with Atelier(home=tmp_path / "d", models=elsewhere, retriever=None) as atelier:
        # No grounding tool: an operation that needs one says what is missing.
        from pipelines.errors import ModelUnavailable

        with pytest.raises(ModelUnavailable, match="no grounding model is configured"):
            atelier.runner().models.grounder.objects(None)


def test_the_instruction_planner_generates_edits_and_moves_back():
    planner = InstructionPlanner()
    first = planner.plan("a lighthouse at dusk, oil painting")
    assert isinstance(first, Plan) and first.steps[0].op == "generate"
    assert first.steps[0].args.prompt == "a lighthouse at dusk, oil painting"
    context = PlanningContext(images=[ImageInfo(id="img_1")], current_image="img_1")
    edit = planner.plan("make the sky stormy", context)
    assert edit.steps[0].op == "edit" and edit.steps[0].inputs == ["img_1"]
    assert edit.steps[0].args.instruction == "make the sky stormy"
    assert planner.plan("a sailboat", context).steps[0].op == "generate"
    assert planner.plan("undo that", context).action == "undo"
    assert planner.plan("redo", context).action == "redo"
    assert isinstance(planner.plan("!!! 123"), NotUnderstood)


def test_the_instruction_planner_lays_out_what_the_words_place_or_count():
    planner = InstructionPlanner()
    plan = planner.plan("a teapot to the left of two cups, on a wooden background")
    assert [s.op for s in plan.steps] == ["layout"]
    args = plan.steps[0].args
    assert [o.phrase for o in args.objects] == ["a teapot", "a cup", "a cup"]
    centres = [(o.box[0] + o.box[2]) / 2 for o in args.objects]
    assert centres[0] < min(centres[1:]) and args.background_prompt == "on a wooden background"
    placed = planner.plan("a small kite at the top right").steps[0].args.objects[0]
    assert placed.box[0] > 0.6 and placed.box[3] < 0.4 and placed.box[2] - placed.box[0] < 0.2
    assert planner.plan("a kite").steps[0].op == "generate"


def test_the_general_corrector_lays_out_a_prompt_and_places_an_instruction_edit():
    from agent.domains.general import DescriptionCorrections
    from agent.turn.orchestrator import Corrector
    from agent.turn.checks import Verdict
    from planners.plan import Step

    corrections = DescriptionCorrections()
    laid = corrections.layout_for(Step(op="generate", args={"prompt": "a kite left of a tree"}))
    assert laid.op == "layout" and [o.phrase for o in laid.args.objects] == ["a kite", "a tree"]
    before = {"objects": [{"name": "a red kite", "box": [0.1, 0.1, 0.3, 0.3], "score": 0.9},
                          {"name": "a tall tree", "box": [0.6, 0.2, 0.9, 0.9], "score": 0.8}]}
    edit = Step(op="edit", args={"instruction": "make the kite blue"}, inputs=["img_2"])
    placed = corrections.placed_edit_for(edit, before)
    assert placed.op == "inpaint" and placed.inputs == ["img_2"]
    assert [o.phrase for o in placed.args.objects] == ["blue kite"]
    assert placed.args.objects[0].box == before["objects"][0]["box"]
    unread = Step(op="edit", args={"instruction": "make it look like autumn"}, inputs=["img_2"])
    assert corrections.placed_edit_for(unread, before) is None
    failed = Verdict(False, "clip", ("too far from the text",))
    strategy, step, _ = Corrector(corrections=corrections).next(edit, 3, failed, {"edit"}, before)
    assert strategy == "op" and step.op == "inpaint"


SCRIPT = [{"session": "g1", "request": "a lighthouse at dusk", "seed": 3},
          {"session": "g1", "request": "make it red"},
          {"session": "g1", "request": "undo"},
          {"session": "g2", "request": "a red circle at the top left", "seed": 4},
          {"session": "g2", "request": "make the circle green"}]


def test_the_general_domain_runs_a_script_with_the_world_unable_to_load(tmp_path):
    shadow = tmp_path / "shadow" / "world"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("no shapes world here")\n')
    script = tmp_path / "turns.jsonl"
    script.write_text("".join(json.dumps(line) + "\n" for line in SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "ATELIER_HOME": str(tmp_path),
           "ATELIER_MODELS": str(MODELS), "OMP_NUM_THREADS": "1"}
    env.pop("ATELIER_DOMAIN", None)
    run = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "script", str(script), "--out",
                          str(tmp_path / "out"), "--domain", "general"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    entries = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").open()]
    assert [e["ok"] for e in entries] == [True] * 5
    ops = [[s["op"] for s in e["plan"]["steps"]] for e in entries]
    # The placed circle is laid out, then redrawn green in its own box: the detector's
    # reading of the circle is what the change is read against.
    assert ops == [["generate"], ["edit"], [], ["layout"], ["inpaint"]]
    assert entries[2]["image"] == entries[0]["image"]          # undo went back
    ran = [e for e in entries if e["plan"]["steps"]]
    assert all("a detector finds the things, counts, places and relations" in e["note"]
               for e in ran)
    # The placed circle was checked by the shipped detector, never the world's reader.
    assert entries[3]["checks_passed"] is not None
    assert "world" not in run.stdout + run.stderr.replace("shapes world here", "")


def test_an_unknown_domain_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "ATELIER_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", "plan", "a red circle", "--domain",
                          "photos"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "atelier: error: domain 'photos' is not known; the domains are: general, shapes"]


def test_the_general_domains_worked_examples_are_valid_plans():
    from planners.json_reply import read_reply
    from planners.plan import NotUnderstood

    options = get_domain("general").llm_options()
    assert "photographs" in options["domain_notes"] and len(options["examples"]) == 6
    for context_text, reply in options["examples"]:
        data = json.loads(reply)
        current = "img_1" if "Current image: img_1" in context_text else None
        context = (PlanningContext(images=[ImageInfo(id="img_1")], current_image=current)
                   if current else PlanningContext())
        result = read_reply(data, "request", context, None, options["planner_operations"])
        assert isinstance(result, (Plan, NotUnderstood)), (context_text, result)
    assert "shapes world" not in options["domain_notes"]


@pytest.mark.parametrize("setting, sends", [("on", True), ("off", False), ("auto", False)])
def test_llm_images_decides_whether_the_current_image_goes_to_the_chat_model(tmp_path, setting,
                                                                               sends):
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from world_runner import WorldRunner

    seen = []

    class Chat(GenericFakeChatModel):   # no profile: "auto" sends no image
        def _generate(self, messages, *args, **kwargs):
            seen.append(messages[-1].content)
            return super()._generate(messages, *args, **kwargs)

    plan = {"rationale": "one circle", "action": "run",
            "steps": [{"op": "generate", "args": {"prompt": "a red circle"}}]}
    chat = Chat(messages=iter([AIMessage(json.dumps(plan))] * 2))
    with Atelier(home=tmp_path, models=WorldRunner(), llm=chat, retriever=None,
                 llm_images=setting) as atelier:
        session = atelier.session("s")
        session.ask("a red circle", seed=1)
        session.ask("a red circle again", seed=2)
    second = seen[-1]
    has_image = isinstance(second, list) and any(p.get("type") == "image" for p in second)
    assert has_image is sends


def test_edit_objects_by_phrase_becomes_inpaints_of_the_named_objects_alone():
    from planners.context import SceneObject, SceneReading
    from planners.json_reply import read_reply
    from planners.phrase_edits import PLANNER_OPERATIONS

    context = PlanningContext(images=[ImageInfo(id="img_1")], current_image="img_1",
                              scene=SceneReading(objects=[
                                  SceneObject(id="obj_1", name="sailboat", box=[0.3, 0.4, 0.6, 0.8]),
                                  SceneObject(id="obj_2", name="lighthouse",
                                              box=[0.7, 0.1, 0.9, 0.7])]))

    def read(*changes, caption="a lake"):
        reply = {"rationale": "r", "action": "run", "steps": [
            {"op": "edit_objects", "args": {"caption": caption, "changes": list(changes),
                                            "steps": 12}}]}
        return read_reply(reply, "edit", context, None, PLANNER_OPERATIONS)

    plan = read({"do": "change", "object": "the sailboat", "becomes": "a red sailboat"})
    (step,) = plan.steps
    assert step.op == "inpaint" and step.args.target == [[0.26, 0.36, 0.64, 0.84]]
    assert step.args.objects[0].phrase == "a red sailboat" and step.args.steps == 12
    assert step.args.objects[0].box == [0.3, 0.4, 0.6, 0.8]
    removed = read({"do": "remove", "object": "obj_2"}).steps[0]
    assert removed.args.target == [[0.66, 0.06, 0.94, 0.74]] and removed.args.objects == []
    added = read({"do": "add", "becomes": "a gull", "box": [0.1, 0.1, 0.2, 0.2]}).steps[0]
    assert added.args.objects[0].phrase == "a gull" and added.args.target == [[0.06, 0.06, 0.24, 0.24]]
    unseen = read({"do": "remove", "object": "the swan"}).steps[0]
    assert unseen.args.target == "the swan"   # found by the grounding tool when it runs
    from planners.plan import PlanError

    with pytest.raises(PlanError, match="an 'add' needs `box`"):
        read({"do": "add", "becomes": "a gull"})
    with pytest.raises(PlanError, match="there is none yet"):
        read_reply({"rationale": "r", "action": "run", "steps": [
            {"op": "edit_objects", "args": {"caption": "x", "changes": [
                {"do": "remove", "object": "the swan"}]}}]}, "edit", PlanningContext(), None,
            PLANNER_OPERATIONS)
