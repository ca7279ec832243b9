"""The one validated set of service settings, read from `DYNGEN_*` environment variables."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.webhook_urls import parse_networks
from model.config import RESUME_EVERY
from model.masks import MaskLimits

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A job may plan on this share of the machine's memory; the rest is the OS, the API and
# the estimate's margin of error.
JOB_MEMORY_SHARE = 0.75
# 50x the work of the authors' default job (3000 epochs of 60 64x64 frames, ~2e15 FLOPs):
# hours on a GPU, weeks on a CPU.
DEFAULT_MAX_JOB_FLOPS = 1e17


# cgroup v2 and v1 memory limits: a container sees the host's memory in sysconf
CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
)


def machine_memory() -> int:
    """This machine's memory in bytes, or its container's limit where that is lower (8 GiB
    where the OS won't say)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 * 1024**3
    for path in CGROUP_LIMITS:
        try:
            memory = min(memory, int(path.read_text().strip()))
        except (OSError, ValueError):
            continue  # absent, or "max": no limit
    return memory


def default_job_memory() -> int:
    """What one job may use by default: a share of this machine's memory."""
    return int(machine_memory() * JOB_MEMORY_SHARE)


class Settings(BaseSettings):
    """Everything the API, the worker and the CLI's service commands are configured by."""

    model_config = SettingsConfigDict(env_prefix="DYNGEN_", extra="ignore", frozen=True)

    # where things live; the three URLs default to files under data_dir (the embedded setup)
    data_dir: Path = Field(default=Path("data"), description="root of the embedded defaults")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite file"
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker URL; default SQLite file"
    )
    storage_dir: Path | None = Field(
        default=None, description="artifact store; default data_dir/storage"
    )
    queue_name: str = Field(default="dyngen", min_length=1, max_length=100)
    # object storage (docs/design.md 4.1): with a storage URL no filesystem is shared
    storage_url: str | None = Field(
        default=None,
        pattern=r"^s3://[^/]+(/.*)?$",
        description="s3://bucket/prefix: keep files in an S3-compatible store (endpoint and "
        "credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...); default storage_dir",
    )
    scratch_dir: Path | None = Field(
        default=None, description="local scratch with a storage URL; default data_dir/scratch"
    )
    presign_downloads: Literal["redirect", "url"] = Field(
        default="redirect",
        description="object store downloads: a 307 to a presigned URL, or JSON naming it",
    )
    presign_seconds: int = Field(default=900, ge=1, le=7 * 24 * 3600)
    storage_public_endpoint: str | None = Field(
        default=None, description="the store's URL as clients reach it (presigned URLs)"
    )
    storage_timeout_seconds: float = Field(
        default=10.0, gt=0, description="connect and read timeout of object store requests"
    )
    storage_retries: int = Field(default=3, ge=1, description="attempts per store request")

    # the HTTP server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    auth: Literal["apikey", "open"] = Field(
        default="open", description="open = no API key needed; refused unless bound to 127.0.0.1"
    )

    # what a client may ask for
    max_upload_bytes: int = Field(default=512 * 1024**2, ge=1)
    max_model_bytes: int = Field(
        default=256 * 1024**2, ge=1, description="largest checkpoint POST /v1/models accepts"
    )
    max_video_frames: int = Field(default=20_000, ge=1)
    max_video_side: int = Field(default=4096, ge=1, description="largest width or height accepted")
    max_epochs: int = Field(default=100_000, ge=1)
    max_synthesis_frames: int = Field(
        default=100_000, ge=1, description="num_videos x frames of one synthesis job"
    )

    # what a job may cost (model/budget.py estimates it; API and worker both check)
    max_job_memory_bytes: int = Field(
        default_factory=default_job_memory,
        ge=1,
        description="a job's estimated peak memory; default 3/4 of this machine's memory",
    )
    max_job_flops: float = Field(
        default=DEFAULT_MAX_JOB_FLOPS, gt=0, description="a job's estimated floating-point work"
    )

    # how workers run jobs
    max_attempts: int = Field(
        default=3, ge=1, description="workers a job may lose (killed mid-job) before it fails"
    )
    orphan_grace_seconds: float = Field(
        default=3600.0, ge=0, description="stored files without a row older than this go"
    )
    orphan_check_seconds: float = Field(
        default=600.0, gt=0, description="how often a worker's sweeper looks for such files"
    )
    device: str = Field(
        default="auto", description="torch device for the worker: auto, cpu, cuda, ..."
    )
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a job whose worker stops heartbeating is re-run after this",
    )
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    resume_every: int = Field(
        default=RESUME_EVERY, ge=1, description="save resume state every n epochs"
    )
    keep_checkpoints: int = Field(
        default=3, ge=1, description="a training job's newest intermediate checkpoints kept"
    )
    worker_threads: int = Field(
        default=0,
        ge=0,
        description="torch threads per worker process; 0 = OMP_NUM_THREADS if set, else its cores"
        " / the worker's concurrency",
    )
    cancel_poll_seconds: float = Field(default=1.0, ge=0)
    job_timeout_seconds: float = Field(
        default=0.0,
        ge=0,
        description="a job running longer than this (from its first start) fails; 0 = no limit",
    )
    sweep_seconds: float = Field(
        default=30.0, gt=0, description="how often each worker looks for jobs nobody runs"
    )
    connect_timeout: float = Field(
        default=3.0, gt=0, description="seconds to reach the DB or broker"
    )

    # how the API holds up under load (docs/reliability.md, "Load"); counts are per API process
    db_pool_size: int = Field(default=5, ge=1, description="pooled DB connections per API process")
    db_max_overflow: int = Field(default=10, ge=0, description="extra connections under load")
    api_pool_timeout: float = Field(
        default=5.0, gt=0, description="seconds an API request waits for a connection: then 503"
    )
    max_requests_per_key: int = Field(
        default=8, ge=1, description="requests of one key in progress at once; more wait"
    )
    request_wait_seconds: float = Field(
        default=30.0, gt=0, description="how long a key's excess request waits, then 429"
    )
    max_uploads_per_key: int = Field(default=4, ge=1, description="concurrent uploads of one key")
    max_streams_per_key: int = Field(default=16, ge=1, description="open event streams of one key")
    upload_idle_seconds: float = Field(
        default=60.0, gt=0, description="an upload sending nothing for this long is dropped"
    )
    max_concurrent_probes: int = Field(
        default=2, ge=1, description="uploads decoded at once; more answer 503"
    )
    max_probe_pixels: int = Field(
        default=4_000_000_000, ge=1, description="decoded pixels (frames x width x height)"
    )
    max_probe_seconds: float = Field(default=60.0, gt=0, description="wall time of one probe")

    # the worker's health file (`dyngen worker-health`); default data_dir/worker-health.HOST
    worker_health_file: Path | None = None
    worker_stale_seconds: float | None = Field(
        default=None, gt=0, description="the file is stale after this; default 3 heartbeats"
    )

    # webhooks (core/webhook_urls.py, worker/webhooks.py) and Idempotency-Key (core/idempotency.py)
    webhook_allow_private: bool = Field(
        default=False, description="let webhooks reach loopback, private, link-local addresses"
    )
    webhook_allowed_networks: str = Field(
        default="", description="comma-separated IPs or CIDRs webhooks may reach even so"
    )
    webhook_retry_seconds: float = Field(
        default=86_400.0, gt=0, description="a delivery is retried for this long, then given up"
    )
    webhook_backoff_seconds: float = Field(
        default=2.0, gt=0, description="wait before the first retry; doubles after each"
    )
    webhook_max_backoff_seconds: float = Field(default=600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, description="one POST's limit")
    webhook_poll_seconds: float = Field(
        default=1.0, gt=0, description="how often each worker looks for deliveries due"
    )
    idempotency_ttl_seconds: float = Field(
        default=86_400.0, gt=0, description="how long an Idempotency-Key's response is kept"
    )

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check_lease(self) -> Settings:
        # A lease shorter than two heartbeats expires under a healthy worker.
        if self.lease_seconds < 2 * self.heartbeat_seconds:
            raise ValueError("DYNGEN_LEASE_SECONDS must be at least twice DYNGEN_HEARTBEAT_SECONDS")
        return self

    @model_validator(mode="after")
    def _check_webhook_networks(self) -> Settings:
        parse_networks(self.webhook_allowed_networks)  # a typo fails at start, not per job
        return self

    @property
    def resolved_data_dir(self) -> Path:
        """The data directory as an absolute path."""
        return self.data_dir.expanduser().resolve()

    @property
    def db_url(self) -> str:
        """The database URL, the embedded SQLite file when none is set."""
        return self.database_url or f"sqlite:///{self.resolved_data_dir / 'dyngen.sqlite'}"

    @property
    def celery_broker_url(self) -> str:
        """The broker URL, Celery over an SQLite file when none is set."""
        return self.broker_url or f"sqla+sqlite:///{self.resolved_data_dir / 'broker.sqlite'}"

    @property
    def health_file(self) -> Path:
        """The file a healthy worker keeps fresh."""
        default = self.resolved_data_dir / f"worker-health.{socket.gethostname()}"
        return (self.worker_health_file or default).expanduser().resolve()

    @property
    def health_stale_seconds(self) -> float:
        """How old the health file may get before the worker counts as stuck."""
        return self.worker_stale_seconds or 3 * self.heartbeat_seconds

    @property
    def store_dir(self) -> Path:
        """The artifact store's root as an absolute path."""
        root = self.storage_dir or self.resolved_data_dir / "storage"
        return root.expanduser().resolve()

    @property
    def scratch_root(self) -> Path:
        """This machine's scratch space (used with an object store) as an absolute path."""
        root = self.scratch_dir or self.resolved_data_dir / "scratch"
        return root.expanduser().resolve()

    def check_bind(self, host: str) -> None:
        """Refuse to serve without API keys anywhere but the loopback interface."""
        if self.auth == "open" and host not in LOOPBACK_HOSTS:
            raise ValueError(
                f"DYNGEN_AUTH=open serves without API keys and is only allowed on 127.0.0.1, "
                f"not {host!r}; set DYNGEN_AUTH=apikey and create keys with `dyngen apikey create`"
            )


def mask_limits(settings: Settings) -> MaskLimits:
    """The bounds a mask file is held to, at upload and again in the worker."""
    return MaskLimits(
        max_bytes=settings.max_upload_bytes,
        max_frames=settings.max_video_frames,
        max_side=settings.max_video_side,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
