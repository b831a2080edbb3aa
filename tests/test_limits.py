"""Limits with defaults and clear errors: steps per plan, images per step, image sides,
corrections and re-plans per turn, and every LLM call's time limit with bounded retries and
backoff. The LLM is a scripted chat model that can be slow, refuse connections or fail; the
rest are the real classes, with turns run on `WorldRunner` (tests/world_runner.py)."""
from __future__ import annotations

import json
import time

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ValidationError
from world_runner import WorldRunner

from agent.api import Atelier
from agent.turn.orchestrator import Limits
from planners.llm import CALL_RETRIES, CALL_TIMEOUT_S, LLMPlanner, is_transient
from planners.plan import Plan, PlannerUnavailable, Step

GOOD = {"rationale": "one red circle", "action": "run",
        "steps": [{"op": "generate", "args": {"prompt": "a red circle"}}]}


class APIConnectionError(Exception):
    """Named like the provider packages' own (openai.APIConnectionError)."""


class FlakyChat(BaseChatModel):
    """Each call does what the script says, in order (the last step repeats): a number is
    seconds to wait before replying with `reply`, an exception is raised."""

    script: list
    reply: str = json.dumps(GOOD)
    calls: list = []

    @property
    def _llm_type(self) -> str:
        return "flaky"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.calls.append(time.perf_counter())
        action = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(action, BaseException):
            raise action
        time.sleep(action)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])


def planner(script, **options) -> tuple[LLMPlanner, FlakyChat]:
    model = FlakyChat(script=script)
    settings = {"timeout": 0.3, "retries": 2, "backoff": 0.01, **options}
    return LLMPlanner(model, examples=[], **settings), model


def test_defaults_are_bounded():
    planner_, _ = planner([0.0], timeout=CALL_TIMEOUT_S, retries=CALL_RETRIES)
    assert 0 < planner_.timeout <= 300 and 0 < planner_.retries <= 5 and planner_.repairs == 1
    limits = Limits()
    assert (limits.max_steps, limits.max_corrections, limits.replans, limits.max_side,
            limits.max_images) == (8, 3, 1, 1024, 4)


def test_a_slow_reply_is_abandoned_and_retried(tmp_path):
    planner_, model = planner([5.0, 0.0])
    started = time.perf_counter()
    plan = planner_.plan("a red circle")
    assert plan.steps[0].args.prompt == "a red circle"
    assert len(model.calls) == 2 and time.perf_counter() - started < 2.0


def test_a_model_that_never_answers_fails_after_bounded_tries_with_the_fix():
    planner_, model = planner([30.0])
    started = time.perf_counter()
    with pytest.raises(PlannerUnavailable) as caught:
        planner_.plan("a red circle")
    elapsed = time.perf_counter() - started
    assert len(model.calls) == 3 and elapsed < 3.0  # 3 x 0.3 s, plus 0.01 + 0.02 s of backoff
    message = str(caught.value)
    assert "after 3 tries" in message and "no reply within 0.3 s" in message
    assert "check that its server is running" in message and "\n" not in message


def test_connection_errors_are_retried_with_growing_waits():
    refused = ConnectionRefusedError(111, "Connection refused")
    planner_, model = planner([refused, APIConnectionError("reset by peer"), 0.0],
                              backoff=0.2)
    plan = planner_.plan("a red circle")
    assert isinstance(plan, Plan) and len(model.calls) == 3
    first, second = model.calls[1] - model.calls[0], model.calls[2] - model.calls[1]
    # 0.2 s, then twice that (the upper bounds leave room for a busy machine)
    assert 0.2 <= first < 0.9 and 0.4 <= second < 1.5


def test_errors_a_retry_cannot_cure_are_raised_at_once():
    planner_, model = planner([ValueError("model 'gpt-9' does not exist")])
    with pytest.raises(ValueError, match="gpt-9"):
        planner_.plan("a red circle")
    assert len(model.calls) == 1
    assert not is_transient(ValueError("x")) and is_transient(TimeoutError())
    assert is_transient(APIConnectionError()) and is_transient(ConnectionResetError())


def test_retries_zero_means_one_try():
    planner_, model = planner([ConnectionError("down")], retries=0)
    with pytest.raises(PlannerUnavailable, match="after 1 tries"):
        planner_.plan("a red circle")
    assert len(model.calls) == 1


@pytest.mark.parametrize("options, problem", [
    ({"timeout": 0}, "timeout must be a positive number"),
    ({"timeout": -1}, "timeout must be a positive number"),
    ({"retries": 11}, "retries must be 0..10"),
    ({"retries": -1}, "retries must be 0..10"),
    ({"backoff": 100}, "backoff must be 0..30"),
])
def test_bad_llm_settings_are_named(options, problem):
    with pytest.raises(ValueError, match=problem):
        planner([0.0], **options)


