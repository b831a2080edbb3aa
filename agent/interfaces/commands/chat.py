"""`atelier chat`: a multi-turn conversation in the terminal.

Each line is a request, or one of the commands below. Every completed turn is in the store
before its result is printed, so quitting (or losing the terminal) never loses one.
"""
from __future__ import annotations

import argparse
import sys

from agent.interfaces.commands.run import add_planner_options, seed_value
from agent.errors import AtelierError

HELP = """commands:
  /undo, undo        go back to the image before the last change
  /redo, redo        go forward again
  /history           the turns so far and the images they made
  /branch ID         continue from an earlier image, e.g. /branch img_2
  /open              open the current image in the image viewer
  /help              this list
  /quit              leave (Ctrl-D works too)
anything else is a request, e.g. "a red circle at the top left" """


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chat", help="talk to Atelier turn by turn in the terminal",
        description="A terminal conversation: each line is a request that edits the session's "
                    "current image. Type /help for the commands.")
    parser.add_argument("--session", metavar="NAME", default="chat",
                        help="the session to open or start (default: chat)")
    parser.add_argument("--seed", type=seed_value, default=None,
                        help="seed of the first turn; each later turn adds one (default: random)")
    add_planner_options(parser)
    parser.set_defaults(func=chat_command)


class Chat:
    def __init__(self, session, seed: int | None, out=None):
        self.session = session
        self.seed = seed
        self.out = out or (lambda line: print(line, flush=True))

    # --- commands -------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the chat should end."""
        text = line.strip()
        if not text:
            return True
        word = text.lower().rstrip(".!")
        command, _, argument = text.partition(" ")
        command = command.lower()
        if command in ("/quit", "/exit", "/q"):
            return False
        try:
            if command == "/help":
                self.out(HELP)
            elif command == "/undo" or word == "undo":
                self.show_current("undone", self.session.undo())
            elif command == "/redo" or word == "redo":
                self.show_current("redone", self.session.redo())
            elif command == "/history":
                self.history()
            elif command == "/branch":
                if not argument.strip():
                    self.out("usage: /branch ID, e.g. /branch img_2 (see /history for ids)")
                else:
                    self.show_current("branched", self.session.branch(argument.strip()))
            elif command == "/open":
                self.open_current()
            elif command.startswith("/"):
                self.out(f"unknown command {command}; /help lists them")
            else:
                self.turn(text)
        except AtelierError as error:
            self.out(f"error: {error}")
        return True

    def show_current(self, what: str, image) -> None:
        if image is None:
            self.out(f"{what}: the canvas is empty")
        else:
            self.out(f"{what}: current image {image.id} {image.path}")

    def history(self) -> None:
        turns = self.session.history()
        if not turns:
            self.out("no turns yet")
        for turn in turns:
            if turn.ok:
                status = {True: "checks passed", False: "checks failed", None: ""}[
                    turn.checks_passed]
                result = f"-> {turn.image_after or 'empty canvas'}"
                if turn.action in ("undo", "redo"):
                    result = f"{turn.action} {result}"
                self.out(f"{turn.number:>3}. {turn.request!r} {result} {status}".rstrip())
            else:
                self.out(f"{turn.number:>3}. {turn.request!r} failed: {turn.error}")
        current = self.session.current
        for image in self.session.images():
            if image.chosen or image.role == "upload" or (current and image.id == current.id):
                origin = image.op or "upload"
                if image.parent_ids:
                    origin += " from " + ", ".join(image.parent_ids)
                self.out(f"     {image.id}: {origin}; {image.caption}")
        self.out(f"current image: {current.id if current else 'none (empty canvas)'}")

    def open_current(self) -> None:
        current = self.session.current
        if current is None:
            self.out("no image yet")
            return
        self.out(f"{current.id}: {current.path}")
        if sys.stdout.isatty():
            import webbrowser

            try:
                webbrowser.open(current.path.as_uri())
            except Exception:  # a headless machine has no viewer; the path is printed above
                pass

    # --- a turn -----------------------------------------------------------------------------

    def turn(self, request: str) -> None:
        from tqdm import tqdm

        from agent.reports.display import event_lines, failure_line
        from agent.turn.events import PlanMade, StepStarted, TurnDone, TurnFailed

        run = self.session.stream(request, seed=self.seed)
        if self.seed is not None:
            self.seed = (self.seed + 1) % 2**32
        bar = None
        try:
            for event in run:
                for line in event_lines(event, paths=False):
                    (bar.write if bar is not None else self.out)(line)
                if isinstance(event, PlanMade) and event.plan.steps:
                    if bar is not None:
                        bar.close()
                    # Progress over the plan's steps; a correction adds an attempt to its step.
                    bar = tqdm(total=len(event.plan.steps), unit="step", leave=False,
                               file=sys.stderr, disable=None)
                elif isinstance(event, StepStarted) and bar is not None:
                    bar.n = event.step - 1
                    bar.set_description(f"{event.op} (attempt {event.attempt})")
                elif isinstance(event, TurnDone):
                    if bar is not None:
                        bar.close()
                        bar = None
                    image = run.result.image
                    self.out(f"current image: {image.id} {image.path}" if image
                             else "the canvas is empty")
                elif isinstance(event, TurnFailed):
                    self.out(failure_line(event))
        finally:
            if bar is not None:
                bar.close()


def chat_command(args: argparse.Namespace) -> int:
    from agent.api import Atelier

    atelier = Atelier(llm=args.llm, models=args.models, domain=args.domain,
                      llm_images=args.llm_images)
    atelier.planner()
    session = atelier.session(args.session)
    chat = Chat(session, args.seed)
    turns = len(session.history())
    chat.out(f"session {session.name}: {turns} earlier turn(s). /help lists the commands.")
    interactive = sys.stdin.isatty()
    # Undecodable input reaches the request check (and its one-line error) instead of
    # ending the chat with a decoding error.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="surrogateescape")
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            break
        except KeyboardInterrupt:
            chat.out("")
            break
        try:
            if not chat.handle(line):
                break
        except KeyboardInterrupt:
            # The interrupted turn was not committed: the session is as it was before it.
            chat.out("interrupted; the turn was dropped")
    return 0
