"""What a new user meets first (issue 20): one clear line for bad files, honest progress bars."""

from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from cli.offline import EpochBar
from model.methods import load_model
from model.procedural import waves
from model.training import EpochReport
from model.video_decode import probe_video
from model.video_frames import read_video
from model.video_writers import write_video
from tests.cli.test_offline import TINY
from tests.conftest import ROOT
from tests.hostile import truncated

SMALL = ["--image-size", "16", *TINY[4:]]  # TINY without its --frames


def dyngen(*args: str, cwd: Path = ROOT) -> tuple[int, str, str, float]:
    """The real console script: exit code, stdout, stderr and the CPU seconds it took."""
    script = Path(sys.executable).with_name("dyngen")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return done.returncode, done.stdout, done.stderr, cpu


def dyngen_here(*args: str) -> tuple[int, str, str]:
    """`dyngen` in this process (torch is loaded once): exit code, stdout and stderr."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def only_error_line(code: int, stdout: str, stderr: str) -> str:
    """The one line a refused input prints: exit 1, no progress bar, nothing else."""
    assert code == 1, stderr
    lines = (stdout + stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stdout + stderr
    return lines[0]


@pytest.fixture
def clip40(tmp_path: Path) -> Path:
    """A 40-frame 16x16 procedural clip: shorter than the default 60 frames."""
    path = tmp_path / "clip40.mp4"
    write_video(path, iter(waves(40, 16)), 25)
    return path


def test_a_missing_file_is_one_line_before_any_bar(tmp_path: Path) -> None:
    code, out, err, _ = dyngen("train", str(tmp_path / "missing.mp4"), "--out", str(tmp_path))
    assert only_error_line(code, out, err).endswith("missing.mp4: no such file")


def test_a_non_video_is_refused_in_one_line_at_once(tmp_path: Path) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are my notes, not a video\n" * 2000)
    code, out, err, seconds = dyngen("train", str(notes), "--out", str(tmp_path / "o"))
    assert "not a" in only_error_line(code, out, err)
    # CPU time, as wall time on the shared machine swings tenfold: about 1 s (as long as
    # `dyngen --version`); loading torch first, as before, cost over 4
    assert seconds < 3, seconds


def test_a_truncated_file_says_what_its_header_declares(tmp_path: Path) -> None:
    # cut files of two containers; decoding runs into the cut mid-frame
    whole_avi = _waves_avi(tmp_path / "whole.avi", frames=117)
    whole_mp4 = tmp_path / "whole.mp4"
    write_video(whole_mp4, iter(waves(117, 32)), 25)  # faststart: the index comes first
    for whole, keep in ((whole_avi, 0.1), (whole_mp4, 0.3)):
        cut = truncated(whole, tmp_path / f"cut{whole.suffix}", keep=keep)
        line = only_error_line(*dyngen_here("train", str(cut), "--out", str(tmp_path), *SMALL))
        assert re.search(r"truncated: its header declares 117 frames, only [1-9]\d? decode", line)


def _waves_avi(path: Path, frames: int) -> Path:
    """An AVI of uncompressed 16x16 frames: its header declares the count up front."""
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width = stream.height = 16
        stream.pix_fmt = "rgb24"
        for image in waves(frames, 16):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_train_and_lds_follow_one_rule_for_a_short_clip(tmp_path: Path, clip40: Path) -> None:
    # asked for 60 frames of a 40-frame clip: both refuse, with the same words
    train = dyngen_here(
        "train", str(clip40), "--out", str(tmp_path / "t"), *SMALL, "--frames", "60"
    )
    lds = dyngen_here("lds", str(clip40), "--out", str(tmp_path / "l"), "--image-size", "16",
                      "--frames", "60")  # fmt: skip
    refusals = [only_error_line(*run) for run in (train, lds)]
    assert refusals[0] == refusals[1]
    assert "has 40 frames; 60 frames from frame 0 every 1 need 60" in refusals[0]
    # frames left unset: both take all 40
    code, _, err = dyngen_here(
        "lds", str(clip40), "--out", str(tmp_path / "l"), "--image-size", "16"
    )
    assert code == 0, err
    lds_config = load_model(tmp_path / "l" / "model.safetensors").config  # `train --method lds`
    code, out, err = dyngen_here(
        "train", str(clip40), "--out", str(tmp_path / "t"), *SMALL, "--epochs", "1"
    )
    assert code == 0, err
    assert re.search(r"syntheses of 160 frames: motion ratio \d+\.\d\d ", out), out
    assert lds_config.frames == probe_video(tmp_path / "t" / "reconstruction.mp4").frames == 40


def _report(epoch: int, elapsed: float, first_epoch: int) -> EpochReport:
    return EpochReport(epoch, 100, 1.0, 0.1, 20.0, 3.0, elapsed, 0.0, first_epoch)


def test_a_resumed_bar_times_only_the_epochs_this_process_ran() -> None:
    bar = EpochBar()
    bar.start(100)
    # resumed at epoch 50; the first epoch of this process took 3 s
    bar(_report(51, 3.0, 50))
    bar(_report(52, 6.0, 50))
    meter = bar.bar.format_meter(**bar.bar.format_dict)
    bar.close()
    rate = 2 / bar.bar.format_dict["elapsed"]
    assert rate == pytest.approx(1 / 3, rel=0.05)  # not 52 epochs in 6 s
    assert "52/100" in meter and "3.0" in meter and "s/epoch" in meter, meter
    assert "02:24" in meter, meter  # 48 epochs left at 3 s each


def test_resume_through_the_cli_continues_the_bar(tmp_path: Path, clip40: Path) -> None:
    out = tmp_path / "o"
    base = ("train", str(clip40), "--out", str(out), *TINY, "--resume-every", "1")
    assert dyngen_here(*base, "--epochs", "2")[0] == 0
    code, _, err = dyngen_here(*base, "--epochs", "4", "--resume")
    assert code == 0, err
    # the resumed run's bar goes 3/4, 4/4: epochs 1 and 2 were the first process's
    shown = re.findall(r"\| (\d)/4 ", err)
    assert shown[-2:] == ["3", "4"] and "1" not in shown and "2" not in shown, err


def test_synthesize_bar_reports_the_summarys_frames_per_second(
    tmp_path: Path, clip40: Path
) -> None:
    out = tmp_path / "o"
    code, _, err = dyngen_here(
        "train", str(clip40), "--out", str(out), *TINY, "--epochs", "1", "--frames", "16"
    )
    assert code == 0, err
    code, stdout, err = dyngen_here(
        "synthesize", str(out / "model.safetensors"), "--out", str(tmp_path / "s"),
        "--num-videos", "3", "--frames", "64", "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    summary = float(re.search(r"frames_per_second ([\d.e+]+)", stdout).group(1))  # type: ignore[union-attr]
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "192/192" in final, final  # every frame of the three videos
    shown = re.search(r"([\d.]+)(k?)frame/s", final)
    assert shown is not None, final
    bar_rate = float(shown.group(1)) * (1000 if shown.group(2) else 1)
    assert bar_rate == pytest.approx(summary, rel=0.05), (final, summary)
    assert probe_video(tmp_path / "s" / "video-3.mp4").frames == 64


def test_the_console_script_loads_neither_torch_nor_celery_to_start() -> None:
    # what keeps refusing a bad file (or printing --help) fast
    code = "import sys, cli.main; print(sorted({'torch', 'celery'} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_sample_clip_writes_a_moving_clip_and_refuses_other_formats(tmp_path: Path) -> None:
    code, _, err = dyngen_here("sample-clip", str(tmp_path / "s.mp4"), "--frames", "30")
    assert code == 0, err
    info = probe_video(tmp_path / "s.mp4")
    assert (info.frames, info.width, info.fps) == (30, 64, 25.0)
    frames = read_video(tmp_path / "s.mp4", image_size=64, frames=30).astype(float)
    assert np.abs(np.diff(frames, axis=0)).mean() > 5  # it moves (0..255 scale)
    code, out, err = dyngen_here("sample-clip", str(tmp_path / "s.avi"))
    assert "written as .mp4 or .gif" in only_error_line(code, out, err)
