"""The driving video: frame count/size/fps as configured, MOTChallenge ground truth that a tracker evaluation
reads, ids that persist while objects move smoothly, boxes inside the frame, objects entering and leaving."""

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from data_scripts.make_driving_video import VideoConfig, generate, main

W, H, FRAMES, FPS = 320, 192, 90, 10.0


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> tuple[Path, Path]:
    cfg = VideoConfig(frames=FRAMES, width=W, height=H, fps=FPS, seed=5, traffic=1.5)
    return generate(cfg, tmp_path_factory.mktemp("video"), progress=False)


def _rows(gt: Path) -> np.ndarray:
    return np.array([[float(v) for v in line.split(",")] for line in gt.read_text().splitlines()])


def test_frame_count_size_and_fps(video):
    path, _ = video
    assert path.name == "video.mp4"
    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
        n = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            assert frame.shape == (H, W, 3)
            n += 1
    finally:
        cap.release()
    assert n == FRAMES


def test_gt_rows_follow_the_motchallenge_layout(video):
    _, gt = video
    rows = _rows(gt)
    assert rows.shape[1] == 9 and len(rows) > FRAMES  # several objects per frame
    frame, tid, x, y, w, h, conf, cls, vis = rows.T
    assert frame.min() >= 1 and frame.max() <= FRAMES and set(np.unique(frame)) == set(range(1, FRAMES + 1))
    assert (conf == 1).all() and set(np.unique(cls)) <= set(range(6)) and len(np.unique(cls)) >= 3
    assert ((vis > 0) & (vis <= 1)).all() and (vis < 0.9).any()  # some objects are partly hidden
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= W).all() and (y + h <= H).all()
    assert (w >= 2).all() and (h >= 2).all()
    pairs = list(zip(frame.astype(int), tid.astype(int), strict=True))
    assert len(set(pairs)) == len(pairs)  # one row per object per frame
    assert pairs == sorted(pairs)


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0, min(ax2, bx2) - max(a[0], b[0])), max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def test_ids_persist_and_move_smoothly(video):
    _, gt = video
    tracks = defaultdict(list)
    for f, tid, x, y, w, h, _, cls, _ in _rows(gt):
        tracks[int(tid)].append((int(f), (x, y, w, h), int(cls)))
    lengths = [len(t) for t in tracks.values()]
    assert np.median(lengths) >= 10 and max(lengths) >= FRAMES // 2
    ious = []
    for t in tracks.values():
        assert len({c for _, _, c in t}) == 1  # an id keeps its class
        for (f0, b0, _), (f1, b1, _) in zip(t, t[1:], strict=False):
            if f1 == f0 + 1:
                ious.append(_iou(b0, b1))
    assert np.median(ious) > 0.7 and np.mean(np.array(ious) > 0.3) > 0.95


def test_objects_enter_and_leave(video):
    _, gt = video
    rows = _rows(gt)
    first = {int(t): rows[rows[:, 1] == t, 0].min() for t in np.unique(rows[:, 1])}
    last = {int(t): rows[rows[:, 1] == t, 0].max() for t in np.unique(rows[:, 1])}
    assert any(f > 1 for f in first.values()) and any(f < FRAMES for f in last.values())


def test_gt_reads_as_perfect_tracks_with_the_project_evaluator(video):
    from detection.tracking_eval import evaluate_tracks

    _, gt = video
    m = evaluate_tracks(gt, gt)
    assert m["mota"] == pytest.approx(1.0) and m["idf1"] == pytest.approx(1.0)


def test_same_seed_same_video_and_gt(tmp_path, video):
    cfg = VideoConfig(frames=20, width=W, height=H, fps=FPS, seed=5, traffic=1.5)
    a = generate(cfg, tmp_path / "a", progress=False)
    b = generate(cfg, tmp_path / "b", progress=False)
    assert a[1].read_bytes() == b[1].read_bytes()
    first20 = [line for line in video[1].read_text().splitlines() if int(line.split(",")[0]) <= 20]
    assert a[1].read_text().splitlines() == first20  # the length does not change the start
    c = generate(VideoConfig(frames=20, width=W, height=H, fps=FPS, seed=6), tmp_path / "c", progress=False)
    assert c[1].read_bytes() != a[1].read_bytes()


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="even"):
        VideoConfig(width=321)
    with pytest.raises(ValueError, match="lighting"):
        VideoConfig(lighting="noon")
    with pytest.raises(ValueError, match="unknown spawn rate"):
        VideoConfig(rates={"tanks": 1.0})


def test_cli(tmp_path):
    import typer

    app = typer.Typer()
    app.command()(main)
    runner = CliRunner()
    res = runner.invoke(app, ["--out", str(tmp_path), "--frames", "5", "--width", "160", "--height", "96",
                              "--seed", "2", "--lighting", "night"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "video.mp4").stat().st_size > 0 and (tmp_path / "gt.txt").is_file()
    res = runner.invoke(app, ["--out", str(tmp_path / "x"), "--lighting", "noon"])
    assert res.exit_code == 2 and "lighting" in res.output
    assert "--frames" in runner.invoke(app, ["--help"]).output