def test_an_unreachable_llm_fails_the_turn_and_the_session_goes_on(tmp_path):
    with Atelier(home=tmp_path, models=WorldRunner(), retriever=None) as atelier:
        atelier.session("s").ask("a red circle at the top left", seed=1)
    down, model = planner([ConnectionRefusedError(111, "Connection refused")], retries=1)
    with Atelier(home=tmp_path, planner=down, models=WorldRunner(), retriever=None) as atelier:
        result = atelier.session("s").ask("make the circle green", seed=2)
    assert not result.ok and result.error_kind == "llm"
    assert "ConnectionRefusedError" in result.error and "plan without --llm" in result.error
    assert len(model.calls) == 2  # one call and one retry; no re-plan of an unreachable LLM
    with Atelier(home=tmp_path, models=WorldRunner(), retriever=None) as atelier:
        session = atelier.session("s")
        assert [t.ok for t in session.history()] == [True, False]
        assert session.current.id == "img_1"
        assert session.ask("make the circle green", seed=2).ok


def test_replans_and_repairs_bound_the_llm_calls_of_a_turn(tmp_path):
    bad = FlakyChat(script=[0.0], reply=json.dumps({"rationale": "?", "steps": [
        {"op": "teleport", "args": {}}]}))
    llm = LLMPlanner(bad, examples=[], timeout=1.0, retries=0)
    with Atelier(home=tmp_path, planner=llm, models=WorldRunner(), retriever=None,
                 limits=Limits(replans=1)) as atelier:
        result = atelier.session("s").ask("a red circle")
    assert not result.ok and "teleport" in result.error
    assert len(bad.calls) == 4  # (1 call + 1 repair) x (1 plan + 1 re-plan)


def test_corrections_are_bounded_per_step(tmp_path):
    # Asked for red, the runner draws purple: every attempt fails its check.
    runner = WorldRunner(palette={"red": "purple"})
    with Atelier(home=tmp_path, models=runner, retriever=None,
                 limits=Limits(max_corrections=2, replans=0)) as atelier:
        result = atelier.session("s").ask("a red circle", seed=1)
    assert result.ok and result.checks_passed is False and len(runner.calls) == 3


@pytest.mark.parametrize("limits, steps, problem", [
    (Limits(), [{"op": "generate", "args": {"prompt": "a red circle", "num_images": 5}}],
     "num_images=5 is above the limit of 4"),
    (Limits(max_side=256), [{"op": "generate", "args": {"prompt": "a red circle",
                                                         "width": 512}}],
     "width=512 is above the 256 pixel limit"),
    (Limits(max_steps=1), [{"op": "generate", "args": {"prompt": "a red circle"}}] * 2,
     "the plan has 2 steps; at most 1 are allowed"),
])
def test_plans_beyond_the_limits_are_refused_with_the_limit_named(tmp_path, limits, steps,
                                                                   problem):
    plan = Plan.model_validate({"rationale": "r", "steps": steps})
    with Atelier(home=tmp_path, models=WorldRunner(), retriever=None, limits=limits) as atelier:
        result = atelier.session("s").run_plan(plan)
        assert atelier.session("s").images() == []
    assert not result.ok and problem in result.error


def test_limits_themselves_are_checked():
    for bad, problem in ((dict(max_steps=0), "max_steps must be at least 1"),
                         (dict(max_side=0), "max_side must be at least 1"),
                         (dict(max_corrections=11), "max_corrections must be 0..10"),
                         (dict(replans=4), "replans must be 0..3")):
        with pytest.raises(ValueError, match=problem):
            Limits(**bad)


def test_the_plan_schema_has_its_own_ceilings():
    with pytest.raises(ValidationError, match="at most 16"):
        Plan(rationale="r", steps=[Step(op="generate", args={"prompt": "x"})] * 17)
    with pytest.raises(ValidationError, match="200"):
        Step(op="generate", args={"prompt": "x", "steps": 201})
    with pytest.raises(ValidationError, match="2048"):
        Step(op="generate", args={"prompt": "x", "width": 4096})


def test_the_llm_call_timeout_comes_from_the_environment(monkeypatch):
    from agent.api import make_planner
    from agent.domains import get_domain
    from agent.errors import UsageError

    chat, shapes = FlakyChat(script=[]), get_domain("shapes")
    assert make_planner(chat, shapes).timeout == CALL_TIMEOUT_S
    monkeypatch.setenv("ATELIER_LLM_TIMEOUT", "7.5")
    assert make_planner(chat, shapes).timeout == 7.5
    for bad in ("0", "-3", "soon", "inf", "nan"):
        monkeypatch.setenv("ATELIER_LLM_TIMEOUT", bad)
        with pytest.raises(UsageError, match="ATELIER_LLM_TIMEOUT.*positive number of seconds"):
            make_planner(chat, shapes)
