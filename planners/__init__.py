"""Planners: turn a request into a typed Plan of conditioning steps.

- `RulePlanner`: deterministic, offline, the default (planners/rules.py).
- `LLMPlanner`: any LangChain chat model (planners/llm.py); `chat_model("ollama:M")` builds
  one from an option (planners/providers.py); `CassetteChatModel` records and replays it.

Import the heavier pieces from their modules; this package imports nothing at import time.
"""
from __future__ import annotations

__all__ = ["Plan", "Step", "ExemplarQuery", "NotUnderstood", "PlanError", "PlanningFailed",
           "PlannerUnavailable", "PlanningContext", "RulePlanner", "LLMPlanner", "validate_plan"]

_WHERE = {"Plan": "plan", "Step": "plan", "ExemplarQuery": "plan", "NotUnderstood": "plan",
          "PlanError": "plan", "PlanningFailed": "plan", "validate_plan": "plan",
          "PlannerUnavailable": "plan",
          "PlanningContext": "context", "RulePlanner": "rules", "LLMPlanner": "llm"}


def __getattr__(name: str):
    # Lazy, so `atelier --help` and the agent can import planners without paying for
    # langchain or the world's vocabulary until they plan.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
