"""A development split held out of a real training set, so settings are chosen without touching the report split.

    data = make_dev_split("/data/highway/data.yaml", "runs/highway-dev", dev_fraction=0.25, seed=0)
    # runs/highway-dev/data.yaml:  train: 75 % of the training images    (what models learn from)
    #                              val:   the other 25 %                  (choose presets, recipes, epochs here)
    #                              test:  the data set's own val split    (report once, at the end)

The images are symlinked and the labels copied into `out_dir` (so Ultralytics writes its label caches there,
never into the source data set), and the written data.yaml has an absolute `path:`. That is also how to use a
data set whose data.yaml says `path: .`: Ultralytics resolves a relative `path:` from the working directory
(then from its datasets folder), not from the yaml's folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import yaml

from detection.datasets import img2label_path, list_images, read_data_yaml

SPLIT_NAMES = {"train": "train", "val": "dev", "test": "report"}


def _materialise(images: list[Path], root: Path, split: str) -> None:
    img_dir, lab_dir = root / "images" / split, root / "labels" / split
    for d in (img_dir, lab_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    for img in images:
        link = img_dir / img.name
        try:
            os.symlink(img.resolve(), link)
        except OSError:  # file systems without symlinks
            shutil.copyfile(img, link)
        label = img2label_path(img)
        (lab_dir / f"{img.stem}.txt").write_bytes(label.read_bytes() if label.is_file() else b"")


def make_dev_split(data_yaml: str | Path, out_dir: str | Path, dev_fraction: float = 0.25, seed: int = 0,
                   report_split: str = "val") -> Path:
    """Write `out_dir/data.yaml`: train = the training images minus a `dev_fraction` share (chosen by `seed`),
    val = that held-out share, test = `report_split` of the source. Returns the written data.yaml.

    The same seed holds out the same images. Raises a ValueError naming the data.yaml when it does not
    resolve (e.g. `path: .` read from another folder) or a split is empty.
    """
    from detection.train import check_training_data

    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    source = check_training_data(data_yaml, "detect", splits=("train", report_split))
    train_images = sorted(list_images(source.splits["train"], []))
    report_images = sorted(list_images(source.splits[report_split], []))
    if len(train_images) < 4 or not report_images:
        raise ValueError(f"{source.file}: need at least 4 training images and a non-empty `{report_split}:` split, "
                         f"got {len(train_images)} and {len(report_images)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_images))
    n_dev = max(1, int(round(dev_fraction * len(train_images))))
    dev = sorted(train_images[i] for i in order[:n_dev])
    keep = sorted(train_images[i] for i in order[n_dev:])
    root = Path(out_dir).resolve()
    for split, images in (("train", keep), ("dev", dev), ("report", report_images)):
        _materialise(images, root, split)
    spec = {"path": str(root), "train": "images/train", "val": "images/dev", "test": "images/report",
            "names": dict(source.names)}
    out = root / "data.yaml"
    header = (f"# Written by detection.holdout.make_dev_split from {source.file} (seed {seed}).\n"
              f"# train: {len(keep)} training images; val: {len(dev)} held-out training images (development: "
              f"choose settings here);\n# test: the source's `{report_split}:` split ({len(report_images)} images: "
              "report once, never tune on it).\n")
    out.write_text(header + yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    data, problems = read_data_yaml(out)
    if data is None:
        raise ValueError(f"the written {out} does not read back: {problems[0] if problems else 'unknown error'}")
    return out
