import json

import pytest

from shared.runs import (
    ManifestError,
    fingerprint_data,
    load_manifest,
    new_run_dir,
    update_metrics,
    write_manifest,
)


def _make_run(tmp_path):
    run = new_run_dir(tmp_path, "model")
    (run / "weights.bin").write_bytes(b"\x00\x01weights")
    (run / "sub").mkdir()
    (run / "sub" / "booster.json").write_text('{"trees": []}')
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    m = write_manifest(run, "fraud-model", {"seed": 1}, metrics={"pr_auc": 0.5}, data=fingerprint_data(data))
    return run, m


def test_manifest_records_everything_and_verifies(tmp_path):
    run, m = _make_run(tmp_path)
    raw = json.loads((run / "manifest.json").read_text())
    assert set(raw["files"]) == {"weights.bin", "sub/booster.json"}
    assert raw["config"] == {"seed": 1} and raw["metrics"]["pr_auc"] == 0.5
    assert raw["data"]["sha256"] and raw["data"]["bytes"] == 8
    assert "torch" in raw["packages"] and "pandas" in raw["packages"]
    loaded = load_manifest(run, kind="fraud-model")
    assert loaded.files == m.files


def test_tampered_file_is_detected(tmp_path):
    run, _ = _make_run(tmp_path)
    (run / "weights.bin").write_bytes(b"\x00\x01weightz")
    with pytest.raises(ManifestError, match="weights.bin changed"):
        load_manifest(run)


def test_missing_file_and_wrong_kind(tmp_path):
    run, _ = _make_run(tmp_path)
    with pytest.raises(ManifestError, match="holds a 'fraud-model', not a 'detector'"):
        load_manifest(run, kind="detector")
    (run / "sub" / "booster.json").unlink()
    with pytest.raises(ManifestError, match="missing sub/booster.json"):
        load_manifest(run)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope")
    with pytest.raises(ManifestError, match="no manifest.json"):
        load_manifest(tmp_path)


def test_update_metrics_keeps_hashes(tmp_path):
    run, m = _make_run(tmp_path)
    update_metrics(run, {"roc_auc": 0.9})
    again = load_manifest(run)
    assert again.metrics == {"pr_auc": 0.5, "roc_auc": 0.9} and again.files == m.files


def test_run_dirs_never_collide(tmp_path):
    assert new_run_dir(tmp_path, "x") != new_run_dir(tmp_path, "x")
