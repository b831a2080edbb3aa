"""The `atelier` command line, run as a user runs it: in a subprocess, from the source tree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def atelier(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-m", "agent.interfaces.cli", *args],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
    )


def test_help_lists_the_commands(tmp_path):
    result = atelier("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("world", "demo"):
        assert command in result.stdout


def test_help_imports_no_heavy_module(tmp_path):
    probe = (
        "import sys\n"
        "from agent.interfaces import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['torch', 'numpy', 'PIL', 'diffusers', 'transformers', 'faiss', 'open_clip']\n"
        "print(','.join(name for name in heavy if name in sys.modules), file=sys.stderr)\n"
    )
    environment = {**os.environ, "ATELIER_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@pytest.fixture(scope="module")
def sampled(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("sample") / "scenes"
    result = atelier("world", "sample", "--n", "5", "--seed", "3", "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr
    return out


def read_records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "scenes.jsonl").read_text().splitlines()]


def test_sample_writes_images_and_one_line_each(sampled):
    records = read_records(sampled)
    assert [r["file"] for r in records] == [f"{i:06d}.png" for i in range(5)]
    assert sorted(p.name for p in sampled.glob("*.png")) == [r["file"] for r in records]
    for record in records:
        assert record["scene"]["objects"]
        assert isinstance(record["caption"], str) and record["caption"]


def test_same_seed_gives_identical_files(sampled, tmp_path):
    again = tmp_path / "again"
    result = atelier("world", "sample", "--n", "5", "--seed", "3", "--out", str(again),
                     home=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ["scenes.jsonl"] + [f"{i:06d}.png" for i in range(5)]:
        assert (again / name).read_bytes() == (sampled / name).read_bytes(), name


def test_detect_reads_back_the_sampled_scenes(sampled, tmp_path):
    records = read_records(sampled)
    result = atelier("world", "detect", *[str(sampled / r["file"]) for r in records], home=tmp_path)
    assert result.returncode == 0, result.stderr
    detected = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(detected) == len(records)
    for record, found in zip(records, detected):
        expected = record["scene"]
        assert found["background"] == expected["background"], record["file"]
        assert len(found["objects"]) == len(expected["objects"]), record["file"]
        for want in expected["objects"]:
            # Objects never overlap, so the nearest detected centre is the same object.
            got = min(found["objects"],
                      key=lambda o: (o["x"] - want["x"]) ** 2 + (o["y"] - want["y"]) ** 2)
            for key in ("shape", "color", "size"):
                assert got[key] == want[key], (record["file"], key)
            assert abs(got["x"] - want["x"]) <= 0.02 and abs(got["y"] - want["y"]) <= 0.02


def assert_one_line_error(result: subprocess.CompletedProcess, exit_code: int, *words: str):
    assert result.returncode == exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("atelier: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


def test_detect_refuses_a_file_that_is_not_an_image(tmp_path):
    fake = tmp_path / "x.png"
    fake.write_text("not an image\n")
    assert_one_line_error(atelier("world", "detect", str(fake), home=tmp_path), 2, str(fake))


def test_detect_refuses_a_missing_file(tmp_path):
    missing = tmp_path / "missing.png"
    assert_one_line_error(atelier("world", "detect", str(missing), home=tmp_path), 2, str(missing))


def test_demo_names_the_missing_model_folders(tmp_path):
    empty = tmp_path / "models"
    empty.mkdir()
    result = atelier("demo", home=tmp_path, ATELIER_MODELS=str(empty))
    assert_one_line_error(result, 1, "shapes-sd", "shapes-clip")


def test_detect_refuses_an_oversized_image(tmp_path):
    from PIL import Image

    wide = tmp_path / "wide.png"
    Image.new("RGB", (4097, 1)).save(wide)
    result = atelier("world", "detect", str(wide), home=tmp_path)
    assert_one_line_error(result, 2, str(wide), "4097x1")
