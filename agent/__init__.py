"""Atelier's agent: turns plain-language requests into plans and runs them."""


def __getattr__(name: str):
    # `from agent import Atelier` without importing the API (and what it needs) up front.
    if name == "Atelier":
        from agent.api import Atelier
        return Atelier
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
