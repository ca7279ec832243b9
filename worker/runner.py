"""Running one job: claim its lease, run model/, store what it wrote, finish it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core import jobs, models
from core.artifacts import add_artifact
from core.db import session_factory, session_scope
from core.errors import NotFound
from core.queue import CeleryQueue
from core.settings import Settings
from core.storage import ArtifactStore
from core.tables import Job, Video
from worker import shutdown
from worker.progress import Reporter

log = logging.getLogger("dyngen.worker")


class MissingInput(Exception):
    """Something the job names (a video, a model) was deleted after the job was created."""

    code = "missing_input"


@dataclass
class Run:
    """What one attempt at a job needs."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: ArtifactStore
    job: Job
    worker: str
    work_dir: Path


def worker_name() -> str:
    """Names this attempt in the lease: host, process, and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_job(job_id: str, settings: Settings) -> jobs.Claim:
    """Claim the job and run it to a terminal status; returns what the claim found."""
    sessions = session_factory(settings.db_url, settings.connect_timeout)
    worker = worker_name()
    with session_scope(sessions) as session:
        claim = jobs.claim_job(
            session=session, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds
        )
    if claim.outcome is not jobs.ClaimOutcome.CLAIMED or claim.job is None:
        log.info("job %s: %s, not running it", job_id, claim.outcome.value)
        return claim
    store = ArtifactStore(settings.store_dir)
    run = Run(settings, sessions, store, claim.job, worker, store.work_dir(f"job-{job_id}"))
    log.info("job %s: %s started (attempt %d)", job_id, claim.job.type, claim.job.attempts)
    try:
        _execute(run)
    finally:
        shutil.rmtree(run.work_dir, ignore_errors=True)
    return claim


def _execute(run: Run) -> None:
    """Run the job, mapping every way it can end to a terminal status (or back to the queue)."""
    from model.errors import Cancelled, DyngenError

    reporter = Reporter(run.settings, run.sessions, run.job.id, run.worker, run.job.started_at)
    with reporter:
        try:
            if run.job.type == "train":
                _train(run, reporter)
            else:
                _synthesize(run, reporter)
        except jobs.LeaseLost:
            log.warning("job %s: another worker holds the lease now; leaving it", run.job.id)
        except Cancelled:
            _stopped(run, reporter)
        except (DyngenError, MissingInput) as err:
            log.info("job %s failed: %s", run.job.id, err)
            _end(run, "failed", error={"code": err.code, "message": str(err)})
        except (OperationalError, InterfaceError) as err:
            # The database went away: the job can't be marked anything. It keeps its lease
            # and resume state; once the lease runs out the sweeper sends it again.
            log.error("job %s: database unreachable (%s); leaving it to be re-run", run.job.id, err)
        except Exception as err:
            _failed_unexpectedly(run, err)


def _stopped(run: Run, reporter: Reporter) -> None:
    """The model stopped early: a lost lease, a user's cancel, or this worker shutting down."""
    if reporter.lease_lost.is_set():
        log.warning("job %s: lease lost; leaving the job to its new holder", run.job.id)
    elif reporter.timed_out.is_set():
        limit = run.settings.job_timeout_seconds
        message = f"the job ran longer than the deployment's limit of {limit:g} s"
        log.info("job %s failed: %s", run.job.id, message)
        _end(run, "failed", error={"code": "job_timeout", "message": message})
    elif reporter.cancelled.is_set() or not shutdown.requested():
        _end(run, "cancelled")
    else:
        _give_back(run)


def _give_back(run: Run) -> None:
    """Put an interrupted job back in the queue; its resume state stays for the next worker."""
    with session_scope(run.sessions) as session:
        released = jobs.release_job(
            session=session, job_id=run.job.id, worker=run.worker, reason="worker_shutdown"
        )
    if not released:
        return
    log.info("job %s: worker shutting down; job given back to the queue", run.job.id)
    try:
        CeleryQueue(run.settings).enqueue(run.job.id, run.job.type)
    except Exception as err:
        log.warning("job %s: could not re-send it (%s); the sweeper will", run.job.id, err)


def _failed_unexpectedly(run: Run, err: Exception) -> None:
    if _out_of_memory(err):
        log.warning("job %s ran out of memory: %s", run.job.id, err)
        message = (
            "the job ran out of memory; try a smaller image_size, frames, chunk_length or "
            "base_channels, or a worker with more memory"
        )
        _end(run, "failed", error={"code": "out_of_memory", "message": message})
        return
    log.exception("job %s: unexpected error", run.job.id)
    message = f"the worker failed unexpectedly ({type(err).__name__}); see its log"
    _end(run, "failed", error={"code": "internal_error", "message": message})


