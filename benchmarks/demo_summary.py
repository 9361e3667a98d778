"""The end of `make demo`: read what every stage wrote under the demo folder, print the headline figures and
write `summary.md` linking every report and figure.

    python -m benchmarks.demo_summary --dir runs/demo --seed 0

Only files are read (manifests, metrics.json, scored CSVs, tracks), so the summary shows exactly what the
commands measured. A stage whose output is missing is reported as missing, never filled in.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fraud.serve.drift import drift_warnings

NOTE = ("Demo-sized and undertrained on purpose (a few minutes of CPU): these figures show that every stage runs "
        "end to end on generated data, not how good the models get. Measured figures come from benchmarks/ "
        "(see the README's results table).")


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def fraud_lines(root: Path) -> list[str]:
    """Ablation headline, the trained model's test figures, and what scoring did (rows, flags, rejects, drift)."""
    import pandas as pd

    out = []
    ablation = _json(root / "ablation" / "metrics.json")
    if ablation:
        v = ablation["verdict"]
        out.append(f"ablation (test period): PR-AUC full stack {v['full_pr_auc']:.3f} vs XGBoost on raw features "
                   f"{v['xgb_raw_pr_auc']:.3f} vs the strongest simple baseline {v['xgb_labels_pr_auc']:.3f}")
    model = _json(root / "model" / "manifest.json")
    if model:
        t = model["metrics"]["test"]
        out.append(f"trained model (test period, {t['rows']:,} rows, {t['frauds']:,} frauds): PR-AUC "
                   f"{t['pr_auc']:.3f}, recall {t['recall_at_1pct_fpr']:.3f} at 1% FPR")
    scored = root / "scoring" / "scored.csv"
    if scored.is_file():
        s = pd.read_csv(scored, usecols=["flag"])
        rejects = root / "scoring" / "scored.rejects.csv"
        n_rej = len(pd.read_csv(rejects)) if rejects.is_file() and rejects.stat().st_size else 0
        drift = _json(root / "scoring" / "scored.drift.json") or {}
        flagged = int(s["flag"].astype(str).str.lower().eq("true").sum())
        warnings = [w for w in drift_warnings(drift) if w.startswith("drift warning")] if drift else []
        out.append(f"scoring a later file: {len(s) + n_rej:,} rows read, {len(s):,} scored, {flagged:,} flagged, "
                   f"{n_rej:,} rejected; drift: {len(warnings)} warning(s)")
        rec = (drift.get("model_output") or {}).get("confirmed_fraud_recall")
        if rec and rec["confirmed"]:
            out.append(f"labels fed back for that file: the model flagged {100 * rec['recall']:.1f} % of its "
                       f"{rec['confirmed']:,} confirmed frauds ({100 * rec['reference_recall']:.1f} % in the "
                       f"validation period)")
    return out or ["(no fraud results found)"]


def detection_lines(root: Path) -> list[str]:
    """Data check, detector mAP, mining before/after, export parity and tracking."""
    out = []
    check = _json(root / "check-data" / "check.json")
    if check:
        out.append(f"data check: {'OK' if check['ok'] else 'FAILED'}, {check['errors']} error(s), "
                   f"{check['warnings']} warning(s)")
    base = _json(root / "det" / "base" / "manifest.json")
    if base:
        m = base["metrics"]
        out.append(f"detector (val): mAP50 {m['box_map50']:.3f}, mAP50-95 {m['box_map50_95']:.3f} after "
                   f"{m['epochs']} epochs")
    mined = _json(root / "det" / "mined" / "metrics.json")
    if mined:
        a, b = mined["table"][0], mined["table"][-1]
        out.append(f"hard-negative mining (val, conf {mined['conf']:g}): mAP50 {a['box_map50']:.3f} -> "
                   f"{b['box_map50']:.3f}, recall {a['recall']:.3f} -> {b['recall']:.3f}, false positives/image "
                   f"{a['fp_per_image']:.2f} -> {b['fp_per_image']:.2f} (at the base model's recall "
                   f"{a['fp_at_base_recall']:.2f} -> {b['fp_at_base_recall']:.2f})")
    export = _json(root / "det" / "export" / "manifest.json")
    parity = (export or {}).get("metrics", {}).get("parity")
    if parity:
        rows = [f"{k} {v['map50_95']:.3f}" for k, v in parity.items() if isinstance(v, dict) and k != "pytorch"]
        out.append(f"ONNX export parity ({parity['images']} images, mAP50-95): PyTorch "
                   f"{parity['pytorch']['map50_95']:.3f}, " + ", ".join(rows))
    tracks, gt = root / "tracks.txt", root / "video" / "gt.txt"
    if tracks.is_file() and gt.is_file():
        from detection.tracking_eval import evaluate_tracks

        t = evaluate_tracks(gt, tracks)
        out.append(f"tracking (video): MOTA {t['mota']:.3f}, IDF1 {t['idf1']:.3f}, {t['num_switches']} ID switches")
    return out or ["(no detection results found)"]


