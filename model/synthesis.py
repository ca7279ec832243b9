"""Synthesis runs: a trained model (ABPTT or LDS) in, videos and a frame grid out, streamed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from model.config import SynthesisConfig
from model.device import resolve_device
from model.methods import load_model
from model.outputs import OutputFile, SynthesisResult, describe, write_json
from model.video_writers import open_writer, write_grid


def frame_chunks(
    path: Path, config: SynthesisConfig, seed: int, device: torch.device
) -> Iterator[np.ndarray]:
    """uint8 frames (V, L, S, S, 3), chunk after chunk, from any model file."""
    yield from load_model(path, device).frame_chunks(config, seed, device)


class SynthesisRecorder:
    """Writes every video's frames to its files and keeps the grid's frames and motion."""

    def __init__(self, out: Path, config: SynthesisConfig) -> None:
        self.config = config
        self.names = [
            f"video-{i + 1}.{fmt}" for i in range(config.num_videos) for fmt in config.formats
        ]
        self.out = out
        self.writers = [open_writer(out / name, config.fps) for name in self.names]
        count = min(10, config.frames)
        self.picks = set(np.linspace(0, config.frames - 1, count).round().astype(int).tolist())
        self.grid: list[np.ndarray] = []
        self.motion: list[float] = []
        self.done = 0
        self._previous: np.ndarray | None = None

    def add(self, frames: np.ndarray) -> None:
        """Append a chunk (V, L, S, S, 3) to every file."""
        per_video = len(self.config.formats)
        for t in range(frames.shape[1]):
            for index, writer in enumerate(self.writers):
                writer.write(frames[index // per_video, t])
            current = frames[:, t].astype(np.int16)
            if self._previous is not None:
                self.motion.append(float(np.abs(current - self._previous).mean()))
            self._previous = current
            if self.done + t in self.picks:
                self.grid.append(frames[:, t])
        self.done += frames.shape[1]

    def close(self, commit: bool) -> list[OutputFile]:
        """Publish the videos and the grid (or drop them all)."""
        for writer in self.writers:
            writer.close(commit=commit)
        if not commit:
            return []
        grid = self.out / "synthesis.png"
        write_grid(grid, np.stack(self.grid, axis=1))
        return [describe("video", self.out / name) for name in self.names] + [
            describe("grid", grid)
        ]


def synthesize_videos(
    checkpoint: Path,
    config: SynthesisConfig,
    out_dir: Path,
    *,
    seed: int = 0,
    device: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> SynthesisResult:
    """Generate `num_videos` videos of `frames` frames from a model file, streamed to disk."""
    chunks = frame_chunks(Path(checkpoint), config, seed, resolve_device(device))
    began = time.perf_counter()
    first = next(chunks)  # bad model files fail here, before any output file exists
    recorder = SynthesisRecorder(Path(out_dir), config)
    files = record_chunks(recorder, _chain(first, chunks), config.frames, on_progress)
    seconds = time.perf_counter() - began
    metrics: dict[str, object] = {
        "num_videos": config.num_videos,
        "frames": config.frames,
        "seconds": round(seconds, 3),
        "frames_per_second": config.num_videos * config.frames / max(seconds, 1e-9),
        "mean_frame_difference": float(np.mean(recorder.motion)) if recorder.motion else 0.0,
    }
    files.append(describe("metrics", write_json(Path(out_dir) / "synthesis.json", metrics)))
    return SynthesisResult(files, metrics)


def record_chunks(
    recorder: SynthesisRecorder,
    chunks: Iterable[np.ndarray],
    frames: int,
    on_progress: Callable[[int, int], None] | None,
) -> list[OutputFile]:
    """Write every chunk to the recorder, reporting progress; its files, or none on failure."""
    try:
        for chunk in chunks:
            recorder.add(chunk)
            if on_progress is not None:
                on_progress(recorder.done, frames)
    except BaseException:
        recorder.close(commit=False)
        raise
    return recorder.close(commit=True)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """The first chunk, then the others."""
    yield first
    yield from rest
