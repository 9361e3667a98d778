"""Augmentation presets map onto real Ultralytics hyperparameters, refuse nonsense, and preview deterministically."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from detection.augment import HYPERPARAMETERS, PRESETS, AugmentPreset, get_preset, presets_table, preview_grid
from detection.cli import app
from tests.fixtures.toy_scenes import make_toy_scenes


def _ultralytics_defaults() -> dict:
    root = Path(next(iter(importlib.util.find_spec("ultralytics").submodule_search_locations)))
    return yaml.safe_load((root / "cfg" / "default.yaml").read_text())


def test_every_preset_sets_every_hyperparameter_ultralytics_knows():
    defaults = _ultralytics_defaults()
    for preset in PRESETS.values():
        args = preset.to_ultralytics()
        assert set(args) == set(HYPERPARAMETERS)
        assert set(args) <= set(defaults), set(args) - set(defaults)
        assert args["flipud"] == 0.0, f"{preset.name} flips road scenes upside down"
        assert preset.when.strip()


def test_presets_differ_in_strength():
    none, light, road, strong = (PRESETS[n].to_ultralytics() for n in ("none", "light", "road", "road-strong"))
    assert all(v == 0 for v in none.values())
    for k in ("hsv_v", "translate", "scale", "mosaic"):
        assert light[k] <= road[k] <= strong[k], k
    assert PRESETS["road-seg"].copy_paste > 0 and road["copy_paste"] == 0


def test_bad_presets_and_overrides_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="did you mean 'road'"):
        get_preset("raod")
    with pytest.raises(ValueError, match="flipud"):
        AugmentPreset("upside-down", "never", flipud=0.5)
    with pytest.raises(ValueError, match="did you mean 'degrees'"):
        get_preset("road", {"degree": 3})
    with pytest.raises(ValueError, match="mosaic must be in"):
        get_preset("road", {"mosaic": 2})
    custom = get_preset("road", {"degrees": 7})
    assert custom.degrees == 7 and custom.hsv_v == PRESETS["road"].hsv_v and custom.name == "road+custom"


def test_presets_table_lists_each_preset_once():
    rows = presets_table()
    assert [r["preset"] for r in rows] == list(PRESETS)
    assert all("hsv_v" in r and "when" in r for r in rows)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_scenes(tmp_path_factory.mktemp("toy"), n_train=8, n_val=4, width=160, height=96, seed=1)


def test_preview_grid_is_deterministic_and_shows_the_preset(toy, tmp_path):
    a = preview_grid(toy, PRESETS["road-strong"], tmp_path / "a.png", n=4, imgsz=64, seed=3)
    b = preview_grid(toy, PRESETS["road-strong"], tmp_path / "b.png", n=4, imgsz=64, seed=3)
    c = preview_grid(toy, PRESETS["none"], tmp_path / "c.png", n=4, imgsz=64, seed=3)
    ia, ib, ic = (cv2.imread(str(p)) for p in (a, b, c))
    assert ia is not None and ia.shape[1] == 4 * (64 + 4)  # 4 tiles of 64 px with a 2 px border
    assert np.array_equal(ia, ib), "same seed must draw the same grid"
    assert ia.shape == ic.shape and not np.array_equal(ia, ic), "a strong preset must change the samples"


def test_augment_preview_cli(toy, tmp_path):
    out = tmp_path / "grid.png"
    r = CliRunner().invoke(app, ["augment-preview", "--data", str(toy), "--preset", "light", "--n", "2",
                                 "--imgsz", "64", "--augment", "degrees=4", "--out", str(out), "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert out.is_file() and "light+custom" in r.output
    r = CliRunner().invoke(app, ["augment-preview", "--data", str(toy), "--preset", "wild", "--out", str(out)])
    assert r.exit_code == 2 and "unknown augmentation preset" in r.output
