"""KITTI, Pascal VOC and COCO converters on small files written in each exact format; output passes check-data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from detection.coco import convert_coco, merge_parts, rle_counts, rle_to_mask
from detection.converters import ConversionError, assign_splits, convert_kitti, convert_voc
from detection.datasets import check_dataset


def _image(path: Path, w: int, h: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _labels(out: Path, split: str, stem: str) -> list[list[float]]:
    text = (out / "labels" / split / f"{stem}.txt").read_text()
    return [[float(v) for v in line.split()] for line in text.splitlines()]


def _split_of(out: Path, stem: str) -> str:
    return next(p.parent.name for p in (out / "labels").rglob(f"{stem}.txt"))


def _assert_valid(report) -> None:
    check = check_dataset(report.data_yaml)
    assert check.ok, [str(p) for p in check.errors]
    # tiny sets lack some classes in some splits; nothing else may be even suspicious
    odd = [str(p) for p in check.warnings if p.kind not in {"image-in-two-splits", "class-absent"}]
    assert not odd, odd


# ------------------------------------------------------------------------------------------------- KITTI

# type truncated occluded alpha | left top right bottom | height width length | x y z | rotation_y
KITTI_000000 = """\
Car 0.00 0 -1.58 100.00 20.00 200.00 80.00 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59
Van 0.00 1 1.85 10.50 30.25 60.75 90.00 2.20 1.90 4.80 -4.10 1.60 18.20 1.63
Pedestrian 0.00 0 -0.20 300.00 10.00 320.00 70.00 1.72 0.50 0.80 2.10 1.60 12.30 -0.05
DontCare -1 -1 -10 350.00 40.00 390.00 60.00 -1 -1 -1 -1000 -1000 -1000 -10
Tram 0.00 0 -1.60 200.00 30.00 260.00 70.00 3.40 2.60 15.00 -3.00 1.80 40.00 -1.66
"""
KITTI_000001 = """\
Truck 0.37 0 -1.20 350.00 10.00 420.00 100.00 3.50 2.50 9.00 5.00 1.70 20.00 -0.95
Person_sitting 0.00 2 0.10 50.00 60.00 70.00 90.00 1.00 0.60 0.70 -3.00 1.60 9.00 -0.20
Cyclist 0.00 0 1.00 120.00 40.00 150.00 110.00 1.70 0.60 1.80 -1.00 1.70 15.00 0.90
Misc 0.00 0 0.00 0.00 0.00 10.00 10.00 1.0 1.0 1.0 0.0 0.0 5.0 0.0
"""


@pytest.fixture
def kitti(tmp_path):
    root = tmp_path / "kitti/training"
    for i in range(6):
        _image(root / "image_2" / f"{i:06d}.png", 400, 120, seed=i)
    (root / "label_2").mkdir(parents=True)
    (root / "label_2/000000.txt").write_text(KITTI_000000)
    (root / "label_2/000001.txt").write_text(KITTI_000001)
    for i in range(2, 5):
        (root / "label_2" / f"{i:06d}.txt").write_text("DontCare -1 -1 -10 1 1 20 20 -1 -1 -1 -1000 -1000 -1000 -10\n")
    # 000005 has no label file (e.g. a testing image): skipped, not background
    return root


def test_kitti_boxes_class_map_and_counts(kitti, tmp_path):
    out = tmp_path / "out"
    rep = convert_kitti(kitti / "image_2", kitti / "label_2", out, split="auto", val_fraction=0.4, seed=1)
    assert rep.names == ["car", "truck", "pedestrian", "cyclist"]
    assert rep.unknown == {"Tram": 1, "Misc": 1}  # reported, not silently dropped
    assert rep.dropped["DontCare"] == 4 and rep.dropped["image without label file"] == 1
    assert rep.instances == {"car": 2, "pedestrian": 2, "truck": 1, "cyclist": 1}
    assert sum(rep.images.values()) == 5 and rep.images["val"] == 2 and rep.background == 3
    assert "UNKNOWN classes" in rep.summary() and "Tram 1" in rep.summary()

    car, van, ped = _labels(out, _split_of(out, "000000"), "000000")
    assert car == pytest.approx([0, 150 / 400, 50 / 120, 100 / 400, 60 / 120], abs=1e-6)
    assert van[0] == 0 and ped[0] == 2
    truck = _labels(out, _split_of(out, "000001"), "000001")[0]
    assert truck == pytest.approx([1, 375 / 400, 55 / 120, 50 / 400, 90 / 120], abs=1e-6)  # clipped at x=400
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == str(out.resolve()) and data["train"] == "images/train" and data["val"] == "images/val"
    _assert_valid(rep)


def test_kitti_custom_map_names_and_bad_lines(kitti, tmp_path):
    (kitti / "label_2/000002.txt").write_text("Car 0 0 0 1 2 3\nCar 0.00 0 0 a b c d 1 1 1 1 1 1 1\n")
    names = ["car", "truck", "pedestrian", "cyclist", "traffic_light", "stop_sign"]
    rep = convert_kitti(kitti / "image_2", kitti / "label_2", tmp_path / "o", class_map={"Tram": "car", "Misc": None},
                        names=names, split="train")
    assert rep.names == names and not rep.unknown
    assert rep.instances["car"] == 3 and rep.dropped["class Misc (dropped by the class map)"] == 1
    assert rep.dropped["malformed KITTI line"] == 2
    assert any("000002.txt:1: 7 fields" in n for n in rep.notes)
    assert any("000002.txt:2:" in n for n in rep.notes)


# --------------------------------------------------------------------------------------------- Pascal VOC

VOC_XML = """<annotation>
\t<folder>VOC2012</folder>
\t<filename>{name}.jpg</filename>
\t<source><database>The VOC2007 Database</database></source>
\t<size><width>{w}</width><height>{h}</height><depth>3</depth></size>
\t<segmented>0</segmented>
{objects}</annotation>
"""
VOC_OBJ = """\t<object>
\t\t<name>{cls}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}</difficult>
\t\t<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox>
\t</object>
"""


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOC2012"
    objects = {
        "2008_000001": [("car", 0, (101, 21, 200, 80)), ("person", 0, (1, 1, 400, 120)), ("bus", 1, (5, 5, 50, 50))],
        "2008_000002": [("person", 0, (300, 50, 330, 110)), ("bicycle", 0, (290, 70, 340, 118))],
        "2008_000003": [],
    }
    for i, (name, objs) in enumerate(objects.items()):
        _image(root / "JPEGImages" / f"{name}.jpg", 400, 120, seed=i)
        xml = VOC_XML.format(name=name, w=400, h=120, objects="".join(
            VOC_OBJ.format(cls=c, difficult=d, b=b) for c, d, b in objs))
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{name}.xml").write_text(xml)
    return root


def test_voc_boxes_difficult_and_one_based_pixels(voc, tmp_path):
    out = tmp_path / "out"
    rep = convert_voc(voc / "JPEGImages", voc / "Annotations", out, split="train")
    assert rep.names == ["bicycle", "bus", "car", "person"]  # sorted names found
    assert rep.dropped == {"difficult": 1} and rep.background == 1
    car, person = _labels(out, "train", "2008_000001")
    assert car == pytest.approx([2, 150 / 400, 50 / 120, 100 / 400, 60 / 120], abs=1e-6)
    assert person == pytest.approx([3, 0.5, 0.5, 1.0, 1.0], abs=1e-6)  # xmin=1..xmax=W is the whole image
    assert _labels(out, "train", "2008_000003") == []
    # train only: the data set is valid once val is added from another annotation set
    rep2 = convert_voc(voc / "JPEGImages", voc / "Annotations", out, split="val", keep_difficult=True,
                       files=["2008_000001"])
    assert rep2.images == {"val": 1} and rep2.instances["bus"] == 1
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    _assert_valid(rep2)


def test_voc_class_map_names_and_unknown(voc, tmp_path):
    rep = convert_voc(voc / "JPEGImages", voc / "Annotations", tmp_path / "o",
                      class_map={"person": "pedestrian", "bicycle": "cyclist"}, names=["car", "pedestrian", "cyclist"])
    assert rep.names == ["car", "pedestrian", "cyclist"]
    assert rep.unknown == {} and rep.dropped["difficult"] == 1  # the only bus is difficult
    rep = convert_voc(voc / "JPEGImages", voc / "Annotations", tmp_path / "o2", names=["car"], keep_difficult=True)
    assert rep.unknown == {"person": 2, "bus": 1, "bicycle": 1}
    _assert_valid(rep)


def test_voc_bad_xml_names_the_file(voc, tmp_path):
    (voc / "Annotations/broken.xml").write_text("<annotation><object></annotation>")
    with pytest.raises(ConversionError, match=r"broken\.xml:1: not valid XML"):
        convert_voc(voc / "JPEGImages", voc / "Annotations", tmp_path / "o")


# ------------------------------------------------------------------------------------------------- COCO


def rle_string(counts: list[int]) -> str:
    """COCO's compressed RLE string, transcribed from pycocotools' rleToString (maskApi.c)."""
    s = []
    for i, cnt in enumerate(counts):
        x = cnt - counts[i - 2] if i > 2 else cnt
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            s.append(chr(c + 48))
    return "".join(s)


def rle_of(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a mask (column-major, starting with a run of zeros)."""
    flat = mask.T.reshape(-1)
    counts, value, run = [], 0, 0
    for v in flat:
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    return counts + [run]


