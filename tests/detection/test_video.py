"""`detection video`: same frame count, size and fps as the input; tracks and JSONL formats; clear errors."""

from __future__ import annotations

import json
import shutil
import threading
import time

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from detection.backends import load_backend
from detection.cli import app
from detection.video import VideoSourceError, open_source, read_frames, read_video_info, run_video
from tests.fixtures.deploy_assets import GroundTruthBackend, assets, exported
from tests.fixtures.toy_scenes import make_toy_video


def test_annotated_video_matches_input_frames_size_fps(tmp_path):
    a = assets()
    be = load_backend(exported("fp32") / "model.onnx", conf=0.01)
    s = run_video(be, a["video"], tmp_path / "out.mp4", tracks=tmp_path / "t.txt", batch=4, progress=False)
    src, out = read_video_info(a["video"]), read_video_info(tmp_path / "out.mp4")
    assert out == src and s.frames_written == src["frames"] == 24 and not s.skipped
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 24 and json.loads(lines[0])["frame"] == 1 and "objects" in json.loads(lines[0])


def test_tracks_file_is_motchallenge_format(tmp_path):
    a = assets()
    run_video(GroundTruthBackend(a["gt"]), a["video"], tmp_path / "o.mp4", tracks=tmp_path / "t.txt",
              progress=False)
    rows = [line.split(",") for line in (tmp_path / "t.txt").read_text().splitlines()]
    assert rows and all(len(r) == 10 and r[7:] == ["-1", "-1", "-1"] for r in rows)
    frames = [int(r[0]) for r in rows]
    assert min(frames) >= 1 and max(frames) <= 24 and frames == sorted(frames)
    assert all(int(r[1]) >= 1 and float(r[4]) > 0 and float(r[5]) > 0 for r in rows)
    objs = [o for line in (tmp_path / "o.jsonl").read_text().splitlines() for o in json.loads(line)["objects"]]
    assert objs and all(isinstance(o["id"], int) and o["class"] in GroundTruthBackend.names.values() for o in objs)


def test_image_folder_with_a_corrupt_image_reports_and_skips_it(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), np.full((96, 160, 3), 40 * i, np.uint8))
    (folder / "002.jpg").write_bytes(b"not a jpeg")
    warnings = []
    s = run_video(GroundTruthBackend(assets()["gt"]), folder, tmp_path / "o.mp4", fps=5, progress=False,
                  log=warnings.append)
    assert s.frames_in == 5 and s.frames_written == 4 and s.skipped == [
        {"frame": 3, "reason": "could not decode image 002.jpg"}]
    assert any("frame 3" in w for w in warnings)
    info = read_video_info(tmp_path / "o.mp4")
    assert info["frames"] == 4 and info["fps"] == pytest.approx(5)
    assert json.loads((tmp_path / "o.jsonl").read_text().splitlines()[2])["skipped"]


def test_bad_sources_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(VideoSourceError, match="corrupt"):
        open_source(tmp_path / "broken.mp4")
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(VideoSourceError, match="unsupported video file clip.gif"):
        open_source(tmp_path / "clip.gif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoSourceError, match="holds no images"):
        open_source(tmp_path / "empty")
    with pytest.raises(VideoSourceError, match="must be an .mp4"):
        run_video(GroundTruthBackend(assets()["gt"]), assets()["video"], tmp_path / "o.avi", progress=False)


def test_truncated_video_is_decoded_as_far_as_possible(tmp_path):
    src = assets()["video"]
    cut = tmp_path / "cut.mp4"
    shutil.copyfile(src, cut)
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # the index (moov) may be lost: either an error or fewer frames
    try:
        s = run_video(GroundTruthBackend(assets()["gt"]), cut, tmp_path / "o.mp4", progress=False, log=lambda *_: 0)
    except VideoSourceError as exc:
        assert "corrupt" in str(exc)
    else:
        assert s.frames_written + len(s.skipped) == s.frames_in


def test_video_cli_prints_summary_and_scores_tracks(tmp_path):
    a = assets()
    r = CliRunner().invoke(app, ["video", "-m", str(exported("fp32")), "--source", str(a["video"]), "-o",
                                 str(tmp_path / "o.mp4"), "--gt", str(a["gt"]), "--no-progress", "--conf", "0.01"])
    assert r.exit_code == 0, r.output
    assert "FPS with onnxruntime fp32" in r.output and "MOTA" in r.output and "annotated video:" in r.output
    r = CliRunner().invoke(app, ["video", "-m", str(exported("fp32")), "--source", str(tmp_path / "x.mov"),
                                 "-o", str(tmp_path / "o.mp4")])
    assert r.exit_code == 2 and "does not exist" in r.output


def _pipeline_threads(seconds: float = 1.0) -> list[str]:
    """Names of the decoder / writer threads still alive after waiting up to `seconds` for them to exit."""
    deadline = time.monotonic() + seconds
    while True:
        alive = [t.name for t in threading.enumerate() if t.name in ("prefetch", "video-writer")]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def test_stopping_at_max_frames_releases_the_capture_and_stops_the_decoder(tmp_path):
    video, _ = make_toy_video(tmp_path / "clip", frames=30, width=96, height=64, fps=10.0, objects=2, seed=3)
    src = open_source(video)
    cap = src.frames().gi_frame.f_locals["cap"]  # the capture the source's reader releases in its `finally`
    got = [idx for idx, _, _ in read_frames(src, max_frames=4, depth=2)]
    assert got == [0, 1, 2, 3]
    assert not _pipeline_threads()
    assert not cap.isOpened()


def test_run_video_with_max_frames_writes_that_many_and_leaves_no_thread(tmp_path):
    video, gt = make_toy_video(tmp_path / "clip", frames=30, width=96, height=64, fps=10.0, objects=2, seed=3)
    s = run_video(GroundTruthBackend(gt), video, tmp_path / "o.mp4", tracks=tmp_path / "t.txt", batch=2,
                  max_frames=5, progress=False)
    assert s.frames_in == s.frames_written == 5
    assert read_video_info(tmp_path / "o.mp4")["frames"] == 5
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 5
    assert not _pipeline_threads()
