"""Cold start: a new process to its first image, and `atelier --help`.

Both are absolute times of fresh processes (`python -m agent.cli ...`, what the `atelier`
script runs), so they are reported with the machine. The first image is an `atelier run`
of one request in an empty ATELIER_HOME: importing, loading the models, planning, sampling,
checking and saving.
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


def run(context) -> dict:
    repeats = context.size("coldstart", quick=2, full=5)
    cli = [sys.executable, "-m", "agent.cli"]
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ATELIER_HOME": home, "ATELIER_MODELS": str(context.models),
               "PYTHONPATH": str(REPO)}
        if context.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""  # `atelier run` picks the best device itself
        help_times = [timed(cli + ["--help"], env) for _ in range(repeats)]
        first_image = [timed(cli + ["run", "a red circle", "--seed", str(i)], env)
                       for i in range(repeats)]
        python = [timed([sys.executable, "-c", "pass"], env) for _ in range(repeats)]
    figures = {"repeats": repeats, "help_seconds": help_times,
               "first_image_seconds": first_image, "bare_python_seconds": python,
               "median_help_seconds": round(statistics.median(help_times), 3),
               "median_first_image_seconds": round(statistics.median(first_image), 3),
               "median_bare_python_seconds": round(statistics.median(python), 3)}
    figures["summary"] = [
        row("process start to first image (atelier run)", figures["median_first_image_seconds"],
            unit="s", note=f"median of {repeats}"),
        row("atelier --help", figures["median_help_seconds"], unit="s",
            note=f"median of {repeats}; bare python start "
                 f"{figures['median_bare_python_seconds']} s"),
    ]
    figures["tables"] = [{
        "title": f"Fresh processes, median of {repeats}",
        "columns": ["", "seconds"],
        "rows": [["python -c pass", figures["median_bare_python_seconds"]],
                 ["atelier --help", figures["median_help_seconds"]],
                 ["atelier run 'a red circle' (start to saved image)",
                  figures["median_first_image_seconds"]]],
    }]
    return figures