@pytest.mark.parametrize(("counts", "text"), [
    ([0, 6, 1, 3], "061M"), ([0, 6, 1], "061"), ([0, 6, 1, 1], "061K"), ([0, 6, 1, 5], "061O"),
    ([0, 6, 1, 6], "0610"), ([0, 1, 1, 2, 1, 3, 1, 4, 1], "011101010"), ([0, 1024], "0PP1"),
])
def test_rle_string_known_values(counts, text):
    # pairs as pycocotools' rleToString writes them (differences to the count two back, 5 bits per char)
    assert rle_counts(text) == counts
    assert rle_string(counts) == text


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    mask = (rng.random((17, 23)) > 0.6).astype(np.uint8)
    counts = rle_of(mask)
    assert rle_counts(rle_string(counts)) == counts
    assert np.array_equal(rle_to_mask({"size": [17, 23], "counts": rle_string(counts)}), mask)
    assert np.array_equal(rle_to_mask({"size": [17, 23], "counts": counts}), mask)


def test_merge_parts_covers_the_union():
    import cv2

    a = np.array([[2, 2], [10, 2], [10, 10], [2, 10]], dtype=float)
    b = np.array([[20, 4], [30, 4], [30, 12], [20, 12]], dtype=float)
    merged = merge_parts([a, b])
    canvas = np.zeros((20, 40), np.uint8)
    cv2.fillPoly(canvas, [merged.round().astype(np.int32)], 1)
    expected = np.zeros_like(canvas)
    cv2.fillPoly(expected, [a.astype(np.int32)], 1)
    cv2.fillPoly(expected, [b.astype(np.int32)], 1)
    assert abs(int(canvas.sum()) - int(expected.sum())) <= 12  # only the 1-px bridge line differs


