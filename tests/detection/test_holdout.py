"""The development split: reproducible, disjoint from training, the report split untouched; and a data.yaml
whose relative `path:` only resolves from its own folder fails with the fix spelled out."""

from pathlib import Path

import pytest
import yaml

from detection.datasets import list_images, read_data_yaml
from detection.holdout import make_dev_split
from detection.train import TrainingInputError, check_training_data
from tests.fixtures.toy_scenes import make_toy_scenes


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_scenes(tmp_path_factory.mktemp("toy"), n_train=12, n_val=4, width=96, height=64, seed=1)


def _names(data_yaml, split):
    data, _ = read_data_yaml(data_yaml)
    return sorted(p.name for p in list_images(data.splits[split], []))


def test_dev_split_is_reproducible_disjoint_and_keeps_the_report_split(toy, tmp_path):
    a = make_dev_split(toy, tmp_path / "a", dev_fraction=0.25, seed=3)
    b = make_dev_split(toy, tmp_path / "b", dev_fraction=0.25, seed=3)
    c = make_dev_split(toy, tmp_path / "c", dev_fraction=0.25, seed=4)
    train, dev = _names(a, "train"), _names(a, "val")
    assert len(dev) == 3 and len(train) == 9 and not set(train) & set(dev)
    assert sorted(train + dev) == _names(toy, "train")
    assert _names(a, "test") == _names(toy, "val"), "the report split is the source's val split, unchanged"
    assert (train, dev) == (_names(b, "train"), _names(b, "val")), "same seed, same split"
    assert dev != _names(c, "val"), "another seed holds out other images"
    assert Path(yaml.safe_load(a.read_text())["path"]).is_absolute()
    check_training_data(a)  # usable for training as written


def test_relative_path_read_from_elsewhere_names_the_fix(toy, tmp_path, monkeypatch):
    spec = yaml.safe_load(Path(toy).read_text())
    folder = Path(spec["path"])
    rel = folder / "relative.yaml"
    rel.write_text(yaml.safe_dump({**spec, "path": "."}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrainingInputError) as err:
        check_training_data(rel)
    msg = str(err.value)
    assert "working directory" in msg and f"path: {folder}" in msg and "yaml-path-relative" not in msg.split(":")[0]
