"""Writing results so that a reader never sees a half-written file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PendingFile:
    """A temporary name beside `path`, renamed onto it by `commit`, removed by `abort`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{self.path.stem}.", suffix=f".part{self.path.suffix}", dir=self.path.parent
        )
        os.close(fd)
        self.tmp = Path(name)

    def commit(self) -> None:
        """Publish the finished file under its real name."""
        os.chmod(self.tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the unfinished file."""
        self.tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary name; it becomes `path` only if the block succeeds."""
    pending = PendingFile(path)
    try:
        yield pending.tmp
        pending.commit()
    finally:
        pending.abort()
