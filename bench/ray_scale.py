"""`atelier script --engine ray`: turns per second with one Ray worker and with two.

One script of single-object requests, one session each with its own seed (the batching
suite's script), runs twice on Ray in the same process: with one worker, then with two. Each
run is timed whole, as a user waits for it: the actors start, load their models once, run
their sessions, and the driver commits every turn. Every worker runs torch with one thread in
both runs, so the ratio measures sessions run side by side on more workers (more GPUs, on a
cluster), not how torch's threads scale within one worker.

The images of the two runs are compared turn by turn: the same seeds and thread count make
the same images.

Two workers can gain no more than the machine gives two busy processes over one, which on a
machine shared with other work can be far less than its core count says; so the same run
measures that too (two processes counting in a pure-Python loop against one), as the ceiling
to read the ratio against.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.batching import compare_images, same_images_row, script_lines
from bench.harness import row

TITLE = "Scripted runs on Ray: turns per second with 2 workers vs 1"
KIND = "cost"
WORKERS = (1, 2)
THREADS = 1   # torch threads per worker, in both runs


@contextmanager
def environment(**values: str):
    """Variables the Ray actors read (they get the driver's ATELIER_* variables)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


SPIN = "import time; t = time.perf_counter(); x = sum(range({n})); print(time.perf_counter() - t)"


def parallel_capacity(n: int) -> float:
    """Throughput of two CPU-bound processes together over one alone, measured now."""
    def spin(count: int) -> list[float]:
        processes = [subprocess.Popen([sys.executable, "-c", SPIN.format(n=n)],
                                      stdout=subprocess.PIPE, text=True) for _ in range(count)]
        return [float(p.communicate()[0]) for p in processes]

    (alone,) = spin(1)
    together = spin(2)
    return round(2 * alone / max(together), 3)


def run_on_ray(ray, script: Path, out: Path, workers: int) -> tuple[list[dict], float]:
    from agent.api import Atelier
    from agent.engines.ray_script import RayScriptRun
    from agent.engines.script import parse_script

    out.mkdir()
    with Atelier(home=out, retriever=None) as atelier:
        run = RayScriptRun(atelier, parse_script(script), out, ray=ray, workers=workers,
                           threads=THREADS)
        started = time.perf_counter()
        entries = run.run()
        return entries, time.perf_counter() - started


def run(context) -> dict:
    from agent.engines.ray_cluster import connected

    n = context.size("ray", quick=16, full=64)
    with tempfile.TemporaryDirectory() as tmp, connected(None) as ray:
        tmp = Path(tmp)
        script = tmp / "turns.jsonl"
        script.write_text("".join(line + "\n" for line in script_lines(n)))
        runs, loads = {}, {}
        # The actors load the suite's models; an empty home keeps the user's index out.
        with environment(ATELIER_MODELS=str(context.models), ATELIER_HOME=str(tmp / "home")):
            for workers in WORKERS:
                # The machine may be shared: its load says how far to trust the times.
                loads[workers] = round(os.getloadavg()[0], 2)
                runs[workers] = run_on_ray(ray, script, tmp / f"workers-{workers}", workers)
        capacity = parallel_capacity(context.size("ray_spin", quick=10_000_000,
                                                  full=60_000_000))
        cpus = ray.cluster_resources().get("CPU", 0)
        gpus = ray.cluster_resources().get("GPU", 0)
        (one, _), (two, _) = runs[1], runs[2]
        images = compare_images(tmp / "workers-1", tmp / "workers-2", one, two)
    speed = {w: n / seconds for w, (_, seconds) in runs.items()}
    ratio = speed[2] / speed[1]
    cluster = f"{cpus:g} CPU slots" + (f", {gpus:g} GPUs" if gpus else "")
    figures = {"turns": n, "cluster": {"cpus": cpus, "gpus": gpus},
               "threads_per_worker": THREADS,
               "runs": {str(w): {"seconds": round(s, 3), "turns_per_second": n / s,
                                 "load_at_start": loads[w]}
                        for w, (_, s) in runs.items()},
               "speedup": round(ratio, 3), "parallel_capacity": capacity, "images": images}
    figures["summary"] = [
        row("turns per second, 2 Ray workers", round(speed[2], 3), unit="turns/s",
            baseline=round(speed[1], 3), baseline_label="1 Ray worker", ratio=round(ratio, 3),
            note=f"{n} one-turn sessions, whole runs (actor start and model load included), "
                 f"{THREADS} torch thread per worker, {cluster}"),
        row("the machine now: 2 busy processes vs 1 (the ceiling for 2 workers)", capacity,
            unit="x", note="pure-Python loops, measured in the same run"),
        same_images_row("same images with 1 and 2 workers", images),
    ]
    figures["tables"] = [{
        "title": f"{n} one-turn sessions on Ray ({cluster})",
        "columns": ["workers", "seconds", "turns per second", "load average at start"],
        "rows": [[w, round(s, 2), round(n / s, 3), loads[w]] for w, (_, s) in runs.items()],
    }]
    figures["notes"] = (
        "Each run starts its actors and loads the models in each of them, so on a short "
        f"script that start-up weighs on both runs. Every worker runs {THREADS} torch "
        f"thread in both runs. Two busy processes got {capacity}x the work of one done on "
        "this machine in the same run: the most two workers could gain here. Images "
        "identical bit for bit in "
        f"{images['identical_images']}/{images['turns_compared']} turns.")
    return figures


def plot(figures: dict, path: Path) -> None:
    from bench.plots import grouped_bars

    runs = figures["runs"]
    grouped_bars(path, [f"{w} worker{'s' if w != '1' else ''}" for w in runs],
                 {"turns per second": [r["turns_per_second"] for r in runs.values()]},
                 ylabel="turns per second",
                 title=f"atelier script --engine ray, {figures['turns']} sessions")
