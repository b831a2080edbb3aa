"""`atelier run "request"`: one turn, printed as it runs."""
from __future__ import annotations

import argparse
import secrets
import time
from pathlib import Path

from agent.interfaces.commands.arguments import MAX_SEED, seed_value
from agent.errors import AtelierError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="plan and run one request, printing the reasoning, the steps and the image",
        description="Run one turn: plan the request, run each step, check and correct it, and "
                    "save the image in the session store (ATELIER_HOME).")
    parser.add_argument("request", help="what to draw or change, in plain words")
    parser.add_argument("--session", metavar="NAME", default=None,
                        help="continue this session (started if new); default: a new session")
    parser.add_argument("--seed", type=seed_value, default=None,
                        help=f"0..{MAX_SEED}; same seed, same image (default: random, printed)")
    parser.add_argument("--image", type=Path, default=None, metavar="PATH",
                        help="an input image to work on (PNG or JPEG)")
    add_planner_options(parser)
    parser.set_defaults(func=run_command)


def add_planner_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", metavar="SPEC", default=None,
                        help="plan with an LLM: openai:MODEL, ollama:MODEL or hf:ID_OR_PATH "
                             "(default: the domain's offline planner)")
    parser.add_argument("--llm-images", choices=("auto", "on", "off"), default="auto",
                        type=str.lower,
                        help="send the current image to the LLM: auto when its profile says it "
                             "takes images (default), on, or off; the detector's reading of the "
                             "image goes to every LLM as text either way")
    add_domain_option(parser)


def add_domain_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--domain", metavar="NAME", default=None,
                        help="the kind of picture to plan and check for: shapes (the shipped "
                             "models' world) or general (any other model set); default: "
                             "ATELIER_DOMAIN, else the model set's own")
    parser.add_argument("--models", type=model_file, default=None, metavar="FILE",
                        help="the model set, a TOML file naming base, edit, inpaint, clip, "
                             "detector, segmenter, ... (check one with `atelier models check "
                             "FILE`); default: ATELIER_MODELS, else the shipped models")


def model_file(text: str) -> Path:
    """A model file that exists and reads: a wrong one stops the command before any work."""
    from agent.api import model_set_file
    from agent.config import is_model_file
    from agent.errors import UsageError

    path = Path(text).expanduser()
    if not is_model_file(path):
        raise argparse.ArgumentTypeError(f"{text} is not a .toml model file")
    try:
        model_set_file(path)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return path.resolve()


def new_session_name() -> str:
    return f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def print_turn(run, out=print) -> None:
    """Print a turn's events as they arrive; raises AtelierError when the turn fails."""
    from agent.reports.display import event_lines, failure_line
    from agent.turn.events import TurnFailed

    for event in run:
        for line in event_lines(event, paths=False):
            out(line)
        if isinstance(event, TurnFailed):
            raise AtelierError(failure_line(event))


def run_command(args: argparse.Namespace) -> int:
    from agent.api import Atelier
    from agent.sessions.image_files import open_rgb
    from agent.sessions.session import read_request
    from agent.sessions.store import check_session_name

    # Bad input is refused before anything is written: no empty session is left behind.
    request = read_request(args.request)
    if args.session:
        check_session_name(args.session)
    image = open_rgb(args.image) if args.image is not None else None
    atelier = Atelier(llm=args.llm, models=args.models, domain=args.domain,
                      llm_images=args.llm_images)
    atelier.planner()  # a bad --llm fails here, before a session is started
    name = args.session or new_session_name()
    session = atelier.session(name)
    print(f"session {name}" + ("" if args.session else f" (continue it with --session {name})"))
    run = session.stream(request, seed=args.seed, image=image)
    print(f"seed {run.seed}")
    print_turn(run)
    result = run.result
    if result.image is None:
        print("no image yet")
    else:
        print(f"image {result.image.id}: {result.image.path}")
    return 0