def video_frame(video: Path, png: Path) -> Path | None:
    """Save the middle frame of the annotated video as a picture for the summary."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(n // 2, 0))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        return None
    cv2.imwrite(str(png), frame)
    return png


def files(root: Path) -> list[Path]:
    """Every report, figure and video under the demo folder (model weights and mined copies left out)."""
    keep = {".md", ".png", ".mp4", ".json", ".csv", ".txt"}
    skip = ("round-1/data", "/scenes/", "/weights/", "ultralytics")
    found = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in keep and p.name != "summary.md"
             and not any(s in f"/{p.relative_to(root).as_posix()}" for s in skip)
             and (p.suffix in {".md", ".png", ".mp4"} or p.name in {"metrics.json", "check.json", "log.txt",
                                                                      "scored.csv", "scored.drift.json"}
                  or p.name.endswith(".log.txt"))]
    return found


def write_summary(root: Path, seed: int) -> tuple[list[str], Path]:
    """(lines printed, path of summary.md)."""
    fraud, det = fraud_lines(root / "fraud"), detection_lines(root)
    frame = video_frame(root / "annotated.mp4", root / "annotated_frame.png") if (root / "annotated.mp4").is_file() \
        else None
    md = ["# Demo summary", "", NOTE, "", f"Seed {seed}. Every line below is read from the files the commands wrote.",
          "", "## Fraud", "", *[f"- {x}" for x in fraud], "", "## Detection", "", *[f"- {x}" for x in det], ""]
    pictures = [p for p in (root / "fraud" / "ablation" / "pr_curve.png", root / "fraud" / "eval" / "pr_curve.png",
                            root / "det" / "mined" / "eval-before" / "confusion_matrix.png",
                            root / "det" / "mined" / "round-1" / "eval" / "confusion_matrix.png",
                            root / "check-data" / "class_counts.png", frame) if p is not None and p.is_file()]
    if pictures:
        md += ["## Pictures", ""] + [f"![{p.relative_to(root)}]({p.relative_to(root).as_posix()})" for p in pictures]
        md.append("")
    md += ["## Every report, figure and log", ""]
    md += [f"- [{p.relative_to(root).as_posix()}]({p.relative_to(root).as_posix()})" for p in files(root)]
    path = root / "summary.md"
    path.write_text("\n".join(md) + "\n", encoding="utf-8")
    return ["fraud:", *[f"  {x}" for x in fraud], "detection:", *[f"  {x}" for x in det]], path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="example: python -m "
                                 "benchmarks.demo_summary --dir runs/demo --seed 0")
    ap.add_argument("--dir", type=Path, default=Path("runs/demo"), help="the demo folder (make demo's DEMO)")
    ap.add_argument("--seed", type=int, default=0, help="the seed the demo ran with (recorded in the summary)")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        raise SystemExit(f"error: {args.dir} does not exist; run `make demo` first")
    lines, path = write_summary(args.dir, args.seed)
    print("\n".join(lines))
    print(f"\n{NOTE}\nsummary with every report and figure: {path}")


if __name__ == "__main__":
    main()
