"""Domains: what is particular to a kind of picture, kept out of the core.

A `Domain` bundles the offline planner and its lexicon, what the LLM planner is told (notes,
worked examples, planner-only operations), the checker and what it reads from images, the
grounding tool, the corrections that need a reader, and the demo. The core (agent, planners,
pipelines, retrieval, index) asks for a domain by name and imports none: domains register
under the `atelier.domains` entry-point group (pyproject.toml), as pytest finds its plugins.

    shapes   the embedded shapes world (world/domain.py), the shipped models' domain
    general  any other model set (agent/domains/general.py)

A model set declares its domain (`ModelConfig.domain`, a runner's `domain`); a set that
declares none is `general`. `--domain`, ATELIER_DOMAIN and `Atelier(domain=...)` override it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

from agent.errors import UsageError

GROUP = "atelier.domains"
DEFAULT = "general"


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    # The offline planner (no LLM): () -> planner.
    rule_planner: Callable[[], Any]
    # LLMPlanner's keyword arguments: domain_notes, examples, planner_operations.
    llm_options: Callable[[], dict] = dict
    # The checker for a model set: (runner getter) -> agent.turn.checks.Checker.
    checker: Callable[[Callable[[], Any]], Any] | None = None
    # The grounding tool operations find objects with: (ModelConfig or None) ->
    # pipelines.grounding.Grounder, or None where the set gives it nothing to see with.
    grounder: Callable[[Any], Any] | None = None
    # A stored scene (what the checker's reader wrote) -> planners.context.SceneReading, and
    # its caption in words.
    scene_reading: Callable[[dict], Any] | None = None
    caption: Callable[[dict], str] | None = None
    # What the corrector may switch a failing step to: () -> agent.correct.Corrections.
    corrections: Callable[[], Any] | None = None
    # Said in every turn's report where the domain checks less than a reader could.
    checks_notice: str = ""
    # Anything else a domain's own commands use (the demo's turns and collection).
    extras: dict = field(default_factory=dict)

    def make_checker(self, runner: Callable[[], Any]):
        from agent.turn.checks import NoChecker

        return self.checker(runner) if self.checker is not None else NoChecker()

    def make_grounder(self, config: Any = None):
        return self.grounder(config) if self.grounder is not None else None


def available() -> dict[str, Any]:
    """Registered domains by name (entry points, not yet loaded)."""
    return {point.name: point for point in entry_points(group=GROUP)}


def get_domain(name: str) -> Domain:
    points = available()
    point = points.get(name)
    if point is None:
        known = ", ".join(sorted(points)) or "none (is Atelier installed with pip install -e .?)"
        raise UsageError(f"domain {name!r} is not known; the domains are: {known}")
    try:
        loaded = point.load()
    except ImportError as error:
        raise UsageError(f"domain {name!r} cannot be loaded ({error}); reinstall Atelier or "
                         "choose another --domain") from None
    domain = loaded() if callable(loaded) and not isinstance(loaded, Domain) else loaded
    if not isinstance(domain, Domain):
        raise UsageError(f"domain {name!r} ({point.value}) is not a Domain")
    return domain


def choose(requested: str | None, declared: str | None = None) -> str:
    """The domain's name: the one asked for, else ATELIER_DOMAIN, else the one the model set
    declares, else general."""
    if requested:
        return requested
    if os.environ.get("ATELIER_DOMAIN", "").strip():
        return os.environ["ATELIER_DOMAIN"].strip()
    return declared or DEFAULT
