"""The `atelier` command line.

Each command group lives in agent/interfaces/commands/<name>.py and adds its own subcommands through
`register(subparsers)`. Command modules import torch, numpy, PIL and the models only inside
the functions that run a command, so `atelier --help` stays fast.
"""
from __future__ import annotations

import argparse
import sys

from agent.interfaces.commands import chat, index, models, ops, plan, run, script, web
from agent.config import debugging
from agent.errors import AtelierError

# The core's groups, listed by hand so the command set is plain to read; each new group adds
# its register here. Groups of other packages (the shapes world's `world`, `bench`) register
# under the `atelier.commands` entry-point group instead, so the core imports none of them.
COMMAND_GROUPS = (index.register, plan.register, ops.register, run.register,
                  chat.register, script.register, web.register, models.register)
PLUGIN_GROUP = "atelier.commands"


def plugin_groups() -> list:
    """Each plugin group's register; a group whose package cannot be imported still appears,
    and says why when it is used."""
    from importlib.metadata import entry_points

    groups = []
    for point in sorted(entry_points(group=PLUGIN_GROUP), key=lambda p: p.name):
        try:
            groups.append(point.load())
        except ImportError as error:
            groups.append(unavailable(point.name, point.value, error))
    return groups


def unavailable(name: str, where: str, error: ImportError):
    reason = f"`atelier {name}` comes from {where}, which cannot be imported ({error})"

    def fail(args) -> int:
        raise AtelierError(f"{reason}; reinstall Atelier (pip install -e .)")

    def register(subparsers) -> None:
        parser = subparsers.add_parser(name, help=f"(unavailable: {error})", add_help=False)
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(func=fail)

    return register


class Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line naming the problem and where help is.
    Subparsers are built from the same class, so every command's errors read alike."""

    def error(self, message: str):
        self.exit(2, f"atelier: error: {one_line(message)}; see {self.prog} --help\n")


def one_line(text: str) -> str:
    """`text` as one printable line: a message may quote a request, a caption or an LLM's
    reply, and nothing in those may add lines or drive the terminal."""
    return " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="atelier",
        description="Conditional image synthesis driven by plain language.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in (*COMMAND_GROUPS, *plugin_groups()):
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AtelierError as error:
        print(f"atelier: error: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("atelier: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        # The machine refused the work (disk full, no permission): not the user's input.
        where = f"{error.filename}: " if error.filename else ""
        print(f"atelier: error: {one_line(where + (error.strerror or str(error)))}; check the "
              "path, its permissions and the free disk space", file=sys.stderr)
        return 1
    except Exception as error:
        if debugging():
            raise
        print(f"atelier: error: internal error ({type(error).__name__}: {one_line(error)}); "
              "please report it; ATELIER_DEBUG=1 shows the traceback", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
