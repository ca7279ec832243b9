"""`dyngen remote ...`: the service's flow from a shell, through the Python client."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from core.job_states import JobStatus, JobType

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(func: F) -> F:
    """A refusal or an unreachable server is one line and a non-zero exit, never a trace."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # imported here: `dyngen --help` and the offline commands don't load the client
        import httpx

        from cli.client import ApiError

        try:
            return func(*args, **kwargs)
        except ApiError as err:
            raise click.ClickException(f"{err.code}: {err.message}") from None
        except httpx.TransportError as err:
            raise click.ClickException(f"cannot reach the API: {err}") from None

    return wrapper  # type: ignore[return-value]


def _client(ctx: click.Context) -> Any:
    from cli.client import Client

    url, key = ctx.obj["url"], ctx.obj["key"]
    return ctx.with_resource(Client(url, key))


def _config(path: Path | None) -> dict[str, Any] | None:
    """A job's `config` object from a JSON file."""
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise click.ClickException(f"{path}: not a JSON file ({err})") from None
    if not isinstance(config, dict):
        raise click.ClickException(f"{path}: the config must be a JSON object")
    return config


@click.group()
@click.option("--url", envvar="DYNGEN_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--key", envvar="DYNGEN_API_KEY", default=None, help="API key (DYNGEN_API_KEY)")
@click.pass_context
def remote(ctx: click.Context, url: str, key: str | None) -> None:
    """Drive a running dyngen service: upload, train, wait, synthesize, download."""
    ctx.obj = {"url": url, "key": key}


@remote.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@_one_line_errors
def upload(ctx: click.Context, video: Path) -> None:
    """Upload VIDEO; prints its id."""
    click.echo(_client(ctx).upload(video).id)


@remote.command()
@click.argument("video_ids", nargs=-1, required=True)
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
@_one_line_errors
def train(ctx: click.Context, video_ids: tuple[str, ...], config: Path | None, seed: int) -> None:
    """Queue a training job on uploaded videos; prints its id."""
    click.echo(_client(ctx).train(list(video_ids), _config(config), seed=seed).id)


@remote.command()
@click.argument("model_id")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_context
@_one_line_errors
def synthesize(ctx: click.Context, model_id: str, config: Path | None, seed: int) -> None:
    """Queue a synthesis job from MODEL_ID; prints its id."""
    click.echo(_client(ctx).synthesize(model_id, _config(config), seed=seed).id)


@remote.command()
@click.argument("job_id")
@click.pass_context
@_one_line_errors
def wait(ctx: click.Context, job_id: str) -> None:
    """Follow JOB_ID until it ends (progress on stderr); prints its model id or status."""

    def show(progress: dict[str, Any]) -> None:
        epoch, epochs, loss = progress.get("epoch"), progress.get("epochs"), progress.get("loss")
        click.echo(f"epoch {epoch}/{epochs} loss {loss}", err=True)

    job = _client(ctx).wait(job_id, on_progress=show)
    if job.status != JobStatus.SUCCEEDED:
        reason = f": {job.error.code}: {job.error.message}" if job.error else ""
        raise click.ClickException(f"job {job_id} {job.status}{reason}")
    click.echo(job.model_id if job.type == JobType.TRAIN else job.status)


@remote.command()
@click.argument("job_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--name", "names", multiple=True, help="only the artifact of this file name")
@click.pass_context
@_one_line_errors
def download(ctx: click.Context, job_id: str, out: Path, names: tuple[str, ...]) -> None:
    """Download JOB_ID's artifacts (or those --name names) into --out; prints each path."""
    client = _client(ctx)
    artifacts = client.get_job(job_id).artifacts
    chosen = [a for a in artifacts if not names or a.filename in names]
    if missing := set(names) - {a.filename for a in chosen}:
        raise click.ClickException(f"job {job_id} has no artifact named {sorted(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    for artifact in chosen:
        click.echo(client.download(artifact, out / artifact.filename))


@remote.command("import")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@_one_line_errors
def import_model(ctx: click.Context, checkpoint: Path) -> None:
    """Import a model.safetensors written by `dyngen train`; prints the model's id."""
    click.echo(_client(ctx).import_model(checkpoint).id)


@remote.command()
@click.argument("kind", type=click.Choice(["job", "model", "video"]))
@click.argument("object_id")
@click.pass_context
@_one_line_errors
def delete(ctx: click.Context, kind: str, object_id: str) -> None:
    """Delete a finished job, a model or a video, with its stored files."""
    client = _client(ctx)
    deleters = {"job": client.delete_job, "model": client.delete_model}
    deleters.get(kind, client.delete_video)(object_id)
    click.echo(f"deleted {kind} {object_id}", err=True)


def register(group: click.Group) -> None:
    """Add `dyngen remote` to the `dyngen` group."""
    group.add_command(remote)
