"""`atelier models check FILE`: load every part of a model set and say what each operation
will use, or one line for each part that is wrong."""
from __future__ import annotations

import argparse
from pathlib import Path

from agent.errors import AtelierError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="check a model set (a TOML model file)")
    commands = parser.add_subparsers(dest="models_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check", help="load each part of a model file and print what it found",
        description="Load each part a model file names (base, edit, inpaint, clip, detector, "
                    "segmenter, controlnet, ip_adapter) and print its family, size and dtype, "
                    "and what each operation will run on; a part that is wrong is one line "
                    "saying why, and the command exits with 1.")
    check.add_argument("file", type=Path, metavar="FILE", help="the model file (TOML)")
    check.set_defaults(func=check_command)


def check_command(args: argparse.Namespace) -> int:
    from agent.api import model_set_file
    from agent.domains import choose, get_domain
    from pipelines.models import ModelSet

    from agent.interfaces.commands.ops import quiet_libraries

    config = model_set_file(args.file)      # a file that does not read is a usage error
    quiet_libraries()
    # With its domain's grounding tool, as every command runs the set.
    models = ModelSet(config, get_domain(choose(None, config.domain)).make_grounder(config))
    print(f"model file {args.file}: device {models.device.type}, dtype "
          f"{str(models.dtype).removeprefix('torch.')}"
          + (", offloaded to the CPU between calls" if config.cpu_offload else ""))
    found, wrong = {}, []
    for role, check in PART_CHECKS:
        reference = getattr(config, role)
        if reference is None:
            continue
        try:
            found[role] = check(models)
        except Exception as error:  # noqa: BLE001  (each part says what is wrong with it)
            wrong.append(role)
            print(f"{role}: {reference}: WRONG: {one_line(error)}")
            continue
        print(f"{role}: {reference}: {found[role]}")
    if "base" in found:
        for line in operation_lines(models, wrong):
            print(line)
    if wrong:
        raise AtelierError(f"{len(wrong)} part(s) of {args.file} are wrong: {', '.join(wrong)}")
    return 0


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:400] or type(error).__name__


def parameters(module) -> str:
    count = sum(p.numel() for p in module.parameters())
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def check_base(models) -> str:
    from pipelines.families import family_of, native_size, size_multiple

    pipe = models.base()
    family = family_of(pipe)
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    encoders = [getattr(pipe, name) for name in ("text_encoder", "text_encoder_2",
                                                 "text_encoder_3")
                if getattr(pipe, name, None) is not None]
    return (f"{family.name} ({type(pipe).__name__}): {type(denoiser).__name__} "
            f"{parameters(denoiser)} parameters, {len(encoders)} text encoder(s) "
            f"{' + '.join(parameters(e) for e in encoders)}, native {native_size(pipe)} px, "
            f"sizes in multiples of {size_multiple(pipe)}, {family.steps} steps and guidance "
            f"{family.guidance:g} by default"
            + (" (guidance-distilled)" if family.distilled_guidance else "")
            + f", dtype {str(denoiser.dtype).removeprefix('torch.')}")


def check_edit(models) -> str:
    from pipelines.families import family_of

    pipe = models.edit()
    return (f"InstructPix2Pix ({type(pipe).__name__}) on {family_of(pipe).name}, UNet "
            f"{parameters(pipe.unet)} parameters")


def check_inpaint(models) -> str:
    from pipelines.families import family_of

    pipe = models.inpainting()
    denoiser = getattr(pipe, "unet", None) or pipe.transformer
    return (f"inpainting checkpoint ({type(pipe).__name__}) on {family_of(pipe).name}, "
            f"{type(denoiser).__name__} taking {denoiser.config.in_channels} input channels")


def check_clip(models) -> str:
    model, _, _ = models.clip()
    return f"open_clip model, {parameters(model)} parameters"


def check_eyes(role: str):
    def check(models) -> str:
        from pipelines.detection import ModelEyes

        eyes = ModelEyes(models.config.detector, models.config.segmenter,
                         device=models.config.device, threshold=models.config.detector_threshold)
        if role == "detector":
            detector = eyes.detector()
            return (f"zero-shot object detector ({type(detector.model).__name__}), threshold "
                    f"{eyes.threshold:g}")
        model, _ = eyes.segmenter()
        return f"promptable segmenter ({type(model).__name__}), prompted with boxes"
    return check


def check_located(role: str, marker: str | None):
    def check(models) -> str:
        from pipelines.models import locate

        where = locate(role, getattr(models.config, role), marker=marker)
        return f"found at {where}; loaded when an operation uses it"
    return check


PART_CHECKS = (
    ("base", check_base), ("edit", check_edit), ("inpaint", check_inpaint),
    ("clip", check_clip), ("detector", check_eyes("detector")),
    ("segmenter", check_eyes("segmenter")), ("controlnet", check_located("controlnet", None)),
    ("ip_adapter", check_located("ip_adapter", None)),
)


def operation_lines(models, wrong: list[str]) -> list[str]:
    """What each operation runs on with this set, or why it refuses (`wrong`: the parts that
    did not load)."""
    config = models.config
    family = models.family()
    missing = models.missing_parts()
    own = family.key == "sd"
    sees = "compose" not in missing      # compose needs nothing but a grounding tool
    eyes = "the detector and segmenter" if config.detector else "the domain's grounding tool"
    lines = ["operations:"]
    uses = {
        "generate": f"the base model ({family.name})",
        "edit": f"the edit model {config.edit}",
        "inpaint": (f"the inpainting checkpoint {config.inpaint}" if config.inpaint
                    else "the base model, a masked sampling loop" if own
                    else f"the base model through {family.name}'s inpainting pipeline"),
        "reference": "the base model, image to image"
                     + (" with the IP-Adapter" if config.ip_adapter else ""),
        "layout": (f"each object drawn by the base model, found by {eyes}" if sees
                   else "one canvas (multidiffusion)"),
        "compose": f"the object found by {eyes}, harmonised by the base model",
        "restore": "the base model" + (", with the data-consistency step" if own else
                                        ", image to image"),
        "invert_edit": "the base model, DDIM inversion and attention control",
    }
    needs = {"edit": ("edit",), "inpaint": ("inpaint",), "layout": ("detector", "segmenter"),
             "compose": ("detector", "segmenter"), "reference": ("ip_adapter",)}
    for name, use in uses.items():
        broken = [role for role in needs.get(name, ()) if role in wrong]
        if name not in family.operations:
            use = f"refused: {family.refuse(name)}"
        elif name in missing:
            use = f"refused: the set has no {missing[name]}"
        elif broken:
            use = f"fails until the {' and '.join(broken)} above is put right"
        lines.append(f"  {name}: {use}")
    return lines
