"""`atelier demo`: a first run on the shipped shapes-world models."""
from __future__ import annotations

import argparse

from agent.config import models_dir
from agent.errors import AtelierError

# Each shipped model folder and the file that shows it is complete.
REQUIRED_MODELS = {
    "shapes-sd": "model_index.json",
    "shapes-clip": "open_clip_config.json",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="check that the shipped models are in place (a demonstration run on them is coming)",
    )
    parser.set_defaults(func=run_demo)


def check_shipped_models() -> None:
    root = models_dir()
    missing = [name for name, marker in REQUIRED_MODELS.items()
               if not (root / name / marker).is_file()]
    if missing:
        raise AtelierError(
            f"missing model folders in {root}: {', '.join(missing)}; they come with Atelier's "
            "embedded models in the models/ folder of the source tree "
            "(or set ATELIER_MODELS to a folder that holds them)"
        )


def run_demo(args: argparse.Namespace) -> int:
    """Check the shipped models; the demonstration run on them comes after this check."""
    check_shipped_models()
    print(f"shipped models found in {models_dir()}: {', '.join(REQUIRED_MODELS)}")
    return 0
