"""Scripted runs: a JSON Lines file of turns, run into a folder that holds their store and a
manifest.

    {"session": "s1", "request": "a red circle at the top left", "seed": 3}
    {"session": "s1", "request": "make it blue"}
    {"session": "s2", "request": "make the square green", "image": "inputs/square.png"}

The output folder is the run's own store (DIR/atelier.db, DIR/images/), so a scripted run
never mixes with interactive sessions of the same names and its images sit inside DIR, where
the manifest's relative paths point.

Exactly-once: each turn is committed under the key of its script line ("line:N"), with a
digest of the line. The store is the truth; `manifest.jsonl` is derived from it. A resumed run
rewrites the manifest from the store (so a line lost between a commit and its manifest write
comes back) and runs only the lines with no committed turn: nothing twice, nothing lost. A
line that changed since it ran is refused rather than silently mixed in.

A line without a seed gets one derived from its session, its place in that session and its
request, so the same script makes the same images, resumed or not.

Lines of one session run in file order and sessions are independent. With `batch` above 1,
up to that many sessions run side by side, each in its own thread, and their model calls go
through one agent.engines.batching.BatchScheduler: calls of different sessions that run the same
operation with the same settings become one batched pipeline call, each with its own seed.
Which calls share a batch depends only on the script (agent/engines/batching.py), so a script makes
the same images every time it runs whole; a batched image equals the one-at-a-time image up
to float rounding, so a resumed run, which batches what is left, may differ from an
uninterrupted one by that much. `batch=1` runs the lines one after another in file order. The
manifest gets each turn as it completes and is rewritten in file order at the end.

agent/engines/ray_script.py runs the pending sessions on Ray actors instead (`--engine ray`), each
line through the same `run_line`.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from agent.config import debugging
from agent.errors import AtelierError, UsageError
from agent.sessions.store import DB_NAME, TurnRecord, check_session_name

FIELDS = ("session", "request", "seed", "image")
MANIFEST = "manifest.jsonl"
MAX_SEED = 2**32 - 1
MAX_LINES = 1_000_000
EXAMPLE = '{"session": "s1", "request": "a red circle at the top left"}'
KEY_PREFIX = "line:"


@dataclass(frozen=True)
class ScriptLine:
    line: int                       # 1-based line number in the file
    session: str
    request: str
    seed: int | None
    image: Path | None              # resolved; relative paths start at the script's folder
    digest: str

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.line}"


def parse_script(path: str | Path) -> list[ScriptLine]:
    """Every line of a script, checked; raises UsageError naming the first bad line."""
    from agent.sessions.session import MAX_REQUEST_CHARS

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give a JSON Lines file of turns")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; give a JSON Lines file of turns") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None
    base = path.resolve().parent
    lines: list[ScriptLine] = []
    for number, raw in enumerate(data.splitlines(), 1):
        where = f"{path}:{number}"
        if number > MAX_LINES:
            raise UsageError(f"{path}: more than {MAX_LINES} lines; split the script")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{where}: not valid UTF-8 text; save the file as UTF-8") from None
        if not text.strip():
            continue  # blank lines separate groups of turns
        try:
            item = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{where}: not valid JSON ({error.msg} at column {error.colno}); "
                             f"each line is one JSON object such as {EXAMPLE}") from None
        if not isinstance(item, dict):
            raise UsageError(f"{where}: expected a JSON object such as {EXAMPLE}, got "
                             f"{type(item).__name__}")
        unknown = [k for k in item if k not in FIELDS]
        if unknown:
            raise UsageError(f"{where}: unknown field {unknown[0]!r}; the fields are "
                             f"{', '.join(FIELDS)}")
        for name in ("session", "request"):
            if name not in item:
                raise UsageError(f"{where}: missing {name!r}; every line needs a session and a "
                                 f"request, e.g. {EXAMPLE}")
            if not isinstance(item[name], str):
                raise UsageError(f"{where}: {name!r} must be a string, got "
                                 f"{type(item[name]).__name__}")
        try:
            check_session_name(item["session"])
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from None
        request = item["request"].strip()
        if not request:
            raise UsageError(f"{where}: 'request' is empty; say what to draw or change")
        if len(request) > MAX_REQUEST_CHARS:
            raise UsageError(f"{where}: 'request' is {len(request)} characters long; keep it "
                             f"under {MAX_REQUEST_CHARS}")
        if "\x00" in request:
            raise UsageError(f"{where}: 'request' contains a NUL character; remove it")
        seed = item.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                                 or not 0 <= seed <= MAX_SEED):
            raise UsageError(f"{where}: 'seed' must be a whole number in 0..{MAX_SEED}, got "
                             f"{json.dumps(seed)}")
        image = item.get("image")
        if image is not None:
            if not isinstance(image, str) or not image.strip():
                raise UsageError(f"{where}: 'image' must be the path of an image file")
            resolved = (base / Path(image).expanduser())
            if resolved.is_dir():
                raise UsageError(f"{where}: image {image!r} is a folder; give an image file")
            if not resolved.is_file():
                raise UsageError(f"{where}: image {image!r}: no such file (relative paths start "
                                 f"at the script's folder, {base})")
            image = resolved
        digest = hashlib.sha256(json.dumps(
            {k: item.get(k) for k in FIELDS}, sort_keys=True).encode()).hexdigest()
        lines.append(ScriptLine(number, item["session"], request, seed, image, digest))
    if not lines:
        raise UsageError(f"{path}: no turns in the file; write one JSON object per line, such "
                         f"as {EXAMPLE}")
    return lines


def by_session(lines: list[ScriptLine]) -> dict[str, list[ScriptLine]]:
    """Each session's lines in file order: the units a scheduler may run side by side."""
    groups: dict[str, list[ScriptLine]] = {}
    for line in lines:
        groups.setdefault(line.session, []).append(line)
    return groups


