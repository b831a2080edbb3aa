"""`atelier ops` and `atelier op`: listing operations, and running one on tiny models."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_diffusion
from agent.interfaces import cli
from world.render import render
from world.scene import Obj, Scene

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_diffusion.write_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(autouse=True)
def no_shipped_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_MODELS", str(tmp_path / "no-models"))
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))


def atelier(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ops_lists_every_operation_without_loading_anything(tmp_path):
    probe = (
        "import sys\n"
        "from agent.interfaces import cli\n"
        "code = cli.main(['ops'])\n"
        "heavy = ['torch', 'diffusers', 'transformers', 'open_clip']\n"
        "print(','.join(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    environment = {**os.environ, "ATELIER_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr.strip() == ""
    for name in ("generate", "edit", "inpaint", "layout", "reference", "compose", "restore",
                 "invert_edit"):
        assert f"\n{name}: " in "\n" + result.stdout
    assert "    prompt: str, required  (what to draw)" in result.stdout
    assert "sampler: 'dpm++2m' | 'ddim' | 'euler' | 'euler_a' = 'dpm++2m'" in result.stdout
    assert "    needs: image, reference" in result.stdout


def test_ops_json(capsys):
    code, out, _ = atelier(capsys, "ops", "--json")
    listed = {op["name"]: op for op in json.loads(out)}
    assert code == 0 and listed["edit"]["needs"] == ["image"]
    steps = {op: next(a for a in listed[op]["arguments"] if a["name"] == "steps")["default"]
             for op in ("generate", "layout")}
    assert steps == {"generate": 20, "layout": 20}


def test_op_generate_writes_the_image(capsys, paths, tmp_path):
    out = tmp_path / "a.png"
    args = ("op", "generate", "--model-base", paths["base"], "--set", "prompt=a red circle",
            "--set", "steps=2", "--seed", 1, "--out", out)
    code, stdout, err = atelier(capsys, *args)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out} (seed 1, ")
    first = np.asarray(Image.open(out))
    assert first.shape == (tiny_diffusion.SIZE, tiny_diffusion.SIZE, 3)
    assert atelier(capsys, *args)[0] == 0
    assert np.array_equal(first, np.asarray(Image.open(out)))


def test_op_writes_numbered_files_for_several_images(capsys, paths, tmp_path):
    code, stdout, _ = atelier(capsys, "op", "generate", "--model-base", paths["base"], "--args",
                              '{"prompt": "a red circle", "steps": 1, "num_images": 2}',
                              "--out", tmp_path / "a.png")
    assert code == 0 and (tmp_path / "a-1.png").is_file() and (tmp_path / "a-2.png").is_file()


def test_op_inpaint_with_a_mask_file(capsys, paths, tmp_path):
    image = tmp_path / "in.png"
    render(Scene((Obj("circle", "red", "large", 0.3, 0.3),)), tiny_diffusion.SIZE).save(image)
    mask = Image.new("L", (tiny_diffusion.SIZE,) * 2, 0)
    mask.paste(255, (0, 0, 32, 32))
    mask.save(tmp_path / "mask.png")
    code, _, err = atelier(capsys, "op", "inpaint", "--model-base", paths["base"], "--image", image,
                           "--mask", tmp_path / "mask.png", "--set", "prompt=a green circle",
                           "--set", "steps=2", "--out", tmp_path / "b.png")
    assert code == 0, err
    before, after = np.asarray(Image.open(image)), np.asarray(Image.open(tmp_path / "b.png"))
    assert np.array_equal(before[32:], after[32:]) and np.array_equal(before[:, 32:], after[:, 32:])


@pytest.mark.parametrize("argv, message", [
    (("op", "generate", "--set", "steps=500"),
     "steps: input should be less than or equal to 200 (got 500); prompt: required; set it"),
    (("op", "paint", "--set", "prompt=x"), "unknown operation 'paint'; known: generate, edit,"),
    (("op", "generate", "--set", "prompt"), "--set 'prompt' is not KEY=VALUE"),
    (("op", "generate", "--args", "{prompt"), "--args is not valid JSON"),
    (("op", "generate", "--args", "[1]"), "--args must be a JSON object"),
    (("op", "edit", "--set", "instruction=make it green"), "edit works on an image; give it with --image PATH"),
    (("op", "generate", "--set", "prompt=x", "--mask", "m.png"), "--mask: generate takes no target"),
    (("op", "generate", "--set", "prompt=x", "--out", "a.gif"), "--out a.gif: give a file name ending in .png"),
    (("op", "edit", "--image", "missing.png", "--set", "instruction=x"), "missing.png: no such file"),
])
def test_op_bad_input_is_one_line_naming_it(capsys, tmp_path, argv, message):
    argv = list(argv) + ([] if "--out" in argv else ["--out", tmp_path / "x.png"])
    code, out, err = atelier(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("atelier: error: ") and message in err


def test_op_names_the_file_an_input_error_comes_from(capsys, paths, tmp_path):
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    Image.new("RGB", (64, 64), "white").save(image)
    Image.new("L", (64, 64), 0).save(mask)
    code, _, err = atelier(capsys, "op", "inpaint", "--model-base", paths["base"], "--image",
                           image, "--mask", mask, "--set", "prompt=x", "--out", tmp_path / "b.png")
    assert code == 2
    assert err == (f"atelier: error: {mask}: target: covers no pixels of the image; give a "
                   "larger region\n")


def test_op_without_the_shipped_models_says_how_to_get_them(capsys, tmp_path):
    code, _, err = atelier(capsys, "op", "generate", "--set", "prompt=a red circle",
                           "--out", tmp_path / "a.png")
    assert code == 1 and err.count("\n") == 1
    assert "base model" in err and "shapes-sd is missing" in err and "--model-base" in err
