"""Run directories and their manifest.json: what a trained model is, and proof it was not altered.

A run directory holds a model's files and `manifest.json`:

    {"format_version": 1, "kind": "fraud-model", "created": "...", "git_commit": "...",
     "packages": {"torch": "2.14.1", ...}, "config": {...}, "data": {"path": ..., "sha256": ..., "rows": ...},
     "metrics": {...}, "files": {"booster.ubj": "<sha256>", ...}}

`write_manifest` hashes every file it is given; `load_manifest` re-hashes them and fails, naming the file,
when one is missing or changed. Scoring and video commands call `load_manifest` before they trust a model.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TRACKED_PACKAGES = (
    "dl-case-studies", "torch", "torchvision", "torch-geometric", "xgboost-cpu", "scikit-learn", "pandas",
    "numpy", "pyarrow", "ultralytics-opencv-headless", "onnx", "onnxruntime",
)


class ManifestError(RuntimeError):
    """A run directory that is missing, incomplete or altered since it was written."""


@dataclass
class Manifest:
    """The parsed manifest of a run directory (see the module docstring for the JSON layout)."""

    kind: str
    config: dict[str, Any]
    files: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    created: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)


def new_run_dir(root: str | Path, name: str) -> Path:
    """A fresh directory `root/name-YYYYmmdd-HHMMSS[-n]` that no earlier run used."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks so large files do not fill memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint_data(path: str | Path) -> dict[str, Any]:
    """What identifies an input data file: its name, size and content hash."""
    p = Path(path)
    return {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a model depends on (absent ones are skipped)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The current git commit of the project, with `-dirty` when there are uncommitted changes."""
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_manifest(run_dir: str | Path, kind: str, config: dict[str, Any], files: list[str] | None = None,
                   metrics: dict[str, Any] | None = None, data: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> Manifest:
    """Hash `files` (relative to run_dir; default: every file but the manifest) and write manifest.json."""
    run_dir = Path(run_dir)
    if files is None:
        files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and p.name != MANIFEST)
    hashes = {}
    for rel in files:
        p = run_dir / rel
        if not p.is_file():
            raise ManifestError(f"cannot add {rel} to the manifest of {run_dir}: the file does not exist")
        hashes[rel] = sha256_file(p)
    m = Manifest(kind=kind, config=config, files=hashes, metrics=metrics or {}, data=data or {},
                 packages=package_versions(), git_commit=git_commit(),
                 created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), extra=extra or {})
    (run_dir / MANIFEST).write_text(json.dumps(m.__dict__, indent=2, default=str), encoding="utf-8")
    return m


def update_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Manifest:
    """Merge `metrics` into an existing manifest (after evaluation), keeping file hashes as they are."""
    m = load_manifest(run_dir)
    m.metrics.update(metrics)
    (Path(run_dir) / MANIFEST).write_text(json.dumps(m.__dict__, indent=2, default=str), encoding="utf-8")
    return m


def refresh_files(run_dir: str | Path, files: list[str], extra: dict[str, Any] | None = None) -> Manifest:
    """Re-hash `files` after a deliberate change of a run's state (e.g. confirmed labels added to a model)
    and merge `extra`; the manifest records when (`extra['updated']`)."""
    run_dir = Path(run_dir)
    m = load_manifest(run_dir, verify=False)
    for rel in files:
        m.files[rel] = sha256_file(run_dir / rel)
    m.extra.update(extra or {})
    m.extra["updated"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    (run_dir / MANIFEST).write_text(json.dumps(m.__dict__, indent=2, default=str), encoding="utf-8")
    return m


def load_manifest(run_dir: str | Path, kind: str | None = None, verify: bool = True) -> Manifest:
    """Read manifest.json, check its kind and format, and re-hash every listed file."""
    run_dir = Path(run_dir)
    path = run_dir / MANIFEST
    if not run_dir.is_dir():
        raise ManifestError(f"model directory {run_dir} does not exist; pass the directory a train command wrote")
    if not path.is_file():
        raise ManifestError(f"{run_dir} has no {MANIFEST}: it is not a model directory written by this project")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        m = Manifest(**raw)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ManifestError(f"{path} is not a valid manifest: {exc}") from exc
    if m.format_version != FORMAT_VERSION:
        raise ManifestError(f"{path} has format version {m.format_version}; this code reads {FORMAT_VERSION}. "
                            "Retrain the model with this version.")
    if kind is not None and m.kind != kind:
        raise ManifestError(f"{run_dir} holds a {m.kind!r}, not a {kind!r}")
    if verify:
        missing = [f for f in m.files if not (run_dir / f).is_file()]
        if missing:
            raise ManifestError(f"{run_dir} is incomplete: missing {', '.join(missing)}")
        changed = [f for f, h in m.files.items() if sha256_file(run_dir / f) != h]
        if changed:
            raise ManifestError(f"{run_dir}: {', '.join(changed)} changed since the manifest was written "
                                "(hash mismatch); the model may be tampered with or corrupt. Retrain or restore it.")
    return m
