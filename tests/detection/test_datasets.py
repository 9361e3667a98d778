"""The validator catches each kind of broken YOLO data and names the file and line; stats and reports add up."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from detection.dataset_report import class_rows, imbalance, split_rows, write_report
from detection.datasets import check_dataset, img2label_path, read_data_yaml

NAMES = ["car", "truck", "pedestrian"]


def _image(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)


def make_dataset(root: Path, labels: dict[str, str] | None = None, yaml_text: str | None = None) -> Path:
    """A clean 2-split data set (4 train, 2 val images, one background); `labels` overrides label files."""
    default = {
        "train/a": "0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.2\n",
        "train/b": "0 0.4 0.6 0.3 0.2\n0 0.7 0.2 0.1 0.1\n2 0.1 0.5 0.05 0.2\n",
        "train/c": "1 0.5 0.5 0.5 0.5\n",
        "train/d": "",  # background
        "val/e": "0 0.5 0.5 0.2 0.2\n",
        "val/f": "2 0.2 0.2 0.1 0.3\n",
    }
    default.update(labels or {})
    for i, (stem, text) in enumerate(default.items()):
        _image(root / "images" / f"{stem}.jpg", seed=i)
        if text is not None:
            lab = root / "labels" / f"{stem}.txt"
            lab.parent.mkdir(parents=True, exist_ok=True)
            lab.write_text(text)
    yml = root / "data.yaml"
    yml.write_text(yaml_text if yaml_text is not None else
                   f"path: {root}\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    return yml


def only(check, kind: str):
    found = [p for p in check.problems if p.kind == kind]
    assert len(found) == 1, [str(p) for p in check.problems]
    return found[0]


def test_img2label_path_matches_ultralytics_rule():
    assert img2label_path("/d/images/train/x.jpg") == Path("/d/labels/train/x.txt")
    # only the LAST /images/ is replaced; the extension after the last dot becomes .txt
    assert img2label_path("/images/set/images/a.b.png") == Path("/images/set/labels/a.b.txt")
    assert img2label_path("/d/pics/x.jpg") == Path("/d/pics/x.txt")


def test_clean_dataset_passes_with_correct_counts(tmp_path):
    check = check_dataset(make_dataset(tmp_path))
    assert check.ok, [str(p) for p in check.problems]
    assert only(check, "class-absent").message == "split `val` has no instances of truck"
    assert len(check.warnings) == 1
    train, val = check.splits["train"], check.splits["val"]
    assert (train.images, train.background, train.total_instances) == (4, 1, 6)
    assert train.instances == {0: 3, 1: 2, 2: 1}
    assert train.images_with[0] == 2
    assert train.image_sizes == {(64, 48): 4} and train.object_sizes == {"small": 6}  # < 32 px on 64x48 images
    assert (val.images, val.total_instances) == (2, 2)
    imb = imbalance(train, dict(enumerate(NAMES)))
    assert imb["max_min_ratio"] == 3.0 and imb["rarest_class"] == "pedestrian"
    assert imb["rarest_share"] == pytest.approx(1 / 6)
    assert imbalance(val, dict(enumerate(NAMES)))["absent_classes"] == ["truck"]
    rows = {r["class"]: r for r in class_rows(check)}
    assert rows["car"]["total"] == 4 and rows["car"]["images"] == 3
    assert split_rows(check)[0]["background_share"] == 0.25


@pytest.mark.parametrize(("label", "kind", "line", "words"), [
    ("0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1\n", "class-out-of-range", 2, "class id 5"),
    ("0 0.5 0.5 0.2 0.2\n-1 0.5 0.5 0.1 0.1\n", "class-out-of-range", 2, "class id -1"),
    ("1.5 0.5 0.5 0.2 0.2\n", "class-not-integer", 1, "not an integer"),
    ("0 0.5 1.2 0.2 0.2\n", "coordinate-out-of-range", 1, "1.2"),
    ("0 0.5 0.5 0.2 0.2\n0 320 200 40 30\n", "coordinate-out-of-range", 2, "divide pixel"),
    ("0 0.5 0.5 0.2\n", "label-malformed", 1, "4 value"),
    ("0 0.5 0.5 0.2 0.2 0.9\n", "label-malformed", 1, "6 values"),
    ("0 0.5 abc 0.2 0.2\n", "label-not-a-number", 1, "'abc' in column 3"),
    ("0 0.5 0.5 0 0.2\n", "box-empty", 1, "width 0"),
    ("0 0.1 0.1 0.5 0.1 0.5 0.5\n0 0.1 0.1\n", "polygon-too-few-points", 2, "at least 3"),
    ("0 0.1 0.1 0.5 0.1 0.5 0.5\n1 0.2 0.2 0.6 0.6\n", "label-mixed", 2, "at least 3 points"),
    ("0 0.1 0.1 0.5 0.1 0.5 0.5 0.7\n", "polygon-odd-coordinates", 1, "odd number"),
])
def test_each_broken_label_is_an_error_naming_file_and_line(tmp_path, label, kind, line, words):
    check = check_dataset(make_dataset(tmp_path, {"train/b": label}))
    p = only(check, kind)
    assert p.level == "error" and not check.ok
    assert p.file.endswith("labels/train/b.txt") and p.line == line
    assert words in p.message + p.fix
    assert str(p).startswith(f"{p.file}:{line}: error: ") and "fix:" in str(p)
    assert check.splits["train"].with_errors == 1  # and its objects are not counted


def test_all_problems_collected_not_just_the_first(tmp_path):
    check = check_dataset(make_dataset(tmp_path, {
        "train/a": "9 0.5 0.5 0.2 0.2\n0 2 0.5 0.2 0.2\nbroken\n",
        "val/e": "7 0.5 0.5 0.1 0.1\n"}))
    got = {(Path(p.file).name, p.line, p.kind) for p in check.errors}
    assert got == {("a.txt", 1, "class-out-of-range"), ("a.txt", 2, "coordinate-out-of-range"),
                   ("a.txt", 3, "label-malformed"), ("e.txt", 1, "class-out-of-range")}


def test_warnings_do_not_fail(tmp_path):
    check = check_dataset(make_dataset(tmp_path, {
        "train/a": "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n",  # duplicate
        "train/b": "0 0.5 0.5 0.2 1.005\n",  # within Ultralytics' 1% tolerance
        "train/c": None,  # image without label file
    }))
    assert check.ok, [str(p) for p in check.errors]
    assert only(check, "label-duplicate").line == 2
    assert only(check, "coordinate-clipped").line == 1
    assert only(check, "label-missing").file.endswith("images/train/c.jpg")
    assert check.splits["train"].background == 2 and check.splits["train"].missing_labels == 1


def test_corrupt_and_truncated_images(tmp_path):
    yml = make_dataset(tmp_path)
    (tmp_path / "images/train/b.jpg").write_bytes(b"this is not a jpeg")
    good = (tmp_path / "images/train/a.jpg").read_bytes()
    (tmp_path / "images/val/e.jpg").write_bytes(good[: len(good) // 2])  # cut in half
    check = check_dataset(yml)
    corrupt = [p for p in check.errors if p.kind == "image-corrupt"]
    assert sorted(Path(p.file).name for p in corrupt) == ["b.jpg", "e.jpg"]
    assert check.splits["train"].with_errors == 1 and check.splits["val"].with_errors == 1
    # header-only mode still finds the file that is no image at all
    fast = check_dataset(yml, decode_images=False)
    assert "b.jpg" in {Path(p.file).name for p in fast.errors if p.kind == "image-corrupt"}


def test_tiny_image_and_orphan_label(tmp_path):
    yml = make_dataset(tmp_path)
    _image(tmp_path / "images/train/tiny.png", w=8, h=8)
    (tmp_path / "labels/train/tiny.txt").write_text("")
    (tmp_path / "labels/train/gone.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    check = check_dataset(yml)
    assert only(check, "image-too-small").file.endswith("tiny.png")
    assert only(check, "label-without-image").file.endswith("labels/train/gone.txt")


@pytest.mark.parametrize(("yaml_text", "kind", "line"), [
    ("path: {root}\nval: images/val\nnames: [car, truck, pedestrian]\n", "yaml-missing-key", None),
    ("path: {root}\ntrain: images/train\nval: images/val\n", "yaml-missing-names", None),
    ("path: {root}\ntrain: images/train\nval: images/nope\nnames: [car]\n", "split-missing", 3),
    ("path: {root}\ntrain: [images/train\nval: images/val\n", "yaml-unreadable", 3),
    ("path: {root}\ntrain: images/train\nval: images/val\nnames: {{0: car, 2: truck}}\n", "yaml-bad-names", 4),
    ("path: {root}\ntrain: images/train\nval: images/val\nnc: 4\nnames: [car, truck]\n", "yaml-nc-mismatch", 5),
    ("path: {root}\ntrain: images/train\nval: images/val\nkpt_shape: [17, 3]\nnames: [person]\n",
     "yaml-unsupported-task", 4),
])
def test_broken_data_yaml(tmp_path, yaml_text, kind, line):
    make_dataset(tmp_path)
    yml = tmp_path / "bad.yaml"
    yml.write_text(yaml_text.format(root=tmp_path))
    check = check_dataset(yml)
    p = only(check, kind)
    assert p.level == "error" and p.file == str(yml) and not check.ok
    if line:
        assert p.line == line


def test_names_dict_txt_lists_extra_splits_and_overlap(tmp_path):
    make_dataset(tmp_path)
    (tmp_path / "pool.txt").write_text("\n./images/train/a.jpg\n./images/val/e.jpg\n./images/gone.jpg\n")
    yml = tmp_path / "data.yaml"
    yml.write_text(f"path: {tmp_path}\ntrain: [images/train]\nval: images/val\npool: pool.txt\n"
                   "license: MIT\nnames: {0: car, 1: truck, 2: pedestrian}\n")
    data, _ = read_data_yaml(yml)
    assert list(data.splits) == ["train", "val", "pool"] and data.names[2] == "pedestrian"
    check = check_dataset(yml)
    assert check.splits["pool"].images == 2
    missing = only(check, "listed-image-missing")
    assert missing.file.endswith("pool.txt") and missing.line == 4  # blank first line counted
    assert {Path(p.file).name for p in check.problems if p.kind == "image-in-two-splits"} == {"a.jpg", "e.jpg"}
    assert list(check_dataset(yml, splits=["val"]).splits) == ["val"]


def test_report_files_and_cli_exit_codes(tmp_path):
    yml = make_dataset(tmp_path / "ds")
    paths = write_report(check_dataset(yml), tmp_path / "rep")
    assert paths["figure"].stat().st_size > 1000
    data = json.loads(paths["json"].read_text())
    assert data["ok"] and data["splits"]["train"]["instances"] == 6
    assert "| car |" in paths["markdown"].read_text().replace("| 0 | car |", "| car |")

    from detection.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["check-data", str(yml), "--out", str(tmp_path / "o1")])
    assert res.exit_code == 0, res.output
    assert "OK:" in res.output and "pedestrian" in res.output
    (tmp_path / "ds/labels/val/f.txt").write_text("3 0.5 0.5 0.1 0.1\n")
    res = runner.invoke(app, ["check-data", str(yml), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 1
    assert "labels/val/f.txt:1: error: class id 3" in res.output and "FAILED" in res.output
    assert "f.txt:1" in (tmp_path / "o2/problems.txt").read_text()
    res = runner.invoke(app, ["check-data", str(tmp_path / "missing.yaml")])
    assert res.exit_code == 2
    res = runner.invoke(app, ["check-data", str(tmp_path / "ds"), "--out", str(tmp_path / "o3"), "--splits", "train"])
    assert res.exit_code == 0 and "train" in res.output and "\nval " not in res.output
