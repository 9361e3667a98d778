"""Frame sources for `detection.video`: open a video file, an image folder, a camera index or a stream URL.

    src = open_source("in.mp4")          # FrameSource: name, width, height, fps, frame_count, frames()
    for index, image, reason in src.frames(): ...

A frame that fails to decode is yielded as (index, None, reason). `sample_images` takes a few images from a
data.yaml, an image folder or a video; `read_video_info` counts a video file's frames by decoding them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class VideoSourceError(ValueError):
    """A source that cannot be read: missing, corrupt, or of an unsupported kind."""


@dataclass
class FrameSource:
    """An opened source: size, fps, declared frame count (None for streams) and a frame iterator.

    `frames()` yields (index from 0, BGR image or None when that frame failed to decode, reason).
    """

    name: str
    width: int
    height: int
    fps: float
    frame_count: int | None
    _iter: Iterator = field(repr=False, default=None)

    def frames(self) -> Iterator[tuple[int, np.ndarray | None, str]]:
        return self._iter


def _video_frames(cap, declared: int | None, max_failures: int = 25):
    """Frames of an opened cv2.VideoCapture; a failed read before the declared end is a skipped frame."""
    index, failures = 0, 0
    try:
        while True:
            ok, frame = cap.read()
            if ok and frame is not None:
                failures = 0
                yield index, frame, ""
                index += 1
                continue
            if declared is None or index >= declared or failures >= max_failures:
                return
            failures += 1
            yield index, None, "could not decode"
            index += 1
    finally:
        cap.release()


def _image_frames(files: list[Path]):
    for i, f in enumerate(files):
        img = cv2.imread(str(f))
        yield i, img, "" if img is not None else f"could not decode image {f.name}"


def open_source(source: str | int, fps: float = 30.0) -> FrameSource:
    """Open a video file, an image folder, a camera index or a stream URL; clear errors when impossible."""
    text = str(source)
    if text.isdigit() or text.lower().startswith(STREAM_PREFIXES):
        cap = cv2.VideoCapture(int(text) if text.isdigit() else text)
        if not cap.isOpened():
            raise VideoSourceError(f"cannot open stream {text}: check the URL / camera index and the network")
        rate = cap.get(cv2.CAP_PROP_FPS) or fps
        return FrameSource(text, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                           rate if 0 < rate < 1000 else fps, None, _video_frames(cap, None))
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"video source {path} does not exist; pass a video file, an image folder or a URL")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise VideoSourceError(f"image folder {path} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
        first = next((img for f in files[:10] if (img := cv2.imread(str(f))) is not None), None)
        if first is None:
            raise VideoSourceError(f"none of the first images in {path} can be decoded")
        return FrameSource(str(path), first.shape[1], first.shape[0], fps, len(files), _image_frames(files))
    if path.suffix.lower() not in VIDEO_EXTS:
        raise VideoSourceError(f"unsupported video file {path.name}: expected one of {', '.join(sorted(VIDEO_EXTS))}, "
                               "an image folder or a stream URL")
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok or first is None:
        cap.release()
        raise VideoSourceError(f"cannot decode {path}: the file is corrupt, empty or in a codec OpenCV's FFmpeg "
                               "cannot read (re-encode it, e.g. ffmpeg -i in -c:v libx264 out.mp4)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    rate = cap.get(cv2.CAP_PROP_FPS)
    return FrameSource(str(path), first.shape[1], first.shape[0], rate if 0 < rate < 1000 else fps, declared,
                       _video_frames(cap, declared))


def sample_images(source: str | Path, n: int, seed: int = 0) -> list[np.ndarray]:
    """Up to `n` BGR images from a data.yaml (its val split), an image folder or a video (first n frames)."""
    source = Path(source)
    if source.suffix in (".yaml", ".yml"):
        from detection.parity import load_split

        return load_split(source, "val", n, seed)[1]
    frames = []
    for _, frame, _ in open_source(str(source)).frames():
        if frame is not None:
            frames.append(frame)
        if len(frames) >= n:
            break
    return frames


def read_video_info(path: str | Path) -> dict:
    """Frame count (by decoding every frame), width, height and fps of a video file."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoSourceError(f"cannot open {path}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    n, w, h = 0, 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n += 1
        h, w = frame.shape[:2]
    cap.release()
    return {"frames": n, "width": w, "height": h, "fps": fps}
