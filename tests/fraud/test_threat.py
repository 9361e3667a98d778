"""Threat model: edits stay inside the controls and budgets, attacked frames stay valid canonical input."""

import numpy as np
import pandas as pd
import pytest

from fraud.robust.threat import (
    PRESETS,
    Edits,
    ThreatModel,
    apply_edits,
    check_canonical,
    choice_options,
    preset,
    random_edits,
)
from tests.fixtures.fraud_frames import random_frame

NS = 10**9


def labelled(n=400, seed=0) -> pd.DataFrame:
    df = random_frame(n=n, days=10, seed=seed)
    rng = np.random.default_rng(seed)
    df["label"] = (rng.random(n) < 0.25).astype("int8")
    df["typology"] = pd.array(np.where(df["label"] == 1, "card_testing", ""), dtype="string")
    df["category"] = pd.array(rng.choice(["grocery", "travel", "games"], n), dtype="string")
    df["amount"] = df["amount"].round(2)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


def check_within_threat(df, out, origin, rows, tm, bounds=None):
    """Every property a user relies on, per output row and per attacked payment."""
    check_canonical(out)
    attacked = np.zeros(len(df), bool)
    attacked[rows] = True
    src = df.iloc[origin].reset_index(drop=True)
    # Fields outside the threat model never change, on any row.
    for c in df.columns:
        if c in ("amount", "timestamp", "transaction_id") or c in tm.choice_fields:
            continue
        assert out[c].astype(object).equals(src[c].astype(object)), c
    # Rows the attacker does not own are untouched, field for field.
    keep = ~attacked[origin]
    pd.testing.assert_frame_equal(out[keep].reset_index(drop=True), src[keep].reset_index(drop=True),
                                  check_dtype=False)
    # Chosen values come from the data; choices only on attacked rows.
    for c in tm.choice_fields:
        if c in df.columns:
            assert set(out[c].dropna()) <= set(df[c].dropna())
    # Timing within the window (or clipped to the bounds).
    dt = (out["timestamp"] - src["timestamp"]).dt.total_seconds().to_numpy() * NS
    assert (np.abs(dt) <= tm.shift_ns + 1).all()
    if bounds is not None:
        t = out["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
        assert ((t >= bounds[0]) | keep).all() and ((t <= bounds[1]) | keep).all()
    # Parts: at most max_splits per payment, unique ids, part 0 keeps the original id.
    counts = np.bincount(origin, minlength=len(df))
    assert counts[~attacked].max(initial=1) == 1 and counts[attacked].max(initial=1) <= tm.max_splits
    assert out["transaction_id"].is_unique
    assert set(df["transaction_id"][rows]) <= set(out["transaction_id"])
    # Amounts: each payment's parts sum to the original within the relative budget (plus cent rounding).
    total = np.bincount(origin, weights=out["amount"].to_numpy(), minlength=len(df))
    a = df["amount"].to_numpy()
    slack = 0.01 * counts + 1e-9
    assert (total[attacked] >= a[attacked] * (1 - tm.amount_rel) - slack[attacked]).all()
    assert (total[attacked] <= a[attacked] * (1 + tm.amount_rel) + slack[attacked]).all()
    assert (out["amount"] >= 0).all()


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("budget", [0.5, 1.0, 2.0])
def test_random_edits_never_leave_the_threat_model(name, budget, sparse):
    df = labelled()
    tm = preset(name).scaled(budget)
    rows = np.flatnonzero(df["label"] == 1)
    t = df["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    bounds = (int(t.min()), int(t.max()))
    rng = np.random.default_rng(int(budget * 10))
    base = None
    for trial in range(6):  # uniform draws, then local moves around the previous edit
        edits = random_edits(len(rows), tm, rng, choice_options(df, tm), base=base, step=1.0 if trial < 3 else 0.3,
                             sparse=sparse)
        out, origin = apply_edits(df, rows, edits, tm, bounds)
        check_within_threat(df, out, origin, rows, tm, bounds)
        base = edits


def test_sparse_edits_try_each_control_alone():
    tm = preset("full").scaled(2.0)
    opts = {"category": np.array(["food", "travel"], object)}
    n = 4000

    def alone(e: Edits):
        """Per control: the share of edits that use it and no other."""
        used = np.column_stack([e.factor != 1, e.parts > 1, (e.shifts != 0).any(axis=1),
                                pd.notna(e.choices["category"])])
        return (used & (used.sum(axis=1) == 1)[:, None]).mean(axis=0)

    sparse = random_edits(n, tm, np.random.default_rng(0), opts, sparse=True)
    assert (alone(sparse) > 0.05).all()  # ~1/16 + 1/64 by design
    assert (alone(random_edits(n, tm, np.random.default_rng(0), opts)) < 0.01).all()  # uniform: almost never
    assert not (pd.isna(sparse.choices["category"]) & (sparse.factor == 1) & (sparse.parts == 1)
                & (sparse.shifts == 0).all(axis=1)).any()  # never the identity


def test_out_of_budget_edits_are_projected_back():
    df = labelled()
    tm = ThreatModel(amount_rel=0.1, time_shift="1h", max_splits=2, choice_fields=[])
    rows = np.flatnonzero(df["label"] == 1)
    n = len(rows)
    wild = Edits(np.full(n, 5.0), np.full(n, 9), np.ones((n, 2)) / 2, np.full((n, 2), 10**15, np.int64),
                 {"category": np.full(n, "casino", object)})
    out, origin = apply_edits(df, rows, wild, tm)
    check_within_threat(df, out, origin, rows, tm)
    assert "casino" not in set(out["category"])  # category is not controllable in this threat model


def test_split_payments_sum_to_the_original_amount_and_keep_ids_unique():
    df = labelled()
    tm = ThreatModel(amount_rel=0.0, time_shift="30m", max_splits=4)
    rows = np.flatnonzero(df["label"] == 1)
    edits = random_edits(len(rows), tm, np.random.default_rng(3))
    edits.parts[:] = 4
    edits.weights[:] = np.random.default_rng(4).dirichlet(np.ones(4), len(rows))
    out, origin = apply_edits(df, rows, edits, tm)
    total = np.bincount(origin, weights=out["amount"].to_numpy(), minlength=len(df))
    np.testing.assert_allclose(total[rows], df["amount"].to_numpy()[rows], atol=1e-6)
    assert out["transaction_id"].is_unique and len(out) == len(df) + 3 * len(rows)
    assert out["timestamp"].is_monotonic_increasing


def test_identity_edit_changes_nothing():
    df = labelled()
    tm = preset("full")
    rows = np.flatnonzero(df["label"] == 1)
    out, origin = apply_edits(df, rows, Edits.identity(len(rows), tm), tm)
    pd.testing.assert_frame_equal(out, df, check_dtype=False)
    assert (origin == np.arange(len(df))).all()


def test_budgets_scale_and_bad_threat_models_fail_clearly():
    tm = preset("full").scaled(2)
    assert tm.amount_rel == pytest.approx(0.6) and tm.shift_ns == 12 * 3600 * NS and tm.max_splits == 5
    assert preset("full").scaled(0).max_splits == 1
    with pytest.raises(ValueError, match="amount_rel"):
        ThreatModel(amount_rel=1.5)
    with pytest.raises(ValueError, match="max_splits"):
        ThreatModel(max_splits=0)
    with pytest.raises(ValueError, match="unknown threat model"):
        preset("everything")


def test_check_canonical_rejects_broken_frames():
    df = labelled(200)
    check_canonical(df)
    bad = df.copy()
    bad.loc[3, "transaction_id"] = bad.loc[2, "transaction_id"]
    with pytest.raises(ValueError, match="duplicate"):
        check_canonical(bad)
    bad = df.copy()
    bad.loc[0, "amount"] = -1.0
    with pytest.raises(ValueError, match="amount"):
        check_canonical(bad)
