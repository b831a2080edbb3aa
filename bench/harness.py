"""The benchmark harness: a registry of suites, one results file, one report.

    python -m bench [SUITE ...] [--quick]        # or: atelier bench [SUITE ...] [--quick]

Each suite is a module of bench/ with `TITLE`, `KIND` ("quality" or "cost"), and
`run(context) -> figures` (a JSON-ready dict holding a "summary" list of headline rows);
it may also have `plot(figures, path)`, which draws one PNG. The harness runs the suites
asked for (every default suite when none is named), all in one warm process that shares
one set of loaded models, and writes

    bench/results/latest.json    every suite's latest figures, each stamped with its run
    bench/results/report.md      the headline table, then each suite's figures and plot
    bench/results/plots/*.png

A suite named again replaces its entry in latest.json; the others stay, each with its own
stamp. A summary row compares a figure with a baseline measured in the same run of the same
suite, or states an absolute time together with the machine it ran on.
"""
from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.arguments import RESULTS, add_arguments
from world.grounding import WorldGrounder

# Suite name -> module. Listed by hand, run in this order.
SUITES: dict[str, str] = {
    "compositional": "bench.compositional",
    "multiturn": "bench.multiturn",
    "conversation": "bench.conversation",
    "checker": "bench.checker",
    "planner": "bench.planner",
    "overhead": "bench.overhead",
    "sampling": "bench.sampling",
    "guidance": "bench.guidance",
    "batching": "bench.batching",
    "memory": "bench.memory",
    "coldstart": "bench.coldstart",
    "ray": "bench.ray_scale",
}
# Run only when named: the ray suite needs the scale extra (pip install 'atelier-agent[scale]').
OPTIONAL_SUITES = ("ray",)
DEFAULT_SUITES = tuple(name for name in SUITES if name not in OPTIONAL_SUITES)


def suite_module(name: str):
    try:
        return importlib.import_module(SUITES[name])
    except KeyError:
        raise KeyError(f"unknown suite {name!r}; the suites are {', '.join(SUITES)}") from None


@dataclass
class Context:
    """What every suite gets: where the models are, how big to make samples, and the warm
    objects suites share within one run."""

    models: Path                          # the folder holding shapes-sd, shapes-ip2p, ...
    quick: bool = False
    device: str | None = None
    # The domain the agent plans and checks in; the bench always judges with the world.
    domain: str = "shapes"
    sizes: dict[str, Any] = field(default_factory=dict)   # per-suite sample sizes (tests)
    machine: dict[str, Any] = field(default_factory=dict)
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def size(self, suite: str, quick: int, full: int) -> int:
        """The sample size for `suite`: an explicit override, else the quick or full size."""
        if suite in self.sizes:
            return self.sizes[suite]
        return quick if self.quick else full

    def config(self):
        from pipelines.models import ModelConfig

        return ModelConfig.shipped(self.models, device=self.device)

    def model_set(self):
        """One ModelSet for the whole run, so every suite measures warm models."""
        if "models" not in self._shared:
            from pipelines.models import ModelSet

            config = self.config()
            if self.domain == "shapes":
                grounder = WorldGrounder()
            else:
                from agent.domains import get_domain

                grounder = get_domain(self.domain).make_grounder(config)
            self._shared["models"] = ModelSet(config, grounder=grounder)
        return self._shared["models"]

    def runner(self):
        if "runner" not in self._shared:
            from agent.turn.runner import PipelineRunner

            self._shared["runner"] = PipelineRunner(self.model_set())
        return self._shared["runner"]

    def atelier(self, home: Path, **options):
        """An Atelier in `home` on the shared models, in the context's domain and checked by
        that domain's checker (the world's, for the shapes domain)."""
        from agent.api import Atelier

        checker = "shapes" if self.domain == "shapes" else "auto"
        return Atelier(home=home, models=self.runner(), checker=checker, retriever=None,
                       domain=self.domain, **options)

    def canvas(self) -> int:
        from pipelines.families import native_size

        return native_size(self.model_set().base())


