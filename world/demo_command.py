"""`atelier demo`: the main job on the shipped shapes-world models in one command.

A short session (world/demo.py) that uses generate, layout, inpaint, edit and a reference
found by retrieval, printed as it runs, then a contact sheet and an HTML report (agent/reports/report.py)
in one folder.
"""
from __future__ import annotations

import argparse
import os
import secrets
import time
from pathlib import Path

from agent.config import models_dir
from agent.errors import AtelierError, UsageError
from agent.interfaces.commands.run import add_domain_option, seed_value

# Each shipped model folder and the file that shows it is complete.
REQUIRED_MODELS = {
    "shapes-sd": "model_index.json",
    "shapes-ip2p": "model_index.json",
    "shapes-clip": "open_clip_config.json",
}
SHEET_NAME = "contact_sheet.png"
REPORT_NAME = "report.html"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a short session on the shipped models (generate, layout, inpaint, edit, "
             "reference) and write a contact sheet and an HTML report",
        description="Run a five-request session on the shipped shapes-world models, building "
                    "a small image index under ATELIER_HOME for the reference request, then "
                    f"write {SHEET_NAME} and {REPORT_NAME} (per turn: request, rationale, "
                    "plan, exemplars, image, checks) and print their paths. Checks that fail "
                    "are reported, not fatal.")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for the contact sheet and report "
                             "(default: ATELIER_HOME/demo/<time>)")
    parser.add_argument("--seed", type=seed_value, default=1,
                        help="seed of the first turn; turn i uses seed + i - 1 (default 1)")
    add_domain_option(parser)
    parser.set_defaults(func=run_demo)


def check_shipped_models() -> None:
    root = models_dir()
    missing = [name for name, marker in REQUIRED_MODELS.items()
               if not (root / name / marker).is_file()]
    if missing:
        raise AtelierError(
            f"missing model folders in {root}: {', '.join(missing)}; they come with Atelier's "
            "embedded models in the models/ folder of the source tree "
            "(or set ATELIER_MODELS to a folder that holds them)"
        )


def writable_folder(folder: Path, given: bool) -> Path:
    """`folder`, created if needed, once a file could be written in it: minutes of work are
    not spent before finding out that the report has nowhere to go."""
    error_type = UsageError if given else AtelierError
    what = f"--out {folder}" if given else str(folder)
    if folder.exists() and not folder.is_dir():
        raise error_type(f"{what} is a file, not a folder; give a folder for the report")
    probe = folder / f".atelier-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise error_type(f"{what}: cannot write there ({error.strerror or error}); give a "
                         "folder you can write to") from None
    return folder.resolve()


def run_demo(args: argparse.Namespace) -> int:
    check_shipped_models()
    from agent.config import atelier_home

    home = atelier_home()
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    out = writable_folder(args.out if args.out is not None else home / "demo" / stamp,
                          given=args.out is not None)
    started = time.perf_counter()

    from agent.api import Atelier
    from world.demo import demo_index, run_demo_session
    from agent.reports.display import event_lines, failure_line
    from agent.turn.events import TurnFailed
    from agent.sessions.image_files import open_rgb
    from agent.reports.report import TurnView, write_contact_sheet, write_html
    from index.embedder import Embedder
    from index.errors import IndexStoreError
    from retrieval.retriever import Retriever

    try:
        embedder = Embedder.shipped(models_dir(), open_image=open_rgb, progress=False)
        store = demo_index(home, embedder)
    except IndexStoreError as error:
        raise AtelierError(f"the demo index could not be built: {error}") from None

    def on_turn(number: int, request: str, note: str | None) -> None:
        print(f"\nturn {number}: {request}")
        if note:
            print(f"  ({note})")

    def on_event(event) -> None:
        for line in event_lines(event, paths=False):
            print(line)
        if isinstance(event, TurnFailed):
            if event.kind == "model":
                raise AtelierError(failure_line(event))
            print(failure_line(event))

    name = f"demo-{stamp}"
    with Atelier(home=home, retriever=Retriever(store, embedder), domain=args.domain) as atelier:
        print(f"session {name} in {home}")
        results = run_demo_session(atelier.session(name), seed=args.seed, on_turn=on_turn,
                                   on_event=on_event)
        models = ", ".join(f"{k}: {v}" for k, v in atelier.model_ids().items())
    turns = [TurnView.from_result(n, r.result, r.note) for n, r in enumerate(results, 1)]
    seconds = time.perf_counter() - started
    sheet = write_contact_sheet(turns, out / SHEET_NAME)
    report = write_html(turns, out / REPORT_NAME, title="Atelier demo", sheet=SHEET_NAME,
                        facts={"session": name, "store": str(home), "models": models,
                               "seed of turn 1": str(args.seed),
                               "time": f"{seconds:.0f} s"})
    judged = [t for t in turns if t.verdict != "none"]
    print(f"\n{len(turns)} turns in {seconds:.0f} s; checks passed in "
          f"{sum(t.verdict == 'passed' for t in judged)} of the {len(judged)} checked turns")
    print(f"contact sheet: {sheet}")
    print(f"report: {report}")
    return 0
