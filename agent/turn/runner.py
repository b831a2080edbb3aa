"""Running one operation: the seam between the orchestrator and the models.

The orchestrator asks a `StepRunner` to run one operation with typed arguments, the input
images and a seed, and gets a `pipelines.base.StepResult` back. `PipelineRunner` is the real
one, over the pipelines' adapters sharing one `ModelSet`. Anything else with the same two
methods (a remote worker, a test's renderer) plugs in here; one that also has `batch_key` and
`run_batch` lets agent.engines.batching serve several sessions' calls in one pipeline call.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pipelines.base import StepInputs, StepResult
    from pipelines.models import ModelConfig, ModelSet
    from pipelines.spec import OpArgs


class StepRunner(Protocol):
    def run(self, op: str, args: "OpArgs", inputs: "StepInputs", seed: int) -> "StepResult":
        """Run `op`; every bit of randomness comes from `seed`."""

    def model_ids(self) -> dict[str, str]:
        """The models by role ({"base": "shapes-sd", ...}), as saved images record them."""


def model_id(reference: str) -> str:
    """A model as images name it: a local folder by its name, a hub id as it is."""
    path = Path(reference).expanduser()
    return path.name if path.is_dir() else reference


class PipelineRunner:
    """Runs operations on the pipelines' adapters, all built on one ModelSet."""

    def __init__(self, models: "ModelSet"):
        from pipelines.once import OnceMap

        self.models = models
        self._adapters = OnceMap()
        # One model call at a time: a pipeline keeps each call's state (the scheduler's
        # timesteps and step index, attention processors swapped in) on objects every call
        # shares, so two calls at once from two threads would step on each other.
        self._calls = threading.Lock()

    @classmethod
    def from_config(cls, config: "ModelConfig") -> "PipelineRunner":
        from pipelines.models import ModelSet

        return cls(ModelSet(config))

    @property
    def domain(self) -> str | None:
        return self.models.config.domain

    def operations(self) -> tuple[str, ...]:
        return self.models.operations()

    def warm_up(self) -> None:
        """Load the base and edit models now rather than in the first turn."""
        self.models.base()
        if self.models.config.edit is not None:
            self.models.edit()

    def run(self, op: str, args: "OpArgs", inputs: "StepInputs", seed: int) -> "StepResult":
        adapter = self._adapter(op)
        with self._calls:
            return adapter.run(args.model_copy(update={"seed": seed}), inputs)

    def batch_key(self, op: str, args: "OpArgs", inputs: "StepInputs"):
        """Calls with equal keys may run as one batched call (`run_batch`); None: alone."""
        key = self._adapter(op).batch_key(args, inputs)
        return None if key is None else (op, key)

    def run_batch(self, op: str, calls: list[tuple["OpArgs", "StepInputs", int]]
                  ) -> list["StepResult"]:
        """`run` for each (args, inputs, seed), as one batched pipeline call."""
        adapter = self._adapter(op)
        with self._calls:
            return adapter.run_batch([(args.model_copy(update={"seed": seed}), inputs)
                                      for args, inputs, seed in calls])

    def _adapter(self, op: str):
        from pipelines.registry import build_adapter

        return self._adapters.get(op, lambda: build_adapter(op, self.models))

    def model_ids(self) -> dict[str, str]:
        config = self.models.config
        roles = {"base": config.base, "edit": config.edit, "clip": config.clip,
                 "ip_adapter": config.ip_adapter, "controlnet": config.controlnet}
        return {role: model_id(ref) for role, ref in roles.items() if ref}
