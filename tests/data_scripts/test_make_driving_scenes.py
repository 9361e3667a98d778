"""The driving-scene generator: reproducible, valid YOLO labels (boxes and polygons), visible-part convention,
rare class really rare, background frames empty, distractors concentrated in val/pool."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from data_scripts import road_render as rr
from data_scripts.make_driving_scenes import SceneConfig, generate, main
from detection.datasets import check_dataset


def small(**kw) -> SceneConfig:
    base = dict(n_train=24, n_val=8, n_pool=8, width=320, height=192, seed=3, workers=1)
    base.update(kw)
    return SceneConfig(**base)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return generate(small(), tmp_path_factory.mktemp("scenes") / "set", progress=False)


def _files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern))}


def _meta(data: Path, split: str) -> list[dict]:
    return [json.loads(x) for x in (data.parent / "meta" / f"{split}.jsonl").read_text().splitlines()]


def test_layout_and_yaml(scenes):
    out = scenes.parent
    assert scenes.is_absolute() and scenes.name == "data.yaml"
    text = scenes.read_text()
    assert yaml.safe_load(text)["path"] == str(out / "det") and "pool: images/pool" in text
    assert [line.split(": ")[1] for line in text.splitlines() if line.startswith("  ")] == rr.DEFAULT_NAMES
    assert yaml.safe_load((out / "data-seg.yaml").read_text())["path"] == str(out / "seg")
    for split, n in (("train", 24), ("val", 8), ("pool", 8)):
        det = sorted((out / "det" / "images" / split).glob("*.jpg"))
        seg = sorted((out / "seg" / "images" / split).glob("*.jpg"))
        assert len(det) == n and [p.name for p in det] == [p.name for p in seg]
        assert det[0].name == f"{split}_000000.jpg"
        assert det[0].read_bytes() == seg[0].read_bytes()
    assert json.loads((out / "config.json").read_text())["seed"] == 3


def test_same_seed_same_bytes_any_worker_count(tmp_path, scenes):
    again = generate(small(workers=2), tmp_path / "again", progress=False)  # 40 images: really in 2 processes
    for pattern in ("*.txt", "*.jpg"):
        assert _files(again.parent / "det", pattern) == _files(scenes.parent / "det", pattern)
    assert _files(again.parent / "seg", "*.txt") == _files(scenes.parent / "seg", "*.txt")
    assert _files(again.parent / "meta", "*.jsonl") == _files(scenes.parent / "meta", "*.jsonl")
    other = generate(small(seed=4, n_train=6, n_val=1, n_pool=0), tmp_path / "other", progress=False)
    mine = _files(scenes.parent / "det" / "labels" / "train", "*.txt")
    theirs = _files(other.parent / "det" / "labels" / "train", "*.txt")
    assert [theirs[k] for k in sorted(theirs)] != [mine[k] for k in sorted(theirs)]


def test_both_label_sets_pass_the_dataset_check(scenes):
    for yaml_file, boxes in ((scenes, True), (scenes.with_name("data-seg.yaml"), False)):
        check = check_dataset(yaml_file)
        assert check.errors == [], [p.message for p in check.errors]
        assert [p for p in check.warnings if p.kind != "class-absent"] == []
        train = check.splits["train"]
        assert train.images == 24 and train.total_instances > 24
        assert (train.box_files > 0, train.polygon_files > 0) == (boxes, not boxes)
        assert set(train.image_sizes) == {(320, 192)}


def test_polygons_lie_inside_their_boxes(scenes):
    out = scenes.parent
    n = 0
    for det in sorted((out / "det" / "labels").rglob("*.txt")):
        seg = out / "seg" / det.relative_to(out / "det")
        for b, s in zip(det.read_text().splitlines(), seg.read_text().splitlines(), strict=True):
            cls, x, y, w, h = map(float, b.split())
            vals = s.split()
            assert int(vals[0]) == int(cls)
            xy = np.array(vals[1:], float).reshape(-1, 2)
            assert len(xy) >= 3
            assert (xy[:, 0] >= x - w / 2 - 1e-5).all() and (xy[:, 0] <= x + w / 2 + 1e-5).all()
            assert (xy[:, 1] >= y - h / 2 - 1e-5).all() and (xy[:, 1] <= y + h / 2 + 1e-5).all()
            # the polygon spans its box: the box is the visible part's bounding box, not a loose frame
            assert np.ptp(xy[:, 0]) >= w - 2 / 320 and np.ptp(xy[:, 1]) >= h - 2 / 192
            n += 1
    assert n > 50


def test_background_frames_have_empty_labels(tmp_path):
    data = generate(small(background_share=0.5, n_val=4, n_pool=0), tmp_path / "bg", progress=False)
    meta = _meta(data, "train")
    flagged = [m["image"] for m in meta if m["background"]]
    assert 4 <= len(flagged) <= 20
    empty_by_chance = 0
    for m in meta:
        label = (data.parent / "det" / "labels" / "train" / m["image"]).with_suffix(".txt")
        assert (label.read_text() == "") == (not m["objects"])
        if m["background"]:
            assert label.read_text() == "" and (data.parent / "seg" / label.relative_to(data.parent / "det")
                                                ).read_text() == ""
        else:  # every object of a scene can end up hidden or out of frame, but rarely
            empty_by_chance += label.read_text() == ""
    assert empty_by_chance <= 2
    assert "pool" not in data.read_text()  # an empty split is left out, not written as an empty folder


def test_rare_class_is_rare_and_boosted_in_pool(tmp_path):
    cfg = small(n_train=150, n_val=2, n_pool=100, width=160, height=96, workers=2)
    data = generate(cfg, tmp_path / "rare", progress=False)
    check = check_dataset(data, decode_images=False)
    train, pool = check.splits["train"], check.splits["pool"]
    share = train.instances[rr.CYCLIST] / train.total_instances
    assert 0.015 <= share <= 0.08, share  # configured weight 0.04
    assert pool.instances[rr.CYCLIST] / pool.total_instances > 1.8 * share
    assert pool.background_share > train.background_share


def test_distractors_are_rare_in_train_and_common_in_val_and_pool(tmp_path):
    data = generate(small(n_train=60, n_val=30, n_pool=30, width=160, height=96, workers=2), tmp_path / "d",
                    progress=False)
    per_image = {s: np.mean([len(m["distractors"]) for m in _meta(data, s)]) for s in ("train", "val", "pool")}
    assert per_image["train"] < 0.4 and per_image["val"] > 0.7 and per_image["pool"] > 0.7, per_image
    kinds = {d["kind"]: d["looks_like"] for s in ("val", "pool") for m in _meta(data, s) for d in m["distractors"]}
    assert kinds.get("red_disc_board") == "stop_sign" and kinds.get("signal_like_box") == "traffic_light"
    assert "verge_box" in kinds


def test_labels_describe_the_visible_part_of_an_occluded_object():
    cam = rr.Camera.default(320, 192)
    rng = np.random.default_rng(0)
    far = rr.vehicle(cam, 0.0, 20.0, rr.CAR, (40, 40, 190), "rear", rng)
    near = rr.vehicle(cam, 1.2, 10.0, rr.TRUCK, (200, 200, 200), "rear", rng)  # a box: hides a full strip
    img = np.zeros((192, 320, 3), np.uint8)
    ids = rr.render_items(img, [far, near])
    (x1, y1, x2, y2), poly, count = rr.visible_region(ids, 1)
    fx1, fy1, fx2, fy2 = far.bbox()
    nx1 = near.bbox()[0]
    assert abs(x1 - fx1) <= 1 and x2 <= nx1 + 1 < fx2 - 5  # right side hidden: the box stops at the truck
    assert count < rr.silhouette_area(far, (192, 320))
    assert poly[:, 0].max() < x2 and poly[:, 0].min() >= x1
    assert rr.visible_region(ids, 2)[0][0] == pytest.approx(nx1, abs=1)


def test_bad_settings_are_refused_with_the_field_named(tmp_path):
    with pytest.raises(ValueError, match="n_val"):
        SceneConfig(n_val=0)
    with pytest.raises(ValueError, match="class_mix"):
        SceneConfig(class_mix=(1, 1, 1))
    with pytest.raises(ValueError, match="background_share"):
        SceneConfig(background_share=1.5)
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="choose an empty"):
        generate(small(), tmp_path, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_rerun_into_the_same_folder_replaces_the_old_set(tmp_path):
    generate(small(n_train=12), tmp_path / "a: b #s", progress=False)
    data = generate(small(n_train=5, n_pool=0), tmp_path / "a: b #s", progress=False)
    assert check_dataset(data).ok  # an awkward folder name still reads as one path
    assert len(list((data.parent / "det" / "images" / "train").glob("*.jpg"))) == 5
    assert not (data.parent / "det" / "images" / "pool").exists()


def test_cli_writes_a_set_and_reports_bad_input(tmp_path):
    import typer

    app = typer.Typer()
    app.command()(main)
    runner = CliRunner()
    res = runner.invoke(app, ["--out", str(tmp_path / "c"), "--n-train", "3", "--n-val", "2", "--n-pool", "0",
                              "--width", "160", "--height", "96", "--seed", "1", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "data.yaml").is_file() and (tmp_path / "c" / "data-seg.yaml").is_file()
    res = runner.invoke(app, ["--out", str(tmp_path / "d"), "--n-val", "0"])
    assert res.exit_code == 2 and "n_val" in res.output
    help_text = runner.invoke(app, ["--help"]).output
    for flag in ("--n-train", "--n-pool", "--width", "--seed", "--rare-share"):
        assert flag in help_text


TARGET = ("bus", "car", "motorbike", "person", "truck")
TRANSFER_MAP = {"car": "car", "truck": "truck", "bus": "bus", "pedestrian": "person", "cyclist": "motorbike",
                "motorbike": "motorbike"}


def test_class_map_writes_the_target_names_and_only_mapped_classes(tmp_path):
    data = generate(small(n_train=40, n_val=4, n_pool=0, class_map=TRANSFER_MAP, names=TARGET), tmp_path / "m",
                    progress=False)
    assert tuple(yaml.safe_load(data.read_text())["names"].values()) == TARGET
    check = check_dataset(data)
    assert check.ok, check.errors[:3]
    train = check.splits["train"]
    assert {k for k, v in train.instances.items() if v} <= set(range(len(TARGET)))
    assert train.instances[TARGET.index("bus")] > 0 and train.instances[TARGET.index("motorbike")] > 0
    made = {o["cls"] for m in _meta(data, "train") for o in m["objects"]}
    assert not made & {"traffic_light", "stop_sign"}, "unmapped classes are not generated"
    ids = {TARGET.index(TRANSFER_MAP[o["cls"]]) for m in _meta(data, "train") for o in m["objects"]}
    labelled = {int(line.split()[0]) for f in (data.parent / "det" / "labels" / "train").glob("*.txt")
                for line in f.read_text().splitlines()}
    assert labelled == ids, "label ids are the output ids of the generator classes"


def test_randomised_domain_varies_the_camera_and_stays_reproducible(tmp_path):
    a = generate(small(n_train=6, n_val=2, n_pool=0, domain="randomised"), tmp_path / "a", progress=False)
    b = generate(small(n_train=6, n_val=2, n_pool=0, domain="randomised"), tmp_path / "b", progress=False)
    d = generate(small(n_train=6, n_val=2, n_pool=0), tmp_path / "d", progress=False)
    assert _files(a.parent / "det", "*.jpg") == _files(b.parent / "det", "*.jpg"), "same seed, same bytes"
    assert _files(a.parent / "det", "*.jpg") != _files(d.parent / "det", "*.jpg")
    cams = [m["camera"] for m in _meta(a, "train")]
    heights = [c["height_m"] for c in cams]
    assert len({c["focal"] for c in cams}) == len(cams) and max(heights) - min(heights) > 0.5
    assert "look" in _meta(a, "train")[0]["effects"] and "camera" not in _meta(d, "train")[0]
    assert check_dataset(a).ok


def test_bad_class_map_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="class_map"):
        SceneConfig(class_map={"tram": "bus"})
    with pytest.raises(ValueError, match="names"):
        SceneConfig(class_map={"car": "car"}, names=("truck",))
    with pytest.raises(ValueError, match="domain"):
        SceneConfig(domain="cartoon")
