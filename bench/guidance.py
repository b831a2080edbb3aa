"""Classifier-free guidance: both branches in one batched UNet call per denoising step.

Counts the UNet's forward passes, and the batch each one carries, while operations run on the
loaded models: with guidance, one call per step holding the unconditional and conditional
halves of the batch (InstructPix2Pix: three parts, text, image and neither); without it, one
call with the conditional half only. A per-box layout draws its objects alone in one batch
(2 x objects); the multidiffusion loop predicts the whole scene and each object's region in
the same call, so its batch is 2 x (objects + 1).
"""
from __future__ import annotations

from bench.harness import row

TITLE = "Classifier-free guidance in one batched UNet call per step"
KIND = "cost"
STEPS = 4


def unet_calls(unet, call) -> list[int]:
    """The batch size of every forward pass `unet` makes during `call()`."""
    sizes: list[int] = []
    hook = unet.register_forward_hook(lambda module, args, output: sizes.append(
        int(args[0].shape[0])))
    try:
        call()
    finally:
        hook.remove()
    return sizes


def run(context) -> dict:
    from pipelines.base import StepInputs
    from world.render import render
    from world.scene import Obj, Scene

    runner = context.runner()
    models = context.model_set()
    image = render(Scene((Obj("circle", "red", "large", 0.3, 0.3),)), context.canvas())

    def generate(**args):
        from pipelines.spec import GenerateArgs
        return lambda: runner.run("generate", GenerateArgs(prompt="a red circle", steps=STEPS,
                                                           **args), StepInputs(), 0)

    def layout(method: str, phrases: tuple[str, ...]):
        from pipelines.spec import LayoutArgs
        args = LayoutArgs(objects=[{"phrase": p, "box": [0.1 + 0.5 * i, 0.1, 0.4 + 0.5 * i, 0.4]}
                                   for i, p in enumerate(phrases)],
                          method=method, redraws=0, steps=STEPS)
        return lambda: runner.run("layout", args, StepInputs(), 0)

    def edit():
        from pipelines.spec import EditArgs
        args = EditArgs(instruction="make the circle green", steps=STEPS)
        return lambda: runner.run("edit", args, StepInputs(image=image), 0)

    cases = {
        "generate, DPM-Solver++ 2M": (models.base().unet, generate(sampler="dpm++2m"), 2),
        "generate, DDIM": (models.base().unet, generate(sampler="ddim"), 2),
        "generate, Euler": (models.base().unet, generate(sampler="euler"), 2),
        "generate, guidance 1 (off)": (models.base().unet, generate(guidance=1.0), 1),
        # Two objects drawn alone in one batch, each with both branches.
        "layout per box, two objects": (models.base().unet,
                                        layout("per_box", ("a red circle", "a blue square")), 4),
        # The scene prompt and the object's phrase, each with both branches.
        "layout multidiffusion, one object (hand-written loop)": (
            models.base().unet, layout("multidiffusion", ("a red circle",)), 4),
        "edit (InstructPix2Pix)": (models.edit().unet, edit(), 3),
    }
    measured = {}
    for name, (unet, call, batch) in cases.items():
        sizes = unet_calls(unet, call)
        measured[name] = {"calls": len(sizes), "steps": STEPS, "batch_per_call": sorted(set(sizes)),
                          "expected_batch": batch,
                          "one_call_per_step": len(sizes) == STEPS and set(sizes) == {batch}}
    guided = [m for name, m in measured.items() if "off" not in name]
    all_one = all(m["one_call_per_step"] for m in measured.values())
    figures = {"operations": measured, "all_one_call_per_step": all_one}
    figures["summary"] = [
        row("UNet calls per step with guidance", max(m["calls"] for m in guided) / STEPS,
            target="1, with every branch in its batch", ok=all_one,
            note=", ".join(measured)),
    ]
    figures["tables"] = [{
        "title": f"UNet forward passes over {STEPS} steps",
        "columns": ["operation", "calls", "batch per call", "expected batch",
                    "one call per step"],
        "rows": [[name, m["calls"], m["batch_per_call"], m["expected_batch"],
                  "yes" if m["one_call_per_step"] else "NO"] for name, m in measured.items()],
    }]
    return figures
