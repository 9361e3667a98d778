"""FraudModel: point-in-time features + GNN embeddings + autoencoder outputs -> XGBoost -> score and flag.

    model = FraudModel(cfg).fit(train_df, val_df)      # canonical frames, train strictly before val
    out = model.score(test_df)                          # transaction_id, probability, flag
    model.save(run_dir); FraudModel.load(run_dir)       # manifest-verified, no pickle anywhere

Scoring uses the stored history (raw tail + entity/pair totals of train + validation) plus strictly
earlier rows of the scored data; `model.stream()` scores chunks in event order and gives the same scores
as one `score` call on the whole file. `parts` switches the GNN, autoencoder and neighbour aggregates on
or off, which is how the ablation trains its variants.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from fraud.data.columns import TxColumns
from fraud.data.durations import parse_duration, to_ns
from fraud.data.frame import DataError
from fraud.features.behaviour import build_features, coded_features, feature_names
from fraud.features.graph import (
    CachedSnapshot,
    EventLog,
    SnapshotCache,
    edge_features,
    local_by_name,
    run_threaded,
    snapshot_groups,
)
from fraud.features.graph_pass import window
from fraud.features.history import History
from fraud.features.labels import LabelBook
from fraud.features.risk import risk_names
from fraud.features.views import Coded
from fraud.models.booster import choose_threshold, fit_booster, predict
from fraud.stack.config import FraudConfig, _tail_seconds, check_training_data
from fraud.stack.persist import load_model, save_model
from fraud.stack.scorer import Scorer, StreamScorer, check_finite
from shared.seeding import seed_everything

log = logging.getLogger("fraud.stack.model")
PARALLEL_ROWS = 2000  # below this, starting a thread costs more than the overlap saves (one-transaction requests)


GNNTrainer = Callable[..., Any]  # (event log, rows, labels, GNNConfig, GraphConfig, seed, progress, log_fn) -> EdgeGNN
BoosterFitter = Callable[..., Any]  # fit_booster's signature: (x_tr, y_tr, x_va, y_va, names, BoosterConfig, seed)


class InProcessFeatures:
    """`fit`'s default feature runner: behaviour features and graph blocks in this process (a runner with
    the same two methods computes them elsewhere, e.g. `fraud.scale.features.DaskFeatures`)."""

    def behaviour(self, model: FraudModel, history: History, df: pd.DataFrame) -> pd.DataFrame:
        return model._features(history, df)

    def graph(self, model: FraudModel, history: History, df: pd.DataFrame, progress: bool = False):
        return model._graph_blocks(history, df, progress)


@dataclass(frozen=True)
class FitArtefacts:
    """What `FraudModel.fit_artefacts` leaves besides the fitted model: the exact matrices every ablation
    variant and every defence refit is cut from (not saved with the model)."""

    train_matrix: np.ndarray   # [n_booster_rows, d] the booster's training rows (early rows' learned columns NaN)
    train_labels: np.ndarray   # [n_booster_rows]
    val_matrix: np.ndarray     # [n_val, d]
    train_matrix_all: np.ndarray  # [n_train, d] every training row, learned columns in-sample
    train_labels_all: np.ndarray  # [n_train]


class FraudModel:
    """The fraud model stack (estimator shape: fit -> self, score, save, load); see the module docstring."""

    def __init__(self, cfg: FraudConfig | None = None):
        self.cfg = cfg or FraudConfig()

    # ---- building blocks shared by fit and score -------------------------------------------------------
    @property
    def base_names(self) -> list[str]:
        return feature_names(self.cfg.features, neighbour=self.cfg.parts.neighbour, labels=self._label_cfg)

    @property
    def _label_cfg(self):
        return self.cfg.labels if self.cfg.parts.labels else None

    def _features(self, history: History, df: pd.DataFrame) -> pd.DataFrame:
        return build_features(history, df, self.cfg.features, neighbour=self.cfg.parts.neighbour,
                              book=getattr(self, "labels_", None),
                              labels=self._label_cfg)

    def behaviour_features(self, coded: Coded) -> np.ndarray:
        """Behaviour features [n, len(base_names)] float32 of the query rows of `coded` (coded events of a
        history view, e.g. `fraud.serve.live_history.LiveHistory.coded`); `_features`' values bit for bit."""
        return coded_features(coded, self.cfg.features, self.cfg.parts.neighbour, getattr(self, "labels_", None),
                              self._label_cfg)

    def matrix_from(self, base: np.ndarray, history: History, rows: TxColumns,
                    graph_cache: SnapshotCache | None = None) -> np.ndarray:
        """The booster's input rows [n, d] for `rows` from their behaviour features `base` [n, len(base_names)]
        (`behaviour_features` of any view of the history) and the graph part read from `history`."""
        blocks = {"base": base, **self._graph_part(history, rows, False, graph_cache)}
        if self.cfg.parts.autoencoder:
            blocks["ae"] = self._ae_block(blocks)
        x = self._stack(blocks)
        check_finite(x, self.feature_names_, "scoring")
        return x

    def _blocks(self, history: History, df: pd.DataFrame, progress: bool = False,
                graph_cache: SnapshotCache | None = None) -> dict[str, np.ndarray]:
        """Feature blocks for `df` given `history`: {'base', 'paths', 'ae', 'gnn'} arrays [n, *] (absent parts
        skipped)."""
        if self.cfg.booster.n_jobs > 1 and len(df) >= PARALLEL_ROWS:
            # The graph pass (snapshot threads that leave a core partly idle) runs beside the behaviour
            # features, which only read the same history.

            with ThreadPoolExecutor(1, thread_name_prefix="graph") as pool:
                graph = pool.submit(self._graph_blocks, history, df, progress, graph_cache)
                base = self._features(history, df)
                blocks = {"base": base.to_numpy(np.float32), **graph.result()}
        else:
            base = self._features(history, df)
            blocks = {"base": base.to_numpy(np.float32)}
            blocks.update(self._graph_blocks(history, df, progress, graph_cache))
        if self.cfg.parts.autoencoder:
            blocks["ae"] = self._ae_block(blocks)
        return blocks

    def _ae_input_names(self) -> list[str]:
        """What the autoencoder reconstructs: behaviour features, plus (graph_inputs) the neighbour aggregates
        and return-path hops, so 'closes a cycle' or 'passes money straight on' look abnormal too."""
        names = feature_names(self.cfg.features, neighbour=False)
        if self.cfg.autoencoder.graph_inputs:  # not the label risk: the autoencoder models behaviour
            risk = set(risk_names(self.cfg.labels))
            names = [n for n in self.base_names if n not in risk] + (["path_return_hops"] if self.cfg.parts.paths else [])
        return names

    def _ae_block(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        from fraud.models.autoencoder import ae_outputs

        err, z = ae_outputs(self.ae_, self.scaler_, self._ae_matrix(blocks))
        return np.column_stack([np.log(err + 1e-6), z]).astype(np.float32)

    def _ae_matrix(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        have = list(self.base_names) + (["path_return_hops"] if "paths" in blocks else [])
        x = np.concatenate([blocks["base"]] + ([blocks["paths"]] if "paths" in blocks else []), axis=1)
        return x[:, [have.index(n) for n in self.ae_columns_]]

    def _gnn_rows(self, history: History, df: pd.DataFrame, t: np.ndarray | None = None):
        """(event log of the history tail + df, Rows of df); `t`: df's times in ns, if already at hand."""
        from fraud.models.gnn import Rows

        t = to_ns(df["timestamp"]) if t is None else t
        if len(t):  # only events inside some snapshot of these rows (same snapshots, less work)
            every, window = self.cfg.graph.every_ns, self.cfg.graph.window_ns
            tail = history.tail_since((int(t.min()) // every) * every - window)
        else:
            tail = history.tail
        elog = EventLog([tail, df])
        if self.cfg.parts.gnn and self.cfg.gnn.label_nodes:
            from fraud.features.graph_labels import NodeLabels

            elog.node_labels = NodeLabels(self.labels_, elog.entities,
                                          max(parse_duration(w) for w in self.cfg.labels.windows))
        rows = Rows(t=t, src=elog.codes(df["source"]), dst=elog.codes(df["target"]),
                    attr=edge_features(df["amount"].to_numpy(np.float64), t))
        return elog, rows

    def _graph_blocks(self, history: History, df: pd.DataFrame, progress: bool,
                      cache: SnapshotCache | None = None) -> dict[str, np.ndarray]:
        """'paths' [n, 1] (return-path hops) and 'gnn' [n, 2E + 1] from one pass over the snapshots
        (`cache`: snapshots kept from earlier calls, see `fraud.features.graph.SnapshotCache`)."""
        return self._graph_part(history, TxColumns.from_frame(df), progress, cache)

    def _graph_part(self, history: History, cols: TxColumns, progress: bool,
                    cache: SnapshotCache | None = None) -> dict[str, np.ndarray]:
        """`_graph_blocks` of rows given as columns: their frame is built only if a snapshot must be cut."""
        cfg = self.cfg
        if not (cfg.parts.paths or cfg.parts.gnn) or len(cols) == 0:
            return {"paths": np.zeros((len(cols), 1), np.float32)} if cfg.parts.paths else (
                {"gnn": np.zeros((0, 2 * cfg.gnn.embed + 1), np.float32)} if cfg.parts.gnn else {})

        from fraud.models.gnn import Rows

        t = cols.t
        groups = list(snapshot_groups(t, cfg.graph.every_ns))
        cached = {end: cache.get(end) for _, end in groups} if cache is not None else {}
        if all(cached.get(end) is not None for _, end in groups):  # no event log needed at all
            elog, rows = None, Rows(t=t, src=None, dst=None, attr=edge_features(cols.amount, t))
        else:
            elog, rows = self._gnn_rows(history, cols.frame(), t)
        any_hit = any(v is not None for v in cached.values())
        names = {"source": cols.source, "target": cols.target} if any_hit else {}
        n, t_min = len(cols), int(t.min())
        hops = np.zeros(n, np.float32)
        gnn = np.zeros((n, 2 * cfg.gnn.embed + 1), np.float32)
        if cfg.parts.gnn:
            from fraud.models.gnn import embed_from_nodes, embed_snapshot, encode_window, node_embeddings

        def work(idx: np.ndarray, end: int) -> None:  # writes disjoint rows of hops/gnn: threads may share them
            hit = cached.get(end)
            if hit is None:
                win = window(elog, end - cfg.graph.window_ns, end)
                s_loc, d_loc = win.local(rows.src[idx]), win.local(rows.dst[idx])
                enc = encode_window(self.gnn_, win) if cfg.parts.gnn else None
                complete = cache is not None and (cache.watched or (history.max_ns is not None
                                                                    and history.max_ns >= end))
                if complete and t_min >= end:
                    cache.put(end, CachedSnapshot(win, enc, elog.entities[win.nodes]))
            else:
                win, enc = hit.win, hit.enc
                s_loc, d_loc = (local_by_name(hit.names, names[r][idx]) for r in ("source", "target"))
            if cfg.parts.paths:
                hops[idx] = win.paths(s_loc, d_loc, cfg.graph.max_hops)
            if cfg.parts.gnn:
                if hit is None:
                    hs, hd, logit = embed_snapshot(self.gnn_, None, s_loc, d_loc, rows.attr[idx], enc)
                else:  # asked again: every node's embedding once, then lookups (the same bits, tested)
                    if hit.nodes_h is None:
                        hit.nodes_h = node_embeddings(self.gnn_, enc)
                    hs, hd, logit = embed_from_nodes(self.gnn_, hit.nodes_h, s_loc, d_loc, rows.attr[idx])
                gnn[idx] = np.column_stack([hs, hd, logit])

        run_threaded(work, tqdm(groups, desc="graph snapshots", leave=False) if progress else groups,
                     workers=cfg.booster.n_jobs if len(groups) > 1 else 1)
        out = {}
        if cfg.parts.paths:
            out["paths"] = hops[:, None]
        if cfg.parts.gnn:
            out["gnn"] = gnn
        return out

    def _names(self) -> list[str]:
        names = list(self.base_names)
        if self.cfg.parts.paths:
            names += ["path_return_hops"]
        if self.cfg.parts.autoencoder:
            names += ["ae_log_error"] + [f"ae_z{i}" for i in range(self.cfg.autoencoder.latent)]
        if self.cfg.parts.gnn:
            e = self.cfg.gnn.embed
            names += [f"gnn_src{i}" for i in range(e)] + [f"gnn_dst{i}" for i in range(e)] + ["gnn_edge_logit"]
        return names

    @staticmethod
    def _stack(blocks: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([blocks[k] for k in ("base", "paths", "ae", "gnn") if k in blocks], axis=1)

    # ---- fit --------------------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, val: pd.DataFrame, progress: bool = True,
            gnn_trainer: GNNTrainer | None = None, booster_fitter: BoosterFitter | None = None,
            features: InProcessFeatures | None = None) -> FraudModel:
        """Learn every enabled part on `train` (labels), early-stop and pick the threshold on `val`."""
        self.fit_artefacts(train, val, progress, gnn_trainer, booster_fitter, features)
        return self

    def fit_artefacts(self, train: pd.DataFrame, val: pd.DataFrame, progress: bool = True,
                      gnn_trainer: GNNTrainer | None = None,
                      booster_fitter: BoosterFitter | None = None,
                      features: InProcessFeatures | None = None) -> FitArtefacts:
        """`fit`, returning the matrices the booster was fitted on (the ablation and the defence refit
        boosters on them); `gnn_trainer` replaces `fraud.models.gnn_training.fit_gnn`, `booster_fitter`
        `fraud.models.booster.fit_booster` (e.g. on Dask: `fraud.scale.booster`), each with the same signature;
        `features` computes the feature blocks (default: `InProcessFeatures`)."""


        cfg = self.cfg
        check_training_data(train, val, cfg)
        clock = {"start": time.perf_counter()}
        timings: dict[str, float] = {}

        def lap(name: str) -> None:
            now = time.perf_counter()
            timings[name] = round(now - clock["start"], 2)
            clock["start"] = now

        train = train.sort_values("timestamp", kind="stable").reset_index(drop=True)
        val = val.sort_values("timestamp", kind="stable").reset_index(drop=True)
        seed_everything(cfg.seed)
        y_tr, y_va = train["label"].to_numpy(np.int8), val["label"].to_numpy(np.int8)
        hist = History(_tail_seconds(cfg))
        # One book of every training and validation label, each used only once known (fraud/features/labels.py).
        self.labels_ = LabelBook.from_frame(pd.concat([train, val], ignore_index=True), cfg.labels)
        if cfg.parts.labels:
            self.labels_.check_known_before(int(to_ns(val["timestamp"]).min()), "validation period")
        run = features or InProcessFeatures()
        f_tr = run.behaviour(self, hist, train)
        hist_tr = hist.copy().update(train)
        f_va = run.behaviour(self, hist_tr, val)
        blocks_tr = {"base": f_tr.to_numpy(np.float32)}
        blocks_va = {"base": f_va.to_numpy(np.float32)}
        stacked = cfg.parts.autoencoder or cfg.parts.gnn  # parts that learn from labels or rows
        cut = int(len(train) * cfg.parts.base_fraction) if stacked else 0
        if stacked and cut and (y_tr[:cut].sum() < 2 or y_tr[cut:].sum() < 2):
            raise DataError(f"too few frauds to stack: {int(y_tr[:cut].sum())} in the first {cfg.parts.base_fraction:g} "
                            f"of the training period and {int(y_tr[cut:].sum())} after; use more data or "
                            "parts.base_fraction=0")
        cut = cut or len(train)  # base_fraction 0: every part learns on every training row
        lap("features_s")
        if cfg.parts.gnn or cfg.parts.paths:
            # graph.every: auto becomes the cadence of this training data (rows per snapshot, not calendar
            # time, set the graph's cost); self.cfg keeps it, so scoring, save and load use the same cadence.
            asked = cfg.graph.every
            self.cfg = cfg = replace(cfg, graph=cfg.graph.resolved(to_ns(train["timestamp"])))
            log.info("graph snapshots every %s (graph.every: %s)", cfg.graph.every, asked)
        if cfg.parts.gnn:
            from fraud.models.gnn_training import fit_gnn

            trainer = gnn_trainer or fit_gnn
            elog, rows_tr = self._gnn_rows(History(hist.tail_seconds), train)
            rows_base = type(rows_tr)(rows_tr.t[:cut], rows_tr.src[:cut], rows_tr.dst[:cut], rows_tr.attr[:cut])
            self.gnn_ = trainer(elog, rows_base, y_tr[:cut], cfg.gnn, cfg.graph, cfg.seed, progress, log_fn=log.info)
        if cfg.parts.gnn or cfg.parts.paths:
            blocks_tr.update(run.graph(self, History(hist.tail_seconds), train, progress))
            blocks_va.update(run.graph(self, hist_tr, val, progress))
            lap("graph_s")
        if cfg.parts.autoencoder:
            import torch

            from fraud.models.autoencoder import fit_autoencoder

            torch.set_num_threads(max(1, cfg.booster.n_jobs))
            self.ae_columns_ = self._ae_input_names()
            ae_tr = self._ae_matrix(blocks_tr)[:cut]
            self.ae_, self.scaler_ = fit_autoencoder(ae_tr[y_tr[:cut] == 0], cfg.autoencoder, cfg.seed, progress,
                                                     log_fn=log.info)
            blocks_tr["ae"], blocks_va["ae"] = self._ae_block(blocks_tr), self._ae_block(blocks_va)
            lap("autoencoder_s")
        self.feature_names_ = self._names()
        top = slice(cut if cut < len(train) else 0, None)  # rows the booster learns on
        x_all, x_va = self._stack(blocks_tr), self._stack(blocks_va)
        check_finite(x_all, self.feature_names_, "training")
        y_all = y_tr
        if cfg.parts.base_rows_in_booster and top.start:
            # The early rows still teach XGBoost the behaviour patterns; their (in-sample) GNN/autoencoder
            # columns are blanked to missing so no split on those columns can learn from them.
            x_tr, y_tr = x_all.copy(), y_tr
            learned = [i for i, n in enumerate(self.feature_names_) if n.startswith(("gnn_", "ae_"))]
            x_tr[: top.start, learned] = np.nan
        else:
            x_tr, y_tr = x_all[top], y_tr[top]
        self.booster_ = (booster_fitter or fit_booster)(x_tr, y_tr, x_va, y_va, self.feature_names_, cfg.booster, cfg.seed)
        p_va = predict(self.booster_, x_va)
        self.threshold_ = choose_threshold(y_va, p_va, cfg.booster)
        lap("booster_s")
        # Drift and reason-code reference: validation rows, the latest the model saw, where every history
        # window is full and the label feed has run (early training rows know no labels yet, so against
        # them every later file would look drifted).
        rng = np.random.default_rng(cfg.seed)
        ref = np.sort(rng.choice(len(x_va), min(len(x_va), 20_000), replace=False))
        self.reference_ = pd.DataFrame(x_va[ref], columns=self.feature_names_)
        drift_profile = _entity_profile(hist_tr, val.iloc[ref], p_va[ref], y_va[ref])  # before the history absorbs the validation rows
        self.history_ = hist_tr.update(val)
        self.fit_info_ = {"train_rows": len(train), "booster_rows": len(y_tr), "val_rows": len(val),
                          "train_frauds": int(train["label"].sum()),
                          "val_frauds": int(y_va.sum()), "threshold": self.threshold_,
                          "best_trees": int(self.booster_.num_boosted_rounds()), "timings": timings,
                          "drift_reference": drift_profile}
        return FitArtefacts(x_tr, y_tr, x_va, x_all, y_all)

    # ---- score ------------------------------------------------------------------------------------------
    def _history_for(self, df: pd.DataFrame, history: str) -> History:
        if history not in ("auto", "stored", "none"):
            raise ValueError(f"history must be 'auto', 'stored' or 'none', got {history!r}")
        stored_ok = len(df) == 0 or self.history_.max_ns is None or to_ns(df["timestamp"]).min() >= self.history_.max_ns
        if history == "stored" and not stored_ok:
            raise DataError("the data starts before the end of the model's stored history "
                            f"({pd.Timestamp(self.history_.max_ns, tz='UTC')}); score it with history='none' "
                            "(the file is its own history) or pass only later rows")
        if history == "none" or (history == "auto" and not stored_ok):
            if history == "auto":
                log.warning("data overlaps the model's training period: scoring it with its own earlier rows "
                            "as history (no stored history)")
            return History(self.history_.tail_seconds)
        return self.history_.copy()

    def matrix(self, df: pd.DataFrame, history: str | History = "auto", progress: bool = False,
               graph_cache: SnapshotCache | None = None) -> np.ndarray:
        """The booster's input rows [n, len(feature_names_)] for canonical frame `df` (`graph_cache`: keep
        snapshots for later calls with the same history, as the service and chunked scoring do)."""
        hist = history if isinstance(history, History) else self._history_for(df, history)
        x = self._stack(self._blocks(hist, df, progress, graph_cache))
        check_finite(x, self.feature_names_, "scoring")
        return x

    def score(self, df: pd.DataFrame, history: str = "auto", explain: bool = False,
              progress: bool = False) -> pd.DataFrame:
        """Per row of `df` (same order): transaction_id, probability, flag (+ contrib_<feature> if explain)."""
        scorer = Scorer(self, self._history_for(df, history))
        x = self.matrix(df, scorer.history, progress)
        return scorer.frame(df, x, scorer.predict(x), explain)

    def stream(self, history: str = "stored") -> StreamScorer:
        """A scorer for chunks in event order (each chunk at or after the previous one's last timestamp)."""
        return StreamScorer(self, self.history_.copy() if history == "stored" else History(self.history_.tail_seconds))

    def labels_summary(self) -> dict:
        """What the label book holds (model.json and the manifest list it)."""
        rows = self.labels_.rows
        return {"labels": len(rows), "frauds": int(rows["label"].sum()), "delay": self.cfg.labels.delay,
                "latest_known": str(pd.Timestamp(int(rows["known_ns"].max()), tz="UTC")) if len(rows) else None}

    @contextmanager
    def label_feed(self, df: pd.DataFrame):
        """Within the block, `df`'s labels (ids not yet in the book) are in the label book, each known
        `labels.delay` after its payment (or at its labelled_at): scoring a labelled period as production
        would, with confirmed labels arriving while it runs. The book is restored afterwards."""
        book = self.labels_
        if "label" in df.columns and (self.cfg.parts.labels or (self.cfg.parts.gnn and self.cfg.gnn.label_nodes)):
            new = ~df["transaction_id"].isin(book.rows["transaction_id"]).to_numpy()
            self.labels_ = book.copy().add(LabelBook.from_frame(df[new], self.cfg.labels).rows)
        try:
            yield self
        finally:
            self.labels_ = book

    def add_labels(self, raw: pd.DataFrame, seen: pd.DataFrame | None = None,
                   where: str = "labels") -> tuple[pd.DataFrame, pd.DataFrame]:
        """Add confirmed labels to the label book (fraud/stack/feedback.py): (rows added, rejects)."""
        from fraud.stack.feedback import check_feedback

        add, rejects = check_feedback(raw, self.labels_, seen, self.cfg.labels, where)
        self.labels_.add(add)
        return add, rejects

    def save_labels(self, run_dir: str | Path) -> None:
        """Rewrite a saved model's label book (after `add_labels`) and its manifest entry."""
        from shared.runs import refresh_files

        self.labels_.rows.to_parquet(Path(run_dir) / "labels.parquet", index=False)
        refresh_files(run_dir, ["labels.parquet"], extra={"labels": self.labels_summary()})

    # ---- persistence (fraud/stack/persist.py) --------------------------------------------------------------
    def save(self, run_dir: str | Path, metrics: dict | None = None, data: dict | None = None) -> Path:
        """Write the model directory (see README 'Model directory format'); returns it."""
        return save_model(self, run_dir, metrics, data)

    @classmethod
    def load(cls, run_dir: str | Path) -> FraudModel:
        """A model from a directory `save` wrote, after verifying every file's hash in the manifest."""
        return load_model(cls, run_dir)


def _entity_profile(history: History, rows: pd.DataFrame, p: np.ndarray, y: np.ndarray, likely: float = 0.5) -> dict:
    """What the drift check compares a later file's entities with (fraud/serve/drift.py), per role:
    unseen_share, the share of `rows` whose sender/receiver `history` never saw; effective_entities, the
    Kish effective number of entities (sum w)^2 / sum w^2 over rows per entity: rows of one entity share its
    history features, so a feature keyed on it has about this many independent values, not len(rows).
    likely_fraud: the same number of senders among the rows with probability `p` >= `likely`;
    confirmed_fraud: which of `rows` are fraud (labels `y`, positions) and their senders' number."""

    def kish(names: pd.Series) -> float:
        w = names.value_counts().to_numpy(np.float64)
        return round(float(w.sum() ** 2 / (w ** 2).sum()) if len(w) else 0.0, 3)

    seen = history.entity_names()
    out: dict = {"unseen_share": {}, "effective_entities": {},
                 "likely_fraud": {"likely": likely, "effective_senders": kish(rows["source"][p >= likely])},
                 "confirmed_fraud": {"rows": np.flatnonzero(y == 1).tolist(),
                                     "effective_senders": kish(rows["source"][y == 1])}}
    for role in ("source", "target"):
        names = rows[role].astype("string")
        out["unseen_share"][role] = round(float((seen.get_indexer(names) < 0).mean()) if len(rows) else 0.0, 6)
        out["effective_entities"][role] = kish(names)
    return out
