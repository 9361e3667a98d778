"""Video detection with tracking: streaming decode -> batched inference -> tracker -> annotated mp4 + tracks.

    summary = run_video(backend, "in.mp4", "out.mp4", tracks="tracks.txt", tracker="bytetrack", batch=4)

Sources: a video file (.mp4 .avi .mov .mkv .m4v .webm .mpg .mpeg), a folder of images (sorted by name, played
at `fps`), or a camera index / stream URL (rtsp://, http(s)://, udp://, tcp://). Frames are decoded on a
background thread while the previous batch runs through the model, and written as they come: memory does not
grow with video length.

Outputs:
- the annotated mp4 (mp4v), same size and fps as the input and one frame per decoded input frame;
- `tracks` in MOTChallenge result format, one line per tracked object per frame:
  `frame,id,x,y,w,h,conf,-1,-1,-1` (frame from 1, pixels, top-left corner and size);
- `jsonl` (default: the mp4 path with `.jsonl`): one JSON object per input frame:
  `{"frame": 1, "time_s": 0.0, "objects": [{"id": 3, "class": "car", "class_id": 0, "conf": 0.91,
  "xyxy": [x1, y1, x2, y2]}]}`, or `{"frame": 7, "skipped": "could not decode"}` for a frame that failed.

A frame that fails to decode is reported (warning + JSONL line) and skipped, and counted in the summary.

Three stages overlap: `read_frames` (decoding on a reader thread), `detect_frames` (inference + tracking on the
calling thread) and `AnnotatedOutputs` (drawing + encoding + writing on a writer thread, in frame order);
`run_video` composes them. `stage_seconds` gives each stage's busy time; they overlap, so they can add up to
more than the wall time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from detection.detections import Detections
from detection.video_sources import (  # noqa: F401  (re-exported: detection.video is the public entry point)
    IMAGE_EXTS,
    STREAM_PREFIXES,
    VIDEO_EXTS,
    FrameSource,
    VideoSourceError,
    open_source,
    read_video_info,
    sample_images,
)
from shared.concurrency import prefetch

TRACKERS = ("bytetrack", "botsort")


class _TrackerInput:
    """The Results-like view Ultralytics' trackers read: xywh (centre), xyxy, conf, cls; boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray):
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.c_[(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]]

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx):
        return _TrackerInput(self.xyxy[idx], self.conf[idx], self.cls[idx])


class Tracker:
    """Persistent-ID multi-object tracking over `Detections` with Ultralytics' ByteTrack or BoT-SORT."""

    def __init__(self, kind: str = "bytetrack", frame_rate: float = 30.0):
        if kind not in TRACKERS:
            raise ValueError(f"unknown tracker {kind!r}; choose one of {', '.join(TRACKERS)}")
        from shared.offline import yolo

        yolo()
        from ultralytics.trackers.track import TRACKER_MAP
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{kind}.yaml")))
        cfg.track_buffer = int(round(cfg.track_buffer * frame_rate / 30.0)) or 1  # buffer is in frames at 30 fps
        if kind == "botsort":
            cfg.with_reid = False
        self.kind = kind
        self._tracker = TRACKER_MAP[kind](args=cfg)

    def update(self, dets: Detections, frame: np.ndarray | None = None) -> Detections:
        """Detections of this frame -> the tracked ones, with `tracker_id` (boxes from the track state)."""
        out = self._tracker.update(_TrackerInput(dets.xyxy, dets.confidence, dets.class_id.astype(np.float32)),
                                   frame)
        if len(out) == 0:
            return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0), tracker_id=np.zeros(0, np.int64))
        return Detections(out[:, :4], out[:, 5], out[:, 6].astype(np.int64), tracker_id=out[:, 4].astype(np.int64))


