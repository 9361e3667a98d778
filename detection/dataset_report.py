"""Tables, report.md, JSON and a bar chart from a `DatasetCheck`: what is in the data set and what is wrong.

Per split: images, background share (images with no objects), instances, images with errors
(Ultralytics drops almost all of those), the share of small objects (< 32 x 32 px) and the commonest image sizes.
Per class and split: instances and images containing the class. Imbalance per split: the ratio of the most
to the least frequent class (inf when a class has no instances) and the rarest class's share of instances.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from detection.datasets import DatasetCheck, SplitStats
from shared.reporting import markdown_table, new_figure, save_figure, text_table, write_json


def imbalance(stats: SplitStats, names: dict[int, str]) -> dict:
    """Class imbalance of one split: max/min instance ratio, the rarest class and its share, absent classes."""
    counts = {names[c]: stats.instances.get(c, 0) for c in names}
    total = sum(counts.values())
    absent = [n for n, v in counts.items() if v == 0]
    present = {n: v for n, v in counts.items() if v > 0}
    if not present:
        return {"max_min_ratio": None, "rarest_class": None, "rarest_share": None, "absent_classes": absent}
    rarest = min(present, key=present.get)
    ratio = float("inf") if absent else max(present.values()) / present[rarest]
    return {"max_min_ratio": ratio, "rarest_class": rarest, "rarest_share": present[rarest] / total,
            "absent_classes": absent}


def split_rows(check: DatasetCheck) -> list[dict]:
    """One row per split: image, background, instance and broken-image counts plus imbalance."""
    rows = []
    names = check.names()
    for s in check.splits.values():
        imb = imbalance(s, names)
        rows.append({"split": s.name, "images": s.images, "background": s.background,
                     "background_share": s.background_share, "no_label_file": s.missing_labels,
                     "with_errors": s.with_errors, "instances": s.total_instances,
                     "per_image": s.total_instances / s.images if s.images else float("nan"),
                     "small_share": s.small_share, "objects_by_size": dict(s.object_sizes),
                     "image_sizes": {f"{w}x{h}": n for (w, h), n in s.image_sizes.most_common(5)},
                     "box_files": s.box_files, "polygon_files": s.polygon_files,
                     "imbalance": imb["max_min_ratio"], "absent_classes": len(imb["absent_classes"]),
                     "rarest": imb["rarest_class"],
                     "rarest_share": imb["rarest_share"]})
    return rows


def class_rows(check: DatasetCheck) -> list[dict]:
    """One row per class: instances in each split, the total, its share and images containing it."""
    rows = []
    splits = list(check.splits.values())
    total = sum((s.instances for s in splits), Counter())
    all_instances = sum(total.values())
    for c, name in check.names().items():
        row = {"id": c, "class": name}
        for s in splits:
            row[s.name] = s.instances.get(c, 0)
        row["total"] = total.get(c, 0)
        row["share"] = total.get(c, 0) / all_instances if all_instances else float("nan")
        row["images"] = sum(s.images_with.get(c, 0) for s in splits)
        rows.append(row)
    return rows


def problem_counts(check: DatasetCheck) -> list[dict]:
    """How many problems of each kind, errors first."""
    counts = Counter((p.level, p.kind) for p in check.problems)
    return [{"level": lvl, "kind": kind, "count": n}
            for (lvl, kind), n in sorted(counts.items(), key=lambda x: (x[0][0] != "error", -x[1], x[0][1]))]


def summary_line(check: DatasetCheck) -> str:
    """One line: OK or FAILED, with error and warning counts."""
    status = "OK" if check.ok else "FAILED"
    images = sum(s.images for s in check.splits.values())
    return (f"{status}: {check.yaml_file} — {images} images in {len(check.splits)} split(s), "
            f"{len(check.errors)} error(s), {len(check.warnings)} warning(s)")


def to_dict(check: DatasetCheck) -> dict:
    """Everything in the report as plain JSON-able data."""
    names = check.names()
    return {
        "yaml": str(check.yaml_file), "ok": check.ok, "names": names,
        "root": str(check.data.root) if check.data else None,
        "errors": len(check.errors), "warnings": len(check.warnings),
        "splits": {r["split"]: r for r in split_rows(check)},
        "imbalance": {s.name: imbalance(s, names) for s in check.splits.values()},
        "classes": class_rows(check),
        "problem_counts": problem_counts(check),
        "problems": [p.to_dict() for p in check.problems],
    }


# `imbalance` is max/min instances over classes; it shows as a dash (null in JSON) when a class is absent.
SPLIT_COLUMNS = ["split", "images", "background", "background_share", "with_errors", "instances", "per_image",
                 "small_share", "imbalance", "absent_classes", "rarest", "rarest_share"]


def text_report(check: DatasetCheck, max_problems: int = 30) -> str:
    """What `detection check-data` prints: split table, class table, problems (first `max_problems`)."""
    parts = [text_table(split_rows(check), SPLIT_COLUMNS, digits=3), "", text_table(class_rows(check), digits=3)]
    if check.problems:
        parts += ["", text_table(problem_counts(check)), ""]
        ordered = check.errors + check.warnings
        parts += [str(p) for p in ordered[:max_problems]]
        if len(ordered) > max_problems:
            parts.append(f"... and {len(ordered) - max_problems} more (all of them are in problems.txt)")
    parts += ["", summary_line(check)]
    return "\n".join(parts)


def plot_class_counts(check: DatasetCheck, path: str | Path) -> Path:
    """Bar chart of instances per class, one bar colour per split."""
    rows = class_rows(check)
    splits = list(check.splits)
    fig, ax = new_figure(max(6.0, 0.9 * len(rows) + 2), 4.0)
    width = 0.8 / max(1, len(splits))
    for i, split in enumerate(splits):
        xs = [j + (i - (len(splits) - 1) / 2) * width for j in range(len(rows))]
        bars = ax.bar(xs, [r[split] for r in rows], width=width, label=split)
        ax.bar_label(bars, fontsize=7)  # exact counts: a rare class is hard to read off a tall axis
    ax.set_xticks(range(len(rows)), [r["class"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("instances")
    ax.set_title(f"Instances per class — {check.yaml_file.name}")
    if splits:
        ax.legend()
    return save_figure(fig, path)


def write_report(check: DatasetCheck, out_dir: str | Path) -> dict[str, Path]:
    """Write report.md, check.json, problems.txt and class_counts.png into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": write_json(to_dict(check), out / "check.json"),
             "problems": out / "problems.txt",
             "figure": plot_class_counts(check, out / "class_counts.png"),
             "markdown": out / "report.md"}
    paths["problems"].write_text("".join(f"{p}\n" for p in check.errors + check.warnings), encoding="utf-8")
    md = [f"# Data set check: `{check.yaml_file}`", "", f"**{summary_line(check)}**", "",
          "## Splits", "", markdown_table(split_rows(check), SPLIT_COLUMNS, digits=3),
          "## Classes", "", markdown_table(class_rows(check), digits=3),
          "![instances per class](class_counts.png)", ""]
    if check.problems:
        md += ["## Problems", "", markdown_table(problem_counts(check)),
               "Every problem, with file, line and fix, is in `problems.txt`; the first ones:", "", "```"]
        md += [str(p) for p in (check.errors + check.warnings)[:50]] + ["```", ""]
    paths["markdown"].write_text("\n".join(md), encoding="utf-8")
    return paths
