"""The README's first commands, as a test runs them: found by heading, shrunk to tiny epochs."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def sh_block(heading: str) -> str:
    """The first ```sh block after the README line `heading`."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(f"\n{heading}\n") :]
    match = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert match is not None, f"no sh block under {heading!r}"
    return match.group(1)


def with_tiny_epochs(script: str, epochs: int = 1) -> str:
    """The same commands with every epoch count set to `epochs` (flags and JSON alike)."""
    script = re.sub(r"--epochs \d+", f"--epochs {epochs}", script)
    return re.sub(r'"epochs": \d+', f'"epochs": {epochs}', script)
