"""`atelier ops` lists the conditioning operations; `atelier op NAME ...` runs one directly,
without a planner (expert mode)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from agent.interfaces.commands.run import add_domain_option
from agent.errors import AtelierError, UsageError

# Ids the command line gives the image files it is handed, when the arguments name none.
REFERENCE_ID = "ref_1"
MASK_ID = "img_1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def register(subparsers: argparse._SubParsersAction) -> None:
    listing = subparsers.add_parser(
        "ops", help="list the conditioning operations with their arguments and defaults")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(func=list_command)

    op = subparsers.add_parser(
        "op", help="run one operation directly, without a planner",
        description="Run one conditioning operation. Example: atelier op generate "
                    "--set prompt=\"a red circle at the top left\" --seed 1 --out a.png")
    op.add_argument("name", metavar="NAME", help="operation name (see `atelier ops`)")
    op.add_argument("--image", type=Path, metavar="PATH", help="the current image")
    op.add_argument("--mask", type=Path, metavar="PATH",
                    help=f"mask image, white where to repaint; the target when none is set "
                         f"(its id is {MASK_ID})")
    op.add_argument("--reference", type=Path, metavar="PATH",
                    help=f"reference image; the reference when none is set "
                         f"(its id is {REFERENCE_ID})")
    op.add_argument("--args", metavar="JSON", help="arguments as one JSON object")
    op.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                    help="one argument (repeatable); VALUE is read as JSON when it parses, "
                         "else as text")
    op.add_argument("--seed", type=int, help="same seed, same image (default: a new one, printed)")
    op.add_argument("--model-base", metavar="PATH_OR_ID",
                    help="text-to-image model folder or hub id (default: the shipped shapes-sd)")
    op.add_argument("--model-edit", metavar="PATH_OR_ID",
                    help="InstructPix2Pix model folder or hub id "
                         "(default: the shipped shapes-ip2p)")
    op.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: the best available)")
    op.add_argument("--dtype", choices=("float16", "bfloat16", "float32"),
                    help="default: float16 on CUDA, float32 elsewhere")
    op.add_argument("--out", type=Path, required=True, metavar="FILE",
                    help="image file to write; with several images, FILE-1, FILE-2, ...")
    add_domain_option(op)
    op.set_defaults(func=op_command)


def list_command(args: argparse.Namespace) -> int:
    from pipelines.spec import OPERATIONS, describe_arguments

    if args.json:
        print(json.dumps([{"name": spec.name, "description": spec.description,
                           "needs": sorted(spec.needs), "arguments": describe_arguments(spec)}
                          for spec in OPERATIONS.values()], indent=2))
        return 0
    for spec in OPERATIONS.values():
        print(f"{spec.name}: {spec.description}")
        print(f"    needs: {', '.join(sorted(spec.needs)) or 'nothing'}")
        for row in describe_arguments(spec):
            value = f" = {row['default']!r}" if "default" in row else ", required"
            about = f"  ({row['description']})" if row["description"] else ""
            print(f"    {row['name']}: {row['type']}{value}{about}")
    return 0


def op_command(args: argparse.Namespace) -> int:
    from pipelines.spec import OPERATIONS, explain
    from pydantic import ValidationError

    # 1. Arguments, checked before anything heavy is imported or loaded
    spec = OPERATIONS.get(args.name)
    if spec is None:
        raise UsageError(f"unknown operation {args.name!r}; known: {', '.join(OPERATIONS)}")
    values = parse_arguments(args.args, args.settings)
    if args.seed is not None:
        values["seed"] = args.seed
    fields = spec.args_schema.model_fields
    for flag, path, field in (("--reference", args.reference, "reference"),
                              ("--mask", args.mask, "target")):
        if path is not None and field not in fields:
            raise UsageError(f"{flag}: {spec.name} takes no {field}; drop {flag}")
    if args.reference is not None:
        values.setdefault("reference", REFERENCE_ID)
    if args.mask is not None:
        values.setdefault("target", MASK_ID)
        target = values["target"]
        if not isinstance(target, str) or not target.startswith(("img_", "ref_")):
            raise UsageError("--mask and a target were both given; drop one")
    try:
        step_args = spec.validate(values)
    except ValidationError as error:
        raise UsageError(explain(error)) from None
    if "image" in spec.needs and args.image is None:
        raise UsageError(f"{spec.name} works on an image; give it with --image PATH")
    if "reference" in spec.needs and args.reference is None:
        raise UsageError(f"{spec.name} needs a reference image; give it with --reference PATH")
    check_out(args.out)

    # 2. Images
    from agent.sessions.image_files import open_rgb
    from pipelines.base import StepInputs

    references = {}
    if args.reference is not None:
        references[step_args.reference] = open_rgb(args.reference)
    mask = open_rgb(args.mask) if args.mask is not None else None
    image = open_rgb(args.image) if args.image else None
    if mask is not None and image is not None and mask.size != image.size:
        # Checked before any model loads: a mismatch is the user's to fix, not the model's.
        raise UsageError(f"--mask {args.mask} is {mask.width}x{mask.height} but --image "
                         f"{args.image} is {image.width}x{image.height}; give a mask of the "
                         "same size, white where to repaint")
    inputs = StepInputs(image=image, mask=mask, references=references)

    # 3. Models and the run
    result = run_operation(args, spec.name, step_args, inputs)

    # 4. Files
    paths = output_paths(args.out, len(result.images))
    for image, path in zip(result.images, paths):
        image.save(path)
    print(f"wrote {', '.join(str(p) for p in paths)} (seed {result.seed}, "
          f"{result.timings.get('total', 0.0):.1f} s)")
    return 0


def run_operation(args: argparse.Namespace, name: str, step_args, inputs):
    from dataclasses import replace

    from agent.api import model_config
    from agent.config import models_dir, models_file
    from agent.domains import choose, get_domain
    from pipelines.errors import InputError, ModelUnavailable, NotOnThisFamily
    from pipelines.models import ModelConfig, ModelSet
    from pipelines.registry import build_adapter

    quiet_libraries()
    files = {"image": args.image, "reference": args.reference, "target": args.mask}
    try:
        model_file = args.models or models_file()
        if model_file is not None:
            config = replace(model_config(model_file), **{k: v for k, v in (
                ("base", args.model_base), ("edit", args.model_edit), ("device", args.device),
                ("dtype", args.dtype)) if v is not None})
        else:
            config = ModelConfig.shipped(models_dir(), base=args.model_base,
                                         edit=args.model_edit, device=args.device,
                                         dtype=args.dtype)
            if args.model_base or args.model_edit:
                config = replace(config, domain=None)  # not the shipped models' world any more
        domain = get_domain(choose(args.domain, config.domain))
        return build_adapter(name, ModelSet(config, domain.make_grounder(config))).run(
            step_args, inputs)
    except InputError as error:
        path = files.get(error.argument)
        raise UsageError(f"{path}: {error}" if path else str(error)) from None
    except NotOnThisFamily as error:
        raise UsageError(str(error)) from None   # another operation runs; the line names them
    except ModelUnavailable as error:
        flag = {"base": "--model-base", "edit": "--model-edit"}.get(error.role)
        raise AtelierError(f"{error} (with {flag} PATH_OR_ID)" if flag else str(error)) from None


def parse_arguments(text: str | None, settings: list[str]) -> dict:
    values = {}
    if text:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"--args is not valid JSON ({error.msg} at column {error.colno}); "
                             "give one object, e.g. '{\"prompt\": \"a red circle\"}'") from None
        if not isinstance(values, dict):
            raise UsageError("--args must be a JSON object, e.g. '{\"prompt\": \"a red circle\"}'")
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {setting!r} is not KEY=VALUE; e.g. --set steps=30")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw  # plain text, e.g. prompt=a red circle
    return values


def check_out(out: Path) -> None:
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"--out {out}: give a file name ending in {', '.join(IMAGE_SUFFIXES)}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist; create it first")


def output_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(1, count + 1)]


def quiet_libraries() -> None:
    """The command prints its own one-line results; library progress bars and advice would
    bury them."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
