"""The `atelier` command line.

Each command group lives in agent/commands/<name>.py and adds its own subcommands through
`register(subparsers)`. Command modules import torch, numpy, PIL and the models only inside
the functions that run a command, so `atelier --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys

from agent.commands import chat, demo, index, ops, plan, run, script, world
from agent.errors import AtelierError

# Listed by hand so the command set is plain to read; each new group adds its register here.
COMMAND_GROUPS = (world.register, demo.register, index.register, plan.register, ops.register,
                  run.register, chat.register, script.register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atelier",
        description="Conditional image synthesis driven by plain language.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMAND_GROUPS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AtelierError as error:
        print(f"atelier: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("atelier: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
