"""Cold start: a new process to its first image, and `atelier --help`.

Both are absolute times of fresh processes (`python -m agent.interfaces.cli ...`, what the `atelier`
script runs), so they are reported with the machine. The first image is an `atelier run`
of one request in an empty ATELIER_HOME, timed until its first image file is in the store:
importing, loading the models, planning, sampling and saving (the turn may go on to check and
correct it; the whole command's time is kept too).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import row

TITLE = "Cold start: process start to first image, and `atelier --help`"
KIND = "cost"
REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-2000:]}")
    return seconds


def first_image(command: list[str], env: dict, home: Path) -> tuple[float, float]:
    """(seconds until the first image file is in the store, seconds until the exit)."""
    images, log = home / "images", home.with_suffix(".log")
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as errors:  # a file, not a pipe: nobody reads it while it runs
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                   stderr=errors)
        seen = None
        while process.poll() is None:
            # The store renames each image into place whole, as <sha256>.png.
            if seen is None and any(images.rglob("*.png")):
                seen = time.perf_counter() - started
            time.sleep(0.01)
        total = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{log.read_text()[-2000:]}")
    return (seen if seen is not None else total), total


def run(context) -> dict:
    repeats = context.size("coldstart", quick=2, full=5)
    cli = [sys.executable, "-m", "agent.interfaces.cli"]
    env = {**os.environ, "ATELIER_MODELS": str(context.models), "PYTHONPATH": str(REPO)}
    if context.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # `atelier run` picks the best device itself
    with tempfile.TemporaryDirectory() as tmp:
        homes = [Path(tmp) / f"home-{i}" for i in range(repeats)]
        help_times = [timed(cli + ["--help"], {**env, "ATELIER_HOME": str(homes[0])})
                      for _ in range(repeats)]
        runs = [first_image(cli + ["run", "a red circle", "--seed", str(i)],
                            {**env, "ATELIER_HOME": str(home)}, home)
                for i, home in enumerate(homes)]
        python = [timed([sys.executable, "-c", "pass"], env) for _ in range(repeats)]
    first, whole = [r[0] for r in runs], [r[1] for r in runs]
    figures = {"repeats": repeats, "help_seconds": help_times,
               "first_image_seconds": first, "whole_command_seconds": whole,
               "bare_python_seconds": python,
               "median_help_seconds": round(statistics.median(help_times), 3),
               "median_first_image_seconds": round(statistics.median(first), 3),
               "median_whole_command_seconds": round(statistics.median(whole), 3),
               "median_bare_python_seconds": round(statistics.median(python), 3)}
    figures["summary"] = [
        row("process start to first image (atelier run)", figures["median_first_image_seconds"],
            unit="s", note=f"median of {repeats}; the whole command "
                           f"{figures['median_whole_command_seconds']} s"),
        row("atelier --help", figures["median_help_seconds"], unit="s",
            note=f"median of {repeats}; bare python start "
                 f"{figures['median_bare_python_seconds']} s"),
    ]
    figures["tables"] = [{
        "title": f"Fresh processes, median of {repeats}",
        "columns": ["", "seconds"],
        "rows": [["python -c pass", figures["median_bare_python_seconds"]],
                 ["atelier --help", figures["median_help_seconds"]],
                 ["atelier run 'a red circle': start to first image in the store",
                  figures["median_first_image_seconds"]],
                 ["atelier run 'a red circle': start to exit (checks and corrections too)",
                  figures["median_whole_command_seconds"]]],
    }]
    return figures
