"""Atelier's agent: turns plain-language requests into plans and runs them.

    api.py        the Python API (`Atelier`), which builds each part once
    domains/      what is particular to a kind of picture, found by name
    turn/         the turn loop: plan, run, check, correct
    sessions/     sessions and their store
    engines/      scripted runs, batched or on Ray
    interfaces/   the command line, the web page, LangChain tools
    reports/      terminal lines, contact sheets and HTML reports
    config.py, errors.py   paths and settings; the errors a user sees
"""


def __getattr__(name: str):
    # `from agent import Atelier` without importing the API (and what it needs) up front.
    if name == "Atelier":
        from agent.api import Atelier
        return Atelier
    raise AttributeError(f"module 'agent' has no attribute {name!r}")
