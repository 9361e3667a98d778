"""Drift of a scored file against the model's reference: a test per input kind, PSI, and unseen entities.

Reference: `reference_features.parquet`, up to 20k rows of the model's validation period: the latest data
it saw, with every history window full and the label feed running (early training rows know no labels
yet and would make every later file look drifted).

Each model input is compared by the test that suits its kind (statistics in `fraud.serve.drift_stats`):

| kind | inputs | test | effect size flagged above |
|---|---|---|---|
| continuous | more than `bins` distinct reference values | two-sample KS | KS distance D > `ks_threshold` |
| categorical | at most `bins` distinct values (pair_is_new, ...) | chi-square | Cramer's V > `v_threshold` |
| embedding | learned blocks gnn_src*, gnn_dst*, ae_z* | KS per dimension | the block's largest D > `embedding_threshold` |

and flagged only when the test's p-value is also below `p_value` (a small file's noise). An input keyed on
the sender or the receiver takes its p-value from their Kish effective number, not the rows (`effective`). PSI (10 reference
quantile bins, point masses in bins of their own) is reported for every input, as teams know its scale,
but does not decide: its size depends on the bins. A learned block is reported once: its dimensions are
coordinates of one vector, not separate inputs a person could act on.

Not flagged, by construction (still measured): calendar inputs (a 2-day file "drifts" in weekday);
expanding totals (history length, distinct counterparties, earlier payments of a pair: they grow with the
age of the history); and what the team knows from labels (`*_known_*`, `*_nbr_fraud_*`, `*_secs_known_fraud`):
these follow the handful of fraud cases confirmed in the last weeks, not how customers pay, so two periods
of the same world differ on them as much as their cases do; and the autoencoder's outputs (`ae_*`): it
reconstructs the expanding totals too, so its error grows with the history's age (KS 0.4-0.6 on a later
file of the same world).

Unseen entities: senders/receivers absent from the model's stored history, per row and per distinct name,
flagged when the share of rows with an unseen one exceeds the validation period's share (against the
training history, stored at fit) by more than `unseen_threshold`.

Model outputs and labels (`fraud.serve.drift_scores`): the rows scored as likely fraud, and the rows whose
fraud label the model's label book already holds (after `fraud feedback`), against the same rows of the
reference: what a new typology mix at the same fraud rate changes.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fraud.data.durations import to_ns
from fraud.features.labels import LabelBook
from fraud.serve.drift_scores import ConfirmedDrift, SubsetDrift, kish
from fraud.serve.drift_stats import bin_counts, bin_edges, chi_square, ks, psi, quantile_of
from fraud.serve.reasons import phrase

ROLES = {"source": "senders", "target": "receivers"}
EMBEDDING = re.compile(r"^(gnn_src|gnn_dst|ae_z)\d+$")
CALENDAR = ("weekday", "hour_sin", "hour_cos")
EXPANDING = ("src_n_hist", "dst_n_hist", "src_distinct", "dst_distinct", "src_in_distinct", "dst_out_distinct",
             "pair_n_prev")
PROFILE_LINES = 5  # warning lines per subset of rows (likely fraud, confirmed fraud) before a summary line
LABEL_FEED = re.compile(r"^(src|dst)_(known_|nbr_fraud_|secs_known_fraud)")


@dataclass
class DriftConfig:
    """Thresholds of the drift tests (effect sizes chosen on same-distribution calibration files, see
    docs/fraud-scoring.md "Drift") and the bins they are computed on."""

    ks_threshold: float = 0.1
    v_threshold: float = 0.1
    embedding_threshold: float = 0.15
    unseen_threshold: float = 0.05  # excess share of rows with an unseen sender (or receiver)
    likely: float = 0.5  # probability from which a row counts as likely fraud (fraud/serve/drift_scores.py)
    profile_threshold: float = 0.3  # KS D / Cramer's V of an input among the likely-fraud rows
    # The two label tests hold on the effect alone (their p-values are over-confident: confirmed cases of two
    # periods of one world differ by typology, not only by sender): 1.25 x the largest effect on 16
    # same-distribution calibration files (benchmarks/bench_drift.py, UNGATED).
    confirmed_threshold: float = 0.61  # KS D / Cramer's V of an input among the confirmed-fraud rows
    recall_threshold: float = 0.28  # change of the model's recall on confirmed fraud (absolute)
    p_value: float = 1e-3
    bins: int = 10  # PSI bins; inputs with at most this many distinct values are categorical
    ks_bins: int = 50
    mass: float = 0.05  # a value holding this share of the reference gets its own bin
    min_rows: int = 200  # below this, every test is mostly sampling noise: computed but nothing flagged
    ignore: tuple[str, ...] = (*CALENDAR, *EXPANDING)  # plus the label-feed inputs (LABEL_FEED)

    def __post_init__(self):
        if self.bins < 2 or self.ks_bins < 2:
            raise ValueError(f"drift bins and ks_bins must be >= 2, got {self.bins} and {self.ks_bins}")
        for name in ("ks_threshold", "v_threshold", "embedding_threshold", "unseen_threshold", "p_value", "mass",
                     "likely", "profile_threshold", "confirmed_threshold", "recall_threshold"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"drift {name} must be in (0, 1), got {getattr(self, name)}")


    def not_flagged(self, feature: str) -> str | None:
        """Why `feature` is measured but never flagged, or None."""
        if feature in CALENDAR:
            return "calendar"
        if LABEL_FEED.match(feature):
            return "label feed"
        if feature.startswith("ae_"):
            return "autoencoder of expanding totals"
        if feature in self.ignore:
            return "expanding total"
        return None


def feature_kind(name: str, ref: np.ndarray, bins: int) -> str:
    """'embedding', 'categorical' or 'continuous' for the reference column `ref` [n] of input `name`."""
    if EMBEDDING.match(name):
        return "embedding"
    return "categorical" if len(np.unique(ref[np.isfinite(ref)])) <= bins else "continuous"


def _block(name: str) -> str:
    return EMBEDDING.match(name).group(1)


def _role(name: str) -> str | None:
    """The entity an input is keyed on: 'source' for the sender's state (src_*, gnn_src*), 'target' for the
    receiver's, 'both' for the GNN's score of the edge (from both embeddings), None for inputs of the row
    or the pair (amount, time, pair_*, ...)."""
    if name == "gnn_edge_logit":
        return "both"
    if name.startswith(("src_", "gnn_src")):
        return "source"
    if name.startswith(("dst_", "gnn_dst")):
        return "target"
    return None


class DriftMonitor:
    """Accumulates a file's feature histograms (bins from the reference) and unseen-entity counts.

    reference: booster input rows of the reference period (columns = model inputs); known_entities: names in
    the model's history; profile: the model's `fit_info_['drift_reference']` ({'unseen_share': {role: share
    of reference rows whose entity was unseen then}, 'effective_entities': {role: Kish effective number}};
    None: unseen compared with 0 and every reference row independent); reference_probability [n]: the
    model's probabilities of the reference rows (None: no model-output drift, see `drift_scores`);
    book: the model's `LabelBook` (None: no confirmed-fraud drift), threshold: the model's flag threshold,
    and the profile's 'confirmed_fraud' entry (the reference's fraud rows), both needed with it.
    """

    def __init__(self, reference: pd.DataFrame, known_entities: pd.Index | None = None,
                 cfg: DriftConfig | None = None, profile: dict | None = None,
                 reference_probability: np.ndarray | None = None, book: LabelBook | None = None,
                 threshold: float | None = None):
        self.cfg = cfg or DriftConfig()
        self.features = list(reference.columns)
        ref = reference.to_numpy(np.float64)
        self.reference_rows = len(ref)
        self.kinds = [feature_kind(f, ref[:, j], self.cfg.bins) for j, f in enumerate(self.features)]
        self.block_dims = Counter(_block(f) for f, k in zip(self.features, self.kinds, strict=True)
                                  if k == "embedding")
        self.psi_edges = [bin_edges(ref[:, j], self.cfg.bins, self.cfg.mass) for j in range(ref.shape[1])]
        self.test_edges = [self.psi_edges[j] if k == "categorical" else bin_edges(ref[:, j], self.cfg.ks_bins,
                                                                                   self.cfg.mass)
                           for j, k in enumerate(self.kinds)]
        self.ref_psi, self.ref_test = bin_counts(ref, self.psi_edges), bin_counts(ref, self.test_edges)
        # categorical bins are the reference's values: (-inf, v0], (v0, v1], ..., (v_k-1, +inf)
        self.values = [np.unique(ref[np.isfinite(ref[:, j]), j]) if k == "categorical" else None
                       for j, k in enumerate(self.kinds)]
        # A reference's missing values (the booster's earliest rows have their GNN/autoencoder columns
        # blanked; scoring never produces them) are not a share of its distribution.
        for c in (*self.ref_psi, *self.ref_test):
            c[-1] = 0
        self.new_psi = [np.zeros_like(c) for c in self.ref_psi]
        self.new_test = [np.zeros_like(c) for c in self.ref_test]
        self.known = known_entities if known_entities is not None else pd.Index([], dtype="string")
        profile = profile or {}
        self.reference_unseen = dict(profile.get("unseen_share", {}))
        self.reference_entities = dict(profile.get("effective_entities", {}))
        self.roles = [_role(f) for f in self.features]
        self.rows = 0
        self.unseen_rows = {"source": 0, "target": 0}
        self._entities = {"source": Counter(), "target": Counter()}
        self.scores = self.confirmed = None
        if reference_probability is not None:
            p_ref = np.asarray(reference_probability)
            likely = profile.get("likely_fraud", {})
            senders = likely.get("effective_senders") if likely.get("likely") == self.cfg.likely else None
            self.scores = SubsetDrift(self.features, ref, p_ref >= self.cfg.likely, self.test_edges, self.kinds,
                                      senders)
            conf = profile.get("confirmed_fraud")
            if book is not None and conf is not None and threshold is not None:
                ref_label = np.zeros(len(ref), np.int8)
                ref_label[np.asarray(conf["rows"], np.int64)] = 1
                self.confirmed = ConfirmedDrift(self.features, ref, ref_label, p_ref, threshold, self.test_edges,
                                                self.kinds, conf.get("effective_senders"))
                rows = book.rows.drop_duplicates("transaction_id", keep="last")
                self._label_ids = pd.Index(rows["transaction_id"], dtype="string")
                self._label_ts = rows["ts_ns"].to_numpy(np.int64)
                self._label_values = rows["label"].to_numpy(np.int8)

    @classmethod
    def for_model(cls, model, cfg: DriftConfig | None = None) -> DriftMonitor:
        """The monitor of a fitted or loaded `FraudModel` (its reference, history and validation baseline)."""
        from fraud.models.booster import predict

        p_ref = predict(model.booster_, model.reference_.to_numpy(np.float32))
        return cls(model.reference_, model.history_.entity_names(), cfg, model.fit_info_.get("drift_reference"),
                   p_ref, getattr(model, "labels_", None), getattr(model, "threshold_", None))

    def labels_of(self, df: pd.DataFrame) -> np.ndarray:
        """Label per row of canonical `df` [n]: 1 fraud, 0 not, -1 not in the label book (yet). A book entry
        counts only for a row with its id and its payment time: an id reused by another system is not it."""
        pos = self._label_ids.get_indexer(pd.Index(df["transaction_id"], dtype="string"))
        hit = pos >= 0
        hit[hit] = self._label_ts[pos[hit]] == to_ns(df["timestamp"])[hit]
        return np.where(hit, self._label_values[pos], -1).astype(np.int8)

    def update(self, x: np.ndarray, df: pd.DataFrame, probability: np.ndarray | None = None,
               labels: np.ndarray | None = None) -> None:
        """Absorb the booster matrix rows x [n, d] (columns = reference columns) of canonical frame `df` and
        their probabilities [n] (needed for the model-output drift when the monitor has reference ones);
        `labels` [n] (1/0/-1 unknown) replace the label book's for the confirmed-fraud drift."""
        x = np.asarray(x)
        if self.scores is not None and probability is not None:
            p = np.asarray(probability)
            senders = df["source"].astype("string").to_numpy()
            self.scores.update(x, p >= self.cfg.likely, senders)
            if self.confirmed is not None:
                lab = np.asarray(labels) if labels is not None else self.labels_of(df)
                self.confirmed.update_labelled(x, p, lab, senders)
        for totals, edges in ((self.new_psi, self.psi_edges), (self.new_test, self.test_edges)):
            for total, add in zip(totals, bin_counts(x, edges), strict=True):
                total += add
        self.rows += len(x)
        for role in ROLES:
            names = df[role].astype("string").to_numpy()
            unseen = self.known.get_indexer(names) < 0
            self.unseen_rows[role] += int(unseen.sum())
            self._entities[role].update(pd.Series(names).value_counts(sort=False).to_dict())

    def absorb(self, other: DriftMonitor) -> None:
        """Add the counts of `other` (a monitor of the same model and config, e.g. over another partition of
        the same file): the result equals one monitor that saw both parts' rows."""
        for mine, theirs in ((self.new_psi, other.new_psi), (self.new_test, other.new_test)):
            for total, add in zip(mine, theirs, strict=True):
                total += add
        self.rows += other.rows
        for role in ROLES:
            self.unseen_rows[role] += other.unseen_rows[role]
            self._entities[role].update(other._entities[role])
        if self.scores is not None and other.scores is not None:
            self.scores.absorb(other.scores)
        if self.confirmed is not None and other.confirmed is not None:
            self.confirmed.absorb(other.confirmed)

    def effective(self, role: str | None) -> tuple[float | None, float | None]:
        """(reference, file) independent values behind an input keyed on `role` (None: a row-level input).

        Rows of one sender share its history features (and its GNN embedding), so a feature keyed on the
        sender has about as many independent values as there are senders, weighted by their rows: Kish's
        (sum w)^2 / sum w^2. On the demo data one merchant receives 35 % of the payments and the receivers'
        effective number is 8, so a receiver feature moves by whole merchants; counting rows as
        independent made such moves look significant in every later file.
        """
        if role is None:
            return None, None
        if role == "both":
            (r0, f0), (r1, f1) = self.effective("source"), self.effective("target")
            return (min(r0, r1) if r0 and r1 else None), (min(f0, f1) if f0 and f1 else None)
        file_eff = kish(self._entities[role].values()) or None
        return self.reference_entities.get(role), file_eff

    def _feature(self, j: int) -> dict:
        f, kind, cfg = self.features[j], self.kinds[j], self.cfg
        ref, new, edges = self.ref_test[j], self.new_test[j], self.test_edges[j]
        n_eff, m_eff = self.effective(self.roles[j])
        out = {"kind": kind, "description": phrase(f), "psi": round(psi(self.ref_psi[j], self.new_psi[j]), 6)}
        if self.roles[j]:
            out["keyed_on"] = self.roles[j]
        if kind == "categorical":
            v, p = chi_square(ref, new, n_eff, m_eff)
            out.update(test="chi-square", effect=round(v, 6), p_value=p, threshold=cfg.v_threshold)
            p_ref, p_new = ref / max(ref.sum(), 1), new / max(new.sum(), 1)
            b = int(np.argmax(np.abs(p_new - p_ref)))
            out["largest_change"] = {"value": _value_label(self.values[j], b), "reference_share": round(float(p_ref[b]), 6),
                                     "share": round(float(p_new[b]), 6)}
        else:
            d, p = ks(ref, new, n_eff, m_eff)
            out.update(test="ks", effect=round(d, 6), p_value=p,
                       threshold=cfg.ks_threshold if kind == "continuous" else cfg.embedding_threshold)
            out["reference_median"] = quantile_of(ref, edges, 0.5)
            out["median"] = quantile_of(new, edges, 0.5)
        why = cfg.not_flagged(f)
        if why:
            out["not_flagged"] = why
        enough = self.rows >= cfg.min_rows
        # a learned block is one test per dimension: Bonferroni over its dimensions
        alpha = cfg.p_value / (self.block_dims[_block(f)] if kind == "embedding" else 1)
        out["flagged"] = bool(enough and not why and out["effect"] > out["threshold"] and p < alpha)
        return out

    def result(self) -> dict:
        """The drift.json content (see docs/fraud-scoring.md)."""
        per = {f: self._feature(j) for j, f in enumerate(self.features)}
        blocks: dict[str, dict] = {}
        for f, r in per.items():
            if r["kind"] == "embedding":
                b = blocks.setdefault(_block(f), {"dims": 0, "effect": 0.0, "worst": f, "flagged": False})
                b["dims"] += 1
                if r["effect"] > b["effect"]:
                    b.update(effect=r["effect"], worst=f, p_value=r["p_value"])
                b["flagged"] |= r.pop("flagged")
        for b in blocks.values():
            b["description"] = phrase(b["worst"])
            b["threshold"] = self.cfg.embedding_threshold
        enough = self.rows >= self.cfg.min_rows
        unseen = {}
        for role in ROLES:
            names = list(self._entities[role])
            d = len(names)
            n_unseen = int((self.known.get_indexer(pd.Index(names, dtype="string")) < 0).sum()) if d else 0
            share = self.unseen_rows[role] / self.rows if self.rows else 0.0
            base = float(self.reference_unseen.get(role, 0.0))
            ref_eff, file_eff = self.effective(role)
            unseen[role] = {"rows_share": round(share, 6), "reference_rows_share": round(base, 6),
                            "distinct": d, "distinct_unseen": n_unseen,
                            "distinct_share": round(n_unseen / d, 6) if d else 0.0,
                            "effective_entities": round(file_eff or 0.0, 3),
                            "reference_effective_entities": ref_eff,
                            "flagged": bool(enough and share - base > self.cfg.unseen_threshold)}
        drifted = sorted([f for f, r in per.items() if r.get("flagged")] + [b for b, r in blocks.items()
                                                                            if r["flagged"]],
                         key=lambda k: -(per.get(k) or blocks[k])["effect"])
        output = {}
        if self.scores is not None and self.scores.rows:
            cfg = self.cfg
            skip = lambda f: cfg.not_flagged(f) is not None  # noqa: E731
            share = {"likely": cfg.likely, **self.scores.share()}
            prof = self.scores.profile(cfg.profile_threshold, cfg.p_value, skip)
            for r in prof.values():
                r["flagged"] &= enough
            output = {"likely_fraud": share, "likely_fraud_profile": prof,
                      "drifted": sorted((f for f, r in prof.items() if r["flagged"]), key=lambda f: -prof[f]["effect"])}
            if self.confirmed is not None:
                output.update(self._confirmed(enough, skip))
        return {"rows": self.rows, "reference_rows": self.reference_rows, "enough_rows": enough,
                "thresholds": {"ks": self.cfg.ks_threshold, "cramers_v": self.cfg.v_threshold,
                               "embedding_ks": self.cfg.embedding_threshold, "p_value": self.cfg.p_value,
                               "unseen_excess": self.cfg.unseen_threshold, "min_rows": self.cfg.min_rows,
                               "likely": self.cfg.likely,
                               "likely_profile": self.cfg.profile_threshold,
                               "confirmed_profile": self.cfg.confirmed_threshold,
                               "recall_change": self.cfg.recall_threshold},
                "model_output": output,
                "drifted": drifted, "unseen_drifted": [r for r in ROLES if unseen[r]["flagged"]],
                "features": per, "embeddings": blocks,
                "psi": {f: r["psi"] for f, r in per.items()}, "unseen_entities": unseen}

    def _confirmed(self, enough: bool, skip) -> dict:
        """The confirmed-fraud part of model_output: fraud share of the labelled rows (reported), recall at
        the threshold and the profile (flagged; both two-sided, a mix the model finds easier is drift too)."""
        c, cfg = self.confirmed, self.cfg
        share = {"scored_rows": c.scored, "labelled_rows": c.rows, **c.share()}
        recall = c.recall()
        recall["flagged"] = bool(enough and recall["effect"] > cfg.recall_threshold and recall["p_value"] < cfg.p_value)
        prof = c.profile(cfg.confirmed_threshold, cfg.p_value, skip) if c.high else {}
        for r in prof.values():
            r["flagged"] &= enough
        return {"confirmed_fraud": share, "confirmed_fraud_recall": recall, "confirmed_fraud_profile": prof,
                "confirmed_drifted": sorted((f for f, r in prof.items() if r["flagged"]),
                                            key=lambda f: -prof[f]["effect"])}

    def write(self, path: str | Path) -> dict:
        res = self.result()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res, indent=2), encoding="utf-8")
        return res