def _colour(k: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(k * 7919 + 17)
    return tuple(int(c) for c in rng.integers(60, 255, 3))


def annotate(frame: np.ndarray, dets: Detections, names: dict[int, str]) -> np.ndarray:
    """Draw boxes and `#id class conf` labels on a copy of `frame`."""
    out = frame.copy()
    ids = dets.tracker_id if dets.tracker_id is not None else np.full(len(dets), -1)
    scale = max(0.35, min(out.shape[:2]) / 900)
    for (x1, y1, x2, y2), c, k, tid in zip(dets.xyxy.astype(int), dets.confidence, dets.class_id, ids, strict=True):
        colour = _colour(int(tid) if tid >= 0 else int(k) + 1000)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        label = f"{'#' + str(tid) + ' ' if tid >= 0 else ''}{names.get(int(k), str(k))} {c:.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (x1, max(0, y1 - th - 4)), (x1 + tw + 2, y1), colour, -1)
        cv2.putText(out, label, (x1 + 1, max(th, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def mot_lines(frame_no: int, dets: Detections) -> list[str]:
    """MOTChallenge result lines `frame,id,x,y,w,h,conf,-1,-1,-1` for the tracked detections of one frame."""
    if dets.tracker_id is None:
        return []
    return [f"{frame_no},{int(t)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{c:.4f},-1,-1,-1"
            for (x1, y1, x2, y2), c, t in zip(dets.xyxy, dets.confidence, dets.tracker_id, strict=True)]


@dataclass
class VideoSummary:
    """What one `run_video` did: frame counts, skipped frames and where the time went."""

    source: str
    output: str
    frames_in: int = 0
    frames_written: int = 0
    skipped: list[dict] = field(default_factory=list)
    width: int = 0
    height: int = 0
    fps_in: float = 0.0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    tracks: int = 0
    backend: dict = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_written / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "fps": self.fps, "skipped_frames": len(self.skipped)}


@dataclass
class StageSeconds:
    """Busy seconds of the inference, tracking and annotate + write stages (they overlap in time)."""

    inference: float = 0.0
    tracking: float = 0.0
    annotate_write: float = 0.0


class DetectedFrame(NamedTuple):
    """One input frame after inference: its image and (tracked) detections, or why it was skipped."""

    index: int  # from 0
    image: np.ndarray | None  # BGR, the source's size; None when the frame failed to decode
    detections: Detections | None  # pixels; tracker_id set when a tracker ran; None for a skipped frame
    skipped: str = ""  # the reason, when image is None


def read_frames(src: FrameSource, max_frames: int | None = None,
                depth: int = 2) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """The first `max_frames` frames of `src` (all if None), decoded on a background thread `depth` ahead.

    Stopping early, or closing this generator, stops the decoding thread and releases the capture.
    """
    frames = prefetch(src.frames(), depth)
    try:
        yield from itertools.islice(frames, None if max_frames is None else max(0, max_frames))
    finally:
        frames.close()


def detect_frames(backend, frames: Iterable[tuple[int, np.ndarray | None, str]], batch: int,
                  tracker: Tracker | None = None, seconds: StageSeconds | None = None) -> Iterator[DetectedFrame]:
    """Frames -> `DetectedFrame`s in input order: `batch` decoded images per `backend.predict`, then tracking.

    Frames that failed to decode take no place in a batch; they pass through with `skipped` set.
    """
    seconds = StageSeconds() if seconds is None else seconds
    pending: list[tuple[int, np.ndarray | None, str]] = []
    n_images = 0
    for item in frames:
        pending.append(item)
        n_images += item[1] is not None
        if n_images == batch:
            yield from _detect_batch(backend, pending, tracker, seconds)
            pending, n_images = [], 0
    if pending:
        yield from _detect_batch(backend, pending, tracker, seconds)


def _detect_batch(backend, pending: list[tuple[int, np.ndarray | None, str]], tracker: Tracker | None,
                  seconds: StageSeconds) -> Iterator[DetectedFrame]:
    t0 = time.perf_counter()
    results = iter(backend.predict([f for _, f, _ in pending if f is not None]))
    seconds.inference += time.perf_counter() - t0
    for idx, frame, reason in pending:
        if frame is None:
            yield DetectedFrame(idx, None, None, reason)
            continue
        dets = next(results)
        t1 = time.perf_counter()
        shown = tracker.update(dets, frame) if tracker else dets
        seconds.tracking += time.perf_counter() - t1
        yield DetectedFrame(idx, frame, shown)


class AnnotatedOutputs:
    """Writes the annotated mp4, the JSONL and the tracks file (optional) on a background thread, in frame order.

        with AnnotatedOutputs(out, out.with_suffix(".jsonl"), tracks, src.width, src.height, src.fps, names) as w:
            for f in detect_frames(...):
                w.write(f)
        w.check()

    Drawing, encoding and file writes overlap the next batch in the model (ONNX Runtime, PyTorch and OpenCV's
    encoder all release the GIL). An error on the writer thread is raised by the next `write` or by `check`.
    """

    def __init__(self, output: Path, jsonl: Path, tracks: Path | None, width: int, height: int, fps: float,
                 names: dict[int, str], queue_size: int = 4, seconds: StageSeconds | None = None):
        output.parent.mkdir(parents=True, exist_ok=True)
        self._video = cv2.VideoWriter(str(output), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not self._video.isOpened():
            raise VideoSourceError(f"cannot write {output}: OpenCV has no mp4v encoder here")
        self.width, self.height, self.fps, self.names = width, height, fps, names
        self.seconds = StageSeconds() if seconds is None else seconds
        self.frames_written = 0
        self.track_ids: set[int] = set()  # collected only when a tracks file is written
        self._tracks = open(tracks, "w", encoding="utf-8") if tracks else None  # noqa: SIM115
        self._jsonl = open(jsonl, "w", encoding="utf-8")  # noqa: SIM115
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._loop, name="video-writer", daemon=True)
        self._thread.start()

    def write(self, frame: DetectedFrame) -> None:
        """Queue one frame (skipped frames too, for their JSONL line); raises the writer thread's error."""
        self.check()
        self._queue.put(frame)

    def check(self) -> None:
        """Raise the error the writer thread hit, if any."""
        if self._failure:
            raise self._failure[0]

    def close(self) -> None:
        """Write what is queued, then release the video and close the files (never raises a writer error)."""
        self._queue.put(None)
        self._thread.join()
        self._video.release()
        self._jsonl.close()
        if self._tracks:
            self._tracks.close()

    def __enter__(self) -> AnnotatedOutputs:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _loop(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._failure:
                continue  # keep draining so `write` never blocks; the error is raised there
            try:
                self._write(frame)
            except BaseException as exc:  # raised in the calling thread
                self._failure.append(exc)

    def _write(self, f: DetectedFrame) -> None:
        if f.image is None:
            self._jsonl.write(json.dumps({"frame": f.index + 1, "skipped": f.skipped}) + "\n")
            return
        t = time.perf_counter()
        image, shown, names = f.image, f.detections, self.names
        if image.shape[1] != self.width or image.shape[0] != self.height:  # image folders of mixed sizes
            image = cv2.resize(image, (self.width, self.height))
        self._video.write(annotate(image, shown, names))
        self.frames_written += 1
        if self._tracks and shown.tracker_id is not None:
            self.track_ids.update(int(t) for t in shown.tracker_id)
            lines = mot_lines(f.index + 1, shown)
            if lines:
                self._tracks.write("\n".join(lines) + "\n")
        objs = [{"id": None if shown.tracker_id is None else int(shown.tracker_id[i]),
                 "class": names.get(int(shown.class_id[i]), str(int(shown.class_id[i]))),
                 "class_id": int(shown.class_id[i]), "conf": round(float(shown.confidence[i]), 4),
                 "xyxy": [round(float(v), 2) for v in shown.xyxy[i]]} for i in range(len(shown))]
        self._jsonl.write(json.dumps({"frame": f.index + 1, "time_s": round(f.index / self.fps, 4),
                                      "objects": objs}) + "\n")
        self.seconds.annotate_write += time.perf_counter() - t


def run_video(backend, source: str | int, output: str | Path, tracks: str | Path | None = None,
              jsonl: str | Path | None = None, tracker: str | None = "bytetrack", batch: int | None = None,
              fps: float = 30.0, max_frames: int | None = None, progress: bool = True, log=print) -> VideoSummary:
    """Detect (and track) every frame of `source` with `backend`; write the annotated mp4, tracks and JSONL."""
    src = open_source(source, fps)
    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise VideoSourceError(f"output must be an .mp4 file, got {output.name}")
    batch = batch or getattr(backend, "batch", 1) or 1
    depth = 2 * batch + 2  # frames queued before and after the model: enough to keep both threads busy
    trk = Tracker(tracker, src.fps) if tracker else None
    names = getattr(backend, "names", {}) or {}
    summary = VideoSummary(str(source), str(output), width=src.width, height=src.height, fps_in=src.fps,
                           backend=backend.describe() if hasattr(backend, "describe") else {})
    seconds = StageSeconds()
    outputs = AnnotatedOutputs(output, Path(jsonl) if jsonl else output.with_suffix(".jsonl"), tracks,
                               src.width, src.height, src.fps, names, depth, seconds)
    from tqdm import tqdm

    start = time.perf_counter()
    with (outputs, contextlib.closing(read_frames(src, max_frames, depth)) as frames,
          tqdm(total=src.frame_count, unit="frame", desc=Path(str(source)).name, leave=False,
               disable=not progress) as bar):
        for f in detect_frames(backend, frames, batch, trk, seconds):
            summary.frames_in += 1
            if f.image is None:
                summary.skipped.append({"frame": f.index + 1, "reason": f.skipped})
                log(f"warning: frame {f.index + 1} of {source} skipped ({f.skipped})")
            outputs.write(f)
            bar.update()
    outputs.check()
    summary.seconds = time.perf_counter() - start
    summary.stage_seconds = {k: round(v, 3) for k, v in asdict(seconds).items()}
    summary.frames_written = outputs.frames_written
    summary.tracks = len(outputs.track_ids)
    if summary.frames_written == 0:
        raise VideoSourceError(f"no frame of {source} could be decoded")
    return summary
