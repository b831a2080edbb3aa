"""The pipelines' figures: memory shared across operations, and quality on the shapes world.

    python -m bench.pipelines memory             # peak RSS, all adapters vs text-to-image alone
    python -m bench.pipelines quality [--n 100] [--only inpaint layout restore invert_edit
                                                        one_of_several]

Both run on the shipped models by default (--models DIR, or --base / --edit for others) and
exit 1 with a message when the models are missing. Quality is judged by the world's
detector; each figure is printed against its target and written to bench/results/pipelines.json.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.harness import update_results
from world.grounding import WorldGrounder

TARGET_MEMORY_RATIO = 1.15
TARGET_INPAINT_CHANGE = 0.85
TARGET_INPAINT_OUTSIDE = 2.0    # mean absolute change outside the mask, in 1/255 steps
TARGET_LAYOUT = 0.85
TARGET_RESTORE_GAIN = 0.30      # detector accuracy points gained
TARGET_INVERT_EDIT = 0.70
TOLERANCE = 0.05                # world/WORLD.md: an object kept moves by at most 0.05 of the side


# --- shared ----------------------------------------------------------------------------------

def model_config(args):
    from agent.config import models_dir
    from pipelines.models import ModelConfig

    return ModelConfig.shipped(args.models or models_dir(), base=args.base, edit=args.edit,
                               device=args.device)


def check_models(config) -> str | None:
    """Why the models cannot be used, or None."""
    from pipelines.errors import ModelUnavailable
    from pipelines.models import locate

    try:
        locate("base", config.base)
        locate("edit", config.edit)
    except ModelUnavailable as error:
        return str(error)
    return None


def mark(ok: bool) -> str:
    return "meets target" if ok else "BELOW TARGET"


def same_object(found, wanted, tolerance: float = TOLERANCE) -> bool:
    return (found.shape == wanted.shape and found.color == wanted.color
            and found.size == wanted.size
            and math.hypot(found.x - wanted.x, found.y - wanted.y) <= tolerance)


def scene_is(found, wanted, tolerance: float = TOLERANCE) -> bool:
    """Every wanted object read back, each by a different detected object, and nothing else."""
    if len(found.objects) != len(wanted.objects) or found.background != wanted.background:
        return False
    unused = list(found.objects)
    for obj in wanted.objects:
        match = next((f for f in unused if same_object(f, obj, tolerance)), None)
        if match is None:
            return False
        unused.remove(match)
    return True


def sample_scenes(n: int, seed: int, counts=(1, 2, 3, 4)):
    from world.sample import sample_scene

    rng = np.random.default_rng(seed)
    return rng, [sample_scene(rng, n_objects=int(rng.choice(counts))) for _ in range(n)]


def recolored(scene, index: int, rng):
    from world.scene import COLORS

    obj = scene.objects[index]
    color = str(rng.choice([c for c in COLORS if c != obj.color]))
    objects = list(scene.objects)
    objects[index] = obj.replace(color=color)
    return scene.replace(objects=tuple(objects))


def unique_description(scene, index: int) -> str:
    """The shortest "the ..." that names only this object, ending with its place if needed."""
    obj = scene.objects[index]
    for words in (f"{obj.color} {obj.shape}", f"{obj.size} {obj.color} {obj.shape}"):
        if sum(f"{o.color} {o.shape}" == words or f"{o.size} {o.color} {o.shape}" == words
               for o in scene.objects) == 1:
            return f"the {words}"
    return f"the {obj.size} {obj.color} {obj.shape} at the {obj.row} {obj.column}"


# --- memory ----------------------------------------------------------------------------------

def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in bytes on macOS, KiB on Linux.
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def measure_process(args) -> int:
    """In a fresh process: ready `args.which` adapters, run each once, print the peak RSS."""
    import torch

    from pipelines.base import StepInputs
    from pipelines.models import ModelSet
    from pipelines.registry import ADAPTERS, build_adapter
    from pipelines.families import native_size
    from world.render import render
    from world.scene import Obj, Scene

    models = ModelSet(model_config(args), grounder=WorldGrounder())
    names = ["generate"] if args.which == "text-to-image" else list(ADAPTERS)
    adapters = {name: build_adapter(name, models) for name in names}
    start = time.perf_counter()
    for adapter in adapters.values():
        adapter.ready()
    ready_s = time.perf_counter() - start
    size = native_size(models.base())
    image = render(Scene((Obj("circle", "red", "large", 0.3, 0.3),
                          Obj("square", "blue", "small", 0.7, 0.7))), size)
    inputs = StepInputs(image=image, references={"ref_1": image})
    calls = {
        "generate": {"prompt": "a red circle"},
        "edit": {"instruction": "make the circle green"},
        "inpaint": {"prompt": "a green circle", "target": [[0.1, 0.1, 0.5, 0.5]]},
        "layout": {"objects": [{"phrase": "a red circle", "box": [0.1, 0.1, 0.4, 0.4]}],
                   "method": "multidiffusion", "attention_guidance": 1.0},
        "reference": {"prompt": "a red circle", "reference": "ref_1"},
        "compose": {"reference": "ref_1", "box": [0.5, 0.5, 0.9, 0.9]},
        "restore": {},
        "invert_edit": {"source_prompt": "a red circle", "target_prompt": "a green circle"},
    }
    for name, adapter in adapters.items():
        adapter.run({**calls[name], "steps": 4, "seed": 0}, inputs)
    figures = {"which": args.which, "peak_rss_mb": round(peak_rss_mb(), 1),
               "ready_s": round(ready_s, 2), "device": str(models.device)}
    if models.device.type == "cuda":
        figures["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(json.dumps(figures), flush=True)
    return 0


def memory(args) -> dict:
    """Peak RSS with every adapter ready (and run once) against text-to-image alone, each in
    a fresh process so neither inherits the other's memory."""
    runs = {}
    for which in ("text-to-image", "all"):
        command = [sys.executable, "-m", "bench.pipelines", "_measure", which]
        for flag in ("models", "base", "edit", "device"):
            value = getattr(args, flag)
            if value is not None:
                command += [f"--{flag}", str(value)]
        done = subprocess.run(command, capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1])
        if done.returncode != 0:
            raise RuntimeError(f"measuring {which} failed:\n{done.stderr[-2000:]}")
        runs[which] = json.loads(done.stdout.strip().splitlines()[-1])
    ratio = runs["all"]["peak_rss_mb"] / runs["text-to-image"]["peak_rss_mb"]
    result = {"text_to_image": runs["text-to-image"], "all_adapters": runs["all"],
              "ratio": round(ratio, 3)}
    if "peak_cuda_mb" in runs["all"]:
        cuda = runs["all"]["peak_cuda_mb"] / runs["text-to-image"]["peak_cuda_mb"]
        result["cuda_ratio"] = round(cuda, 3)
    return result


