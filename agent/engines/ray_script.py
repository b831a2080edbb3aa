"""`atelier script FILE --out DIR --engine ray`: a script's sessions spread over Ray actors.

The driver (the `atelier script` process) parses and checks the script, and reads which lines
are done from the run's store, exactly as the local engine does (agent/engines/script.py). It then
hands out the pending sessions: all lines of a session go to one actor, in file order; an
actor holds up to two sessions at a time, so it never waits on the driver between them.

Each actor builds one Atelier (its models load once, on its first turn) with torch limited
to its share of the CPUs, and runs each line through the same `ScriptRun.run_line` as the
local engine, with the same derived seeds: the same script makes the same images. The
actor's Atelier keeps its turns in a store of its own, in a temporary folder on its node.
After each turn it sends the turn back (rows and image files, `Store.export_turns`) and the
driver commits it into the run's store in one transaction (`Store.import_turns`). So the
run's SQLite store has one writer on one machine: `--out` need not be visible to the other
nodes, and SQLite never runs over a network file system, where its locks are not to be
trusted. A session that already has committed turns (a resumed run) is first copied into
the actor's store, so its images and undo line are there.

Exactly-once: a turn counts once the driver has committed it. A turn an actor finished but
the driver never committed (the driver was killed) is not in the run's store, so a resumed
run runs it again; nothing is recorded twice, since only the driver writes the run's store.
A failing turn is recorded as failed, like the local engine's, and the other sessions go on.
A worker that dies (its node is lost, it runs out of memory) stops the run once the other
workers have finished what they hold; everything committed stays, and `--resume` runs the
rest.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from pathlib import Path
from typing import Iterator

from agent.errors import AtelierError
from agent.engines.script import ScriptLine, ScriptRun, by_session
from agent.sessions.store import StoreError, TurnRecord
from index.ray_build import process_alive

# Sessions an actor holds at once: the one it runs and the next, queued behind it.
SESSIONS_PER_ACTOR = 2
# Environment variables that choose Atelier's models, index, LLM time limit and so on: an
# actor on another node runs with the driver's values.
ENV_PREFIX = "ATELIER_"
STORE_PREFIX = "atelier-ray-"


class ScriptWorker:
    """One Ray actor: an Atelier and its models, with a store of its own."""

    def __init__(self, lines: list[ScriptLine], threads: int, llm: str | None):
        import torch

        from agent.api import Atelier, default_retriever
        from agent.config import atelier_home

        # Workers share the node's cores: more threads than its share only contend.
        torch.set_num_threads(threads)
        sweep_stores()
        self.home = Path(tempfile.mkdtemp(prefix=f"{STORE_PREFIX}{os.getpid()}-"))
        self.atelier = Atelier(home=self.home, llm=llm,
                               retriever=default_retriever(atelier_home()))
        self.run = ScriptRun(self.atelier, lines, self.home)
        self.sent: dict[str, int] = {}   # session -> the last turn number sent to the driver

    def seed(self, export: dict) -> None:
        """Take over a session's committed turns before running more of them."""
        self.atelier.store.import_turns(export)
        self.sent[export["session"]] = max((t["number"] for t in export["turns"]), default=0)

    def run_line(self, line: ScriptLine) -> dict:
        """Run one line; returns its turn as `Store.export_turns` gives it."""
        self.run.run_line(line)
        export = self.atelier.store.export_turns(line.session, self.sent.get(line.session, 0))
        self.sent[line.session] = export["turns"][-1]["number"]
        return export

    def close(self) -> None:
        self.atelier.close()
        shutil.rmtree(self.home, ignore_errors=True)


