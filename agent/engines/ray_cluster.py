"""Ray for the commands that scale out (`script --engine ray`, `index build --engine ray`):
connecting to a cluster or starting a local one, and sizing the workers.

Ray is an optional dependency (the `scale` extra) and is imported only here and in the code
that runs on it, so `atelier --help` and the local engine never load it.
"""
from __future__ import annotations

import logging
import socket
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from agent.errors import AtelierError, UsageError

INSTALL = "pip install 'atelier-agent[scale]'"
CONNECT_TIMEOUT_S = 5.0


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray needs Ray, which is not installed; install it with "
                         f"{INSTALL}") from None
    return ray


def check_reachable(address: str) -> None:
    """Refuse an address no server answers at. ray.init retries an unreachable address for
    many minutes without a word, so a plain TCP connection is tried first."""
    if address == "auto":
        return  # ray.init finds the cluster this machine runs, or says there is none
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, the "
                         "address `ray start --head` prints) or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise AtelierError(f"--address {address}: no Ray cluster answers there ({reason}); "
                           "start one with `ray start --head` on that machine, or check the "
                           "address and port") from None


@contextmanager
def connected(address: str | None) -> Iterator:
    """Ray, connected: to the cluster at `address`, else to a Ray instance started here for
    the length of the command. A process that is connected already (a notebook, the tests)
    keeps its connection, and it stays open afterwards."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is not None:
        check_reachable(address)
    # The command prints one line per piece of work; Ray's own notices (its workers' output,
    # its startup messages) would bury them. Failures still come back as exceptions.
    options = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        ray.init(address=address, **options)
    except ConnectionError as error:
        raise AtelierError(f"--address {address}: cannot connect to a Ray cluster there "
                           f"({str(error).splitlines()[0]})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class Workers:
    """How many workers, what each asks Ray for, and how many torch threads it runs."""

    count: int
    cpus: float       # Ray CPU resource per worker
    gpus: float       # Ray GPU resource per worker (0 on a cluster without GPUs)
    threads: int      # torch threads per worker: its share of the cluster's CPUs

    def options(self) -> dict:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}


def plan_workers(ray, requested: int | None, units: int) -> Workers:
    """`requested` workers (default: one per GPU when the cluster has GPUs, else one per CPU
    slot), never more than `units` (there is no work for more). Each asks for at most one
    CPU and one GPU, and less when more workers than slots are asked for, so they all fit
    and none waits forever for resources."""
    resources = ray.cluster_resources()
    cpus = float(resources.get("CPU", 1.0))
    gpus = float(resources.get("GPU", 0.0))
    if requested is None:
        requested = int(gpus) if gpus >= 1 else max(1, int(cpus))
    count = max(1, min(requested, units))
    return Workers(count=count, cpus=min(1.0, cpus / count),
                   gpus=min(1.0, gpus / count) if gpus else 0.0,
                   threads=max(1, int(cpus // count)))
