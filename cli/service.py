"""Service commands: serve, api, worker, migrate, apikey."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the service commands to the `dyngen` group."""
