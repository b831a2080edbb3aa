"""Model sets from the command line: a TOML model file (pipelines/model_file.py) given as
`--models FILE` or through ATELIER_MODELS, and `atelier models check FILE`, on tiny random
folders of several families."""
from __future__ import annotations

import json

import pytest

import tiny_eyes
import tiny_families
from pipelines.model_file import ModelFileError, read_model_file
from test_cli import assert_one_line_error, atelier


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    tiny_families.sdxl(root, unet_in_channels=8).save_pretrained(root / "tiny-sdxl-ip2p")
    return {"root": root, "sd": tiny_families.write("sd", root),
            "sdxl": tiny_families.write("sdxl", root), "flux": tiny_families.write("flux", root),
            "sdxl-ip2p": root / "tiny-sdxl-ip2p",
            "detector": tiny_eyes.write_detector(root / "detector"),
            "segmenter": tiny_eyes.write_segmenter(root / "segmenter")}


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text)
    return path


def test_a_model_file_names_roles_and_settings_relative_to_itself(folders):
    path = write(folders["root"], "set.toml", 'base = "tiny-sdxl"\nedit = "tiny-sdxl-ip2p"\n'
                 'detector = "owner/detector"\ndtype = "bfloat16"\noffload = false\n'
                 'detector_threshold = 1\ndomain = "general"\n')
    config = read_model_file(path)
    assert config.base == str(folders["sdxl"]) and config.edit == str(folders["sdxl-ip2p"])
    assert config.detector == "owner/detector"          # a hub id stays one
    assert (config.dtype, config.cpu_offload, config.detector_threshold, config.domain) == (
        "bfloat16", False, 1.0, "general")


@pytest.mark.parametrize("text, words", [
    ('base = "a/b"\nloras = 2\n', ["unknown key 'loras'", "the keys are base"]),
    ('edit = "a/b"\n', ["names no `base`"]),
    ('base = 3\n', ["base = 3 should be a hub id"]),
    ('base = "a/b"\ndtype = "float8"\n', ["dtype 'float8' is not one of"]),
    ('base = "a/b"\noffload = "yes"\n', ["offload = 'yes' should be true or false"]),
    ('base = "a/b\n', ["is not valid TOML"]),
])
def test_a_wrong_model_file_is_named_with_what_is_wanted(folders, text, words):
    with pytest.raises(ModelFileError) as error:
        read_model_file(write(folders["root"], "wrong.toml", text))
    for word in words:
        assert word in str(error.value)


def test_models_check_prints_each_part_and_what_each_operation_uses(folders, tmp_path):
    path = write(folders["root"], "xl.toml", 'base = "tiny-sdxl"\nedit = "tiny-sdxl-ip2p"\n'
                 'detector = "detector"\nsegmenter = "segmenter"\n')
    result = atelier("models", "check", str(path), home=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"base: {folders['sdxl']}: SDXL (StableDiffusionXLPipeline)")
               for line in lines), result.stdout
    assert any(line.startswith("edit: ") and "InstructPix2Pix" in line for line in lines)
    assert "  inpaint: the base model through SDXL's inpainting pipeline" in lines
    assert any(line.startswith("  invert_edit: refused: invert_edit does not run on SDXL")
               for line in lines)
    flux = write(folders["root"], "flux.toml", 'base = "tiny-flux"\nedit = "missing-folder"\n')
    result = atelier("models", "check", str(flux), home=tmp_path)
    assert result.returncode == 1
    assert "FLUX (FluxPipeline)" in result.stdout and "(guidance-distilled)" in result.stdout
    assert f"edit: {folders['root'] / 'missing-folder'}: WRONG: edit model" in result.stdout
    assert "  edit: refused: edit does not run on FLUX models" in result.stdout
    assert_one_line_error(result, 1, "1 part(s)", "are wrong: edit")


def test_run_and_ops_take_the_model_file_from_the_flag_or_the_environment(folders, tmp_path):
    path = write(folders["root"], "sd.toml", 'base = "tiny-sd"\ndomain = "general"\n')
    result = atelier("run", "a lighthouse at dusk", "--models", str(path), "--seed", "3",
                     home=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "a.png"
    result = atelier("op", "generate", "--set", "prompt=a kite", "--set", "steps=2",
                     "--set", "width=70", "--out", str(out), home=tmp_path,
                     ATELIER_MODELS=str(path))
    assert result.returncode == 0, result.stderr
    from PIL import Image

    assert Image.open(out).size == (72, 64)
    result = atelier("run", "a kite", "--models", str(tmp_path / "nothing.toml"), home=tmp_path)
    assert_one_line_error(result, 2, "--models", "does not exist")


def test_a_script_runs_on_the_model_file(folders, tmp_path):
    path = write(folders["root"], "xl-script.toml", 'base = "tiny-sdxl"\ndomain = "general"\n')
    script = tmp_path / "turns.jsonl"
    script.write_text(json.dumps({"session": "s", "request": "a red kite", "seed": 1}) + "\n")
    result = atelier("script", str(script), "--out", str(tmp_path / "out"), "--models", str(path),
                     home=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert record["ok"] is True


def readme_section() -> str:
    from test_cli import REPO

    text = (REPO / "README.md").read_text()
    start = text.index("## Real models and LLMs")
    return text[start:text.index("### Domains", start)]


def test_the_readme_model_file_reads_as_written(tmp_path):
    block = readme_section().split("```toml\n")[1].split("```")[0]
    config = read_model_file(write(tmp_path, "sdxl.toml", block))
    assert config.base == "stabilityai/stable-diffusion-xl-base-1.0"
    assert (config.inpaint, config.dtype, config.domain) == (
        "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "float16", "general")


def test_every_command_of_the_readme_model_section_runs_on_tiny_folders(folders, tmp_path):
    import shlex

    tiny = write(folders["root"], "readme.toml", 'base = "tiny-sdxl"\nedit = "tiny-sdxl-ip2p"\n'
                 'detector = "detector"\nsegmenter = "segmenter"\ndomain = "general"\n')
    block = readme_section().split("```bash\n")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 4
    for command in commands:
        command = command.replace("sdxl.toml", str(tiny))
        words = shlex.split(command.replace("a.png", str(tmp_path / "a.png")))
        env = dict(w.split("=", 1) for w in words if w.split("=")[0].isupper())
        words = [w for w in words if w.split("=")[0] not in env]
        assert words[0] == "atelier"
        if words[1] == "op":
            words += ["--set", "steps=2"]
        result = atelier(*words[1:], home=tmp_path, **env) if words[1] != "chat" else \
            chat(words[1:], tmp_path, env)
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / "a.png").is_file()


def chat(arguments, home, env):
    import os
    import subprocess
    import sys

    from test_cli import REPO

    return subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *arguments], cwd=REPO,
                          env={**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO),
                               **env}, input="a red kite\n", capture_output=True, text=True,
                          timeout=300)


def test_an_operation_the_family_does_not_run_is_one_line_and_exit_2(folders, tmp_path):
    from PIL import Image

    path = write(folders["root"], "xl-op.toml", 'base = "tiny-sdxl"\n')
    image = tmp_path / "in.png"
    Image.new("RGB", (64, 64), "white").save(image)
    result = atelier("op", "invert_edit", "--models", str(path), "--image", str(image),
                     "--set", "source_prompt=a kite", "--set", "target_prompt=a red kite",
                     "--out", str(tmp_path / "out.png"), home=tmp_path)
    assert_one_line_error(result, 2, "invert_edit does not run on SDXL models",
                          "on SDXL these run: generate, inpaint")
