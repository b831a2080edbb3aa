"""`atelier bench [SUITE ...] [--quick]`: run the benchmark suites (bench/harness.py)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from bench.arguments import add_arguments  # argparse only: --help stays fast

    parser = subparsers.add_parser(
        "bench", help="measure each capability on the shapes world: a results file and a "
                      "report with plots",
        description="Run benchmark suites (all but ray when none is named) in one warm process and "
                    "write bench/results/latest.json and report.md with PNG plots.")
    add_arguments(parser)
    parser.set_defaults(func=bench_command)


def bench_command(args: argparse.Namespace) -> int:
    from bench.harness import run_command

    return run_command(args)
