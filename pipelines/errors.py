"""The two ways an operation fails: the caller's input, or the models it needs."""
from __future__ import annotations


class InputError(ValueError):
    """An argument or input image the caller can fix. `argument` names it; the message says
    what is wrong and what to do. A planner gets these back as observations."""

    def __init__(self, argument: str, message: str):
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class ModelUnavailable(RuntimeError):
    """A configured model is missing or cannot serve an operation; the message says which
    and how to get or choose one. `role` names the model's role (base, edit, ...) when one
    is to blame."""

    def __init__(self, message: str, role: str | None = None):
        super().__init__(message)
        self.role = role


class NotOnThisFamily(ModelUnavailable):
    """An operation the base model's family does not run (its loop is written for another);
    the message names the family and what does run on it."""
