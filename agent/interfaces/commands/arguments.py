"""Argument types shared by the command groups: each names the bad value and what is wanted."""
from __future__ import annotations

import argparse

MAX_SEED = 2**32 - 1
# Upper bounds keep a typo (an extra zero or three) from starting hours of work or
# allocating gigabytes; each is far above any real use.
MAX_COUNT = 1_000_000
MAX_HITS = 1_000


def whole_number(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is not at least {low}")
    if value > high:
        raise argparse.ArgumentTypeError(f"{value} is more than {high}")
    return value


def positive_int(text: str) -> int:
    """A count of things to make: 1..MAX_COUNT."""
    return whole_number(text, 1, MAX_COUNT)


def hit_count(text: str) -> int:
    """A number of search hits: 1..MAX_HITS."""
    return whole_number(text, 1, MAX_HITS)


def seed_value(text: str) -> int:
    """A seed: 0..MAX_SEED, the range every generator in Atelier takes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{MAX_SEED}")
    return value


MAX_WORKERS = 4096


def worker_count(text: str) -> int:
    return whole_number(text, 1, MAX_WORKERS)


def add_engine_options(parser: argparse.ArgumentParser, work: str) -> None:
    """--engine, --address and --workers: where the commands that scale out run their work."""
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help=f"local: {work} in this process (default); ray: spread over Ray "
                             "workers, needs pip install 'atelier-agent[scale]'")
    parser.add_argument("--address", default=None, metavar="ADDR",
                        help="with --engine ray: the Ray cluster to use (HOST:PORT from `ray "
                             "start --head`, or 'auto'); default: start Ray on this machine")
    parser.add_argument("--workers", type=worker_count, default=None, metavar="N",
                        help="with --engine ray: number of Ray workers (default: one per GPU, "
                             "else one per CPU slot)")


def check_engine_options(args: argparse.Namespace) -> None:
    from agent.errors import UsageError

    if args.engine != "ray":
        given = [name for name in ("address", "workers") if getattr(args, name) is not None]
        if given:
            raise UsageError(f"--{given[0]} goes with --engine ray")