# --- quality ---------------------------------------------------------------------------------

def inpaint_quality(models, n: int, seed: int = 1) -> dict:
    """Recolour one object by inpainting it, named by description; the rest of the canvas must
    not change. Twice: the region redrawn under the new scene's caption, and the new object
    placed in it (`objects`), as the rule planner asks."""
    from pipelines.base import StepInputs
    from pipelines.registry import build_adapter
    from world.captions import caption, describe
    from world.detect import detect
    from world.render import render

    adapter = build_adapter("inpaint", models)
    size = _canvas(models)
    rng, scenes = sample_scenes(n, seed)
    made = {"redrawn": 0, "placed": 0}
    outside = []
    for scene in scenes:
        index = int(rng.integers(len(scene.objects)))
        after = recolored(scene, index, rng)
        before_image = render(scene, size)
        inputs = StepInputs(image=before_image)
        args = {"prompt": caption(after), "target": unique_description(scene, index),
                "seed": int(rng.integers(2**31))}
        new = after.objects[index]
        placed = {**args, "objects": [{"phrase": describe(new, with_place=False),
                                       "box": list(new.box)}]}
        mask = adapter.target_mask(args["target"], before_image, inputs)
        for way, call in (("redrawn", args), ("placed", placed)):
            result = adapter.run(call, inputs)
            difference = np.abs(np.asarray(result.images[0], np.float32) -
                                np.asarray(before_image, np.float32))
            outside.append(float(difference[~mask].mean()))
            made[way] += scene_is(detect(result.images[0]).scene, after)
    return {"n": n, "change_made": made["placed"] / n, "change_made_redrawn": made["redrawn"] / n,
            "outside_mean_change": float(np.mean(outside))}


