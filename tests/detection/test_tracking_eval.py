"""MOTA/IDF1 against ground truth behave as defined: perfect tracks score 1, swaps and misses cost."""

from __future__ import annotations

import pytest

from detection.tracking_eval import evaluate_tracks, read_mot
from detection.video import run_video
from tests.fixtures.deploy_assets import GroundTruthBackend, assets


def _write(path, rows):
    path.write_text("".join(f"{f},{i},{x},{y},{w},{h},1,-1,-1,-1\n" for f, i, x, y, w, h in rows))
    return path


def test_identical_tracks_score_one(tmp_path):
    gt = _write(tmp_path / "gt.txt", [(f, 1, 10 + f, 10, 20, 20) for f in range(1, 11)])
    m = evaluate_tracks(gt, gt)
    assert m["mota"] == pytest.approx(1.0) and m["idf1"] == pytest.approx(1.0) and m["num_switches"] == 0


def test_id_switch_and_misses_are_counted(tmp_path):
    truth = [(f, 1, 10, 10, 20, 20) for f in range(1, 11)] + [(f, 2, 100, 10, 20, 20) for f in range(1, 11)]
    gt = _write(tmp_path / "gt.txt", truth)
    hyp = [(f, 1 if f <= 5 else 3, 10, 10, 20, 20) for f in range(1, 11)]  # object 1 changes id, object 2 missed
    m = evaluate_tracks(gt, _write(tmp_path / "hyp.txt", hyp))
    assert m["num_switches"] == 1 and m["num_misses"] == 10
    assert m["mota"] == pytest.approx(1 - (10 + 1) / 20) and m["idf1"] < 0.5


def test_bad_tracks_file_names_the_line(tmp_path):
    bad = tmp_path / "t.txt"
    bad.write_text("1,1,1,1,1,1\n2,x,1,1,1,1\n")
    with pytest.raises(ValueError, match="line 2"):
        read_mot(bad)
    with pytest.raises(FileNotFoundError):
        read_mot(tmp_path / "missing.txt")


def test_tracker_on_perfect_detections_keeps_identities(tmp_path):
    a = assets()
    out = tmp_path / "gt-tracked.mp4"
    run_video(GroundTruthBackend(a["gt"]), a["video"], out, tracks=tmp_path / "t.txt", batch=4, progress=False)
    m = evaluate_tracks(a["gt"], tmp_path / "t.txt")
    assert m["mota"] > 0.8 and m["idf1"] > 0.8, m
