"""Serving several sessions' turns at once: their model calls batched across sessions.

    scheduler = BatchScheduler(runner, max_batch=8)
    workers = scheduler.add_workers(8)        # before their threads start
    # in each worker's thread, one session at a time:
    with scheduler.serving(workers[i]) as worker:
        worker.rank = 3                       # this session's place in the script
        session.ask(...)                      # its model calls go through the scheduler

    # and in the thread that owns the models (the main thread, in `atelier script`):
    with scheduler.model_thread():
        scheduler.serve_until(lambda: all_done)   # runs the rounds; workers call wake()
                                                  # when they change what it reads

The scheduler is a step runner (agent/turn/runner.py) that worker threads share. A worker's call
waits until every live worker is either waiting on a call or done; then the calls that run
the same operation with the same settings as the lowest-ranked waiting call (the runner's
`batch_key`) run as one batched pipeline call, and the rest wait for the next round. Planning,
checking and saving run in the workers between model calls; model calls never overlap.

Inside `model_thread()` the rounds run in that one thread, never in the workers. torch's CPU
kernels run on an OpenMP team that belongs to the thread that starts them; a second thread
running models makes a second team, and with more OpenMP threads than cores libgomp stops
its threads spin-waiting between kernels, which made every denoising step about a third
slower (bench/batching.py). Without a model thread, the worker that completes a round runs
it.

Which calls share a batch depends only on the ranks and on what each session asks for, not on
thread timing, so a script makes the same batches on every run. Each call keeps its own seed
and generator, so its image is the one a call on its own makes, up to float rounding (a
batched matrix product may add in another order).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class _Call:
    op: str
    args: Any
    inputs: Any
    seed: int
    rank: int
    key: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class Worker:
    """One thread's place in the scheduler; `rank` orders its calls against the others'."""

    rank: int = 0
    waiting: _Call | None = field(default=None, repr=False)


class BatchScheduler:
    def __init__(self, runner, max_batch: int = 8):
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.runner = runner
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []   # every model call made, in order, by its size
        self._cond = threading.Condition()
        self._workers: list[Worker] = []
        self._local = threading.local()
        self._batching = callable(getattr(runner, "run_batch", None)) and callable(
            getattr(runner, "batch_key", None))
        self._model_thread = False     # inside model_thread(): rounds wait for serve_until

    def model_ids(self) -> dict[str, str]:
        return self.runner.model_ids()

    def add_workers(self, n: int) -> list[Worker]:
        """Register `n` workers. Done before their threads start, so that a first call never
        runs before every worker has had the chance to make its own."""
        workers = [Worker() for _ in range(n)]
        with self._cond:
            self._workers.extend(workers)
        return workers

    @contextmanager
    def serving(self, worker: Worker) -> Iterator[Worker]:
        """The calling thread acts as `worker` in the block; the worker leaves at its end."""
        self._local.worker = worker
        try:
            yield worker
        finally:
            self._local.worker = None
            with self._cond:
                self._workers.remove(worker)
                # Its leaving may be what the others were waiting for.
                self._round_ready()

    @contextmanager
    def model_thread(self) -> Iterator[None]:
        """While the block lasts, rounds run in the calling thread, inside `serve_until`."""
        with self._cond:
            self._model_thread = True
        try:
            yield
        finally:
            with self._cond:
                # Workers still waiting (an interrupted run) go back to running rounds
                # themselves, so that they can finish their turns and stop.
                self._model_thread = False
                self._cond.notify_all()

    def serve_until(self, finished) -> None:
        """Run rounds until `finished()` holds. Threads that change what `finished` reads
        call `wake()` afterwards."""
        with self._cond:
            while not finished():
                if self._all_waiting():
                    self._dispatch()
                else:
                    self._cond.wait()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def run(self, op: str, args, inputs, seed: int):
        me = getattr(self._local, "worker", None)
        if me is None:
            # Not a worker (another part of the program): run alone, never beside a batch.
            with self._cond:
                return self.runner.run(op, args, inputs, seed)
        key = self.runner.batch_key(op, args, inputs) if self._batching else None
        call = _Call(op, args, inputs, seed, me.rank, key)
        with self._cond:
            me.waiting = call
            while not call.done:
                if not self._round_ready():
                    self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.result

    # --- under the lock -----------------------------------------------------------------

    def _all_waiting(self) -> bool:
        return bool(self._workers) and all(w.waiting is not None for w in self._workers)

    def _round_ready(self) -> bool:
        """When every worker waits: run the round here, or hand it to the serving thread.
        True if this thread ran it."""
        if not self._all_waiting():
            return False
        if self._model_thread:
            self._cond.notify_all()
            return False
        self._dispatch()
        return True

    def _dispatch(self) -> None:
        """Run the lowest-ranked waiting call and every waiting call it can batch with."""
        waiting = sorted((w for w in self._workers if w.waiting is not None),
                         key=lambda w: w.waiting.rank)
        first = waiting[0].waiting
        group = [first]
        if first.key is not None:
            group += [w.waiting for w in waiting[1:] if w.waiting.key == first.key]
        group = group[:self.max_batch]
        for worker in waiting:
            if worker.waiting in group:
                worker.waiting = None
        try:
            self._execute(group)
        finally:
            for call in group:
                call.done = True
            self._cond.notify_all()

    def _execute(self, group: list[_Call]) -> None:
        if len(group) > 1:
            try:
                results = self.runner.run_batch(
                    group[0].op, [(c.args, c.inputs, c.seed) for c in group])
            except Exception:
                pass  # one call's bad input must not fail the others: each runs alone below
            else:
                self.batch_sizes.append(len(group))
                for call, result in zip(group, results):
                    call.result = result
                return
        for call in group:
            try:
                call.result = self.runner.run(call.op, call.args, call.inputs, call.seed)
            except Exception as error:  # raised in the worker that made the call
                call.error = error
            self.batch_sizes.append(1)
