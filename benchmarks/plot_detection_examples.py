"""The README's detection pictures: one frame of an annotated video, and a mining before/after on real images.

    python -m benchmarks.plot_detection_examples \\
        --video runs/bench-transfer/real/video/real-no-tracker.mp4 --frame 192 \\
        --base runs/bench-transfer/scratch-tuned-600/model --mined runs/bench-transfer/real/mine/round-1/model \\
        --images /data/highway/images/val --rare bus

Inputs are the outputs of `benchmarks/bench_detection_real.py` (the video written by `detection video`, the
base model and the model after one mining round) and a labelled image folder (YOLO labels beside it,
images/ -> labels/). The before/after panel draws both models on the same images with their ground truth:
true positives green, false positives red, missed objects yellow. It picks the images where the mined model
finds the most rare-class objects the base model missed (an illustration of what mining targets, not a
measurement: the measured figures over the whole split are in docs/detection-real.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def video_frame(video: Path, frame: int, out: Path, width: int = 480) -> None:
    """Frame `frame` (0-based) of `video`, resized to `width` pixels, written as JPEG."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, img = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read frame {frame} of {video}")
    rows = np.flatnonzero(img.max(axis=(1, 2)) > 16)  # drop the letterbox's black bars
    cols = np.flatnonzero(img.max(axis=(0, 2)) > 16)
    if len(rows) and len(cols):
        img = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h = round(img.shape[0] * width / img.shape[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA), [cv2.IMWRITE_JPEG_QUALITY, 85])


def mining_panel(base: Path, mined: Path, images: list[Path], rare: str, out: Path, n: int = 2,
                 imgsz: int = 256, conf: float = 0.1, tile: int = 400) -> list[dict]:
    """Rows of [before | after] for the `n` images where mining gained most rare-class hits; return records."""
    import cv2

    from detection.backends import load_backend
    from detection.detections import match_to_ground_truth
    from detection.evaluate import load_truth
    from detection.explain import draw_outcome

    models = {k: load_backend(p, backend="pytorch", imgsz=imgsz, conf=conf) for k, p in
              (("before", base), ("after", mined))}
    names = models["before"].names
    rare_id = next(k for k, v in names.items() if v == rare)
    cands = []
    for p in images:
        img = cv2.imread(str(p))
        truth = load_truth(p, (img.shape[1], img.shape[0]))
        if not (truth.class_id == rare_id).any():
            continue
        rec = {"image": p, "img": img, "truth": truth}
        for k, m in models.items():
            dets = m.predict([img])[0]
            hit = match_to_ground_truth(dets, truth, iou_threshold=0.5)
            rec[k] = dets
            rec[k + "_rare_found"] = int(((truth.class_id == rare_id) & ~hit.missed).sum())
            rec[k + "_fp"] = int((~hit.tp).sum())
        cands.append(rec)
    cands.sort(key=lambda r: (r["before_rare_found"] - r["after_rare_found"], r["after_fp"]))
    rows = []
    for r in cands[:n]:
        pair = []
        for k in ("before", "after"):
            vis, _ = draw_outcome(r["img"], r[k], r["truth"], names)
            vis = cv2.resize(vis, (tile, round(vis.shape[0] * tile / vis.shape[1])), interpolation=cv2.INTER_AREA)
            cv2.putText(vis, "before mining" if k == "before" else "after 1 mining round", (8, vis.shape[0] - 10),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
            pair.append(vis)
        rows.append(np.hstack([pair[0], np.full((pair[0].shape[0], 6, 3), 255, np.uint8), pair[1]]))
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return [{k: (str(v) if k == "image" else v) for k, v in r.items() if k not in ("img", "truth", "before", "after")}
            for r in cands[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, required=True, help="an mp4 written by `detection video`")
    ap.add_argument("--frame", type=int, default=0)
    ap.add_argument("--base", type=Path, required=True, help="the model before mining (run directory or .pt)")
    ap.add_argument("--mined", type=Path, required=True, help="the model after mining (run directory or .pt)")
    ap.add_argument("--images", type=Path, required=True, help="a labelled image folder (YOLO labels beside it)")
    ap.add_argument("--rare", default="bus", help="the rare class mining oversampled")
    ap.add_argument("--conf", type=float, default=0.1, help="boxes drawn at or above this confidence")
    ap.add_argument("--out-dir", type=Path, default=Path("docs/img"))
    args = ap.parse_args()
    video_frame(args.video, args.frame, args.out_dir / "detection_video_frame.jpg")
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for r in mining_panel(args.base, args.mined, images, args.rare, args.out_dir / "detection_mining.jpg",
                          conf=args.conf):
        print(r)
    print(f"wrote {args.out_dir / 'detection_video_frame.jpg'} and {args.out_dir / 'detection_mining.jpg'}")


if __name__ == "__main__":
    main()
