"""Structured pruning: the split surgery changes nothing, pruning removes whole channels (params and FLOPs
drop), and the pruned model still runs, fine-tunes, reloads and exports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detection.pruning import prepare_for_pruning, prune_model
from shared.offline import yolo
from tests.fixtures.deploy_assets import IMGSZ, assets


def test_split_surgery_computes_the_same_function():
    net = yolo().YOLO(str(assets()["weights"])).model.float().eval()
    x = torch.rand(1, 3, IMGSZ, IMGSZ)
    with torch.no_grad():
        before = net(x)[0]
        after = prepare_for_pruning(net)(x)[0]
    torch.testing.assert_close(before, after)


def test_pruning_removes_channels_and_the_network_still_runs():
    r = prune_model(assets()["weights"], ratio=0.3, imgsz=IMGSZ)
    assert r.params_after < 0.8 * r.params_before and r.gflops_after < 0.8 * r.gflops_before
    with torch.no_grad():
        y = r.net(torch.rand(2, 3, IMGSZ, IMGSZ))[0]
    assert y.shape[:2] == (2, 10) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="ratio"):
        prune_model(assets()["weights"], ratio=1.5)


@pytest.mark.slow
def test_pruned_model_fine_tunes_reloads_and_exports(tmp_path):
    from detection.backends import OnnxBackend
    from detection.export import ExportConfig, export_model
    from detection.pruning import count, fine_tune

    a = assets()
    r = prune_model(a["weights"], ratio=0.3, imgsz=IMGSZ)
    best = fine_tune(r.net, a["data"], epochs=1, imgsz=IMGSZ, project=tmp_path / "ft", batch=8)
    reloaded = yolo().YOLO(str(best)).model.float().eval()
    assert count(reloaded, IMGSZ)[0] == r.params_after
    out = export_model(best, tmp_path / "exp", ExportConfig(imgsz=IMGSZ, parity_images=0), log=lambda *_: 0)
    dets = OnnxBackend(out.models["fp32"]).predict([np.zeros((96, 160, 3), np.uint8)])
    assert len(dets) == 1


@pytest.mark.slow
def test_prune_command_writes_a_run_dir_that_export_accepts(tmp_path):
    import json

    from typer.testing import CliRunner

    from detection.backends import resolve_model
    from detection.cli import app

    a = assets()
    out = tmp_path / "pruned"
    r = CliRunner().invoke(app, ["prune", "-m", str(a["weights"]), "--data", str(a["data"]), "--ratio", "0.3",
                                 "--epochs", "1", "--imgsz", str(IMGSZ), "--batch", "8", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = json.loads((out / "prune.json").read_text())["rows"]
    assert [row["model"] for row in rows] == ["before", "after"]
    before, after = rows
    assert after["params"] < 0.8 * before["params"] and after["gflops"] < 0.8 * before["gflops"]
    assert all(k in after for k in ("latency_ms_torch", "map50", "map50_95"))
    assert "params" in r.output and "gflops" in r.output and str(out) in r.output
    assert resolve_model(out) == out / "weights" / "best.pt"  # manifest verified, export/bench/video take it
    r = CliRunner().invoke(app, ["prune", "-m", str(a["weights"]), "--data", str(tmp_path / "none.yaml")])
    assert r.exit_code == 2 and "does not exist" in r.output
