"""Which Dask cluster a command runs on: `--scheduler local:N` or `tcp://host:port` (unset: one process).

    with cluster("local:2") as client:   # distributed.LocalCluster(n_workers=2, threads_per_worker=1)
        ...

dask and distributed are imported here only, when a scheduler is asked for, so `--help` and one-process
runs never load them.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger("fraud.scale.cluster")
_LOCAL = re.compile(r"^local:(\d+)$")
_TCP = re.compile(r"^(tcp|tls)://[^\s:/]+:\d+$")


class SchedulerError(ValueError):
    """A --scheduler value that names no usable cluster (the message says which forms are accepted)."""


@dataclass(frozen=True)
class Scheduler:
    """A parsed --scheduler: `workers` local processes, or the `address` of a running scheduler."""

    address: str | None = None
    workers: int | None = None

    @classmethod
    def parse(cls, text: str) -> Scheduler:
        text = text.strip()
        m = _LOCAL.match(text)
        if m:
            n = int(m.group(1))
            if n < 1:
                raise SchedulerError(f"--scheduler {text}: local:N needs N >= 1 workers")
            return cls(workers=n)
        if _TCP.match(text):
            return cls(address=text)
        raise SchedulerError(f"--scheduler {text!r} is not a cluster address; use local:N (N worker processes "
                             "on this machine, e.g. local:2) or tcp://HOST:PORT of a running dask-scheduler "
                             "(e.g. tcp://10.0.0.5:8786)")


def _client_class():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError("--scheduler needs the dask extra: pip install -e '.[dask]' (dask, distributed)") \
            from None
    return Client, LocalCluster


@contextmanager
def cluster(text: str, timeout_s: float = 10.0):
    """A `distributed.Client` for --scheduler `text`, closed (and a local cluster stopped) on exit."""
    spec = Scheduler.parse(text)
    client_cls, local_cls = _client_class()
    if spec.workers is not None:
        # One thread per worker: the features and the GNN are numpy/torch code that holds the GIL in places,
        # so processes, not threads, are what run in parallel; dashboard on a free port (none to clash on).
        lc = local_cls(n_workers=spec.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                       silence_logs=logging.ERROR)
        client = client_cls(lc)
        try:
            yield client
        finally:
            client.close()
            try:
                lc.close(timeout=120)
            except TimeoutError:  # the work is done and written; a slow shutdown on a busy machine is not an error
                log.warning("the local Dask cluster took over 120 s to stop; its worker processes may linger")
        return
    try:
        client = client_cls(spec.address, timeout=f"{timeout_s}s")
    except (OSError, TimeoutError) as exc:
        raise SchedulerError(f"--scheduler {spec.address}: no Dask scheduler answered within {timeout_s:g} s "
                             f"({type(exc).__name__}: {exc}); start one with `dask scheduler` and workers with "
                             f"`dask worker {spec.address}`, or use local:N") from None
    try:
        if not client.scheduler_info().get("workers"):
            raise SchedulerError(f"--scheduler {spec.address}: the scheduler has no workers; start some with "
                                 f"`dask worker {spec.address}`")
        yield client
    finally:
        client.close()
