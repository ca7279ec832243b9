"""Service commands: serve, api, worker, migrate, apikey."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # celery and pydantic-settings load when a service command runs, so the
    # offline commands (a bad file refused at once) don't pay for them
    from sqlalchemy.orm import Session

    from core.settings import Settings

log = logging.getLogger("dyngen.serve")

WORKER_STOP_SECONDS = 10


def _settings(**overrides: object) -> Settings:
    """Settings from the environment with the CLI options given winning over it; built and
    passed on (to a child process in its environment), never written into os.environ."""
    from core.settings import Settings

    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValueError as err:
        raise click.ClickException(f"invalid settings: {err}") from None


def _environment(settings: Settings, names: tuple[str, ...]) -> dict[str, str]:
    """This process's environment plus `names` of `settings`: a child process started with it
    (the embedded worker) resolves the same settings as this one."""
    return os.environ | {f"DYNGEN_{name.upper()}": str(getattr(settings, name)) for name in names}


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _migrate(settings: Settings) -> None:
    import migrations

    if settings.database_url is None:
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    try:
        migrations.upgrade(settings.db_url)
    except Exception as err:
        raise click.ClickException(f"could not migrate {settings.db_url}: {err}") from None


def _wal_broker(settings: Settings) -> None:
    """Put the embedded SQLite broker in WAL mode (a mode the file keeps) before kombu opens it."""
    url = settings.celery_broker_url
    if url.startswith("sqla+sqlite:///"):
        path = Path(url.removeprefix("sqla+sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


def _check_bind(settings: Settings, host: str) -> None:
    """Refuse open mode off the loopback interface, before anything is migrated or started."""
    try:
        settings.check_bind(host)
    except ValueError as err:
        raise click.ClickException(str(err)) from None


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process holds in one line, before a worker or database is started."""
    try:
        # SO_REUSEADDR as uvicorn binds: only a live listener counts, not a closing socket
        socket.create_server((host, port)).close()
    except OSError as err:
        raise click.ClickException(
            f"cannot listen on {host}:{port} ({err.strerror}): set DYNGEN_PORT (or --port) "
            f"to a free port, e.g. DYNGEN_PORT={port + 1} make run"
        ) from None


def _run_api(settings: Settings, host: str) -> None:
    import uvicorn

    from api.app import create_app

    _check_bind(settings, host)
    uvicorn.run(
        create_app(settings),
        host=host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=3,
    )


def _worker_argv(settings: Settings, pool: str, concurrency: int) -> list[str]:
    return [
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--queues",
        settings.queue_name,
        "--loglevel",
        settings.log_level.upper(),
        "--without-gossip",
        "--without-mingle",
    ]


@click.command()
@click.option("--host", default=None, help="interface to bind  [default: 127.0.0.1]")
@click.option("--port", type=int, default=None, help="port  [default: DYNGEN_PORT or 8000]")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def serve(host: str | None, port: int | None, data_dir: Path | None) -> None:
    """API + one embedded worker: SQLite database and broker, files under the data dir."""
    resolved = data_dir.expanduser().resolve() if data_dir else None
    settings = _settings(host=host, port=port, data_dir=resolved)
    _check_bind(settings, settings.host)
    _logging(settings)
    _check_port_free(settings.host, settings.port)
    _migrate(settings)
    _wal_broker(settings)
    from core.queue import CeleryQueue

    CeleryQueue(settings).declare()
    # Before the worker exists: a SIGTERM from now on unwinds through the cleanup below.
    signal.signal(signal.SIGTERM, _raise_terminated)
    embedded = EmbeddedWorker(settings, _environment(settings, ("host", "port", "data_dir")))
    try:
        _run_api(settings, settings.host)
    except Terminated:
        embedded.stop()
        _die_of(signal.SIGTERM)  # what a process manager expects to see: killed by SIGTERM
    finally:
        embedded.stop()


class Terminated(SystemExit):
    """SIGTERM arrived: `serve` cleans up as after Ctrl-C, then dies of the signal."""


def _raise_terminated(signum: int, frame: object) -> None:
    # uvicorn shuts down on SIGTERM and then raises it again under the handler it found; with
    # the default one the process died there and left the embedded worker orphaned.
    raise Terminated(128 + signum)


def _die_of(sig: signal.Signals) -> None:
    """End the process by `sig` under its default action."""
    signal.signal(sig, signal.SIG_DFL)
    os.kill(os.getpid(), sig)


