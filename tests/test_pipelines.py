"""Pipelines: the contract every adapter keeps, run on tiny random models loaded through the
normal loading path; operations that are one diffusers pipeline call must give exactly that
call's output for the same generator."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import tiny_diffusion
from pipelines.base import StepInputs
from pipelines.errors import InputError, ModelUnavailable
from pipelines.models import ModelConfig, ModelSet
from pipelines.registry import ADAPTERS, build_adapter
from pipelines.sampling import make_scheduler
from pipelines.spec import OPERATIONS
from world.render import render
from world.scene import Obj, Scene


def shapes_models(config: ModelConfig) -> ModelSet:
    """A model set that finds objects as the shapes world does."""
    from world.grounding import WorldGrounder

    return ModelSet(config, grounder=WorldGrounder())

SIZE = tiny_diffusion.SIZE
SCENE = Scene((Obj("circle", "red", "large", 0.3, 0.3), Obj("square", "blue", "small", 0.72, 0.7)))
REFERENCE = Scene((Obj("triangle", "green", "large", 0.5, 0.5),), "gray")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_diffusion.write_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def models(paths):
    return shapes_models(ModelConfig(base=str(paths["base"]), edit=str(paths["edit"]), device="cpu"))


@pytest.fixture(scope="module")
def image():
    return render(SCENE, SIZE)


# Valid arguments for each operation, small enough to run in a blink.
CASES = {
    "generate": {"prompt": "a red circle"},
    "edit": {"instruction": "make the circle green"},
    "inpaint": {"prompt": "a green circle", "target": "the red circle"},
    "layout": {"objects": [{"phrase": "a red circle", "box": [0.1, 0.1, 0.45, 0.45]},
                           {"phrase": "a blue square", "box": [0.6, 0.6, 0.9, 0.9]}],
               "background_prompt": "a gray background", "method": "multidiffusion",
               "attention_guidance": 2.0},
    "reference": {"prompt": "a green triangle", "reference": "ref_1", "steps": 4},
    "compose": {"reference": "ref_1", "box": [0.55, 0.05, 0.95, 0.45], "steps": 4, "strength": 0.5},
    "restore": {"prompt": "a red circle", "steps": 4},
    "invert_edit": {"source_prompt": "a red circle", "target_prompt": "a green circle"},
}


def case(name: str, image: Image.Image) -> tuple[dict, StepInputs]:
    needs = OPERATIONS[name].needs
    references = {"ref_1": render(REFERENCE, SIZE)} if "reference" in needs else {}
    inputs = StepInputs(image=image if "image" in needs else None, references=references)
    return {"steps": 2, "seed": 7, **CASES[name]}, inputs


def pixels(result_or_image) -> np.ndarray:
    image = result_or_image.images[0] if hasattr(result_or_image, "images") else result_or_image
    return np.asarray(image, dtype=np.int16)


# -- the contract, for every operation ----------------------------------------------------

def test_every_operation_has_an_adapter():
    assert list(ADAPTERS) == list(OPERATIONS)
    assert all(adapter.spec is OPERATIONS[name] for name, adapter in ADAPTERS.items())


@pytest.mark.parametrize("name", list(ADAPTERS))
class TestAdapterContract:
    def test_returns_images_params_and_timings(self, name, models, image):
        args, inputs = case(name, image)
        result = build_adapter(name, models).run(args, inputs)
        assert [im.size for im in result.images] == [(SIZE, SIZE)]
        assert all(im.mode == "RGB" for im in result.images)
        assert result.seed == 7 and result.params_used["seed"] == 7
        for key, value in args.items():
            assert result.params_used[key] == value
        assert result.timings["total"] >= result.timings.get("denoise", 0.0) > 0 or name == "compose"
        assert "load" in result.timings

    def test_same_seed_same_image(self, name, models, image):
        args, inputs = case(name, image)
        adapter = build_adapter(name, models)
        first, again = adapter.run(args, inputs), adapter.run(args, inputs)
        assert np.array_equal(pixels(first), pixels(again))

    def test_a_missing_seed_is_picked_and_recorded(self, name, models, image):
        args, inputs = case(name, image)
        del args["seed"]
        adapter = build_adapter(name, models)
        result = adapter.run(args, inputs)
        assert 0 <= result.seed < 2**32 and result.params_used["seed"] == result.seed
        replay = adapter.run({**args, "seed": result.seed}, inputs)
        assert np.array_equal(pixels(result), pixels(replay))

    def test_bad_arguments_are_named(self, name, models, image):
        args, inputs = case(name, image)
        adapter = build_adapter(name, models)
        with pytest.raises(InputError) as error:
            adapter.run({**args, "steps": 0}, inputs)
        assert error.value.argument == "steps" and "greater than or equal to 1" in str(error.value)
        with pytest.raises(InputError, match="colour: not an argument of this operation; remove it"):
            adapter.run({**args, "colour": "red"}, inputs)
        for required, field in OPERATIONS[name].args_schema.model_fields.items():
            if field.is_required():
                with pytest.raises(InputError, match=f"^{required}: required; set it"):
                    adapter.run({k: v for k, v in args.items() if k != required}, inputs)

    def test_missing_or_unusable_inputs_are_named(self, name, models, image):
        args, inputs = case(name, image)
        adapter = build_adapter(name, models)
        needs = OPERATIONS[name].needs
        if "image" in needs:
            with pytest.raises(InputError, match="^image: .*supply one"):
                adapter.run(args, StepInputs(references=inputs.references))
            # Another size is fitted to the model's multiple, with a note, never refused.
            odd = image.crop((0, 0, SIZE - 5, SIZE - 5))
            fitted = adapter.run(args, StepInputs(image=odd, references=inputs.references))
            said = re.search(r"image 59x59 resized to (\d+)x(\d+)", fitted.params_used["note"])
            assert fitted.images[0].size == (int(said[1]), int(said[2]))
        if "reference" in needs:
            with pytest.raises(InputError, match="^reference: "):
                adapter.run(args, StepInputs(image=inputs.image))
            with pytest.raises(InputError, match="ref_2 was not supplied"):
                adapter.run({**args, "reference": "ref_2"}, inputs)


# -- one-to-one with diffusers -----------------------------------------------------------

@pytest.mark.parametrize("sampler", ["dpm++2m", "ddim", "euler", "euler_a"])
def test_generate_equals_the_diffusers_pipeline(sampler, models, paths):
    from diffusers import StableDiffusionPipeline

    args = {"prompt": "a red circle at the top left", "negative_prompt": "blue", "steps": 3,
            "guidance": 4.0, "sampler": sampler, "num_images": 2, "seed": 11}
    result = build_adapter("generate", models).run(args)

    pipe = StableDiffusionPipeline.from_pretrained(paths["base"])
    pipe.scheduler = make_scheduler(pipe.scheduler.config, sampler)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(args["prompt"], negative_prompt="blue", num_inference_steps=3,
                    guidance_scale=4.0, num_images_per_prompt=2,
                    generator=torch.Generator().manual_seed(11)).images
    assert len(result.images) == 2
    for ours, theirs in zip(result.images, expected):
        assert np.array_equal(pixels(ours), pixels(theirs))


def test_samplers_keep_the_models_training_settings(models):
    config = models.base().scheduler.config
    for sampler in ("dpm++2m", "ddim", "euler", "euler_a"):
        scheduler = make_scheduler(config, sampler)
        assert scheduler.config.prediction_type == "v_prediction"
        assert scheduler.config.rescale_betas_zero_snr is True
        assert scheduler.config.timestep_spacing == "trailing"
    assert make_scheduler(config, "ddim").config.clip_sample is False
    # The shared scheduler is not the one a sampler swaps in.
    assert models.with_sampler("euler").scheduler is not models.base().scheduler


def test_edit_equals_the_diffusers_pipeline(models, paths, image):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    args = {"instruction": "make the circle green", "steps": 3, "guidance": 6.0,
            "image_guidance": 1.2, "seed": 5}
    result = build_adapter("edit", models).run(args, StepInputs(image=image))

    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(paths["edit"])
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(args["instruction"], image=image, num_inference_steps=3, guidance_scale=6.0,
                    image_guidance_scale=1.2, generator=torch.Generator().manual_seed(5)).images[0]
    assert np.array_equal(pixels(result), pixels(expected))


def test_reference_equals_the_diffusers_img2img_pipeline(models, paths, image):
    from diffusers import StableDiffusionImg2ImgPipeline

    args = {"prompt": "a green triangle", "reference": "ref_1", "strength": 0.75, "steps": 4,
            "seed": 3}
    result = build_adapter("reference", models).run(args, StepInputs(references={"ref_1": image}))

    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(paths["base"])
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(args["prompt"], image=image, strength=0.75, num_inference_steps=4,
                    guidance_scale=5.0, generator=torch.Generator().manual_seed(3)).images[0]
    assert np.array_equal(pixels(result), pixels(expected))


def test_layout_uses_gligen_when_the_model_has_it(paths):
    from diffusers import StableDiffusionGLIGENPipeline

    models = shapes_models(ModelConfig(base=str(paths["gligen"]), device="cpu"))
    objects = [{"phrase": "a red circle", "box": [0.1, 0.1, 0.4, 0.4]}]
    result = build_adapter("layout", models).run({"objects": objects, "steps": 2, "seed": 1})
    assert result.params_used["mechanism"] == "gligen"

    pipe = StableDiffusionGLIGENPipeline.from_pretrained(paths["gligen"])
    pipe.set_progress_bar_config(disable=True)
    expected = pipe("a red circle", gligen_phrases=["a red circle"],
                    gligen_boxes=[[0.1, 0.1, 0.4, 0.4]], num_inference_steps=2,
                    guidance_scale=5.0, height=SIZE, width=SIZE,
                    generator=torch.Generator().manual_seed(1)).images[0]
    assert np.array_equal(pixels(result), pixels(expected))


def test_reference_uses_an_ip_adapter_only_while_it_runs(paths, image, tmp_path):
    plain = shapes_models(ModelConfig(base=str(paths["base"]), device="cpu"))
    folder = tiny_diffusion.write_ip_adapter(tmp_path, plain.base().unet)
    models = shapes_models(ModelConfig(base=str(paths["base"]), device="cpu", ip_adapter=str(folder),
                                  ip_adapter_weight="models/ip-adapter.safetensors"))
    unet = models.base().unet
    processors = {k: type(v) for k, v in unet.attn_processors.items()}
    generate = build_adapter("generate", models)
    before = generate.run({"prompt": "a red circle", "steps": 2, "seed": 1})
    args = {"prompt": "a red circle", "reference": "ref_1", "steps": 4, "seed": 1}
    inputs = StepInputs(references={"ref_1": image})
    with_ip = build_adapter("reference", models).run(args, inputs)
    without = build_adapter("reference", plain).run(args, inputs)
    assert with_ip.params_used["ip_adapter"] and not without.params_used["ip_adapter"]
    assert not np.array_equal(pixels(with_ip), pixels(without))
    # Unloaded afterwards: the shared UNet is as it was, and generate gives what it gave.
    assert {k: type(v) for k, v in unet.attn_processors.items()} == processors
    assert unet.encoder_hid_proj is None
    after = generate.run({"prompt": "a red circle", "steps": 2, "seed": 1})
    assert np.array_equal(pixels(before), pixels(after))


# -- one set of weights -------------------------------------------------------------------

def test_all_adapters_share_the_base_weights(models):
    adapters = [build_adapter(name, models) for name in ADAPTERS]
    for adapter in adapters:
        adapter.ready()
    base, edit = models.base(), models.edit()
    pipelines = [base, edit, *models._derived.values()]
    assert all(p.vae is base.vae and p.text_encoder is base.text_encoder for p in pipelines)
    assert all(p.unet is base.unet for p in pipelines if p is not edit)
    storages = {param.untyped_storage().data_ptr()
                for p in pipelines for module in (p.unet, p.vae, p.text_encoder)
                for param in module.parameters()}
    separate = {param.untyped_storage().data_ptr()
                for module in (base.unet, base.vae, base.text_encoder, edit.unet)
                for param in module.parameters()}
    assert storages == separate


def test_nothing_loads_until_an_operation_runs(tmp_path):
    models = shapes_models(ModelConfig(base=str(tmp_path / "nowhere"), device="cpu"))
    adapter = build_adapter("generate", models)  # no error yet: nothing is read
    with pytest.raises(ModelUnavailable, match=r"base model .*nowhere is missing"):
        adapter.run({"prompt": "a red circle"})


# -- what each mechanism promises ---------------------------------------------------------

def test_inpaint_keeps_every_pixel_outside_the_boxes(models, image):
    box = [0.5, 0.5, 1.0, 1.0]
    result = build_adapter("inpaint", models).run(
        {"prompt": "a green square", "target": [box], "steps": 3, "resample": 2, "seed": 1},
        StepInputs(image=image))
    before, after = pixels(image), pixels(result)
    outside = np.ones(before.shape[:2], bool)
    outside[SIZE // 2:, SIZE // 2:] = False
    assert np.array_equal(before[outside], after[outside])
    assert not np.array_equal(before[~outside], after[~outside])
    assert result.params_used["mask_fraction"] == 0.25


def test_inpaint_with_no_objects_clears_the_region_from_its_surroundings(models, image):
    adapter = build_adapter("inpaint", models)
    result = adapter.run({"prompt": "a blue square", "target": "the red circle", "objects": [],
                          "seed": 1}, StepInputs(image=image))
    mask = adapter.target_mask("the red circle", image, StepInputs(image=image))
    before, after = pixels(image), pixels(result)
    assert np.array_equal(before[~mask], after[~mask])
    assert (after[mask] == (245, 245, 245)).all()   # the white background around the circle
    assert result.params_used["object_draws"] == 0 and result.params_used["harmonised"] is False


def test_inpaint_places_objects_inside_the_region_only(models, image):
    # The tiny model draws blobs; whatever stands in for the phrase lands in its box, and
    # nothing outside the region changes.
    adapter = build_adapter("inpaint", models)
    box = [0.1, 0.1, 0.5, 0.5]
    args = {"prompt": "a green circle", "target": [box], "seed": 2, "steps": 2, "redraws": 0,
            "objects": [{"phrase": "a green circle", "box": [0.15, 0.15, 0.45, 0.45]}]}
    result = adapter.run(args, StepInputs(image=image))
    inside = np.zeros((SIZE, SIZE), bool)
    inside[round(0.1 * SIZE):round(0.5 * SIZE), round(0.1 * SIZE):round(0.5 * SIZE)] = True
    assert np.array_equal(pixels(image)[~inside], pixels(result)[~inside])
    assert result.params_used["object_draws"] == 1
    harmonised = adapter.run({**args, "harmonise": 0.5}, StepInputs(image=image))
    assert harmonised.params_used["harmonised"] and harmonised.params_used["denoising_steps"] == 1
    assert np.array_equal(pixels(image)[~inside], pixels(harmonised)[~inside])


def test_inpaint_grounds_an_object_description(models, image):
    adapter = build_adapter("inpaint", models)
    mask = adapter.target_mask("the red circle", image, StepInputs(image=image))
    ys, xs = np.nonzero(mask)
    # The large circle at (0.3, 0.3): side 0.32 of 64 px, grown by a pixel or two.
    assert abs(xs.mean() / SIZE - 0.3) < 0.02 and abs(ys.mean() / SIZE - 0.3) < 0.02
    assert 20 <= xs.max() - xs.min() + 1 <= 25
    with pytest.raises(InputError, match="no object in the image matches it .*large red circle"):
        adapter.run({"prompt": "x", "target": "the yellow triangle", "steps": 1},
                    StepInputs(image=image))
    two = render(Scene((Obj("circle", "red", "small", 0.3, 0.3), Obj("circle", "red", "small", 0.7, 0.7))), SIZE)
    with pytest.raises(InputError, match="2 objects match it"):
        adapter.run({"prompt": "x", "target": "the red circle", "steps": 1}, StepInputs(image=two))
    one = adapter.target_mask("the red circle at the top left", two, StepInputs(image=two))
    both = adapter.target_mask("both red circles", two, StepInputs(image=two))
    assert both.sum() > 1.8 * one.sum() and both[one].all()


def test_inpaint_takes_a_mask_image(models, image):
    mask = Image.new("L", image.size, 0)
    mask.paste(255, (0, 0, 32, 32))
    adapter = build_adapter("inpaint", models)
    result = adapter.run({"prompt": "a green circle", "target": "img_4", "steps": 2, "seed": 1},
                         StepInputs(image=image, mask=mask))
    assert result.params_used["mask_fraction"] == 0.25
    with pytest.raises(InputError, match="img_4 was not supplied"):
        adapter.run({"prompt": "a", "target": "img_4", "steps": 2}, StepInputs(image=image))
    with pytest.raises(InputError, match="^target: is 32x32 but the current image is 64x64"):
        adapter.run({"prompt": "a", "target": "img_4", "steps": 2},
                    StepInputs(image=image, references={"img_4": mask.resize((32, 32))}))


def test_compose_pastes_into_the_box_and_keeps_the_rest(models, image):
    reference = render(REFERENCE, SIZE)
    inputs = StepInputs(image=image, references={"ref_1": reference})
    box = [0.5, 0.0, 1.0, 0.5]
    adapter = build_adapter("compose", models)
    pasted = adapter.run({"reference": "ref_1", "box": box, "strength": 0.0, "seed": 1}, inputs)
    assert pasted.params_used["harmonised"] is False
    # The green triangle, not the reference's gray backdrop, lands in the box.
    region = pixels(pasted)[:32, 32:].reshape(-1, 3)
    assert (np.abs(region - (40, 170, 60)).sum(1) < 10).sum() > 50
    assert not (np.abs(region - (128, 128, 128)).sum(1) < 10).any()
    harmonised = adapter.run({"reference": "ref_1", "box": box, "strength": 0.5, "steps": 4,
                              "seed": 1}, inputs)
    before, after = pixels(image), pixels(harmonised)
    assert np.array_equal(before[32:], after[32:]) and np.array_equal(before[:, :32], after[:, :32])
    empty = StepInputs(image=image, references={"ref_1": Image.new("RGB", image.size, (245,) * 3)})
    with pytest.raises(InputError, match="^reference: no object found in ref_1"):
        adapter.run({"reference": "ref_1", "box": box}, empty)
    # A reference the shapes world's reader cannot read (not square) is refused by name.
    wide = StepInputs(image=image, references={"ref_1": Image.new("RGB", (80, 40), (245,) * 3)})
    with pytest.raises(InputError, match="^reference: ref_1: the grounding tool cannot read it "
                                         r"\(the shapes world is square; got 80x40\)"):
        adapter.run({"reference": "ref_1", "box": box}, wide)


def test_restore_enlarges_a_low_resolution_image_when_asked(models, image):
    small = image.resize((32, 32), Image.Resampling.BILINEAR)
    adapter = build_adapter("restore", models)
    result = adapter.run({"upscale": 2, "steps": 4, "seed": 1}, StepInputs(image=small))
    assert result.images[0].size == (SIZE, SIZE)
    # Enlarged to 60x60, which the model does not take: made 64x64, with a note.
    fitted = adapter.run({"upscale": 2, "steps": 2}, StepInputs(image=image.resize((30, 30))))
    assert fitted.images[0].size == (64, 64)
    assert fitted.params_used["note"].startswith("image 60x60 resized to 64x64")
    with pytest.raises(InputError, match="^strength: 0.1 of 4 steps leaves no step"):
        adapter.run({"strength": 0.1, "steps": 4}, StepInputs(image=image))


def test_restore_data_consistency_keeps_the_inputs_coarse_content(models, image):
    adapter = build_adapter("restore", models)
    args = {"steps": 4, "strength": 1.0, "seed": 2}
    free = pixels(adapter.run({**args, "consistency": 0}, StepInputs(image=image)))
    held = pixels(adapter.run({**args, "consistency": 2}, StepInputs(image=image)))

    def coarse(a):
        return a.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))

    target = coarse(pixels(image))
    assert np.abs(coarse(held) - target).mean() < np.abs(coarse(free) - target).mean()


@pytest.mark.parametrize("name", ["layout", "invert_edit"])
def test_attention_hooks_leave_the_shared_unet_as_it_was(name, models, image):
    unet = models.base().unet
    before = {k: type(v) for k, v in unet.attn_processors.items()}
    args, inputs = case(name, image)
    build_adapter(name, models).run(args, inputs)
    with pytest.raises(InputError):
        build_adapter(name, models).run({**args, "steps": 0}, inputs)
    assert {k: type(v) for k, v in unet.attn_processors.items()} == before
    assert not any(module._forward_hooks for module in unet.modules())


def test_layout_attention_guidance_moves_the_result(models, image):
    args, _ = case("layout", image)
    adapter = build_adapter("layout", models)
    guided = adapter.run(args)
    plain = adapter.run({**args, "attention_guidance": 0.0})
    assert guided.params_used["guided_steps"] == 1 and plain.params_used["guided_steps"] == 0
    assert not np.array_equal(pixels(guided), pixels(plain))


def test_layout_per_box_draws_again_what_grounding_cannot_find(models):
    # The tiny random model draws no red circle nor blue square, so neither phrase is ever
    # matched: each is drawn 1 + redraws times, then the largest blob the tool sees stands in.
    objects = CASES["layout"]["objects"]
    result = build_adapter("layout", models).run({"objects": objects, "redraws": 1, "steps": 2,
                                                  "seed": 3})
    used = result.params_used
    assert used["mechanism"] == "per_box_composition" and used["object_draws"] == 4
    assert used["unmatched"] == ["a red circle", "a blue square"]
    assert set(used["missing"]) <= set(used["unmatched"]) and used["harmonised"] is False


def test_layout_per_box_refuses_attention_guidance(models):
    with pytest.raises(InputError, match="^attention_guidance: .*set method to 'multidiffusion'"):
        build_adapter("layout", models).run({**CASES["layout"], "method": "per_box"})


def test_cleared_paints_objects_over_with_the_background():
    from pipelines.placement import cleared
    from world.grounding import WorldGrounder

    scene = render(REFERENCE, SIZE)
    canvas, hole = cleared(scene, WorldGrounder().objects(scene))
    assert hole.any() and (pixels(canvas) == (128, 128, 128)).all()
    # A plain background with faint marks is painted flat; a busy one keeps its pixels
    # outside the objects' holes.
    rng = np.random.default_rng(0)
    faint = np.clip(128 + rng.normal(0, 4, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    canvas, nothing = cleared(Image.fromarray(faint), [])
    assert not nothing.any() and (np.abs(pixels(canvas) - 128) <= 1).all()
    assert len(np.unique(pixels(canvas).reshape(-1, 3), axis=0)) == 1
    busy = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    square = np.zeros((SIZE, SIZE), bool)
    square[10:20, 10:20] = True
    canvas, hole = cleared(Image.fromarray(busy), [square])
    assert np.array_equal(pixels(canvas)[~hole], busy[~hole].astype(np.int16))
    assert len(np.unique(pixels(canvas)[hole].reshape(-1, 3), axis=0)) == 1


def test_invert_edit_blends_back_what_the_prompt_did_not_change(models, image):
    adapter = build_adapter("invert_edit", models)
    args = {"source_prompt": "a red circle", "target_prompt": "a green circle", "steps": 4, "seed": 1}
    blended = adapter.run(args, StepInputs(image=image))
    assert blended.params_used["word_swap"] and blended.params_used["local_blend_used"]
    unblended = adapter.run({**args, "local_blend": 0.0}, StepInputs(image=image))
    assert not unblended.params_used["local_blend_used"]
    longer = adapter.run({**args, "target_prompt": "a large green circle"}, StepInputs(image=image))
    assert not longer.params_used["word_swap"]


def test_invert_edit_reuses_the_source_features_for_the_first_steps(models, image):
    from pipelines.invert_edit import PromptToPrompt

    adapter = build_adapter("invert_edit", models)
    args = {"source_prompt": "a red circle", "target_prompt": "a green circle", "steps": 4}
    injected = adapter.run(args, StepInputs(image=image))
    plain = adapter.run({**args, "feature_injection_steps": 0.0}, StepInputs(image=image))
    assert injected.params_used["features_injected"] and not plain.params_used["features_injected"]
    assert not np.array_equal(pixels(injected), pixels(plain))

    # Recorded from the source pass at the chosen steps only; handed to every pass of the batch.
    control = PromptToPrompt(set(), set(), [1], [], feature_steps={981})
    source, later = torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)
    for timestep in (981, 941):
        control.timestep = timestep
        assert control.features_hook(None, (), source if timestep == 981 else later) is None
    assert list(control.features) == [981] and torch.equal(control.features[981], source)
    control.recording = False
    batch = torch.randn(2, 4, 2, 2)
    control.timestep = 941
    assert control.features_hook(None, (), batch) is None
    control.timestep = 981
    assert torch.equal(control.features_hook(None, (), batch), source.expand(2, -1, -1, -1))


def test_invert_edit_keeps_its_latents_float32_under_a_half_precision_model(paths, image,
                                                                           monkeypatch):
    import pipelines.invert_edit as invert_edit

    half = shapes_models(ModelConfig(base=str(paths["base"]), device="cpu", dtype="bfloat16"))
    recorded, invert = [], invert_edit.invert

    def recording_invert(*args):
        trajectory = invert(*args)
        recorded.extend(latents.dtype for latents in trajectory.values())
        return trajectory

    monkeypatch.setattr(invert_edit, "invert", recording_invert)
    result = build_adapter("invert_edit", half).run(
        {"source_prompt": "a red circle", "target_prompt": "a green circle", "steps": 4},
        StepInputs(image=image))
    assert half.base().unet.dtype == torch.bfloat16
    assert len(recorded) == 5 and set(recorded) == {torch.float32}
    assert result.images[0].size == image.size


def test_local_blend_mask_holds_the_changed_words_peak_not_their_floor():
    from pipelines.invert_edit import PromptToPrompt

    # A small model attends to a word everywhere at about half its peak.
    attention = torch.full((16, 16), 0.5)
    attention[2:5, 10:13] = 1.0
    control = PromptToPrompt(set(), set(), source_tokens=[1], target_tokens=[])
    control.current = [attention.flatten()]
    mask = control.blend_mask((16, 16), threshold=0.3)[0, 0]
    assert mask[3, 11] == 1 and mask[12, 3] == 0
    assert mask.sum() == 25  # the 3 x 3 peak grown by a cell


# -- models by configuration --------------------------------------------------------------

def test_model_configuration_errors_teach(paths, tmp_path):
    shipped = ModelConfig.shipped(tmp_path)
    assert shipped.base == str(tmp_path / "shapes-sd") and shipped.edit.endswith("shapes-ip2p")
    with pytest.raises(ModelUnavailable, match="shapes-sd is missing; it ships in the models/ folder"):
        shapes_models(shipped).base()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="has no model_index.json"):
        shapes_models(ModelConfig(base=str(tmp_path / "empty"))).base()
    not_ip2p = shapes_models(ModelConfig(base=str(paths["base"]), edit=str(paths["base"]), device="cpu"))
    with pytest.raises(ModelUnavailable, match="not in InstructPix2Pix format: .*4 input channels"):
        not_ip2p.edit()
    with pytest.raises(ModelUnavailable, match="no edit model is configured"):
        shapes_models(ModelConfig(base=str(paths["base"]), device="cpu")).edit()
    with pytest.raises(ValueError, match="dtype 'half' is not one of"):
        ModelConfig(base="x", dtype="half")


def test_device_and_dtype_are_automatic_with_an_override():
    from pipelines.models import resolve_device, resolve_dtype

    assert resolve_dtype(torch.device("cpu"), None) == torch.float32
    assert resolve_dtype(torch.device("cuda"), None) == torch.float16
    assert resolve_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device(None).type in ("cpu", "mps")
        with pytest.raises(ModelUnavailable, match="device 'cuda' is not available here"):
            resolve_device("cuda")
        with pytest.raises(ModelUnavailable, match="cpu_offload .* turn cpu_offload off"):
            shapes_models(ModelConfig(base="x", device="cpu", cpu_offload=True))