def layout_quality(models, n: int, seed: int = 2, method: str = "per_box") -> dict:
    """2-4 objects, each phrase in its box: every object read back with the right attributes
    and its centre inside its box."""
    from pipelines.registry import build_adapter
    from world.captions import describe
    from world.detect import detect

    adapter = build_adapter("layout", models)
    rng, scenes = sample_scenes(n, seed, counts=(2, 3, 4))
    right = 0
    for scene in scenes:
        objects = [{"phrase": describe(o, with_place=False), "box": list(o.box)}
                   for o in scene.objects]
        background = "" if scene.background == "white" else f"on a {scene.background} background"
        result = adapter.run({"objects": objects, "background_prompt": background,
                              "method": method, "seed": int(rng.integers(2**31))})
        found = detect(result.images[0]).scene
        unused = list(found.objects)
        ok = len(unused) == len(scene.objects)
        for obj in scene.objects:
            x0, y0, x1, y1 = obj.box
            match = next((f for f in unused
                          if (f.shape, f.color, f.size) == (obj.shape, obj.color, obj.size)
                          and x0 <= f.x <= x1 and y0 <= f.y <= y1), None)
            ok = ok and match is not None
            if match is not None:
                unused.remove(match)
        right += ok
    return {"n": n, "method": method, "all_in_their_boxes": right / n}


DEGRADATIONS = ("noise", "blur", "low_resolution")


# Strong enough that the detector misreads most scenes: it still reads every scene right
# under noise of sigma 60 and at a quarter of the resolution.
NOISE_SIGMA = 160
DOWNSCALE = 8