class EmbeddedWorker:
    """The worker `serve` runs beside the API: a child process, solo pool, one job at a time."""

    def __init__(self, settings: Settings, environment: dict[str, str]) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "worker.app"]
        self.child = subprocess.Popen([*argv, *_worker_argv(settings, "solo", 1)], env=environment)
        self.stopping = threading.Event()
        threading.Thread(target=self._watch, name="worker-watch", daemon=True).start()
        log.info("embedded worker started (pid %d)", self.child.pid)

    def _watch(self) -> None:
        # A server without its worker would queue jobs forever: stop loudly instead.
        code = self.child.wait()
        if not self.stopping.is_set():
            log.error("the embedded worker exited (code %s); stopping the server", code)
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> None:
        """Warm shutdown first; a training that won't end soon is cut and resumes next time."""
        self.stopping.set()
        for sig in (signal.SIGTERM, signal.SIGQUIT, signal.SIGKILL):
            if self.child.poll() is not None:
                return
            self.child.send_signal(sig)
            try:
                self.child.wait(WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                log.warning("the embedded worker did not stop on %s", signal.Signals(sig).name)


@click.command()
@click.option("--host", default=None, help="interface to bind  [default: DYNGEN_HOST or 127.0.0.1]")
@click.option("--port", type=int, default=None, help="port  [default: DYNGEN_PORT or 8000]")
def api(host: str | None, port: int | None) -> None:
    """The API alone (deployments: run `dyngen migrate` first)."""
    settings = _settings(host=host, port=port)
    _logging(settings)
    _check_port_free(settings.host, settings.port)
    _run_api(settings, settings.host)


@click.command()
@click.option(
    "--pool",
    type=click.Choice(["solo", "prefork", "threads"]),
    default="solo",
    show_default=True,
    help="solo runs one job in the worker process: what GPU workers want",
)
@click.option("--concurrency", type=int, default=1, show_default=True)
def worker(pool: str, concurrency: int) -> None:
    """A Celery worker that runs training and synthesis jobs."""
    settings = _settings()
    from worker.app import app

    app.worker_main(_worker_argv(settings, pool, concurrency))


@click.command("worker-health")
def worker_health() -> None:
    """Exit 0 while this host's worker keeps its health file fresh (a healthcheck)."""
    from worker.health import age

    settings = _settings()
    path, stale = settings.health_file, settings.health_stale_seconds
    seconds = age(path)
    if seconds is None:
        raise click.ClickException(f"unhealthy: no health file at {path} (is a worker running?)")
    if seconds > stale:
        raise click.ClickException(
            f"unhealthy: the worker last wrote its health file {seconds:.0f} s ago "
            f"(stale after {stale:g} s): stopped, frozen, or its job lost its lease"
        )
    click.echo(f"healthy: the worker wrote its health file {seconds:.1f} s ago")


@click.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    settings = _settings()
    _migrate(settings)
    click.echo(f"database at head: {settings.db_url.split('@')[-1]}", err=True)


@click.group()
def apikey() -> None:
    """Manage API keys."""


@apikey.command("create")
@click.argument("name")
def apikey_create(name: str) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.auth import create_api_key
    from core.db import session_factory, session_scope
    from core.webhook_secrets import rotate_secret

    settings = _settings()
    try:
        with session_scope(session_factory(settings.db_url, settings.connect_timeout)) as session:
            row, key = create_api_key(session=session, name=name)
            webhook_secret = rotate_secret(session=session, owner_id=row.id)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    except SQLAlchemyError as err:
        raise click.ClickException(
            f"could not store the key (run `dyngen migrate`?): {err}"
        ) from None
    click.echo(f"created API key {row.id} ({row.name}); it is shown only now:", err=True)
    click.echo(key)
    # stderr, so that stdout stays the key alone for scripts
    click.echo(f"its webhook signing secret, shown only now: {webhook_secret}", err=True)


@apikey.command("revoke")
@click.argument("key_id")
def apikey_revoke(key_id: str) -> None:
    """Revoke the key with KEY_ID (the key_... id `create` printed); it stops working at once."""
    from core.auth import revoke_api_key
    from core.db import session_factory, session_scope

    settings = _settings()
    with session_scope(session_factory(settings.db_url, settings.connect_timeout)) as session:
        found = revoke_api_key(session=session, key_id=key_id)
    if not found:
        raise click.ClickException(f"no API key with id {key_id!r}")
    click.echo(f"revoked API key {key_id}", err=True)


@apikey.command("list")
def apikey_list() -> None:
    """List the keys: id, name, created, revoked (the keys themselves are never stored)."""
    from core.auth import list_api_keys

    with _key_session() as session:
        rows = [
            (r.id, r.name, _when(r.created_at), _when(r.revoked_at))
            for r in list_api_keys(session=session)
        ]
    if not rows:
        click.echo("no API keys yet: `dyngen apikey create NAME` makes one", err=True)
        return
    table = [("ID", "NAME", "CREATED", "REVOKED"), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@apikey.command("rotate-webhook-secret")
@click.argument("name")
def apikey_rotate_webhook_secret(name: str) -> None:
    """Make a new webhook signing secret for the key NAME and print it once (the old one stops
    signing at once)."""
    from core.auth import find_api_key
    from core.webhook_secrets import rotate_secret

    with _key_session() as session:
        row = find_api_key(session=session, name=name)
        if row is None:
            raise click.ClickException(f"no API key named {name!r} (`dyngen apikey list`)")
        secret = rotate_secret(session=session, owner_id=row.id)
    click.echo(f"new webhook signing secret of {name} ({row.id}); it is shown only now:", err=True)
    click.echo(secret)


@contextmanager
def _key_session() -> Iterator[Session]:
    """A session on the settings' database; a database not migrated is one line, not a trace."""
    from sqlalchemy.exc import SQLAlchemyError

    from core.db import session_factory, session_scope

    settings = _settings()
    try:
        with session_scope(session_factory(settings.db_url, settings.connect_timeout)) as session:
            yield session
    except SQLAlchemyError as err:
        raise click.ClickException(
            f"could not read the keys (run `dyngen migrate`?): {str(err).splitlines()[0]}"
        ) from None


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def register(group: click.Group) -> None:
    """Add the service commands to the `dyngen` group."""
    for command in (serve, api, worker, worker_health, migrate, apikey):
        group.add_command(command)