@pytest.fixture
def coco(tmp_path):
    root = tmp_path / "coco"
    for i, name in enumerate(["000000000139.jpg", "000000000285.jpg", "000000000632.jpg"]):
        _image(root / "val2017" / name, 200, 100, seed=i)
    square = np.zeros((100, 200), np.uint8)
    square[40:60, 150:180] = 1
    crowd = np.zeros((100, 200), np.uint8)
    crowd[0:30, 0:50] = 1
    ann = {
        "info": {"description": "test"}, "licenses": [],
        "images": [{"id": 139, "file_name": "000000000139.jpg", "width": 200, "height": 100},
                   {"id": 285, "file_name": "000000000285.jpg", "width": 200, "height": 100},
                   {"id": 632, "file_name": "000000000632.jpg", "width": 200, "height": 100},
                   {"id": 999, "file_name": "000000000999.jpg", "width": 200, "height": 100}],
        "categories": [{"supercategory": "vehicle", "id": 3, "name": "car"},
                       {"supercategory": "person", "id": 1, "name": "person"},
                       {"supercategory": "outdoor", "id": 13, "name": "stop sign"}],
        "annotations": [
            {"id": 1, "image_id": 139, "category_id": 3, "iscrowd": 0, "area": 800.0, "bbox": [20, 10, 40, 20],
             "segmentation": [[20, 10, 60, 10, 60, 30, 20, 30]]},
            {"id": 2, "image_id": 139, "category_id": 1, "iscrowd": 0, "area": 300.0, "bbox": [100, 20, 40, 50],
             "segmentation": [[100, 20, 110, 20, 110, 40, 100, 40], [120, 50, 140, 50, 140, 70, 120, 70]]},
            {"id": 3, "image_id": 285, "category_id": 13, "iscrowd": 0, "area": 600.0, "bbox": [150, 40, 30, 20],
             "segmentation": {"size": [100, 200], "counts": rle_string(rle_of(square))}},
            {"id": 4, "image_id": 285, "category_id": 1, "iscrowd": 1, "area": 1500.0, "bbox": [0, 0, 50, 30],
             "segmentation": {"size": [100, 200], "counts": rle_of(crowd)}},
            {"id": 5, "image_id": 285, "category_id": 3, "iscrowd": 0, "area": 100.0, "bbox": [190, 90, 30, 30],
             "segmentation": [[190, 90, 200, 90, 200, 100]]},
        ],
    }
    (root / "annotations").mkdir()
    (root / "annotations/instances_val2017.json").write_text(json.dumps(ann))
    return root