def degrade(image, kind: str, rng):
    """(degraded image, restore arguments it needs)."""
    from PIL import Image, ImageFilter

    if kind == "noise":
        pixels = np.asarray(image, np.float32) + rng.normal(0, NOISE_SIGMA, (*image.size[::-1], 3))
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), {}
    if kind == "blur":
        return image.filter(ImageFilter.GaussianBlur(image.width / 32)), {}
    small = image.resize((image.width // DOWNSCALE, image.height // DOWNSCALE), Image.Resampling.BOX)
    return small, {"upscale": DOWNSCALE}


# What restore's `prompt` says: what the person says the image shows (its caption), what the
# detector reads in the degraded image (the rule planner's prompt), or nothing.
RESTORE_PROMPTS = ("told", "detected", "none")


def restore_quality(models, n: int, seed: int = 3) -> dict:
    """Detector accuracy (whole scene read back right) on degraded images, before and after
    restore, for each kind of prompt; the headline gain is restore told what the image shows."""
    from PIL import Image

    from pipelines.base import StepInputs
    from pipelines.registry import build_adapter
    from world.captions import caption
    from world.detect import detect
    from world.render import render

    adapter = build_adapter("restore", models)
    size = _canvas(models)
    rng, scenes = sample_scenes(n, seed)
    figures = {}
    for kind in DEGRADATIONS:
        before, after = 0, dict.fromkeys(RESTORE_PROMPTS, 0)
        for scene in scenes:
            degraded, extra = degrade(render(scene, size), kind, rng)
            # The detector reads a low-resolution image at the canvas size, as a viewer would.
            shown = degraded.resize((size, size), Image.Resampling.BICUBIC)
            read = detect(shown).scene
            before += scene_is(read, scene)
            prompts = {"told": caption(scene), "detected": caption(read), "none": ""}
            seed_of_scene = int(rng.integers(2**31))
            for name in RESTORE_PROMPTS:
                result = adapter.run({**extra, "prompt": prompts[name], "seed": seed_of_scene},
                                     StepInputs(image=degraded))
                after[name] += scene_is(detect(result.images[0]).scene, scene)
        figures[kind] = {"before": before / n, "after": after["told"] / n,
                         "gain": (after["told"] - before) / n,
                         **{f"after_{name}_prompt": after[name] / n for name in RESTORE_PROMPTS[1:]}}
    figures["gain"] = float(np.mean([figures[k]["gain"] for k in DEGRADATIONS]))
    for name in RESTORE_PROMPTS[1:]:
        figures[f"gain_{name}_prompt"] = float(np.mean(
            [figures[k][f"after_{name}_prompt"] - figures[k]["before"] for k in DEGRADATIONS]))
    return {"n": n, **figures}


def invert_edit_quality(models, n: int, seed: int = 4) -> dict:
    """Recolour one object by editing the caption's colour word; every other object kept."""
    from pipelines.base import StepInputs
    from pipelines.registry import build_adapter
    from world.captions import caption
    from world.detect import detect
    from world.render import render

    adapter = build_adapter("invert_edit", models)
    size = _canvas(models)
    rng, scenes = sample_scenes(n, seed)
    right = 0
    for scene in scenes:
        after = recolored(scene, int(rng.integers(len(scene.objects))), rng)
        result = adapter.run({"source_prompt": caption(scene), "target_prompt": caption(after),
                              "seed": int(rng.integers(2**31))},
                             StepInputs(image=render(scene, size)))
        right += scene_is(detect(result.images[0]).scene, after)
    return {"n": n, "recoloured_others_kept": right / n}


def one_of_several_quality(models, n: int, seed: int = 5) -> dict:
    """The planner's choice for editing one object among several: recolour it with each
    candidate operation from the same seed, and count how often every other object is still
    there as it was (preserved) and how often the whole scene is right (made)."""
    from pipelines.base import StepInputs
    from pipelines.registry import build_adapter
    from world.captions import caption
    from world.detect import detect
    from world.render import render

    adapters = {name: build_adapter(name, models) for name in ("inpaint", "edit", "invert_edit")}
    size = _canvas(models)
    rng, scenes = sample_scenes(n, seed, counts=(2, 3, 4))
    kept = dict.fromkeys(adapters, 0)
    made = dict.fromkeys(adapters, 0)
    for scene in scenes:
        index = int(rng.integers(len(scene.objects)))
        after = recolored(scene, index, rng)
        name = unique_description(scene, index)
        step_seed = int(rng.integers(2**31))
        arguments = {
            "inpaint": {"prompt": caption(after), "target": name},
            "edit": {"instruction": f"make {name} {after.objects[index].color}"},
            "invert_edit": {"source_prompt": caption(scene), "target_prompt": caption(after)}}
        others = [o for i, o in enumerate(scene.objects) if i != index]
        for op, adapter in adapters.items():
            result = adapter.run({**arguments[op], "seed": step_seed},
                                 StepInputs(image=render(scene, size)))
            found = detect(result.images[0]).scene
            kept[op] += all(any(same_object(f, o) for f in found.objects) for o in others)
            made[op] += scene_is(found, after)
    return {"n": n, "others_kept": {op: kept[op] / n for op in adapters},
            "change_made": {op: made[op] / n for op in adapters}}


def _canvas(models) -> int:
    from pipelines.families import native_size
    return native_size(models.base())


QUALITY = {"inpaint": inpaint_quality, "layout": layout_quality, "restore": restore_quality,
           "invert_edit": invert_edit_quality, "one_of_several": one_of_several_quality}


def report_quality(name: str, f: dict) -> str:
    if name == "inpaint":
        made, outside = f["change_made"], f["outside_mean_change"]
        return (f"inpaint: change made {made:.1%} with the object placed "
                f"({mark(made >= TARGET_INPAINT_CHANGE)}: >= {TARGET_INPAINT_CHANGE:.0%}), "
                f"{f['change_made_redrawn']:.1%} with the region redrawn from the caption; "
                f"outside the mask {outside:.2f}/255 "
                f"({mark(outside <= TARGET_INPAINT_OUTSIDE)}: <= {TARGET_INPAINT_OUTSIDE}/255)")
    if name == "layout":
        return (f"layout: all objects in their boxes {f['all_in_their_boxes']:.1%} "
                f"({mark(f['all_in_their_boxes'] >= TARGET_LAYOUT)}: >= {TARGET_LAYOUT:.0%})")
    if name == "restore":
        kinds = ", ".join(f"{k} {f[k]['before']:.0%} -> {f[k]['after']:.0%}" for k in DEGRADATIONS)
        return (f"restore told what the image shows: detector accuracy {kinds}; mean gain "
                f"{f['gain'] * 100:.0f} points ({mark(f['gain'] >= TARGET_RESTORE_GAIN)}: >= "
                f"{TARGET_RESTORE_GAIN * 100:.0f}); with the detector's reading as prompt "
                f"{f['gain_detected_prompt'] * 100:.0f} points, with no prompt "
                f"{f['gain_none_prompt'] * 100:.0f}")
    if name == "one_of_several":
        return "one object recoloured among several: " + "; ".join(
            f"{op} others kept {f['others_kept'][op]:.1%}, whole scene right "
            f"{f['change_made'][op]:.1%}" for op in f["others_kept"])
    kept = f["recoloured_others_kept"]
    return (f"invert_edit: recoloured with the others kept {kept:.1%} "
            f"({mark(kept >= TARGET_INVERT_EDIT)}: >= {TARGET_INVERT_EDIT:.0%})")


# --- command line ----------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("memory", "peak RSS, all adapters vs text-to-image alone"),
                            ("quality", "operation quality on the shapes world"),
                            ("_measure", argparse.SUPPRESS)):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--models", type=Path, help="folder with the shipped model folders")
        sub.add_argument("--base", help="text-to-image model (default: shapes-sd)")
        sub.add_argument("--edit", help="InstructPix2Pix model (default: shapes-ip2p)")
        sub.add_argument("--device", help="default: the best available")
        if name == "quality":
            sub.add_argument("--n", type=int, default=100, help="images per figure")
            sub.add_argument("--only", nargs="+", choices=list(QUALITY), default=list(QUALITY))
        if name == "_measure":
            sub.add_argument("which", choices=("text-to-image", "all"))
    args = parser.parse_args(argv)
    if args.command == "_measure":
        return measure_process(args)

    problem = check_models(model_config(args))
    if problem:
        print(f"bench.pipelines needs the models: {problem}", file=sys.stderr)
        return 1
    results_path = Path(__file__).parent / "results" / "pipelines.json"
    if args.command == "memory":
        figures = memory(args)
        print(f"peak RSS: text-to-image alone {figures['text_to_image']['peak_rss_mb']:.0f} MB, "
              f"all {len(_adapter_names())} adapters ready and run once "
              f"{figures['all_adapters']['peak_rss_mb']:.0f} MB: {figures['ratio']:.3f}x "
              f"({mark(figures['ratio'] <= TARGET_MEMORY_RATIO)}: <= {TARGET_MEMORY_RATIO}x)")
        if "cuda_ratio" in figures:
            print(f"peak CUDA memory ratio: {figures['cuda_ratio']:.3f}x")
        update_results(results_path, {"memory": figures})
    else:
        from pipelines.models import ModelSet

        models = ModelSet(model_config(args), grounder=WorldGrounder())
        for name in args.only:
            start = time.perf_counter()
            figures = QUALITY[name](models, args.n)
            figures["seconds"] = round(time.perf_counter() - start, 1)
            print(report_quality(name, figures), flush=True)
            update_results(results_path, {name: figures})
    return 0


def _adapter_names() -> list[str]:
    from pipelines.spec import OPERATIONS
    return list(OPERATIONS)


if __name__ == "__main__":
    sys.exit(main())
