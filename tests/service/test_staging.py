"""The staging area: a staged upload is locked while its writer lives; the sweep takes orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from core.storage import ArtifactStore
from tests.service.processes import ROOT

DIES_MID_UPLOAD = """
import os, pathlib, sys
from core.storage import ArtifactStore
staged = ArtifactStore(pathlib.Path(sys.argv[1])).stage()
staged.write(b"half a video")
os._exit(0)  # no clean-up: as if SIGKILLed
"""


def test_sweep_deletes_only_staged_uploads_whose_writer_died(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    live = store.stage()
    live.write(b"still coming")
    subprocess.run([sys.executable, "-c", DIES_MID_UPLOAD, str(tmp_path)], cwd=ROOT, check=True)
    long_ago = time.time() - 3600
    for path in store.tmp.glob("upload-*.part"):
        os.utime(path, (long_ago, long_ago))  # both past the grace period
    assert store.sweep_staging() == 1
    assert list(store.tmp.glob("upload-*.part")) == [live.path]
    store.publish(live, "videos/v.mp4")
    assert store.path("videos/v.mp4").read_bytes() == b"still coming"
    assert store.sweep_staging() == 0
