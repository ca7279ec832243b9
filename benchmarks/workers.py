"""`make bench` (last table): two training jobs on one machine, one after the other against
at once, with torch's threads split between the two workers (what DYNGEN_WORKER_THREADS'
default does) and not split (each worker taking every core: oversubscribed)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from worker.threads import available_cores, threads_for


def train_once(video: str, epochs: int, size: int, threads: int, out: str) -> float:
    """One training job as a worker runs it, with `threads` torch threads; its seconds."""
    import torch

    from model.config import TrainConfig
    from model.training import train_model

    torch.set_num_threads(threads)
    config = TrainConfig(image_size=size, epochs=epochs, checkpoint_every=0)  # type: ignore[arg-type]
    began = time.perf_counter()
    train_model(config, [Path(video)], Path(out), seed=0, device="cpu")
    return time.perf_counter() - began


def _run(args: tuple[str, int, int, int, str]) -> float:
    return train_once(*args)


def wall(jobs: int, at_once: bool, threads: int, video: str, epochs: int, size: int) -> float:
    """Seconds until `jobs` trainings end, run in fresh processes, at once or in turn."""
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        work = [(video, epochs, size, threads, f"{tmp}/{i}") for i in range(jobs)]
        began = time.perf_counter()
        with context.Pool(jobs if at_once else 1) as pool:
            pool.map(_run, work, chunksize=1)
        return time.perf_counter() - began


def make_clip(path: Path, size: int) -> str:
    """A procedural 60-frame clip (the benchmark needs no data)."""
    from model.procedural import waves
    from model.video_writers import write_video

    write_video(path, iter(waves(60, size)), 25)
    return str(path)


def main() -> None:
    """Print the table (markdown, for BENCHMARKS.md)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per training job")
    parser.add_argument("--size", type=int, default=32, help="image size of the jobs")
    args = parser.parse_args()
    cores = available_cores()
    split = threads_for(0, concurrency=2, cores=cores)
    print(f"cores {cores}")
    print(f"2 jobs of {args.epochs} epochs, {args.size}x{args.size}, 60 frames\n")
    print(
        "| two training jobs | workers | torch threads each | wall s | jobs / hour | load before |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        video = make_clip(Path(tmp) / "clip.mp4", args.size)
        rows = [
            ("one after the other", 1, False, cores),
            ("at once, threads split (the default)", 2, True, split),
            ("at once, not split (oversubscribed)", 2, True, cores),
        ]
        for label, workers, at_once, threads in rows:
            # the machine is shared: the load each row started under goes beside it
            load = os.getloadavg()[0]
            seconds = wall(2, at_once, threads, video, args.epochs, args.size)
            print(
                f"| {label} | {workers} | {threads} | {seconds:.1f} | "
                f"{2 * 3600 / seconds:.0f} | {load:.1f} |",
                flush=True,
            )
    print(f"\nload average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
