"""How many torch threads a worker takes: the setting, OMP_NUM_THREADS, or its core share."""

from __future__ import annotations

from celery.concurrency.prefork import TaskPool
from celery.concurrency.solo import TaskPool as SoloPool

from worker.threads import processes_of, threads_for


class _Worker:
    """What a Celery WorkController shows the worker_init signal: its pool and concurrency."""

    def __init__(self, pool_cls: object, concurrency: object) -> None:
        self.pool_cls = pool_cls
        self.concurrency = concurrency


def test_the_setting_wins_then_omp_then_the_cores_share() -> None:
    assert threads_for(3, concurrency=4, cores=16, omp=1) == 3
    assert threads_for(0, concurrency=4, cores=16, omp=2) == 2
    assert threads_for(0, concurrency=4, cores=16) == 4
    assert threads_for(0, concurrency=2, cores=2) == 1
    assert threads_for(0, concurrency=8, cores=2) == 1  # never 0


def test_a_solo_worker_runs_one_job_whatever_its_concurrency() -> None:
    assert processes_of(_Worker("solo", 2)) == 1
    assert processes_of(_Worker(SoloPool, 8)) == 1
    assert processes_of(_Worker(TaskPool, 4)) == 4
    assert processes_of(_Worker("prefork", 3)) == 3