def _out_of_memory(err: Exception) -> bool:
    """MemoryError, CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    import torch

    if isinstance(err, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)


def _end(run: Run, status: str, error: dict[str, str] | None = None) -> None:
    try:
        with session_scope(run.sessions) as session:
            jobs.finish_job(
                session=session, job_id=run.job.id, worker=run.worker, status=status, error=error
            )
    except jobs.LeaseLost:
        log.warning("job %s: lease lost before it could be marked %s", run.job.id, status)
        return
    # failed and cancelled are final: nothing will resume the job, so its state goes
    run.store.drop_resume(run.job.id)


def _video_path(run: Run, session: Session, video_id: str) -> Path:
    video = session.get(Video, video_id)
    if video is None or video.owner_id != run.job.owner_id:
        raise MissingInput(f"video {video_id} was deleted after the job was created")
    return run.store.path(video.storage_key)


def _mask(run: Run, session: Session) -> Any:
    from model.masks import FileMask, MissingFramesMask, RegionsMask

    spec = run.job.mask
    if spec is None:
        return None
    if spec["kind"] == "upload":
        return FileMask(path=str(_video_path(run, session, spec["video_id"])))
    cls = MissingFramesMask if spec["kind"] == "missing_frames" else RegionsMask
    return cls.model_validate(spec)


def _train(run: Run, reporter: Reporter) -> None:
    from model.config import TrainConfig
    from model.pipeline import train_model

    with session_scope(run.sessions) as session:
        videos = [_video_path(run, session, v) for v in run.job.video_ids]
        mask = _mask(run, session)
    resume = run.store.resume_path(run.job.id)
    result = train_model(
        TrainConfig.model_validate(run.job.config),
        videos,
        run.work_dir,
        mask=mask,
        seed=run.job.seed,
        device=run.settings.device,
        on_epoch=reporter.on_epoch,
        should_stop=reporter.should_stop,
        resume_path=resume,
        resume_every=run.settings.resume_every,
    )
    metrics = jsonable({**result.metrics, "warnings": result.warnings})
    with session_scope(run.sessions) as session:
        # Finish first: it locks the row and proves the lease is still ours before any
        # file moves into the store.
        job = jobs.finish_job(
            session=session,
            job_id=run.job.id,
            worker=run.worker,
            status="succeeded",
            metrics=metrics,
        )
        checkpoint_id = None
        for output in result.files:
            artifact = _store_output(run, session, output)
            if output.path == result.checkpoint:
                checkpoint_id = artifact.id
        assert checkpoint_id is not None, "train_model lists its checkpoint among its files"
        models.add_model(session=session, job=job, checkpoint_id=checkpoint_id, metrics=metrics)
    run.store.drop_resume(run.job.id)


def _synthesize(run: Run, reporter: Reporter) -> None:
    from model.config import SynthesisConfig
    from model.synthesis import synthesize_videos

    with session_scope(run.sessions) as session:
        checkpoint = _checkpoint_path(run, session)
    result = synthesize_videos(
        checkpoint,
        SynthesisConfig.model_validate(run.job.config),
        run.work_dir,
        seed=run.job.seed,
        device=run.settings.device,
        on_progress=reporter.on_frames,
    )
    with session_scope(run.sessions) as session:
        jobs.finish_job(
            session=session,
            job_id=run.job.id,
            worker=run.worker,
            status="succeeded",
            metrics=jsonable(result.metrics),
        )
        for output in result.files:
            _store_output(run, session, output)


def _checkpoint_path(run: Run, session: Session) -> Path:
    from core.tables import Artifact

    assert run.job.model_id is not None, "a synthesize job names its model"
    try:
        model = models.get_model(
            session=session, owner_id=run.job.owner_id, model_id=run.job.model_id
        )
    except NotFound:
        raise MissingInput(f"model {run.job.model_id} no longer exists") from None
    artifact = session.get_one(Artifact, model.checkpoint_id)
    return run.store.path(artifact.storage_key)


def _store_output(run: Run, session: Session, output: Any) -> Any:
    return add_artifact(
        session=session,
        store=run.store,
        job_id=run.job.id,
        owner_id=run.job.owner_id,
        kind=output.kind,
        source=output.path,
        media_type=output.media_type,
    )


def jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Metrics as plain JSON: numpy scalars as numbers, NaN and infinity as null."""
    text = json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    result: dict[str, Any] = json.loads(text, parse_constant=lambda _constant: None)
    return result