def derived_seeds(lines: list[ScriptLine]) -> dict[int, int]:
    """A seed for every line: its own, else one from (session, place in session, request)."""
    seeds = {}
    for session, group in by_session(lines).items():
        for index, line in enumerate(group, 1):
            if line.seed is not None:
                seeds[line.line] = line.seed
            else:
                text = f"{session}\n{index}\n{line.request}".encode()
                seeds[line.line] = int.from_bytes(hashlib.sha256(text).digest()[:4], "big")
    return seeds


def write_durably(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class ScriptRun:
    """Runs a parsed script into `out` (see the module docstring)."""

    def __init__(self, atelier, lines: list[ScriptLine], out: Path, batch: int = 1):
        if batch < 1:
            raise UsageError(f"batch must be at least 1, got {batch}")
        self.atelier = atelier
        self.lines = lines
        self.out = Path(out)
        self.batch = batch
        self.seeds = derived_seeds(lines)
        self.batch_sizes: list[int] = []   # the model calls of the last batched run, by size

    @property
    def out_of_order(self) -> bool:
        """Do turns complete in another order than the file's (so the manifest is rewritten
        in file order at the end)?"""
        return self.batch > 1

    @staticmethod
    def check_folder(out: Path, resume: bool) -> None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder")
        started = (out / DB_NAME).exists()
        if resume and not started:
            raise UsageError(f"--resume: {out} holds no scripted run to continue; run without "
                             "--resume first")
        if not resume and (started or (out / MANIFEST).exists()):
            raise UsageError(f"--out {out} already holds a scripted run; pass --resume to "
                             "continue it, or choose a new folder")

    def done(self) -> dict[str, TurnRecord]:
        """Committed turns by line key, after checking they match the script."""
        store = self.atelier.store
        found = store.turns_with_source(KEY_PREFIX)
        by_key = {line.key: line for line in self.lines}
        for key, record in found.items():
            line = by_key.get(key)
            if line is None:
                raise UsageError(f"{self.out} has a turn for line {key[len(KEY_PREFIX):]}, which "
                                 "the script no longer has; resume with the script it started "
                                 "with, or use a new --out folder")
            if record.source_digest != line.digest or record.session != line.session:
                raise UsageError(f"line {line.line} changed since it ran into {self.out}; "
                                 "restore it, or use a new --out folder")
        # Full records (with plans) of the sessions involved.
        full: dict[str, TurnRecord] = {}
        for session in {r.session for r in found.values()}:
            for record in self.atelier.session(session, create=False).history():
                if record.source in found:
                    full[record.source] = record
        return full

    def entry(self, line: ScriptLine, record: TurnRecord) -> dict:
        image = None
        if record.image_after is not None:
            session = self.atelier.session(line.session, create=False)
            path = session.image(record.image_after).path
            image = path.relative_to(self.out.resolve()).as_posix()
        return {"line": line.line, "session": line.session, "turn": record.number,
                "request": record.request, "image": image, "ok": record.ok,
                "error": record.error, "error_kind": record.error_kind,
                "error_class": record.error_class, "plan": record.plan, "seed": record.seed,
                "seconds": record.seconds, "checks_passed": record.checks_passed,
                "note": record.note}

    def run(self, on_turn: Callable[[dict], None] | None = None) -> list[dict]:
        """Run every line without a committed turn; returns the whole manifest."""
        done = self.done()
        manifest_path = self.out / MANIFEST
        entries = [self.entry(line, done[line.key]) for line in self.lines if line.key in done]
        # The manifest is rebuilt from the store, so it holds exactly the committed turns.
        write_durably(manifest_path, "".join(json.dumps(e) + "\n" for e in entries))
        with open(manifest_path, "a", encoding="utf-8") as manifest:
            for line, record in self._run_pending(done):
                entry = self.entry(line, record)
                manifest.write(json.dumps(entry) + "\n")
                manifest.flush()
                os.fsync(manifest.fileno())
                entries.append(entry)
                if on_turn is not None:
                    on_turn(entry)
        order = {line.key: i for i, line in enumerate(self.lines)}
        entries.sort(key=lambda e: order[f"{KEY_PREFIX}{e['line']}"])
        if self.out_of_order:  # turns were appended as they completed
            write_durably(manifest_path, "".join(json.dumps(e) + "\n" for e in entries))
        return entries

    def _run_pending(self, done: dict) -> Iterator[tuple[ScriptLine, TurnRecord]]:
        sessions = [[line for line in group if line.key not in done]
                    for group in by_session(self.lines).values()]
        sessions = [group for group in sessions if group]
        if self.batch == 1 or len(sessions) < 2:
            for line in self.lines:
                if line.key not in done:
                    yield line, self.run_line(line)
            return
        yield from self._run_side_by_side(sessions)

    def _run_side_by_side(self, sessions: list[list[ScriptLine]]
                          ) -> Iterator[tuple[ScriptLine, TurnRecord]]:
        """Up to `batch` sessions at once, in threads, their model calls batched."""
        from agent.engines.batching import BatchScheduler

        orchestrator = self.atelier.orchestrator()
        runner = orchestrator.runner
        scheduler = BatchScheduler(runner, self.batch)
        todo = list(enumerate(sessions))[::-1]   # (rank, lines); popped from the end
        finished: queue.Queue = queue.Queue()
        lock, stop = threading.Lock(), threading.Event()

        def work(worker) -> None:
            try:
                with scheduler.serving(worker):
                    # A worker stays registered between sessions, so the batches formed do
                    # not depend on when a thread picks up its next session.
                    while not stop.is_set():
                        with lock:
                            if not todo:
                                break
                            worker.rank, lines = todo.pop()
                        for line in lines:
                            if stop.is_set():
                                break
                            finished.put((line, self.run_line(line)))
                            scheduler.wake()
            except BaseException as error:  # a bug outside any one turn ends the run
                stop.set()
                finished.put((None, error))
                scheduler.wake()

        workers = scheduler.add_workers(min(self.batch, len(sessions)))
        threads = [threading.Thread(target=work, args=(worker,), daemon=True,
                                    name=f"script-worker-{i}")
                   for i, worker in enumerate(workers)]
        orchestrator.runner = scheduler
        try:
            # The model calls run here, in the thread that loaded the models.
            with scheduler.model_thread():
                for thread in threads:
                    thread.start()
                for _ in range(sum(len(lines) for lines in sessions)):
                    scheduler.serve_until(lambda: not finished.empty())
                    line, record = finished.get()
                    if line is None:
                        raise record
                    yield line, record
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            orchestrator.runner = runner
            self.batch_sizes = list(scheduler.batch_sizes)

    def run_line(self, line: ScriptLine) -> TurnRecord:
        session = self.atelier.session(line.session)
        seed = self.seeds[line.line]
        try:
            run = session.stream(line.request, seed=seed, image=line.image, source=line.key,
                                 source_digest=line.digest)
            for _ in run:
                pass
            number = run.result.turn
        except UsageError as error:
            # The input image could not be read: the turn fails, the others go on.
            number = self._failure(session, line, seed, str(error), "input")
        except AtelierError as error:
            number = self._failure(session, line, seed, str(error), "error")
        except Exception as error:  # a bug in one turn must not stop the other sessions
            name = error_class(error)
            if debugging():
                print(f"atelier: line {line.line} (session {line.session!r}) failed on a bug:\n"
                      + "".join(traceback.format_exception(error)), file=sys.stderr, flush=True)
            number = self._failure(session, line, seed, f"{name}: {error}", "bug", name)
        return next(t for t in session.history() if t.number == number)

    def _failure(self, session, line: ScriptLine, seed: int, error: str, kind: str,
                 error_class: str | None = None) -> int:
        committed = self.atelier.store.turns_with_source(line.key).get(line.key)
        if committed is not None:
            return committed.number  # it failed after its turn was recorded
        return session.record_failure(line.request, error, kind=kind, seed=seed,
                                      source=line.key, source_digest=line.digest,
                                      error_class=error_class).turn


def error_class(error: BaseException) -> str:
    """The exception's class as one would import it: `ValueError`, `sqlite3.OperationalError`."""
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"

