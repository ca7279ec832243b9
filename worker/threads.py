"""torch's thread count in a worker: its share of the cores, so workers sharing a machine don't
oversubscribe it (DYNGEN_WORKER_THREADS overrides the share)."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("dyngen.worker")

CGROUP_V2_CPU = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")

_chosen: int | None = None  # set when the worker starts; forked pool processes inherit it
_why = ""


def cgroup_cpus() -> float | None:
    """The container's CPU quota in cores (cgroup v2 or v1); None without one."""
    try:
        quota, period = CGROUP_V2_CPU.read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(CGROUP_V1_QUOTA.read_text())
        period_us = int(CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpus()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def omp_threads() -> int | None:
    """OMP_NUM_THREADS when it is set to a positive number."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def threads_for(setting: int, concurrency: int, cores: int, omp: int | None = None) -> int:
    """The setting when given (> 0), else an explicit OMP_NUM_THREADS, else the cores divided
    among the worker's processes."""
    if setting > 0:
        return setting
    if omp is not None:
        return omp
    return max(1, cores // max(concurrency, 1))


def processes_of(worker: Any) -> int:
    """The jobs a Celery worker runs at once: 1 for the solo pool (whatever --concurrency
    says), its concurrency otherwise; `auto` sizes a pool to the cores."""
    pool = getattr(worker, "pool_cls", "")
    name = pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
    if "solo" in name.lower():
        return 1
    concurrency = getattr(worker, "concurrency", 1)
    return concurrency if isinstance(concurrency, int) and concurrency > 0 else available_cores()


def configure(setting: int, concurrency: int) -> int:
    """Choose this worker's count once, at its start (torch is not imported here)."""
    global _chosen, _why
    cores, omp = available_cores(), omp_threads()
    _chosen = threads_for(setting, concurrency, cores, omp)
    how = f"{cores} cores / concurrency {concurrency}"
    if setting > 0:
        how = "DYNGEN_WORKER_THREADS"
    elif omp is not None:
        how = "OMP_NUM_THREADS"
    _why = how
    return _chosen


def report() -> None:
    """Log the chosen count (once the worker's logging is set up)."""
    if _chosen is not None:
        log.info("torch threads per job: %d (%s)", _chosen, _why)


def apply() -> int:
    """Set torch's thread count in this process to the chosen one; the count in use."""
    import torch

    if _chosen is not None and torch.get_num_threads() != _chosen:
        torch.set_num_threads(_chosen)
        log.info("process %d: torch uses %d threads", os.getpid(), _chosen)
    return int(torch.get_num_threads())


def current() -> int:
    """torch's thread count in this process."""
    import torch

    return int(torch.get_num_threads())
