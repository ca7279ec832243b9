"""`make gpu-check`: everything a CUDA machine must show, in under 10 minutes, as one markdown
block for BENCHMARKS.md: the `cuda` tests, a training, synthesis and recovery with
`--device cuda` through the CLI, the epoch time with torch.compile and CUDA graphs off and
on, `make bench --device cuda`, and peak GPU memory.

Without a CUDA device it checks nothing, says "no CUDA device" and exits 0 (so it can sit in
any pipeline); `--strict` makes that exit 1 instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CUDA_TESTS = ["tests/model/test_cuda.py", "tests/service/test_cuda_worker.py"]
# what each step may take at most: together well inside 10 minutes
TEST_SECONDS, CLI_SECONDS, BENCH_SECONDS = 150, 150, 200


class Report:
    """The markdown block, and whether every step passed."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.failed: list[str] = []

    def add(self, *lines: str) -> None:
        """Append lines (and echo them, so a killed run still shows its progress)."""
        for line in lines:
            print(line, flush=True)
        self.lines.extend(lines)

    def step(self, name: str, argv: list[str], timeout: float) -> str:
        """Run a command; its output, with a PASS/FAIL line in the report."""
        began = time.monotonic()
        try:
            done = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
            )
            ok, output = done.returncode == 0, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            ok, output = False, f"timed out after {timeout:.0f} s\n{err.stdout or ''}"
        seconds = time.monotonic() - began
        self.add(f"- {'PASS' if ok else 'FAIL'} {name} ({seconds:.0f} s)")
        if not ok:
            self.failed.append(name)
            tail = output.strip().splitlines()[-15:]
            self.add("", "```", *tail, "```", "")
        return output


def dyngen(*args: str) -> list[str]:
    """The dyngen command beside this interpreter."""
    return [str(Path(sys.executable).with_name("dyngen")), *args]


def cli_runs(report: Report, tmp: Path) -> None:
    """Train, synthesize and recover on a procedural clip, all with --device cuda."""
    clip = tmp / "clip.mp4"
    report.step("sample clip", dyngen("sample-clip", str(clip), "--frames", "60"), 60)
    small = ["--image-size", "64", "--frames", "60", "--epochs", "30"]
    train = dyngen("train", str(clip), "--out", str(tmp / "train"), "--device", "cuda", *small)
    report.step("dyngen train --device cuda (64x64, 60 frames, 30 epochs)", train, CLI_SECONDS)
    synth = dyngen(
        "synthesize",
        str(tmp / "train" / "model.safetensors"),
        "--out",
        str(tmp / "synth"),
        "--frames",
        "240",
        "--device",
        "cuda",
    )
    report.step("dyngen synthesize --device cuda (240 frames)", synth, 60)
    recover = dyngen(
        "recover",
        str(clip),
        "--out",
        str(tmp / "recover"),
        "--missing-frames",
        "10-19,40-44",
        "--device",
        "cuda",
        *small,
    )
    report.step("dyngen recover --device cuda (15 of 60 frames hidden)", recover, CLI_SECONDS)


def compiled(mode: str | None) -> Callable[[torch.nn.Module], torch.nn.Module]:
    """Wraps the generator (3/4 of an epoch's time) in torch.compile; mode None = eager."""

    def wrap(module: torch.nn.Module) -> torch.nn.Module:
        if mode is None:
            return module
        return torch.compile(module, mode=mode)  # type: ignore[return-value]

    return wrap


def compile_table(report: Report, epochs: int) -> None:
    """Seconds per default 64x64 epoch: eager, torch.compile, and compile's CUDA graphs."""
    from benchmarks.run import epoch_seconds
    from model.config import TrainConfig
    from model.learner import ABPTTLearner

    variants = {
        "eager (what the worker runs)": None,
        "torch.compile (default mode)": "default",
        "torch.compile mode=reduce-overhead (CUDA graphs)": "reduce-overhead",
    }
    device = torch.device("cuda")
    report.add(
        "",
        "| 64x64, 60 frames, L=30, 15 steps, bf16 | s / epoch | vs eager | peak GPU MiB |",
        "| --- | --- | --- | --- |",
    )
    eager = None
    for label, mode in variants.items():

        def make(*args: object, _mode: str | None = mode, **kwargs: object) -> ABPTTLearner:
            learner = ABPTTLearner(*args, **kwargs)  # type: ignore[arg-type]
            learner.model.generator = compiled(_mode)(learner.model.generator)  # type: ignore[assignment]
            return learner

        torch.cuda.reset_peak_memory_stats()
        try:
            seconds = epoch_seconds(make, TrainConfig(), device, epochs)
        except Exception as err:  # a variant that fails to compile is a finding, not a crash
            report.add(f"| {label} | failed: {type(err).__name__}: {str(err)[:120]} | | |")
            continue
        eager = eager or seconds
        peak = torch.cuda.max_memory_allocated() / 2**20
        report.add(f"| {label} | {seconds:.3f} | {seconds / eager:.2f} | {peak:.0f} |")


def main() -> int:
    """Run every check; 0 when all passed (or, without --strict, when there is no CUDA)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("gpu-check.md"), help="markdown file")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per bench row")
    parser.add_argument("--strict", action="store_true", help="exit 1 without a CUDA device")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"gpu-check: no CUDA device (torch {torch.__version__}); nothing was checked")
        return 1 if args.strict else 0
    began = time.monotonic()
    report = Report()
    name = torch.cuda.get_device_name()
    report.add(f"### `make gpu-check` on {name} (torch {torch.__version__})", "")
    report.step(
        "pytest -m cuda",
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", *CUDA_TESTS],
        TEST_SECONDS,
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cli_runs(report, Path(tmp))
    compile_table(report, args.epochs)
    bench = report.step(
        "make bench --device cuda",
        [sys.executable, "-m", "benchmarks.run", "--device", "cuda", "--epochs", str(args.epochs)],
        BENCH_SECONDS,
    )
    report.add("", "```", *bench.strip().splitlines(), "```")
    report.add("", f"gpu-check took {time.monotonic() - began:.0f} s")
    args.out.write_text("\n".join(report.lines) + "\n")
    print(f"\nwritten to {args.out}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
