"""The shipped shapes planner (models/shapes-planner): it loads like any hub chat model, plans
through the same `--llm hf:` path a user's local model takes, and its training script runs
and resumes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "shapes-planner"
CASES = REPO / "tests" / "data" / "planner_cases.jsonl"
# A fixed mix of the evaluation set: compositions, edits, a follow-up, a restore, an undo,
# and held-out phrasings. FLOOR sits just under what the shipped model measures on them
# (9 of 10 or more; 99.5% of the whole main split: a sample this small swings by a case or two
# between weights, so the bench's full figures are what a checkpoint is judged on).
CASE_IDS = ("main-phrase-000", "main-phrase-001", "main-edit-000", "main-edit-001",
            "main-turn-000", "main-other-000", "main-other-021", "heldout-phrase-000",
            "heldout-edit-000", "heldout-hand-000")
FLOOR = 0.8


def test_folder_loads_with_auto_classes_and_a_chat_template():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL)
    assert model.dtype == torch.float32  # stored fp16, computed fp32 on a CPU
    assert sum(p.numel() for p in model.parameters()) <= 20_000_000
    assert (MODEL / "model.safetensors").stat().st_size < 10 * 2**20
    messages = [{"role": "system", "content": "long instructions"},
                {"role": "user", "content": 'Session images: none yet\n\nRequest: "a red circle"'}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "a red circle" in text and "long instructions" not in text
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=200, do_sample=False)
    reply = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    data = json.loads(reply)
    assert data["steps"][0]["op"] in ("generate", "layout")


def test_requests_through_the_hf_provider_give_valid_plans():
    pytest.importorskip("xgrammar")
    from world.planning.evaluate import evaluate, load_cases
    from planners.llm import LLMPlanner
    from world.planning.notes import llm_options
    from planners.providers import chat_model

    cases = {c.id: c for c in load_cases(CASES)}
    planner = LLMPlanner(chat_model(f"hf:{MODEL}"), **llm_options())
    report = evaluate(planner, [cases[i] for i in CASE_IDS])
    assert report.first_valid >= len(CASE_IDS) - 1, report.failures  # 10 of 10 measured
    assert report.rate >= FLOOR, report.failures


def write_pairs(folder: Path, requests) -> None:
    """A training run's cached pairs: the rule planner's compact replies to `requests`."""
    from planners.context import PlanningContext
    from world.planning.rules import RulePlanner
    from training.planner_data import prompt_text, reply_text, target_reply

    context = PlanningContext()
    rows = [json.dumps({"prompt": prompt_text(context, request),
                        "reply": reply_text(target_reply(RulePlanner().plan(request, context)))})
            for request in requests]
    (folder / "pairs.jsonl").write_text("\n".join(rows) + "\n")


def test_training_runs_two_steps_and_resumes(tmp_path, capsys):
    from training import planner as train

    write_pairs(tmp_path, ("a red circle", "two blue squares at the top",
                           "a green triangle left of a yellow circle", "undo"))
    tiny = ["--out", str(tmp_path), "--hidden", "32", "--layers", "1", "--heads", "2",
            "--vocab", "300", "--batch-tokens", "1000", "--eval-every", "0", "--save-every", "1",
            "--first-seed", "1500", "--seeds", "2"]  # pairs are cached: the seeds are only recorded
    assert train.main(tiny + ["--steps", "2"]) == 0
    assert train.main(tiny + ["--steps", "3"]) == 0
    assert "resumed at step 2" in capsys.readouterr().out
    assert train.main(["--out", str(tmp_path), "--export", str(tmp_path / "export")]) == 0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoTokenizer.from_pretrained(tmp_path / "export")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "export")
    assert model.config.num_hidden_layers == 1
    card = (tmp_path / "export" / "README.md").read_text()
    assert "3 AdamW steps" in card and "4 (context, request) -> (rationale, plan) pairs from " \
        "generator seeds 1500-1501" in card


def test_training_can_start_from_a_shipped_folder(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from training import planner as train

    base, tuned = tmp_path / "base", tmp_path / "tuned"
    for folder in (base, tuned):
        folder.mkdir()
        write_pairs(folder, ("a red circle", "two blue squares at the top"))
    tiny = ["--hidden", "32", "--layers", "1", "--heads", "2", "--vocab", "300",
            "--batch-tokens", "1000", "--eval-every", "0"]
    assert train.main(["--out", str(base), *tiny, "--steps", "2"]) == 0
    assert train.main(["--out", str(base), "--export", str(tmp_path / "shipped")]) == 0

    # The start's shape and tokenizer win over the (default) shape arguments.
    assert train.main(["--out", str(tuned), "--init", str(tmp_path / "shipped"),
                       "--batch-tokens", "1000", "--eval-every", "0", "--steps", "0"]) == 0
    state = torch.load(tuned / "state.pt", weights_only=False)
    assert (state["config"]["hidden"], state["config"]["layers"]) == (32, 1)
    shipped = AutoModelForCausalLM.from_pretrained(tmp_path / "shipped").state_dict()
    for name, tensor in state["model"].items():
        assert torch.equal(tensor, shipped[name].float()), name
    assert train.main(["--out", str(tuned), "--batch-tokens", "1000", "--eval-every", "0",
                       "--steps", "1"]) == 0
    assert torch.load(tuned / "state.pt", weights_only=False)["step"] == 1


def test_multi_turn_scale_multiplies_the_follow_ups_and_nothing_else():
    from training.planner_data import generate_cases

    def by_kind(cases):
        turns = [c for c in cases if c.source.startswith("turn:")]
        return turns, [c for c in cases if not c.source.startswith("turn:")]

    turns, others = by_kind(generate_cases(7))
    more_turns, same_others = by_kind(generate_cases(7, multi_turn_scale=3))
    assert len(more_turns) == 3 * len(turns) > 0
    assert [c.request for c in same_others] == [c.request for c in others]


def test_training_stops_at_its_deadline(tmp_path):
    import time

    import torch

    from training import planner as train

    write_pairs(tmp_path, ("a red circle", "two blue squares at the top"))
    tiny = ["--out", str(tmp_path), "--hidden", "32", "--layers", "1", "--heads", "2",
            "--vocab", "300", "--batch-tokens", "1000", "--eval-every", "0"]
    assert train.main(tiny + ["--steps", "50", "--deadline", str(time.time() - 60)]) == 0
    # A deadline already past leaves at most the one step begun before the clock is read.
    assert torch.load(tmp_path / "state.pt", weights_only=False)["step"] <= 1


def test_no_evaluation_request_is_a_wrapped_request():
    """The training-only wrappers must not be templates the held-out split measures."""
    import re

    from world.planning.evaluate import load_cases
    from training.planner_data import IMPERATIVE_WRAPPERS, REQUEST_WRAPPERS

    patterns = [re.compile(re.escape(w).replace(r"\{\}", ".+"), re.IGNORECASE)
                for w in REQUEST_WRAPPERS + IMPERATIVE_WRAPPERS]
    requests = [c.request for c in load_cases(CASES) if c.split == "heldout"]
    assert len(requests) > 150
    wrapped = [(r, p.pattern) for r in requests for p in patterns if p.fullmatch(r)]
    assert wrapped == []


def test_wrapping_keeps_what_a_request_asks():
    import numpy as np

    from training.planner_data import _imperative_words, wrap_request

    words = _imperative_words()
    assert {"make", "remove", "please", "shrink", "draw"} <= words and "the" not in words
    rng = np.random.default_rng(0)
    commands = [wrap_request("Make the red ball blue.", rng, words) for _ in range(300)]
    statements = [wrap_request("the ball should be blue", rng, words) for _ in range(300)]
    assert "Make the red ball blue." in commands and "would you make the red ball blue?" in commands
    assert all("red ball blue" in c for c in commands)
    # A statement never lands in a command's frame ("would you the ball should be ...").
    assert not any(s.startswith(("would you", "go ahead", "try to")) for s in statements)
    assert 0.3 < sum(s != "the ball should be blue" for s in statements) / 300 < 0.5


def test_training_pairs_paste_references_on_varied_pictures():
    from training.planner_data import build_pairs

    pairs = build_pairs(7)
    compose = [(p, r) for p, r in pairs if '"op":"compose"' in r]
    # make_planner_cases' four compose requests, plus most of the twelve on sampled pictures.
    assert len(compose) >= 10
    assert len({p for p, _ in compose}) == len(compose)


def test_decoding_under_the_schema_always_gives_a_reply_the_schema_accepts(monkeypatch):
    """Whatever the request, the local model's structured reply is JSON of the plan's schema
    (planners/local.py): odd requests included, where free decoding can wander."""
    pytest.importorskip("xgrammar")
    from planners.context import PlanningContext
    from planners.llm import LLMPlanner
    from planners.plan import PlanError
    from planners.providers import chat_model
    from world.planning.notes import llm_options

    assert LLMPlanner(chat_model(f"hf:{MODEL}"), **llm_options()).structured_model is None
    monkeypatch.setenv("ATELIER_LLM_DECODING", "schema")
    planner = LLMPlanner(chat_model(f"hf:{MODEL}"), **llm_options())
    assert planner.structured_model is not None
    for request in ("asdf qwerty zxcv", "a lighthouse at dusk, then add a sailboat",
                    "make it look nicer", "three apples in a row " * 6):
        messages = planner.messages(PlanningContext(request=request))
        out = planner.structured_model.invoke(messages)
        assert out["parsing_error"] is None and isinstance(out["parsed"], dict), request
        data = out["parsed"]
        assert data["action"] in ("run", "undo", "redo", "clarify") and "rationale" in data
        if data["action"] == "run":
            # Every step names a registered (or planner-only) operation with its own fields.
            for step in data["steps"]:
                assert step["op"] in planner.shown_operations, (request, step)
        try:
            planner.plan(request)
        except PlanError:
            pass  # a reply the session cannot use (an image it does not have) may stay wrong
        # but never for its form: the first reply always parses as a plan.
        assert not any("JSON" in p or "not a plan" in p
                       for p in planner.attempts[0].problems), planner.attempts[0].problems
