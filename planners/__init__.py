"""Planners: turn a request into a typed Plan of conditioning steps.

- `InstructionPlanner`: offline, for any picture: a request becomes one generate or one
  instruction edit (planners/instructions.py). A domain brings a planner that reads its own
  words (the shapes world's rule grammar, world/planning/rules/).
- `LLMPlanner`: any LangChain chat model (planners/llm.py); `chat_model("ollama:M")` builds
  one from an option (planners/providers.py); `CassetteChatModel` records and replays it.

Import the heavier pieces from their modules; this package imports nothing at import time.
"""
from __future__ import annotations

__all__ = ["Plan", "Step", "ExemplarQuery", "NotUnderstood", "PlanError", "PlanningFailed",
           "PlannerUnavailable", "PlanningContext", "InstructionPlanner", "LLMPlanner", "validate_plan"]

_WHERE = {"Plan": "plan", "Step": "plan", "ExemplarQuery": "plan", "NotUnderstood": "plan",
          "PlanError": "plan", "PlanningFailed": "plan", "validate_plan": "plan",
          "PlannerUnavailable": "plan",
          "PlanningContext": "context", "InstructionPlanner": "instructions",
          "LLMPlanner": "llm"}


def __getattr__(name: str):
    # Lazy, so `atelier --help` and the agent can import planners without paying for
    # langchain until they plan.
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
