"""Hostile files for the bad-input tests: crafted headers, playlists, disguised pickles."""

from __future__ import annotations

import pickle
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def raw_avi(path: Path, frames: int = 3, size: int = 16) -> Path:
    """An AVI of uncompressed rgb24 frames: its frame size lives in the header alone."""
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("rawvideo", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "rgb24"
        for t in range(frames):
            image = np.full((size, size, 3), t * 20, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def declare_size(avi: Path, out: Path, width: int, height: int) -> Path:
    """A copy of `avi` whose headers (avih, the stream's BITMAPINFOHEADER) claim this size."""
    data = bytearray(avi.read_bytes())
    avih = data.find(b"avih") + 8
    struct.pack_into("<II", data, avih + 32, width, height)  # dwWidth, dwHeight
    strf = data.find(b"strf") + 8
    struct.pack_into("<ii", data, strf + 4, width, height)  # biWidth, biHeight
    out.write_bytes(bytes(data))
    return out


def truncated(path: Path, out: Path, keep: float = 0.5) -> Path:
    """The first `keep` of a file's bytes."""
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def ffconcat(path: Path, *targets: str) -> Path:
    """An ffconcat list naming other files (which the concat demuxer would open)."""
    lines = ["ffconcat version 1.0", *(f"file {t}" for t in targets)]
    path.write_text("\n".join(lines) + "\n")
    return path


def m3u8(path: Path, *targets: str) -> Path:
    """An HLS playlist whose segments are other files or URLs."""
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:10", "#EXT-X-MEDIA-SEQUENCE:0"]
    for target in targets:
        lines += ["#EXTINF:10,", target]
    path.write_text("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n")
    return path


class _Marker:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def pickle_npy(path: Path, marker: Path) -> Path:
    """A .npy file holding an object array whose unpickling would create `marker`."""
    array = np.empty(1, dtype=object)
    array[0] = _Marker(marker)
    np.save(path, array, allow_pickle=True)
    return path


def pickle_file(path: Path, marker: Path) -> Path:
    """A bare pickle (what torch.save writes, in essence) that would create `marker`."""
    path.write_bytes(pickle.dumps(_Marker(marker)))
    return path


def decode_bomb(path: Path, side: int, frames: int) -> Path:
    """One side x side key frame, then `frames - 1` copies of one empty P-frame ("no change").

    Cheap to send (each copy is a few bytes) and cheap to make (two frames are encoded, the
    second one's packet is repeated), costly to decode: every frame is side x side pixels.
    The container follows the suffix (.mkv declares no frame count, .mp4 does).
    """
    y, x = np.mgrid[0:side, 0:side]
    image = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], -1)
    frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "x264-params": "keyint=100000:scenecut=0"}
        coded = [bytes(p) for f in (frame, frame) for p in stream.encode(f)]
        coded += [bytes(p) for p in stream.encode()]
        key, empty = coded[0], coded[-1]
        for index in range(frames):
            packet = av.Packet(key if index == 0 else empty)
            packet.stream = stream
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 25)
            packet.is_keyframe = index == 0
            container.mux(packet)
    return path
