"""The benchmark harness on tiny random models: every suite runs at its smallest size, and the
results file, the report and the plots come out with the figures they promise. No timing is
asserted; ratios are checked against the two measurements of the same run they come from."""
from __future__ import annotations

import json
import statistics
import sys
import types
from pathlib import Path

import pytest

from bench import harness
from bench.harness import SUITES, Context, run_suites
from bench.prompts import CATEGORIES, PROMPTS, load_prompts, make_prompts, render_jsonl

PNG = b"\x89PNG\r\n\x1a\n"
# The smallest sample of each suite that still exercises all of it.
TINY = {"compositional": 1, "multiturn": 1, "conversation": 1, "overhead": 1, "sampling": 1, "sampling_steps": [2],
        "batching": 3, "coldstart": 1}
IN_PROCESS = ["compositional", "multiturn", "conversation", "planner", "overhead", "sampling", "guidance",
              "batching"]
SUBPROCESS = ["memory", "coldstart"]


pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def results(tiny_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    context = Context(models=tiny_models, quick=True, device="cpu", sizes=TINY)
    run_suites(IN_PROCESS, context, out, log=lambda *a: None)
    return out


# --- the prompt set --------------------------------------------------------------------------

def test_the_prompt_set_is_the_one_the_code_makes():
    rows = load_prompts()
    assert len(rows) >= 500
    assert {r["category"] for r in rows} == set(CATEGORIES)
    assert all(sum(r["category"] == c for r in rows) >= 80 for c in CATEGORIES)
    assert len({r["prompt"] for r in rows}) == len(rows)
    assert PROMPTS.read_text() == render_jsonl(make_prompts())


# --- the harness -----------------------------------------------------------------------------

def test_every_suite_is_listed_for_help():
    from bench.arguments import SUITE_NAMES

    assert tuple(SUITES) == SUITE_NAMES


def test_results_have_every_suite_with_its_stamp_and_summary(results):
    latest = json.loads((results / "latest.json").read_text())
    assert set(latest["suites"]) == set(IN_PROCESS)
    for name, entry in latest["suites"].items():
        assert "error" not in entry, (name, entry.get("error"))
        assert {"title", "kind", "measured", "quick", "machine", "seconds", "figures"} <= set(entry)
        assert entry["kind"] in ("quality", "cost") and entry["quick"] is True
        assert {"cpu", "torch_threads", "device"} <= set(entry["machine"])
        assert entry["figures"]["summary"], name
        for row in entry["figures"]["summary"]:
            assert {"figure", "value"} <= set(row)
            if "ratio" in row:  # a ratio always comes with the baseline it divides by
                assert "baseline" in row and "baseline_label" in row
    figures = {name: entry["figures"] for name, entry in latest["suites"].items()}

    compositional = figures["compositional"]
    assert set(compositional["categories"]) == set(CATEGORIES)
    for who in ("base", "agent"):
        assert 0 <= compositional["all"][who] <= 1
    assert len(compositional["outcomes"]) == len(CATEGORIES)

    multiturn = figures["multiturn"]
    assert len(multiturn["agent"]["per_turn"]) == len(multiturn["edit_model"]["per_turn"]) == 3

    conversation = figures["conversation"]
    for run in ("with_correction", "without_correction"):
        assert conversation[run]["turns"] == 3 and 0 <= conversation[run]["correct"] <= 1

    held = figures["planner"]["splits"]["heldout"]
    assert held["cases"] > 0 and 0 <= held["rate"] <= 1

    assert figures["guidance"]["all_one_call_per_step"] is True
    assert figures["sampling"]["baseline"]["steps"] == 50
    assert set(figures["sampling"]["curves"]) == {"ddim", "dpm++2m", "euler"}


def test_ratios_are_computed_from_the_same_run(results):
    latest = json.loads((results / "latest.json").read_text())
    overhead = latest["suites"]["overhead"]["figures"]
    assert overhead["ratio"] == pytest.approx(
        overhead["median_turn_seconds"] / overhead["median_bare_seconds"], rel=1e-3)
    assert overhead["median_turn_seconds"] == pytest.approx(
        statistics.median(overhead["turn_seconds"]), abs=1e-4)
    assert overhead["fastest_ratio"] == pytest.approx(
        min(overhead["turn_seconds"]) / min(overhead["bare_seconds"]), rel=1e-3)
    assert overhead["agent_alone_ms"] > 0
    batching = latest["suites"]["batching"]["figures"]
    assert batching["speedup"] == pytest.approx(
        batching["batched"]["turns_per_second"] / batching["one_at_a_time"]["turns_per_second"],
        rel=1e-3)
    assert batching["images"]["turns_compared"] == batching["turns"]
    assert batching["images"]["max_pixel_difference"] <= 1
    assert max(batching["batched"]["batch_sizes"]) > 1


def test_report_and_plots(results):
    report = (results / "report.md").read_text()
    assert "| Suite | Figure | Value | Same-run baseline | Ratio | Target |" in report
    assert "Quick run of" in report
    for name in IN_PROCESS:
        assert f"## {name}:" in report
    for name in ("compositional", "multiturn", "sampling", "batching"):
        plot = results / "plots" / f"{name}.png"
        assert plot.read_bytes().startswith(PNG)
        assert f"](plots/{name}.png)" in report


def test_subprocess_suites(tiny_models, tmp_path):
    context = Context(models=tiny_models, quick=True, device="cpu", sizes=TINY)
    latest = run_suites(SUBPROCESS, context, tmp_path, log=lambda *a: None)
    memory = latest["suites"]["memory"]["figures"]
    assert "error" not in latest["suites"]["coldstart"]
    assert memory["ratio"] == pytest.approx(
        memory["all_adapters"]["peak_rss_mb"] / memory["text_to_image"]["peak_rss_mb"], abs=1e-3)
    coldstart = latest["suites"]["coldstart"]["figures"]
    assert coldstart["median_first_image_seconds"] > 0 and coldstart["median_help_seconds"] > 0


def test_a_suite_run_again_replaces_only_its_entry_and_a_failure_is_kept(results, monkeypatch):
    before = json.loads((results / "latest.json").read_text())
    broken = types.ModuleType("bench_broken_suite")
    broken.TITLE, broken.KIND = "always fails", "cost"

    def fail(context):
        raise RuntimeError("no such model")

    broken.run = fail
    monkeypatch.setitem(sys.modules, "bench_broken_suite", broken)
    monkeypatch.setitem(SUITES, "broken", "bench_broken_suite")
    context = Context(models=Path("unused"), quick=True, machine={"cpu": "test"})
    after = run_suites(["planner", "broken"], context, results, log=lambda *a: None)
    assert after["suites"]["broken"]["error"] == "RuntimeError: no such model"
    assert after["suites"]["compositional"] == before["suites"]["compositional"]
    assert after["suites"]["planner"]["measured"] >= before["suites"]["planner"]["measured"]
    assert "| broken | failed: RuntimeError: no such model |" in (results / "report.md").read_text()


def test_a_results_file_written_by_two_benches_keeps_both_entries(tmp_path):
    path = tmp_path / "results" / "pipelines.json"
    harness.update_results(path, {"inpaint": {"n": 100}, "layout": {"n": 100}})
    # A second bench that started earlier writes only what it measured.
    harness.update_results(path, {"invert_edit": {"n": 100}, "inpaint": {"n": 30}})
    assert json.loads(path.read_text()) == {"inpaint": {"n": 30}, "layout": {"n": 100},
                                            "invert_edit": {"n": 100}}
    assert not list(path.parent.glob(".*.tmp"))


def test_unknown_suites_and_missing_models_are_refused(tmp_path, capsys):
    assert harness.main(["nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown suite 'nosuch'" in capsys.readouterr().err
    assert harness.main(["planner", "--models", str(tmp_path / "none"),
                         "--out", str(tmp_path)]) == 1
    assert "bench needs the models" in capsys.readouterr().err
    assert not (tmp_path / "latest.json").exists()


def test_atelier_bench_is_a_command():
    from agent.interfaces.cli import build_parser

    args = build_parser().parse_args(["bench", "planner", "--quick"])
    assert args.suites == ["planner"] and args.quick and args.func.__name__ == "bench_command"


def test_conversation_judge_passes_the_intended_images_and_fails_others():
    from bench.conversation import judge, load_sessions
    from world.detect import detect
    from world.render import render
    from world.scene import Scene

    sessions = load_sessions()
    assert sum(len(s["turns"]) for s in sessions) >= 100
    for s in sessions:
        previous = None
        for turn in s["turns"]:
            image = render(Scene.from_dict(turn["intended"]))
            assert judge(image, turn, previous), (s["session"], turn["request"])
            previous = detect(image).scene
    # The picture from before an edit does not pass as its result.
    edit_turn = sessions[0]["turns"][1]
    before = render(Scene.from_dict(edit_turn["before"]))
    assert not judge(before, edit_turn, detect(before).scene)


def test_conversation_judge_follows_an_object_whose_unstated_size_came_out_otherwise():
    # conv-001: "a turquoise tile at the left side" (no size), then a black background, then
    # "Color the shape red". The agent drew the tile large where the script meant small; the
    # recolour is judged on the large tile it really drew.
    from bench.conversation import judge, load_sessions
    from world.render import render
    from world.scene import Obj, Scene

    session = next(s for s in load_sessions() if s["session"] == "conv-001")
    turn = session["turns"][2]
    assert turn["request"] == "Color the shape red" and turn["before"]["objects"][0]["size"] == "small"
    drawn = Scene((Obj("square", "cyan", "large", 0.17, 0.5),), "black")
    recoloured = Scene((Obj("square", "red", "large", 0.17, 0.5),), "black")
    assert judge(render(recoloured), turn, drawn)
    assert not judge(render(drawn), turn, drawn)
    assert not judge(render(Scene((Obj("circle", "red", "large", 0.17, 0.5),), "black")), turn, drawn)


def test_the_checker_suite_compares_the_model_checker_with_the_exact_one(tiny_models, tmp_path):
    """Plumbing on tiny random models and eyes: every result is judged by both checkers and
    counted once, as agreement, a false pass, a false fail or an abstention."""
    import tiny_eyes

    from bench import checker

    for name in ("shapes-sd", "shapes-ip2p"):
        (tmp_path / name).symlink_to(tiny_models / name)
    tiny_eyes.write_detector(tmp_path / "shapes-detector")
    tiny_eyes.write_segmenter(tmp_path / "shapes-segmenter")
    context = Context(models=tmp_path, quick=True, device="cpu", sizes={"checker": 6})
    figures = checker.run(context)
    total = figures["total"]
    assert figures["results"] == total["results"] >= 6
    assert total["agree"] + total["false_pass"] + total["false_fail"] + total["abstained"] == \
        total["results"]
    assert {"generate", "inpaint"} <= set(figures["per_op"])
    assert 0.0 <= figures["agreement"] <= 1.0
    assert figures["summary"][0]["figure"].startswith("agreement")