class RayScriptRun(ScriptRun):
    """`ScriptRun` whose pending lines run on Ray actors (see the module docstring)."""

    def __init__(self, atelier, lines: list[ScriptLine], out: Path, *, ray,
                 workers: int | None = None, llm: str | None = None,
                 threads: int | None = None):
        super().__init__(atelier, lines, out)
        self.ray = ray
        self.workers = workers
        self.llm = llm
        self.threads = threads   # torch threads per actor; None: its share of the CPUs

    @property
    def out_of_order(self) -> bool:
        return True

    def _run_pending(self, done: dict) -> Iterator[tuple[ScriptLine, TurnRecord]]:
        from agent.engines.ray_cluster import plan_workers

        sessions = [(name, [line for line in group if line.key not in done])
                    for name, group in by_session(self.lines).items()]
        sessions = [(name, group) for name, group in sessions if group]
        if not sessions:
            return
        ray = self.ray
        plan = plan_workers(ray, self.workers, len(sessions))
        env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
        actor = ray.remote(ScriptWorker).options(
            **plan.options(), runtime_env={"env_vars": env}, max_restarts=0)
        script = ray.put(self.lines)
        threads = self.threads or plan.threads
        actors = [actor.remote(script, threads, self.llm) for _ in range(plan.count)]
        try:
            # Sessions with committed turns are copied to their actor before they go on.
            started = {line.session for line in self.lines if line.key in done}
            yield from self._dispatch(actors, deque(sessions), started)
        finally:
            self._stop(actors)

    def _dispatch(self, actors: list, queue: deque, started: set[str]
                  ) -> Iterator[tuple[ScriptLine, TurnRecord]]:
        ray = self.ray
        # Per actor, its calls not yet collected, oldest first. An actor runs them in that
        # order, and the driver collects them in that order too, so the turns of a session
        # reach the run's store in file order even when a later one is ready first.
        waiting: list[deque] = [deque() for _ in actors]

        def assign(i: int) -> None:
            name, lines = queue.popleft()
            if name in started:
                # Runs before the lines: an actor runs one caller's calls in order.
                seed = actors[i].seed.remote(self.atelier.store.export_turns(name))
                waiting[i].append((seed, None, False))
            for line in lines:
                waiting[i].append((actors[i].run_line.remote(line), line, line is lines[-1]))

        for _ in range(SESSIONS_PER_ACTOR):
            for i in range(len(actors)):
                if queue:
                    assign(i)
        failure: str | None = None
        while any(waiting):
            heads = {w[0][0]: i for i, w in enumerate(waiting) if w}
            (ref,), _ = ray.wait(list(heads), num_returns=1)
            i = heads[ref]
            _, line, last = waiting[i].popleft()
            where = f"line {line.line}" if line else "copying a session"
            try:
                export = ray.get(ref)
                if line is None:
                    continue  # a session copied to its actor
                self.atelier.store.import_turns(export)
            except ray.exceptions.RayActorError as error:
                failure = failure or f"the Ray worker at {where} stopped ({first_line(error)})"
                continue
            except ray.exceptions.RayTaskError as error:
                cause = error.cause if getattr(error, "cause", None) is not None else error
                failure = failure or (f"the Ray worker at {where} failed "
                                      f"({type(cause).__name__}: {first_line(cause)})")
                continue
            except StoreError as error:
                failure = failure or f"the turn of {where} could not be saved ({error})"
                continue
            yield line, self._record(line)
            # After a failure, workers finish what they hold and take nothing new.
            if last and queue and failure is None:
                assign(i)
        if failure is not None:
            raise AtelierError(f"{failure}; the turns done so far are saved: run the same "
                               "command with --resume to run the rest")

    def _record(self, line: ScriptLine) -> TurnRecord:
        history = self.atelier.session(line.session, create=False).history()
        return next(t for t in reversed(history) if t.source == line.key)

    def _stop(self, actors: list) -> None:
        ray = self.ray
        try:
            ray.get([a.close.remote() for a in actors], timeout=30)
        except Exception:
            pass  # a dead actor has nothing left to clean
        for a in actors:
            ray.kill(a)


def sweep_stores() -> None:
    """Remove the stores of workers on this node that were killed (a killed driver takes its
    workers with it) before they could remove their own."""
    for folder in Path(tempfile.gettempdir()).glob(f"{STORE_PREFIX}*-*"):
        pid = folder.name[len(STORE_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
