"""Read a YOLO data.yaml the way Ultralytics resolves it: class names, the data set root and each split's sources.

`read_data_yaml("data.yaml")` returns a `DataYaml` (or None) plus every `Problem` found, each with its file and
line. `detection.datasets.check_dataset` builds on it to check the images and labels of every split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from detection.label_checks import Problem

SPLIT_KEYS = ("train", "val", "test", "minival")  # the split keys Ultralytics itself resolves
# Top-level data.yaml keys that are not splits; any other key whose value is an existing path is a split
# (e.g. `pool:` in the generated driving-scene set).
META_KEYS = frozenset({"path", "names", "nc", "download", "yaml_file", "channels", "kpt_shape", "flip_idx",
                       "validation", "text", "license", "author", "url", "version", "date", "description"})


@dataclass
class DataYaml:
    """A parsed data.yaml: its root folder, class names and each split's sources (folders or .txt lists)."""

    file: Path
    root: Path
    names: dict[int, str]
    splits: dict[str, list[Path]]

    @property
    def nc(self) -> int:
        return len(self.names)



def _key_lines(text: str) -> dict[str, int]:
    """1-based line of each top-level key in a yaml text (for messages), empty if it does not compose."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in node.value if isinstance(k, yaml.ScalarNode)}


def _parse_names(raw, nc_raw, file: str, line: int | None, problems: list[Problem]) -> dict[int, str] | None:
    """`names:` as a list or a {id: name} dict (Ultralytics' `check_class_names`), or `nc:` alone."""
    fix_names = "give `names:` as a list [car, truck, ...] or a dict {0: car, 1: truck, ...}"
    if raw is None:
        if isinstance(nc_raw, int) and nc_raw > 0:
            return {i: f"class_{i}" for i in range(nc_raw)}
        problems.append(Problem("error", "yaml-missing-names", file, line,
                                "data.yaml has no `names:` (and no integer `nc:`)", fix_names))
        return None
    if isinstance(raw, list):
        names = dict(enumerate(raw))
    elif isinstance(raw, dict):
        try:
            names = {int(k): v for k, v in raw.items()}
        except (TypeError, ValueError):
            problems.append(Problem("error", "yaml-bad-names", file, line,
                                    f"`names:` keys must be integer class ids, got {list(raw)[:5]}", fix_names))
            return None
    else:
        problems.append(Problem("error", "yaml-bad-names", file, line,
                                f"`names:` must be a list or a dict, not {type(raw).__name__}", fix_names))
        return None
    names = {k: str(v) for k, v in sorted(names.items())}
    if not names:
        problems.append(Problem("error", "yaml-missing-names", file, line, "`names:` is empty", fix_names))
        return None
    if sorted(names) != list(range(len(names))):
        problems.append(Problem("error", "yaml-bad-names", file, line,
                                f"class ids in `names:` must be 0..{len(names) - 1} without gaps, got "
                                f"{sorted(names)}", "renumber the classes from 0"))
        return None
    if isinstance(nc_raw, int | float) and not isinstance(nc_raw, bool) and int(nc_raw) != len(names):
        problems.append(Problem("error", "yaml-nc-mismatch", file, line,
                                f"`nc: {nc_raw}` does not match the {len(names)} entries in `names:`",
                                "remove `nc:` or make it equal to the number of names"))
    return names


def _resolve_root(raw_path, yaml_file: Path, line: int | None, problems: list[Problem]) -> Path | None:
    """The data set root, as Ultralytics finds it: `path:` (from the working directory) or the yaml's folder."""
    if raw_path is None:
        return yaml_file.parent.resolve()
    if not isinstance(raw_path, str):
        problems.append(Problem("error", "yaml-bad-path", str(yaml_file), line,
                                f"`path:` must be a string, got {type(raw_path).__name__}",
                                "write `path: /absolute/folder/of/the/dataset`"))
        return None
    root = Path(raw_path).expanduser()
    if root.exists():
        if not root.is_absolute():
            problems.append(Problem("warning", "yaml-relative-path", str(yaml_file), line,
                                    f"`path: {raw_path}` is relative, so it only works from this working "
                                    "directory", "make `path:` absolute"))
        return root.resolve()
    beside = (yaml_file.parent / root).resolve()
    if not root.is_absolute() and beside.exists():
        problems.append(Problem("warning", "yaml-relative-path", str(yaml_file), line,
                                f"`path: {raw_path}` exists only relative to the yaml's folder; Ultralytics "
                                "resolves it from the working directory, then from its datasets_dir setting",
                                f"write `path: {beside}`"))
        return beside
    tried = f"{root}" if root.is_absolute() else (f"{Path.cwd() / root} (from the working directory, as "
                                                  f"Ultralytics reads it) nor {beside} (from the yaml's folder)")
    problems.append(Problem("error", "yaml-path-missing", str(yaml_file), line,
                            f"`path: {raw_path}` does not exist: neither {tried} is a folder",
                            "write `path:` as the absolute folder that holds images/ and labels/, e.g. "
                            f"`path: {yaml_file.parent.resolve()}` if they sit beside the yaml"))
    return None


def _resolve_split(value, root: Path) -> list[Path]:
    """A split's sources, joined to the root exactly like `check_det_dataset` (including its `../` retry)."""
    if isinstance(value, str):
        x = (root / value).resolve()
        if not x.exists() and value.startswith("../"):
            x = (root / value[3:]).resolve()
        return [x]
    return [(root / str(v)).resolve() for v in value]


def _beside_yaml(raw_path, yaml_file: Path, value) -> Path | None:
    """Where a split would be if a relative `path:` were read from the yaml's folder (None: not there either)."""
    if not isinstance(raw_path, str) or Path(raw_path).expanduser().is_absolute() or not isinstance(value, str):
        return None
    candidate = (yaml_file.parent / raw_path / value).resolve()
    return candidate if candidate.exists() else None


def _split_fix(key: str, missing: Path, root: Path, yaml_file: Path) -> str:
    """What to write for a split that does not resolve: the folder of the same relative name found from the
    working directory or beside the yaml, else the usual layout under the root."""
    try:
        rel = missing.relative_to(root)
    except ValueError:
        rel = None
    if rel is not None:
        for base in (Path.cwd(), yaml_file.parent.resolve()):
            found = (base / rel).resolve()
            if found.exists() and found != missing:
                return (f"the folder exists as {found}: write `{key}: {found}` (absolute), or set `path: {base}` "
                        f"so that `{key}: {rel}` resolves")
    return (f"write `{key}:` relative to {root} (e.g. `{key}: images/{key}`) or as an absolute path, or "
            "create the folder")


def read_data_yaml(path: str | Path, splits: list[str] | None = None) -> tuple[DataYaml | None, list[Problem]]:
    """Parse data.yaml into a `DataYaml`, or None plus the problems that make it unusable.

    `splits` limits which splits to check; by default train, val, test, minival and any other key whose
    value is an existing folder or .txt list (e.g. `pool:`).
    """
    file = Path(path)
    problems: list[Problem] = []
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; pass the data set's data.yaml")
    f = str(file)
    text = file.read_text(encoding="utf-8-sig")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problems.append(Problem("error", "yaml-unreadable", f, mark.line + 1 if mark else None,
                                f"not valid YAML ({getattr(exc, 'problem', None) or exc})",
                                "fix the YAML syntax (indentation, a missing ':' or quote)"))
        return None, problems
    if not isinstance(raw, dict):
        problems.append(Problem("error", "yaml-unreadable", f, None,
                                f"expected a mapping of keys (path, train, val, names), got {type(raw).__name__}",
                                "see docs/detection-datasets.md for a data.yaml example"))
        return None, problems
    lines = _key_lines(text)
    if "kpt_shape" in raw:
        problems.append(Problem("error", "yaml-unsupported-task", f, lines.get("kpt_shape"),
                                "a pose data set (`kpt_shape:`); this checker handles boxes and polygons only",
                                "validate pose labels with Ultralytics itself"))
        return None, problems
    if "val" not in raw and "validation" in raw:
        problems.append(Problem("warning", "yaml-validation-key", f, lines.get("validation"),
                                "`validation:` is accepted by Ultralytics but renamed to `val:`", "rename it `val:`"))
        raw["val"] = raw.pop("validation")
        lines["val"] = lines.get("validation")
    for key in ("train", "val"):
        if not raw.get(key):
            problems.append(Problem("error", "yaml-missing-key", f, lines.get(key),
                                    f"data.yaml has no `{key}:` (Ultralytics requires train and val)",
                                    f"add `{key}: images/{key}` (a folder, a list of folders or a .txt list)"))
    names = _parse_names(raw.get("names"), raw.get("nc"), f, lines.get("names") or lines.get("nc"), problems)
    root = _resolve_root(raw.get("path"), file, lines.get("path"), problems)
    if names is None or root is None:
        return None, problems

    resolved: dict[str, list[Path]] = {}
    wanted = splits or [k for k in raw if k in SPLIT_KEYS or k not in META_KEYS]
    for key in wanted:
        value = raw.get(key)
        if value is None or value == "" or value == []:
            if splits and key in splits:
                problems.append(Problem("error", "yaml-missing-key", f, None, f"data.yaml has no `{key}:` split",
                                        f"add `{key}:` or leave it out of --splits"))
            continue
        if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            if key in SPLIT_KEYS:
                problems.append(Problem("error", "yaml-bad-split", f, lines.get(key),
                                        f"`{key}:` must be a folder, a .txt list or a list of them",
                                        f"write `{key}: images/{key}`"))
            continue
        sources = _resolve_split(value, root)
        missing = [s for s in sources if not s.exists()]
        if key not in SPLIT_KEYS and not (splits and key in splits) and missing:
            continue  # an extra key that is not a path (e.g. `license: MIT`): not a split
        beside = _beside_yaml(raw.get("path"), file, value)
        if missing and beside is not None:
            problems.append(Problem(
                "error", "yaml-path-relative", f, lines.get("path") or lines.get(key),
                f"`path: {raw.get('path')}` is relative, and Ultralytics resolves it from the working directory "
                f"({Path.cwd()}), where `{key}: {value}` does not exist ({missing[0]}); it does exist relative to "
                f"the yaml's own folder ({beside})",
                f"write `path: {file.parent.resolve() / str(raw.get('path'))}` (absolute) into a copy of "
                f"{file.name} and pass that copy, or run the command from {file.parent.resolve()}"))
            continue
        base = (f"the data set root {root} (`path: {raw.get('path')}`)" if raw.get("path") is not None
                else f"the yaml's folder {root} (data.yaml has no `path:`)")
        for m in missing:
            problems.append(Problem("error", "split-missing", f, lines.get(key),
                                    f"`{key}:` points to {m}, which does not exist (resolved against {base})",
                                    _split_fix(key, m, root, file)))
        resolved[key] = [s for s in sources if s.exists()]
    return DataYaml(file=file.resolve(), root=root, names=names, splits=resolved), problems
