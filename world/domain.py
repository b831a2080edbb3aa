"""The shapes world as a domain (agent/domains): its rule planner, what the LLM planner is told,
its checker and grounding tool (the world's detector), its corrections and its demo."""
from __future__ import annotations

from agent.domains import Domain


def _rule_planner():
    from .planning.rules import RulePlanner

    return RulePlanner()


def _llm_options() -> dict:
    from .planning.notes import llm_options

    return llm_options()


def _checker(runner):
    from .checking import WorldChecker

    return WorldChecker()


def _grounder(config):
    from .grounding import WorldGrounder

    return WorldGrounder()


def _scene_reading(data: dict):
    from .planning.scenes import reading_from_json

    return reading_from_json(data)


def _caption(data: dict) -> str:
    from .captions import caption
    from .scene import Scene

    return caption(Scene.from_dict(data))


def _corrections():
    from .correcting import WorldCorrections

    return WorldCorrections()


def _demo_collection():
    from . import demo_collection

    return demo_collection


def domain() -> Domain:
    return Domain(
        name="shapes", description="the embedded shapes world (world/WORLD.md) and its shipped models",
        rule_planner=_rule_planner, llm_options=_llm_options, checker=_checker,
        grounder=_grounder, scene_reading=_scene_reading, caption=_caption,
        corrections=_corrections, extras={"demo_collection": _demo_collection})
