"""Saving and loading a FraudModel directory: booster (UBJ), torch state dicts (weights only), history and
label book (Parquet), model.json and a manifest that hashes every file. No pickle anywhere."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import xgboost as xgb

from fraud.features.history import History, restore_dtypes
from fraud.features.labels import BOOK_COLUMNS, LabelBook
from fraud.stack.config import FraudConfig
from shared.config import from_dict, save_config, to_dict
from shared.runs import ManifestError, load_manifest, write_manifest

KIND = "fraud-model"


def save_model(model, run_dir: str | Path, metrics: dict | None = None, data: dict | None = None) -> Path:
    """Write a fitted model's directory (see README 'Model directory format'); returns it."""
    import torch

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(model.cfg, run_dir / "config.yaml")
    model.booster_.save_model(str(run_dir / "booster.ubj"))
    files = ["config.yaml", "booster.ubj", "model.json", "history_tail.parquet", "history_entities.parquet",
             "history_pairs.parquet", "reference_features.parquet", "labels.parquet"]
    meta = {"feature_names": model.feature_names_, "threshold": model.threshold_, "fit_info": model.fit_info_,
            "history": {"tail_seconds": model.history_.tail_seconds, "cutoff_ns": model.history_.cutoff_ns,
                        "max_ns": model.history_.max_ns}}
    if model.cfg.parts.autoencoder:
        torch.save(model.ae_.state_dict(), run_dir / "autoencoder.pt")
        meta["scaler"] = asdict(model.scaler_)
        meta["ae_columns"] = model.ae_columns_
        meta["ae_dim"] = len(model.ae_columns_)
        files.append("autoencoder.pt")
    if model.cfg.parts.gnn:
        torch.save(model.gnn_.state_dict(), run_dir / "gnn.pt")
        files.append("gnn.pt")
    (run_dir / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    model.history_.tail.to_parquet(run_dir / "history_tail.parquet", index=False)
    model.history_.entities.to_parquet(run_dir / "history_entities.parquet", index=False)
    model.history_.pairs.to_parquet(run_dir / "history_pairs.parquet", index=False)
    model.reference_.to_parquet(run_dir / "reference_features.parquet", index=False)
    model.labels_.rows.to_parquet(run_dir / "labels.parquet", index=False)
    write_manifest(run_dir, KIND, to_dict(model.cfg), files=files, metrics=metrics or {}, data=data or {},
                   extra={"fit_info": model.fit_info_, "labels": model.labels_summary()})
    return run_dir

def load_model(cls, run_dir: str | Path):
    """A model from a directory `save` wrote, after verifying every file's hash in the manifest."""

    run_dir = Path(run_dir)
    m = load_manifest(run_dir, kind=KIND)
    model = cls(from_dict(FraudConfig, m.config, source=f"{run_dir}/manifest.json"))
    meta = json.loads((run_dir / "model.json").read_text(encoding="utf-8"))
    model.feature_names_ = meta["feature_names"]
    model.threshold_ = float(meta["threshold"])
    model.fit_info_ = meta["fit_info"]
    model.booster_ = xgb.Booster()
    model.booster_.load_model(str(run_dir / "booster.ubj"))
    model.booster_.feature_names = model.feature_names_
    h = meta["history"]
    model.history_ = History(h["tail_seconds"], pd.read_parquet(run_dir / "history_tail.parquet"),
                             pd.read_parquet(run_dir / "history_entities.parquet"),
                             pd.read_parquet(run_dir / "history_pairs.parquet"), h["cutoff_ns"], h["max_ns"])
    restore_dtypes(model.history_)
    model.reference_ = pd.read_parquet(run_dir / "reference_features.parquet")
    model.labels_ = LabelBook(pd.read_parquet(run_dir / "labels.parquet").astype(BOOK_COLUMNS))
    if model.cfg.parts.autoencoder:
        from fraud.models.autoencoder import AutoEncoder, Scaler

        model.ae_columns_ = meta["ae_columns"]
        model.scaler_ = Scaler(**meta["scaler"])
        model.ae_ = AutoEncoder(meta["ae_dim"], model.cfg.autoencoder)
        _load_state(model.ae_, run_dir / "autoencoder.pt")
        model.ae_.eval()
    if model.cfg.parts.gnn:
        from fraud.models.gnn import EdgeGNN

        model.gnn_ = EdgeGNN(model.cfg.gnn)
        _load_state(model.gnn_, run_dir / "gnn.pt")
        model.gnn_.eval()
    return model


def _load_state(module, path: Path) -> None:
    """Weights into `module` (weights_only: no pickle); a shape mismatch means another code version."""
    import torch

    try:
        module.load_state_dict(torch.load(path, weights_only=True))
    except RuntimeError as exc:
        raise ManifestError(f"{path} does not fit this code's {type(module).__name__} ({str(exc).splitlines()[-1].strip()}); "
                            "the model was written by another version of this project: retrain it") from None
