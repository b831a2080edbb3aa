"""`atelier script FILE --out DIR [--resume] [--engine ray]`: run a JSON Lines file of turns."""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from agent.interfaces.commands.arguments import (add_engine_options, check_engine_options, whole_number,
                                      worker_count)
from agent.interfaces.commands.run import add_planner_options

DEFAULT_BATCH = 8
MAX_BATCH = 64  # one thread per session side by side; more only adds threads


def batch_size(text: str) -> int:
    return whole_number(text, 1, MAX_BATCH)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "script", help="run a JSON Lines file of turns into a folder, with a manifest",
        description="Run scripted turns. FILE has one JSON object per line: "
                    '{"session": str, "request": str, "seed": int (optional), '
                    '"image": path (optional input image, relative to FILE\'s folder)}. '
                    "Lines of one session run in file order; sessions are independent, and up "
                    "to --batch of them run side by side, their model calls batched. DIR "
                    "gets the run's own store and manifest.jsonl (one object per turn, in file "
                    "order). With --engine ray the sessions spread over Ray workers instead "
                    "(see README: Scale out on Ray). Exit code 1 when any turn failed; a turn "
                    "that a bug ended has error_kind \"bug\" and its error_class in the "
                    "manifest, and ATELIER_DEBUG=1 prints its traceback to stderr.")
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="a new or empty folder (or, with --resume, the one to continue)")
    parser.add_argument("--resume", action="store_true",
                        help="continue a run that stopped: every line without a recorded turn "
                             "runs, none twice")
    parser.add_argument("--batch", type=batch_size, default=None, metavar="N",
                        help="local engine: up to N sessions run side by side (default "
                             f"{DEFAULT_BATCH}). They share one copy of each model, loaded once "
                             "by the first turn that needs it while the others wait, and calls "
                             "that run the same operation with the same settings share one "
                             "batched model call, each with its own seed. Never shared: a "
                             "session's lines run one after another in file order, each with its "
                             "own seed, images and undo line. 1 runs the lines one at a time in "
                             "file order, for images identical bit for bit across resumed runs")
    add_engine_options(parser, "sessions run side by side with --batch")
    parser.add_argument("--threads", type=worker_count, default=None, metavar="N",
                        help="with --engine ray: torch threads per worker (default: its share of "
                             "the CPUs); with the local run's count the images are the same bit "
                             "for bit")
    add_planner_options(parser)
    parser.set_defaults(func=script_command)


def script_command(args: argparse.Namespace) -> int:
    from agent.errors import UsageError
    from agent.engines.script import ScriptRun, parse_script

    check_engine_options(args)
    if args.engine != "ray" and args.threads is not None:
        raise UsageError("--threads goes with --engine ray; the local engine uses torch's own "
                         "setting (OMP_NUM_THREADS)")
    if args.engine == "ray" and args.batch not in (None, 1):
        raise UsageError("--batch is for the local engine; with --engine ray, each worker runs "
                         "one session at a time: choose how many with --workers")
    # Every line is checked before any work starts: a typo on line 900 should not wait for
    # 899 turns to surface.
    lines = parse_script(args.file)
    ScriptRun.check_folder(args.out, args.resume)
    with ExitStack() as stack:
        ray = None
        if args.engine == "ray":
            from agent.engines.ray_cluster import connected

            # Connected before DIR is made: a bad --address leaves nothing behind.
            ray = stack.enter_context(connected(args.address))
        return run_script(args, lines, ray)


def run_script(args: argparse.Namespace, lines, ray) -> int:
    from agent.api import Atelier, default_retriever
    from agent.config import atelier_home
    from agent.engines.script import MANIFEST, ScriptRun

    args.out.mkdir(parents=True, exist_ok=True)
    # The run's store is DIR; exemplars still come from the user's index.
    atelier = Atelier(home=args.out, llm=args.llm, models=args.models, domain=args.domain,
                      llm_images=args.llm_images,
                      retriever=default_retriever(atelier_home()))
    atelier.planner()  # a bad --llm is a usage error before any turn, not a failure per turn
    if ray is None:
        run = ScriptRun(atelier, lines, args.out, batch=args.batch or DEFAULT_BATCH)
    else:
        from agent.engines.ray_script import RayScriptRun

        # Ray actors build their Atelier from the ATELIER_* settings they are sent.
        if args.models is not None:
            os.environ["ATELIER_MODELS"] = str(args.models)
        if args.domain is not None:
            os.environ["ATELIER_DOMAIN"] = args.domain
        run = RayScriptRun(atelier, lines, args.out, ray=ray, workers=args.workers,
                           llm=args.llm, threads=args.threads)

    def report(entry: dict) -> None:
        status = "ok" if entry["ok"] else f"FAILED: {entry['error']}"
        if entry["ok"] and entry["checks_passed"] is False:
            status = "ok (checks still fail)"
        print(f"line {entry['line']} [{entry['session']} #{entry['turn']}] {status}"
              + (f" -> {entry['image']}" if entry["image"] else ""), flush=True)

    entries = run.run(on_turn=report)
    failed = sum(1 for e in entries if not e["ok"])
    print(f"{len(entries)} turn(s), {failed} failed; manifest: {args.out / MANIFEST}")
    if failed:
        print(f"atelier: {failed} turn(s) failed; see 'error' in {args.out / MANIFEST}",
              file=sys.stderr)
        return 1
    return 0
