"""Running one job: claim its lease, run model/, store what it wrote, finish it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core import admission, jobs, models
from core.artifacts import Publication
from core.db import session_factory, session_scope
from core.errors import ServiceError
from core.job_states import TERMINAL, JobStatus, JobType
from core.queue import CeleryQueue
from core.settings import Settings
from core.storage import StorageUnavailable, Store
from core.stores import open_store
from core.tables import Job
from model.outputs import json_safe
from worker import shutdown, threads
from worker.checkpoints import CheckpointPublisher
from worker.inputs import (
    MissingInput,
    fetch_video,
    job_mask,
    model_checkpoint,
    training_inputs,
)
from worker.progress import Reporter

log = logging.getLogger("dyngen.worker")


@dataclass
class Run:
    """What one attempt at a job needs."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: Store
    job: Job
    worker: str
    work_dir: Path
    # absolute paths of the job's inputs -> how its error messages name them
    names: dict[str, str] = field(default_factory=dict)


def worker_name() -> str:
    """Names this attempt in the lease: host, process, and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_job(job_id: str, settings: Settings) -> jobs.Claim:
    """Claim the job and run it to a terminal status; returns what the claim found."""
    sessions = session_factory(settings.db_url, settings.connect_timeout)
    worker = worker_name()
    store = open_store(settings)
    with session_scope(sessions) as session:
        claim = jobs.claim_job(
            session=session,
            job_id=job_id,
            worker=worker,
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.max_attempts,
        )
    if claim.outcome is not jobs.ClaimOutcome.CLAIMED or claim.job is None:
        if claim.job is not None and claim.job.status in TERMINAL:
            # e.g. its last worker died and it was just ended: nothing will resume it
            store.drop_job_files(job_id)
        log.info("job %s: %s, not running it", job_id, claim.outcome.value)
        return claim
    work_dir = store.work_dir(job_id, claim.job.attempts)
    threads.apply()
    run = Run(settings, sessions, store, claim.job, worker, work_dir)
    log.info("job %s: %s started (attempt %d)", job_id, claim.job.type, claim.job.attempts)
    try:
        _execute(run)
    finally:
        shutil.rmtree(run.work_dir, ignore_errors=True)
    return claim


def _execute(run: Run) -> None:
    """Run the job, mapping every way it can end to a terminal status (or back to the queue)."""
    from model.errors import Cancelled, DyngenError

    reporter = Reporter(
        run.settings,
        run.sessions,
        run.job.id,
        run.worker,
        run.job.started_at,
        attempt=run.job.attempts,
    )
    with reporter:
        try:
            if run.job.type == JobType.TRAIN:
                _train(run, reporter)
            elif run.job.type == JobType.ANIMATE:
                from worker.animate import run_animate

                run_animate(run, reporter)
            else:
                _synthesize(run, reporter)
        except jobs.LeaseLost:
            log.warning("job %s: another worker holds the lease now; leaving it", run.job.id)
        except Cancelled:
            _stopped(run, reporter)
        except StorageUnavailable as err:
            log.warning("job %s failed: %s", run.job.id, err)
            _end(run, JobStatus.FAILED, error={"code": "storage_error", "message": err.message})
        except (DyngenError, MissingInput, ServiceError) as err:
            log.info("job %s failed: %s", run.job.id, err)
            _end(
                run, JobStatus.FAILED, error={"code": err.code, "message": public_message(run, err)}
            )
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
        _end(run, JobStatus.FAILED, error={"code": "job_timeout", "message": message})
    elif reporter.cancelled.is_set() or not shutdown.requested():
        _end(run, JobStatus.CANCELLED)
    else:
        _give_back(run)


def _give_back(run: Run) -> None:
    """Put an interrupted job back in the queue; its resume state stays for the next worker."""
    try:
        run.store.save_resume(run.job.id)  # the next worker may be on another machine
    except StorageUnavailable as err:
        log.warning("job %s: resume state not saved (%s)", run.job.id, err)
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
        _end(run, JobStatus.FAILED, error={"code": "out_of_memory", "message": message})
        return
    log.exception("job %s: unexpected error", run.job.id)
    message = f"the worker failed unexpectedly ({type(err).__name__}); see its log"
    _end(run, JobStatus.FAILED, error={"code": "internal_error", "message": message})


def _out_of_memory(err: Exception) -> bool:
    """MemoryError, CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    import torch

    if isinstance(err, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and "can't allocate memory" in str(err)


def _end(run: Run, status: JobStatus, error: dict[str, str] | None = None) -> None:
    try:
        with session_scope(run.sessions) as session:
            jobs.finish_job(
                session=session, job_id=run.job.id, worker=run.worker, status=status, error=error
            )
    except jobs.LeaseLost:
        log.warning("job %s: lease lost before it could be marked %s", run.job.id, status)
        return
    # failed and cancelled are final: nothing will resume the job, so its state goes
    run.store.drop_job_files(run.job.id)


def public_message(run: Run, err: Exception) -> str:
    """The error's text as the job's owner may read it: inputs by id, no storage paths."""
    text = str(err)
    for path, name in sorted(run.names.items(), key=lambda item: -len(item[0])):
        text = text.replace(path, name)
    text = text.replace(str(run.work_dir), "the job's output")
    return text.replace(str(run.store.root), "storage")


def _train(run: Run, reporter: Reporter) -> None:
    from model.config import TrainConfig
    from model.training import train_model

    with session_scope(run.sessions) as session:
        rows, mask_file = training_inputs(run, session)
    # planned again here: the API that queued it may have had other limits than this worker
    config = admission.plan_train_job(
        config=TrainConfig.model_validate(run.job.config),
        sources=rows,
        mask=run.job.mask,
        mask_file=mask_file,
        settings=run.settings,
    )
    videos = [fetch_video(run, v) for v in rows]
    mask = job_mask(run, mask_file)
    resume = run.store.resume_path(run.job.id)
    result = train_model(
        config,
        videos,
        run.work_dir,
        mask=mask,
        seed=run.job.seed,
        device=run.settings.device,
        on_epoch=_saving_resume(run, reporter.on_epoch),
        should_stop=reporter.should_stop,
        resume_path=resume,
        resume_every=run.settings.resume_every,
        on_checkpoint=CheckpointPublisher(
            run.settings, run.sessions, run.store, run.job, run.worker
        ),
    )
    if mask is not None:  # the clip beside its recovered (inpainted) version
        from model.inpaint import add_side_by_side

        add_side_by_side(result, config, videos, run.work_dir)
    _publish_training(run, result)


def _publish_training(run: Run, result: Any) -> None:
    """Finish the job with the training's metrics and publish its files and its model with
    it, then drop the job's scratch."""
    metrics = jsonable(
        {**result.metrics, "warnings": result.warnings, "torch_threads": threads.current()}
    )
    # Finish first: it locks the row and proves the lease is still ours before any file
    # moves into the store; outputs and rows commit together or not at all.
    with Publication(run.store) as publication, session_scope(run.sessions) as session:
        job = jobs.finish_job(
            session=session,
            job_id=run.job.id,
            worker=run.worker,
            status=JobStatus.SUCCEEDED,
            metrics=metrics,
        )
        if job.status == JobStatus.SUCCEEDED:  # not cancelled at the last moment
            checkpoint_id = None
            for output in result.files:
                artifact = _store_output(run, session, publication, output)
                if output.path == result.checkpoint:
                    checkpoint_id = artifact.id
            assert checkpoint_id is not None, "train_model lists its checkpoint among its files"
            models.add_model(session=session, job=job, checkpoint_id=checkpoint_id, metrics=metrics)
    run.store.drop_job_files(run.job.id)


def _saving_resume(run: Run, on_epoch: Any) -> Any:
    """`on_epoch`, after sending the resume state train_model just wrote to the store."""
    every = run.settings.resume_every

    def after_epoch(report: Any) -> None:
        if report.epoch % every == 0:
            run.store.save_resume(run.job.id)
        on_epoch(report)

    return after_epoch


def _synthesize(run: Run, reporter: Reporter) -> None:
    from model.config import SynthesisConfig
    from model.synthesis import synthesize_videos

    config = SynthesisConfig.model_validate(run.job.config)
    with session_scope(run.sessions) as session:
        checkpoint, model_config = model_checkpoint(run, session)
    admission.plan_synthesis_job(model_config=model_config, config=config, settings=run.settings)
    result = synthesize_videos(
        checkpoint,
        config,
        run.work_dir,
        seed=run.job.seed,
        device=run.settings.device,
        on_progress=reporter.on_frames,
    )
    publish_videos(run, result)


def publish_videos(run: Run, result: Any) -> None:
    """Finish the job with the result's metrics and publish its files with it (a synthesis
    or an animation), then drop the job's scratch."""
    with Publication(run.store) as publication, session_scope(run.sessions) as session:
        job = jobs.finish_job(
            session=session,
            job_id=run.job.id,
            worker=run.worker,
            status=JobStatus.SUCCEEDED,
            metrics=jsonable(result.metrics),
        )
        if job.status == JobStatus.SUCCEEDED:  # not cancelled at the last moment
            for output in result.files:
                _store_output(run, session, publication, output)
    run.store.drop_job_files(run.job.id)


def _store_output(run: Run, session: Session, publication: Publication, output: Any) -> Any:
    return publication.add(
        session=session,
        job_id=run.job.id,
        owner_id=run.job.owner_id,
        kind=output.kind,
        source=output.path,
        media_type=output.media_type,
    )


def jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Metrics as plain JSON (json_safe's numbers and nulls; anything else as its text)."""
    result: dict[str, Any] = json.loads(json.dumps(json_safe(value), default=str))
    return result
