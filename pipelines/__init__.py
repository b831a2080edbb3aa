"""Pipelines: one adapter per conditioning operation over diffusers, all on one set of weights.

    from pipelines.models import ModelConfig, ModelSet
    from pipelines.registry import build_adapter
    from pipelines.base import StepInputs

    models = ModelSet(ModelConfig.shipped("models"))
    result = build_adapter("generate", models).run({"prompt": "a red circle", "seed": 1})

`pipelines.spec` (names, descriptions, argument schemas) imports neither torch nor weights,
so planners can read it; everything else loads lazily, when an operation first runs.
"""
