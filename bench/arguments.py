"""The benchmark command's arguments, shared by `python -m bench` and `atelier bench`; kept
apart from the harness so that `atelier --help` imports nothing else."""
from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SUITE_NAMES = ("compositional", "multiturn", "conversation", "checker", "planner", "overhead",
               "sampling", "guidance", "batching", "memory", "coldstart", "ray")
DEFAULT_NAMES = tuple(name for name in SUITE_NAMES if name != "ray")


def add_arguments(parser) -> None:
    parser.add_argument("suites", nargs="*", metavar="SUITE",
                        help=f"suites to run (default: all of {', '.join(DEFAULT_NAMES)}; ray, "
                             "which needs pip install 'atelier-agent[scale]', runs when named)")
    parser.add_argument("--quick", action="store_true", help="small samples, for a rough look")
    parser.add_argument("--models", type=Path, default=None, metavar="DIR",
                        help="folder holding shapes-sd and shapes-ip2p (default: the shipped "
                             "models)")
    parser.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best)")
    parser.add_argument("--domain", default="shapes", choices=("shapes", "general"),
                        help="the domain the agent plans and checks in (default: shapes); the "
                             "general domain sees through the shipped detector and segmenter, "
                             "and the bench still judges with the world's exact reader")
    parser.add_argument("--out", type=Path, default=RESULTS, metavar="DIR",
                        help="where latest.json, report.md and plots/ go (default: "
                             "bench/results)")
