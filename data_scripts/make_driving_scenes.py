"""Synthetic dash-camera scenes in Ultralytics YOLO layout, with box and polygon labels for the same objects.

    python -m data_scripts.make_driving_scenes --out data/scenes --n-train 1000 --n-val 200 --n-pool 500 --seed 0

Writes (every image once; the segmentation tree hard-links the detection images):

    OUT/data.yaml        detection set: path OUT/det, splits train / val / pool, six names
    OUT/data-seg.yaml    segmentation set: path OUT/seg, the same images with polygon labels
    OUT/det/images/{train,val,pool}/<split>_000123.jpg     OUT/det/labels/.../<split>_000123.txt (boxes)
    OUT/seg/images/...   (hard links)                      OUT/seg/labels/... (polygons)
    OUT/meta/<split>.jsonl   per image: lighting, effects, objects (box, visibility, distance) and the
                             look-alike distractors with the class each imitates
    OUT/config.json      the SceneConfig used

Labels describe the VISIBLE part of each object: the box is the bounding box of the pixels of the object that
no nearer thing covers and that lie in the frame; the polygon is that visible part's outline. Objects less than
`min_visible` visible (occluded or cut by the frame edge) are left out of the scene, so the picture never holds
an unlabelled object bigger than a sliver.

Splits differ on purpose: `train` has few distractors and the rare class (cyclist) at its natural share; `val`
and `pool` have many distractors (red round boards, dark boxes on poles, crates on the verge); `pool` also has
more background frames and `pool_rare_boost` times more cyclists. A detector trained on train alone fires on the
distractors of val and pool: the material hard-negative mining works on.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from data_scripts import road_effects as fx
from data_scripts import road_render as rr
from data_scripts.road_backdrop import draw_backdrop
from data_scripts.road_domain import apply_look
from data_scripts.scene_sampling import (  # noqa: F401 (re-exported)
    LIGHTINGS,
    Scene,
    SceneConfig,
    place_distractor,
    place_object,
    sample_scene,
)
from shared.cli_common import SeedOpt, friendly_errors

SPLITS = ("train", "val", "pool")


# ------------------------------------------------------------------------------------------ rendering


def drop_hidden(items: list[rr.Item], shape: tuple[int, int], min_visible: float) -> list[rr.Item]:
    """`items` without the labelled ones less than `min_visible` visible (behind nearer items or off-frame)."""
    ids = rr.render_items(None, items, shape)
    labelled = [it for it in items if it.cls >= 0]
    counts = np.bincount(ids.ravel(), minlength=len(labelled) + 1)
    hidden = set()
    for k, it in enumerate(labelled, 1):
        x1, y1, x2, y2 = it.bbox()
        full = max(1.0, (x2 - x1) * (y2 - y1))  # unclipped: objects cut by the frame edge count as hidden
        clipped = rr.silhouette_area(it, shape)
        inframe = ((min(x2, shape[1]) - max(x1, 0)) * (min(y2, shape[0]) - max(y1, 0))) / full
        if clipped == 0 or counts[k] / clipped * max(0.0, inframe) < min_visible:
            hidden.add(id(it))
    return [it for it in items if id(it) not in hidden]


def render_scene(scene: Scene, rng: np.random.Generator, min_visible: float = 0.3):
    """(BGR image [H, W, 3], objects [(cls, box xyxy px, polygon [N, 2] px, visibility)], distractor boxes)."""
    cam = scene.camera
    shape = (cam.height, cam.width)
    items = drop_hidden(scene.items, shape, min_visible)
    img = draw_backdrop(cam, scene.layout, scene.scenery)
    ids = rr.render_items(img, items)
    full = {k: rr.silhouette_area(it, shape) for k, it in enumerate([i for i in items if i.cls >= 0], 1)}
    e = scene.effects
    light = fx.LIGHTING[scene.lighting]
    lamps = [lamp for it in items for lamp in it.lights]
    img = fx.apply_lighting(img, light, lamps, e["gain"])
    if e["glare"]:
        img = fx.glare(img, *e["glare_at"], radius=0.12 * cam.width, strength=0.8)
    m = fx.roll_matrix(cam.width, cam.height, e["roll"])
    img, ids = fx.roll(img, ids, e["roll"])
    if e["blur"]:
        img = fx.motion_blur(img, e["blur"], e["blur_angle"])
    if e["rain"]:
        img = fx.rain(img, rng, e["rain"])
    img = fx.sensor_noise(img, light.noise, rng)
    if "look" in e:  # domain randomisation (colour-only effects: labels unchanged)
        img = apply_look(img, e["look"])
    objects = []
    labelled = [it for it in items if it.cls >= 0]
    min_side = max(3, cam.width // 100)  # 6 px at 640: smaller slivers are not worth a label
    for k, it in enumerate(labelled, 1):
        region = rr.visible_region(ids, k)
        if region is None:
            continue
        (x1, y1, x2, y2), poly, count = region
        if x2 - x1 < min_side or y2 - y1 < min_side:
            continue
        zoom = abs(np.linalg.det(m[:, :2]))
        objects.append((it.cls, (x1, y1, x2, y2), poly, min(1.0, count / zoom / max(full[k], 1)), it.depth))
    distractors = []
    for it in items:
        if it.looks_like < 0:
            continue
        x1, y1, x2, y2 = it.bbox()
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x2, y2, 1], [x1, y2, 1]]) @ m.T
        bx1, by1 = np.clip(corners.min(0), 0, [cam.width, cam.height])
        bx2, by2 = np.clip(corners.max(0), 0, [cam.width, cam.height])
        if bx2 - bx1 >= 2 and by2 - by1 >= 2:
            distractors.append({"kind": it.kind, "looks_like": rr.NAMES[it.looks_like],
                                "box": [round(float(v), 1) for v in (bx1, by1, bx2, by2)]})
    return img, objects, distractors


def label_lines(objects, width: int, height: int, output_ids=None) -> tuple[str, str]:
    """(YOLO box label text, YOLO polygon label text) for `objects` from `render_scene`; empty for none.

    output_ids: the output class id of each generator class (SceneConfig.output_ids); None keeps the ids."""
    det, seg = [], []
    for gen_cls, (x1, y1, x2, y2), poly, _, _ in objects:
        cls = gen_cls if output_ids is None else int(output_ids[gen_cls])
        det.append(f"{cls} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                   f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
        xy = np.clip(poly / [width, height], 0, 1)
        seg.append(f"{cls} " + " ".join(f"{v:.6f}" for v in xy.ravel()))
    return "".join(x + "\n" for x in det), "".join(x + "\n" for x in seg)


def _render_one(job: tuple) -> tuple[str, int, dict, list[int]]:
    """Worker: render image `i` of `split` and write its image and both label files."""
    import cv2

    cfg, split, i, out = job
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), i])
    scene = sample_scene(cfg, split, rng)
    img, objects, distractors = render_scene(scene, rng, cfg.min_visible)
    stem = f"{split}_{i:06d}"
    out = Path(out)
    det_img = out / "det" / "images" / split / f"{stem}.jpg"
    quality = scene.effects["look"]["jpeg_quality"] if "look" in scene.effects else cfg.jpeg_quality
    if not cv2.imwrite(str(det_img), img, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"could not write {det_img}; check the disk space and permissions of {out}")
    seg_img = out / "seg" / "images" / split / f"{stem}.jpg"
    seg_img.unlink(missing_ok=True)
    try:
        os.link(det_img, seg_img)
    except OSError:  # file systems without hard links
        shutil.copyfile(det_img, seg_img)
    det, seg = label_lines(objects, cfg.width, cfg.height, cfg.output_ids())
    (out / "det" / "labels" / split / f"{stem}.txt").write_text(det)
    (out / "seg" / "labels" / split / f"{stem}.txt").write_text(seg)
    meta = {"image": f"{stem}.jpg", "background": scene.background, "lighting": scene.lighting,
            "effects": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in scene.effects.items()
                        if k != "glare_at"},
            **({"camera": {"focal": round(scene.camera.focal, 1), "height_m": round(scene.camera.cam_height, 2),
                           "horizon": round(scene.camera.horizon, 1)}} if cfg.domain != "dashcam" else {}),
            "objects": [{"cls": rr.NAMES[c], "box": [int(v) for v in box], "visibility": round(vis, 3),
                         "distance_m": round(float(d), 1)} for c, box, _, vis, d in objects],
            "distractors": distractors}
    return split, i, meta, [c for c, *_ in objects]


def _yaml(root: Path, splits: list[str], names: tuple[str, ...]) -> str:
    # a JSON string is a valid YAML scalar: folders with spaces, colons or '#' stay one path
    lines = [f"path: {json.dumps(str(root))}"] + [f"{s}: images/{s}" for s in splits] + ["names:"]
    lines += [f"  {i}: {json.dumps(n)}" if not n.isidentifier() else f"  {i}: {n}" for i, n in enumerate(names)]
    return "\n".join(lines) + "\n"


def _prepare_out(out: Path) -> None:
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise FileExistsError(f"{out} is not empty and was not written by make_driving_scenes (no config.json); "
                              "choose an empty or new --out folder")
    for sub in ("det", "seg", "meta"):
        shutil.rmtree(out / sub, ignore_errors=True)


def generate(cfg: SceneConfig, out_dir: str | Path, progress: bool = True) -> Path:
    """Render the data set described by `cfg` into `out_dir`; return the absolute path of `out_dir/data.yaml`.

    Every image has its own seed derived from (cfg.seed, split, index), so the bytes written do not depend on
    `cfg.workers`.
    """
    from tqdm import tqdm

    out = Path(out_dir).resolve()
    _prepare_out(out)
    splits = [s for s, n in cfg.split_sizes().items() if n > 0]
    for root in ("det", "seg"):
        for kind in ("images", "labels"):
            for s in splits:
                (out / root / kind / s).mkdir(parents=True, exist_ok=True)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, s, i, str(out)) for s in splits for i in range(cfg.split_sizes()[s])]
    metas: dict[str, dict[int, dict]] = {s: {} for s in splits}
    # leave=False and no bar off a terminal: the result line stays alone, CI logs get no bar frames
    bar = tqdm(total=len(jobs), desc="scenes", unit="img", leave=False, disable=None if progress else True)
    if cfg.workers > 1 and len(jobs) >= 32:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(cfg.workers) as pool:
            for split, i, meta, _ in pool.imap_unordered(_render_one, jobs, chunksize=8):
                metas[split][i] = meta
                bar.update()
    else:
        for job in jobs:
            split, i, meta, _ = _render_one(job)
            metas[split][i] = meta
            bar.update()
    bar.close()
    for s in splits:
        (out / "meta" / f"{s}.jsonl").write_text("".join(json.dumps(metas[s][i]) + "\n" for i in sorted(metas[s])))
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    (out / "data-seg.yaml").write_text(_yaml(out / "seg", splits, cfg.names))
    data = out / "data.yaml"
    data.write_text(_yaml(out / "det", splits, cfg.names))
    return data


@friendly_errors(ValueError, FileExistsError)
def main(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the data set into (created; must be empty "
                                                    "or an earlier output of this script).")],
    n_train: Annotated[int, typer.Option("--n-train", help="Training images.")] = 1000,
    n_val: Annotated[int, typer.Option("--n-val", help="Validation images (many distractors).")] = 200,
    n_pool: Annotated[int, typer.Option("--n-pool", help="Mining-pool images: many distractors, background "
                                                         "frames and rare-class objects; labelled too.")] = 500,
    width: Annotated[int, typer.Option("--width", help="Image width in pixels.")] = 640,
    height: Annotated[int, typer.Option("--height", help="Image height in pixels.")] = 384,
    seed: SeedOpt = 0,
    rare_share: Annotated[float, typer.Option("--rare-share", help="Weight of the rare class (cyclist) among "
                                                                   "object slots in train/val.")] = 0.04,
    background_share: Annotated[float, typer.Option("--background-share", help="Share of train/val images "
                                                                               "with no objects.")] = 0.08,
    distractor_rate: Annotated[float, typer.Option("--distractor-rate", help="Mean look-alike distractors per "
                                                                             "train image.")] = 0.1,
    eval_distractor_rate: Annotated[float, typer.Option("--eval-distractor-rate", help="Mean look-alike "
                                                        "distractors per val/pool image.")] = 1.5,
    workers: Annotated[int, typer.Option("--workers", help="Processes rendering in parallel.")] = 2,
    class_map: Annotated[str | None, typer.Option(
        "--class-map", help="Generator class -> output class, e.g. 'car=car,truck=truck,bus=bus,"
                            "pedestrian=person,cyclist=motorbike,motorbike=motorbike'; only mapped classes are "
                            "generated (default: the six dash-cam classes as themselves).")] = None,
    names: Annotated[str | None, typer.Option(
        "--names", help="Output classes in id order, e.g. the target data set's 'bus,car,motorbike,person,truck' "
                        "(default: the class map's targets in order).")] = None,
    domain: Annotated[str, typer.Option(
        "--domain", help="dashcam (one camera, flat shading) or randomised (camera height and lens, texture, "
                         "colour, exposure, blur, JPEG quality drawn per image: for pre-training on real targets).")
    ] = "dashcam",
) -> None:
    """Render synthetic dash-camera scenes with box and polygon labels (YOLO layout)."""

    mix = list(SceneConfig.class_mix)
    mix[rr.CYCLIST] = rare_share
    extra = {}
    if class_map:
        pairs = [item.split("=", 1) for item in class_map.split(",") if item.strip()]
        if any(len(pair) != 2 or not pair[1].strip() for pair in pairs):
            raise ValueError(f"--class-map {class_map!r}: write GENERATOR=output pairs separated by commas")
        extra["class_map"] = {k.strip(): v.strip() for k, v in pairs}
    if names:
        extra["names"] = tuple(n.strip() for n in names.split(",") if n.strip())
    cfg = SceneConfig(n_train=n_train, n_val=n_val, n_pool=n_pool, width=width, height=height, seed=seed,
                      class_mix=tuple(mix), background_share=background_share, distractor_rate=distractor_rate,
                      eval_distractor_rate=eval_distractor_rate, workers=workers, domain=domain, **extra)
    data = generate(cfg, out)
    typer.echo(f"wrote {data} and {data.with_name('data-seg.yaml')}")


if __name__ == "__main__":
    typer.run(main)
