"""Every model family a diffusers user brings (pipelines/families.py), on tiny random pipelines
built in-process (tests/tiny_families.py): the family is read from the checkpoint's config,
each operation runs on it or refuses in one line that names the family and what runs there,
sizes come out at the family's multiple, and the same seed gives the same image."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tiny_eyes
import tiny_families
from pipelines.base import StepInputs
from pipelines.detection import ModelEyes
from pipelines.errors import ModelUnavailable
from pipelines.families import family_of, fit_size, size_multiple
from pipelines.grounding import ModelGrounder
from pipelines.models import ModelConfig, ModelSet
from pipelines.registry import build_adapter

pytestmark = pytest.mark.usefixtures("one_thread")

FAMILY_NAMES = {"sd": "Stable Diffusion 1.x/2.x", "sdxl": "SDXL", "sd3": "SD3", "flux": "FLUX"}
BOXES = [[0.1, 0.1, 0.45, 0.45], [0.55, 0.55, 0.9, 0.9]]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="module")
def grounder(root):
    return ModelGrounder(ModelEyes(str(tiny_eyes.write_detector(root / "detector")),
                                   str(tiny_eyes.write_segmenter(root / "segmenter")),
                                   threshold=0.0))


@pytest.fixture(scope="module", params=tiny_families.FAMILIES)
def family_models(request, root, grounder):
    folder = tiny_families.write(request.param, root)
    return request.param, ModelSet(ModelConfig(base=str(folder), device="cpu"), grounder=grounder)


def test_the_family_comes_from_the_config_not_the_name(root):
    from diffusers import DiffusionPipeline

    for key in tiny_families.FAMILIES:
        # A folder named like another family's checkpoint is still read from its config.
        folder = tiny_families.write(key, root / f"misnamed-{key}")
        renamed = folder.rename(folder.with_name("stable-diffusion-xl-base-1.0"))
        pipe = DiffusionPipeline.from_pretrained(renamed)
        assert family_of(pipe).key == key and family_of(pipe).name == FAMILY_NAMES[key]
        renamed.rename(folder)


def image_of(models) -> Image.Image:
    side = 64
    pixels = np.full((side, side, 3), 245, np.uint8)
    pixels[10:30, 10:30] = (200, 30, 30)
    return Image.fromarray(pixels)


CASES = {
    "generate": {"prompt": "a red circle", "width": 64, "height": 64},
    "inpaint": {"prompt": "a green circle", "target": [BOXES[0]]},
    "reference": {"prompt": "a green triangle", "reference": "ref_1", "strength": 0.6},
    "layout": {"objects": [{"phrase": "a red circle", "box": BOXES[0]},
                           {"phrase": "a blue square", "box": BOXES[1]}], "method": "per_box"},
    "compose": {"reference": "ref_1", "box": BOXES[1], "strength": 0.5},
    "restore": {"prompt": "a red circle", "strength": 0.5},
    "inpaint_objects": {"prompt": "a blue square", "target": [BOXES[0]],
                        "objects": [{"phrase": "a blue square", "box": BOXES[0]}]},
}


def run(models, name: str, **extra):
    op = name.removesuffix("_objects")
    image = image_of(models)
    inputs = StepInputs(image=image, references={"ref_1": image})
    return build_adapter(op, models).run({"steps": 2, "seed": 5, **CASES[name], **extra}, inputs)


@pytest.mark.parametrize("name", list(CASES))
def test_every_operation_runs_on_every_family_and_repeats_with_its_seed(family_models, name):
    key, models = family_models
    first = run(models, name)
    again = run(models, name)
    assert first.images[0].size == (64, 64)
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(again.images[0]))
    if name == "generate":
        assert first.params_used["family"] == key


def test_unset_steps_and_guidance_are_the_familys(family_models):
    key, models = family_models
    used = build_adapter("generate", models).run(
        {"prompt": "a kite", "width": 64, "height": 64, "seed": 1}, StepInputs()).params_used
    family = family_of(models.base())
    if key == "sd":
        assert (used["steps"], used["guidance"]) == (20, 5.0)
    else:
        assert (used["steps"], used["guidance"]) == (family.steps, family.guidance)


def test_any_size_is_brought_to_the_familys_multiple_with_a_note(family_models):
    key, models = family_models
    multiple = size_multiple(models.base())
    assert multiple == {"sd": 8, "sdxl": 8, "sd3": 4, "flux": 4}[key]  # tiny autoencoders
    result = run(models, "generate", width=70, height=66)
    width, height, note = fit_size(models.base(), 70, 66)
    assert result.images[0].size == (width, height)
    assert width % multiple == 0 and height % multiple == 0
    assert result.params_used["note"] == note and "70x66" in note


def test_the_loops_written_for_sd_refuse_elsewhere_naming_what_runs(family_models):
    key, models = family_models
    image = image_of(models)
    args = {"source_prompt": "a red circle", "target_prompt": "a green circle", "steps": 2}
    if key == "sd":
        assert build_adapter("invert_edit", models).run(args, StepInputs(image=image)).images
        return
    with pytest.raises(ModelUnavailable) as refused:
        build_adapter("invert_edit", models).run(args, StepInputs(image=image))
    message = str(refused.value)
    assert f"invert_edit does not run on {FAMILY_NAMES[key]} models" in message
    assert "generate, inpaint, reference, layout, compose, restore" in message
    multidiffusion = {**CASES["layout"], "method": "multidiffusion", "steps": 2}
    with pytest.raises(ModelUnavailable, match=f"on {FAMILY_NAMES[key]} these run"):
        build_adapter("layout", models).run(multidiffusion, StepInputs())


def test_sdxl_instructpix2pix_edits(root):
    folder = root / "tiny-sdxl-ip2p"
    tiny_families.sdxl(root, unet_in_channels=8).save_pretrained(folder)
    base = tiny_families.write("sdxl", root)
    models = ModelSet(ModelConfig(base=str(base), edit=str(folder), device="cpu"))
    image = image_of(models)
    result = build_adapter("edit", models).run(
        {"instruction": "make the square green", "steps": 2, "seed": 3}, StepInputs(image=image))
    assert result.images[0].size == image.size


def test_an_inpainting_checkpoint_in_the_set_serves_inpaint(root):
    import tiny_diffusion
    from diffusers import StableDiffusionInpaintPipeline

    folder = root / "tiny-sd-inpainting"
    StableDiffusionInpaintPipeline(**tiny_diffusion.components(root, unet_in_channels=9)
                                   ).save_pretrained(folder)
    models = ModelSet(ModelConfig(base=str(tiny_families.write("sd", root)), inpaint=str(folder),
                                  device="cpu"))
    assert type(models.inpainting()).__name__ == "StableDiffusionInpaintPipeline"
    result = run(models, "inpaint")
    assert result.params_used["pipeline"] == "inpainting checkpoint"
    before, after = np.asarray(image_of(models)), np.asarray(result.images[0])
    assert np.array_equal(before[40:, :], after[40:, :])      # outside the box: as it was


@pytest.mark.parametrize("key", ["sdxl", "sd3", "flux"])
def test_a_family_loads_and_generates_in_the_dtype_the_set_asks_for(root, key):
    import torch

    models = ModelSet(ModelConfig(base=str(tiny_families.write(key, root)), device="cpu",
                                  dtype="bfloat16"))
    result = build_adapter("generate", models).run(
        {"prompt": "a kite", "width": 64, "height": 64, "steps": 2, "seed": 1}, StepInputs())
    denoiser = getattr(models.base(), "unet", None) or models.base().transformer
    assert denoiser.dtype == torch.bfloat16 and result.images[0].size == (64, 64)


def test_a_plan_may_use_only_what_the_set_offers(root, tmp_path):
    """The planner is told what the set offers (read from its config files, no weights), and
    a step of anything else is refused before it runs."""
    from agent.api import Atelier

    models = ModelConfig(base=str(tiny_families.write("sdxl", root)), device="cpu")
    fresh = ModelSet(models)
    assert fresh.operations() == ("generate", "inpaint", "reference", "restore")
    assert fresh.load_seconds == 0.0            # known from the config files alone
    with Atelier(home=tmp_path, models=models, domain="general", retriever=None) as atelier:
        session = atelier.session("s")
        assert session.ask("a kite at dusk", seed=1).image is not None
        context = session.planning_context("make it look like autumn")
        assert context.operations == ["generate", "inpaint", "reference", "restore"]
        assert ("This model set offers only these operations: generate, inpaint, reference, "
                "restore") in context.render()
        refused = session.ask("make it look like autumn", seed=2)
    assert not refused.ok
    assert ("step 1 (edit): this model set does not offer edit; it offers generate, inpaint, "
            "reference, restore") in refused.error


def test_a_negative_prompt_flux_does_not_use_is_said_not_dropped(root):
    models = ModelSet(ModelConfig(base=str(tiny_families.write("flux", root)), device="cpu"))
    result = build_adapter("generate", models).run(
        {"prompt": "a kite", "negative_prompt": "blurry", "width": 64, "height": 64, "steps": 2,
         "seed": 1}, StepInputs())
    assert "the negative prompt was not used" in result.params_used["note"]
