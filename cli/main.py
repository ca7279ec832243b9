"""The `dyngen` console script: offline model commands and the service's processes."""

from __future__ import annotations

import click

from cli import animate, evaluate, offline, remote, service


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dyngen")
def cli() -> None:
    """Learn dynamic generator models of video and generate new videos from them."""


offline.register(cli)
service.register(cli)
evaluate.register(cli)
remote.register(cli)
animate.register(cli)


def main() -> None:
    """Entry point of the console script."""
    cli(prog_name="dyngen")