def test_coco_boxes(coco, tmp_path):
    out = tmp_path / "out"
    rep = convert_coco(coco / "val2017", coco / "annotations/instances_val2017.json", out, split="auto",
                       val_fraction=0.34, seed=0)
    assert rep.names == ["person", "car", "stop sign"]  # category id order 1, 3, 13 -> 0, 1, 2
    assert rep.dropped["iscrowd (crowd region)"] == 1 and rep.dropped["image file missing"] == 1
    assert rep.instances == {"car": 2, "person": 1, "stop sign": 1} and rep.background == 1
    car, person = _labels(out, _split_of(out, "000000000139"), "000000000139")
    assert car == pytest.approx([1, 40 / 200, 20 / 100, 40 / 200, 20 / 100], abs=1e-6)
    clipped = _labels(out, _split_of(out, "000000000285"), "000000000285")[1]
    assert clipped == pytest.approx([1, 195 / 200, 95 / 100, 10 / 200, 10 / 100], abs=1e-6)
    _assert_valid(rep)


def test_coco_polygons_rle_and_multipart(coco, tmp_path):
    out = tmp_path / "seg"
    rep = convert_coco(coco / "val2017", coco / "annotations/instances_val2017.json", out, segments=True,
                       class_map={"stop sign": "stop_sign", "person": "pedestrian"}, split="train")
    assert rep.names == ["pedestrian", "car", "stop_sign"]
    assert rep.converted == {"RLE mask traced to a polygon": 1, "multi-part outline joined into one polygon": 1}
    assert rep.dropped["iscrowd (crowd region)"] == 1
    car, person = _labels(out, "train", "000000000139")
    assert car == pytest.approx([1, 0.1, 0.1, 0.3, 0.1, 0.3, 0.3, 0.1, 0.3], abs=1e-6)
    assert len(person) - 1 == 2 * (4 + 1 + 4 + 1)  # both squares plus the two bridge points
    stop = np.array(_labels(out, "train", "000000000285")[0][1:]).reshape(-1, 2) * [200, 100]
    assert stop.min(0) == pytest.approx([150, 40], abs=1) and stop.max(0) == pytest.approx([179, 59], abs=1)
    (out / "data.yaml").write_text((out / "data.yaml").read_text() + "val: images/train\n")
    _assert_valid(rep)


def test_assign_splits_is_seeded_and_keeps_both_splits():
    keys = [f"k{i}" for i in range(10)]
    a = assign_splits(keys, "auto", 0.2, seed=3)
    assert a == assign_splits(list(reversed(keys)), "auto", 0.2, seed=3)
    assert sorted(a.values()).count("val") == 2
    assert set(assign_splits(["a", "b"], "auto", 0.01, 0).values()) == {"train", "val"}
    assert set(assign_splits(keys, "pool", 0.2, 0).values()) == {"pool"}


def test_convert_cli(kitti, coco, tmp_path):
    from detection.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["convert", "--from", "kitti", "--images", str(kitti / "image_2"),
                              "--labels", str(kitti / "label_2"), "--out", str(tmp_path / "k"),
                              "--class-map", "Tram=car,Misc="])
    assert res.exit_code == 0, res.output
    assert "instances: car 3" in res.output and "OK:" in res.output and "UNKNOWN" not in res.output
    res = runner.invoke(app, ["convert", "--from", "coco", "--images", str(coco / "val2017"),
                              "--labels", str(coco / "annotations/instances_val2017.json"), "--out",
                              str(tmp_path / "c"), "--split", "train"])
    assert res.exit_code == 0 and "no val split yet" in res.output
    res = runner.invoke(app, ["convert", "--from", "yolo", "--images", "x", "--labels", "y", "--out", "z"])
    assert res.exit_code == 2 and "kitti, voc or coco" in res.output


def test_symlinked_images_and_conflicting_names(kitti, tmp_path):
    out = tmp_path / "links"
    rep = convert_kitti(kitti / "image_2", kitti / "label_2", out, images="symlink")
    assert all(p.is_symlink() for p in (out / "images").rglob("*.png"))
    _assert_valid(rep)
    with pytest.raises(ConversionError, match="already lists classes"):
        convert_kitti(kitti / "image_2", kitti / "label_2", out, names=["cyclist", "car"], split="test")