def _value_label(values: np.ndarray, b: int) -> str:
    """The reference value of categorical bin b (one bin per reference value, then the missing bin)."""
    return f"{values[b]:g}" if b < len(values) else "missing"


def _fmt(feature: str, v: float | None) -> str:
    """A median in the feature's own units: log1p amounts and counts back to money and counts."""
    if v is None:
        return "-"
    if (feature == "log_amount" or re.search(r"_(cnt|sum)_", feature)):
        return f"{np.expm1(v):,.1f}"
    return f"{v:.3g}"


def drift_warnings(result: dict) -> list[str]:
    """One warning line per drifted input (largest effect first) and per role with too many unseen
    entities; empty when nothing drifted."""
    lines = []
    for name in result["drifted"]:
        if name in result["embeddings"]:
            b = result["embeddings"][name]
            lines.append(f"drift warning: {b['description']} ({name}, {b['dims']} dims): largest KS distance "
                         f"{b['effect']:.2f} > {b['threshold']:g} (in {b['worst']})")
            continue
        r = result["features"][name]
        if r["test"] == "chi-square":
            c = r["largest_change"]
            size = (f"Cramer's V {r['effect']:.2f} > {r['threshold']:g}; share of value {c['value']} "
                    f"{100 * c['reference_share']:.1f} % -> {100 * c['share']:.1f} %")
        else:
            size = (f"KS distance {r['effect']:.2f} > {r['threshold']:g}; median "
                    f"{_fmt(name, r['reference_median'])} -> {_fmt(name, r['median'])}")
        lines.append(f"drift warning: {r['description']} ({name}): {size}; PSI {r['psi']:.2f}")
    for role in result.get("unseen_drifted", []):
        u = result["unseen_entities"][role]
        lines.append(f"drift warning: {ROLES[role]} not in the model's history: {100 * u['rows_share']:.1f} % of "
                     f"rows vs {100 * u['reference_rows_share']:.1f} % in the validation period "
                     f"({u['distinct_unseen']:,} of {u['distinct']:,} distinct)")
    out = result.get("model_output") or {}
    th = result["thresholds"]
    lines += _profile_lines("rows the model scores as likely fraud", out.get("drifted", []),
                            out.get("likely_fraud_profile", {}), th.get("likely_profile"))
    rec = out.get("confirmed_fraud_recall") or {}
    if rec.get("flagged"):
        lines.append(f"drift warning: the model flags {100 * rec['recall']:.1f} % of the {rec['confirmed']:,} "
                     f"confirmed frauds in this file vs {100 * rec['reference_recall']:.1f} % in the validation "
                     f"period (threshold {rec['threshold']:.3g}; another fraud mix)")
    lines += _profile_lines("confirmed fraud", out.get("confirmed_drifted", []), out.get("confirmed_fraud_profile", {}),
                            th.get("confirmed_profile"))
    if not result.get("enough_rows", True):
        lines.append(f"drift: only {result['rows']} rows scored; the tests are not reliable below "
                     f"{result['thresholds']['min_rows']} rows, nothing flagged")
    return lines


def _profile_lines(rows: str, names: list[str], profile: dict, threshold: float) -> list[str]:
    """Warnings for the inputs `names` (largest effect first) drifted within a subset of rows (likely fraud,
    confirmed fraud): one line each for the first PROFILE_LINES, then one line naming the rest, since one
    new fraud mix moves many inputs of the same rows at once."""
    lines = []
    for name in names[:PROFILE_LINES]:
        r = profile[name]
        stat = "Cramer's V" if r["test"] == "chi-square" else "KS distance"
        size = f"{stat} {r['effect']:.2f} > {threshold:g}"
        if r["test"] == "ks":
            size += f"; median {_fmt(name, r['reference_median'])} -> {_fmt(name, r['median'])}"
        lines.append(f"drift warning: {rows} changed in {phrase(name)} ({name}): {size} (another fraud mix)")
    if len(names) > PROFILE_LINES:
        lines.append(f"drift warning: {rows} changed in {len(names) - PROFILE_LINES} more inputs: "
                     f"{', '.join(names[PROFILE_LINES:])} (sizes in the drift report)")
    return lines
