"""What the CLI refuses before doing anything: open mode off loopback, loosely typed configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.offline import build_train_config, train
from tests.cli.test_offline import error_line, run
from tests.conftest import ROOT


def test_serve_in_open_mode_off_loopback_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNGEN_")}
    script = Path(sys.executable).with_name("dyngen")
    done = subprocess.run(
        [str(script), "serve", "--host", "0.0.0.0", "--data-dir", str(data)],
        env=env | {"DYNGEN_AUTH": "open"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "only allowed on 127.0.0.1" in error_line(done.stderr)
    assert not data.exists(), list(data.rglob("*"))  # nothing migrated, no broker, no worker


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"epochs": "2"}, "epochs: Input should be a valid integer"),
        ({"epochs": True}, "epochs: Input should be a valid integer"),
        ({"sigma": "0.5"}, "sigma: Input should be a valid number"),
    ],
)
def test_a_config_file_is_as_strict_as_the_api(
    tmp_path: Path, fields: dict[str, object], message: str
) -> None:
    (tmp_path / "c.json").write_text(json.dumps(fields))
    code, output = run(
        "train", "x.mp4", "--out", str(tmp_path / "o"), "--config", str(tmp_path / "c.json")
    )
    assert code == 1 and message in error_line(output)


def test_json_numbers_arrays_and_flags_still_make_a_config(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps({"sigma": 1, "mlp_widths": [8, 8], "epochs": 5}))
    args = ["x.mp4", "--out", str(tmp_path), "--config", str(tmp_path / "c.json")]
    args += ["--image-size", "32", "--langevin-delta", "0.1"]
    config = build_train_config(dict(train.make_context("train", args).params))
    assert (config.sigma, config.mlp_widths, config.epochs) == (1.0, (8, 8), 5)
    assert (config.image_size, config.langevin_delta) == (32, 0.1)