def describe_machine(device: str | None = None) -> dict[str, Any]:
    """What an absolute time needs next to it: the processor, the threads torch uses, the
    accelerator, and how busy the machine was."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    machine = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "python": platform.python_version(), "torch": torch.__version__,
               "platform": platform.platform(terse=True)}
    from pipelines.models import resolve_device

    resolved = resolve_device(device)
    machine["device"] = resolved.type
    if resolved.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(resolved)
    if hasattr(os, "getloadavg"):
        machine["load_average"] = round(os.getloadavg()[0], 2)
    return machine


def machine_label(machine: dict) -> str:
    where = machine.get("gpu") or f"{machine.get('cpu', '?')}"
    label = f"{where}, {machine.get('torch_threads', '?')} torch threads"
    if "load_average" in machine:
        label += f", load {machine['load_average']} at start"
    return label


def run_suites(names: list[str], context: Context, out: Path = RESULTS,
               log=print) -> dict:
    """Run the suites, merge their figures into out/latest.json and rewrite the report."""
    for name in names:
        suite_module(name)  # an unknown name fails before anything runs
    out.mkdir(parents=True, exist_ok=True)
    latest = out / "latest.json"
    if not context.machine:
        context.machine = describe_machine(context.device)
    stamp = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": context.quick,
             "machine": context.machine, "models": str(context.models)}
    for name in names:
        module = suite_module(name)
        # Another domain's figures stand beside the shapes domain's, not over them.
        key = name if context.domain == "shapes" else f"{name}@{context.domain}"
        log(f"[bench] {key}: {module.TITLE}")
        started = time.perf_counter()
        entry = {"title": module.TITLE, "kind": module.KIND, **stamp}
        try:
            entry["figures"] = module.run(context)
        except Exception as error:  # one suite failing must not lose the others' figures
            entry["error"] = f"{type(error).__name__}: {error}"
            log(f"[bench] {name} failed: {entry['error']}")
            log(traceback.format_exc(limit=8))
        entry["seconds"] = round(time.perf_counter() - started, 1)
        if "figures" in entry and hasattr(module, "plot"):
            path = out / "plots" / f"{key}.png"
            path.parent.mkdir(exist_ok=True)
            try:
                module.plot(entry["figures"], path)
                entry["plot"] = path.relative_to(out).as_posix()
            except Exception as error:
                log(f"[bench] {name}: no plot ({type(error).__name__}: {error})")
        for row in entry.get("figures", {}).get("summary", []):
            log(f"[bench]   {row_text(row)}")
        # Written after every suite, so an interrupted run keeps what it measured; read again
        # first, so that a bench running beside this one keeps the suites it wrote meanwhile.
        results = read_results(latest)
        entry["domain"] = context.domain
        results["suites"][key] = entry
        write_atomically(latest, json.dumps(results, indent=2, default=str) + "\n")
        write_atomically(out / "report.md", report(results))
    return read_results(latest)


def read_results(latest: Path) -> dict:
    results = json.loads(latest.read_text()) if latest.exists() else {}
    results.setdefault("suites", {})
    return results


def update_results(path: Path, entries: dict) -> dict:
    """Replace only `entries` in a JSON results file, reading it just before writing so that a
    bench running beside this one keeps what it wrote meanwhile."""
    results = json.loads(path.read_text()) if path.exists() else {}
    results.update(entries)
    path.parent.mkdir(exist_ok=True)
    write_atomically(path, json.dumps(results, indent=2) + "\n")
    return results


def write_atomically(path: Path, text: str) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


# --- summary rows ------------------------------------------------------------------------

def row(figure: str, value, *, baseline=None, baseline_label: str | None = None,
        ratio: float | None = None, unit: str = "", target: str | None = None,
        ok: bool | None = None, note: str | None = None) -> dict:
    """One headline figure. `ratio` (value over baseline, both from the same run) or an
    absolute `value` with its `unit`; `target` and `ok` where the figure has a bar."""
    data = {"figure": figure, "value": value, "unit": unit}
    for key, item in (("baseline", baseline), ("baseline_label", baseline_label),
                      ("ratio", ratio), ("target", target), ("ok", ok), ("note", note)):
        if item is not None:
            data[key] = item
    return data


def _format(value, unit: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if unit == "%" and isinstance(value, (int, float)):
        return f"{100 * value:.1f}%"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return f"{text} {unit}".strip()
    return f"{value} {unit}".strip()


def row_text(r: dict) -> str:
    text = f"{r['figure']}: {_format(r['value'], r.get('unit', ''))}"
    if "baseline" in r:
        text += f" vs {_format(r['baseline'], r.get('unit', ''))} ({r.get('baseline_label', '')})"
    if "ratio" in r:
        text += f" = {r['ratio']:.3g}x"
    if "target" in r:
        text += f" [target {r['target']}: {'met' if r.get('ok') else 'NOT MET'}]"
    return text


# --- the report ----------------------------------------------------------------------------

def suite_keys(results: dict) -> list[str]:
    """The suites in `results` in the registry's order, each followed by its runs in other
    domains ("conversation@general")."""
    present = results.get("suites", {})
    return [k for n in SUITES for k in present if k == n or k.startswith(f"{n}@")]


def summary_table(results: dict) -> str:
    """The headline figures of every suite as one markdown table (what README shows), under
    a line per run saying when, how (quick or full) and on what machine it was measured."""
    names = suite_keys(results)
    runs: dict[tuple, list[str]] = {}
    for name in names:
        entry = results["suites"][name]
        stamp = (entry["measured"], "quick" if entry.get("quick") else "full",
                 machine_label(entry.get("machine", {})))
        runs.setdefault(stamp, []).append(name)
    lines = [f"{kind.capitalize()} run of {', '.join(suites)}: {when}, {machine}.  "
             for (when, kind, machine), suites in runs.items()]
    lines += ["", "| Suite | Figure | Value | Same-run baseline | Ratio | Target |",
              "|---|---|---|---|---|---|"]
    for name in names:
        entry = results["suites"][name]
        if "error" in entry:
            lines.append(f"| {name} | failed: {entry['error'][:80]} | | | | |")
            continue
        for r in entry["figures"].get("summary", []):
            unit = r.get("unit", "")
            baseline = (f"{_format(r['baseline'], unit)} ({r.get('baseline_label', '')})"
                        if "baseline" in r else "")
            ratio = f"{r['ratio']:.3g}x" if "ratio" in r else ""
            target = ""
            if "target" in r:
                target = f"{r['target']} ({'met' if r.get('ok') else 'not met'})"
            lines.append(f"| {name} | {r['figure']} | {_format(r['value'], unit)} | {baseline} "
                         f"| {ratio} | {target} |")
    return "\n".join(lines) + "\n"


def report(results: dict) -> str:
    parts = ["# Atelier benchmarks", "",
             "Every figure is judged on the shapes world (the world's detector reads each image "
             "back). A ratio compares two measurements made in the same run of the same suite; "
             "an absolute time is shown with the machine it ran on. Quick runs use small "
             "samples: read their figures as rough.", "", summary_table(results)]
    for name in suite_keys(results):
        entry = results["suites"][name]
        parts += [f"## {name}: {entry['title']}", "",
                  f"Measured {entry['measured']} ({'quick' if entry.get('quick') else 'full'} "
                  f"run, {entry.get('seconds', '?')} s) on {machine_label(entry['machine'])}.", ""]
        if "error" in entry:
            parts += [f"Failed: `{entry['error']}`", ""]
            continue
        figures = entry["figures"]
        for table in figures.get("tables", []):
            parts += [markdown_table(table), ""]
        if "plot" in entry:
            parts += [f"![{name}]({entry['plot']})", ""]
        notes = figures.get("notes")
        if notes:
            parts += [notes, ""]
    return "\n".join(parts)


def markdown_table(table: dict) -> str:
    """{"title", "columns", "rows"} as a markdown table under a bold title."""
    lines = [f"**{table['title']}**", "", "| " + " | ".join(table["columns"]) + " |",
             "|" + "---|" * len(table["columns"])]
    for values in table["rows"]:
        lines.append("| " + " | ".join(_cell(v) for v in values) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    if value is None:
        return ""
    return str(value)


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


def run_command(args) -> int:
    """Run the suites an argparse namespace (bench/arguments.py) names; the exit code."""
    from agent.config import models_dir

    names = args.suites or list(DEFAULT_SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown suite {unknown[0]!r}; the suites are {', '.join(SUITES)}",
              file=sys.stderr)
        return 2
    context = Context(models=Path(args.models or models_dir()), quick=args.quick,
                      device=args.device, domain=args.domain)
    from pipelines.errors import ModelUnavailable
    from pipelines.models import locate

    try:
        locate("base", str(context.models / "shapes-sd"))
    except ModelUnavailable as error:
        print(f"bench needs the models: {error}", file=sys.stderr)
        return 1
    results = run_suites(names, context, args.out)
    keys = [n if args.domain == "shapes" else f"{n}@{args.domain}" for n in names]
    failed = [k for k in keys if "error" in results["suites"][k]]
    print(f"[bench] wrote {args.out / 'latest.json'} and {args.out / 'report.md'}")
    return 1 if failed else 0
