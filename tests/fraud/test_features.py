"""Point-in-time features: correct against a brute-force recount, and no leak from the current or later rows."""

import numpy as np
import pandas as pd
import pytest

from fraud.data.durations import parse_duration, to_ns
from fraud.features.behaviour import FeatureConfig, build_features, feature_names
from fraud.features.history import History
from tests.fixtures.fraud_frames import frame, random_frame

CFG = FeatureConfig(windows=["1h", "24h", "2d"], neighbour_windows=["1h", "24h"])


def test_matches_a_brute_force_recount_of_strictly_earlier_rows():
    df = random_frame()
    f = build_features(None, df, CFG)
    t = to_ns(df["timestamp"])
    for i in [0, 5, 50, 101, 102, 250, 399]:
        prev = df[t < t[i]]
        pt = to_ns(prev["timestamp"])
        s, d = df.source[i], df.target[i]
        ps = prev[prev.source == s]
        in_24h = (pt >= t[i] - 86400 * 10**9)
        assert f.src_cnt_24h[i] == pytest.approx(np.log1p((in_24h & (prev.source == s).to_numpy()).sum()), abs=1e-6)
        assert f.dst_sum_2d[i] == pytest.approx(np.log1p(prev.amount[(pt >= t[i] - 2 * 86400 * 10**9)
                                                                     & (prev.target == d).to_numpy()].sum()), abs=1e-4)
        assert f.src_distinct[i] == pytest.approx(np.log1p(ps.target.nunique()), abs=1e-6)
        assert f.dst_out_distinct[i] == pytest.approx(np.log1p(prev[prev.source == d].target.nunique()), abs=1e-6)
        assert f.pair_n_prev[i] == pytest.approx(np.log1p(((prev.source == s) & (prev.target == d)).sum()), abs=1e-6)
        assert f.pair_rev_n_prev[i] == pytest.approx(np.log1p(((prev.source == d) & (prev.target == s)).sum()),
                                                     abs=1e-6)
        if len(ps):
            la = np.log1p(ps.amount)
            assert f.src_amt_ratio[i] == pytest.approx(np.log1p(df.amount[i]) - la.mean(), abs=1e-3)
            assert f.src_secs_prev[i] == pytest.approx(np.log1p((t[i] - pt[prev.source == s].max()) / 1e9), abs=1e-5)
        else:
            assert f.src_secs_prev[i] == -1 and f.src_amt_ratio[i] == 0
    assert list(f.columns) == feature_names(CFG, neighbour=True)


def test_changing_current_and_future_rows_never_moves_earlier_features():
    df = random_frame(seed=1)
    t = to_ns(df["timestamp"])
    before = build_features(None, df, CFG)
    cut = t[200]
    later = t >= cut  # the row at `cut` itself and everything after it (including ties)
    changed = df.copy()
    rng = np.random.default_rng(9)
    changed.loc[later, "amount"] = rng.gamma(1, 500, later.sum())
    changed.loc[later, "target"] = pd.array(rng.choice(["E1", "E2", "NEW"], later.sum()), dtype="string")
    changed = pd.concat([changed, changed[later].assign(transaction_id="extra")], ignore_index=True)  # more future
    after = build_features(None, changed, CFG)
    pd.testing.assert_frame_equal(before[~later], after.iloc[: len(df)][~later])
    # and the changed rows did move (the test can fail)
    assert not before[later].equals(after.iloc[: len(df)][later])


def test_rows_sharing_a_timestamp_do_not_see_each_other_and_row_order_does_not_matter():
    df = frame([0, 100, 100, 100], ["A", "A", "A", "A"], ["M", "M", "N", "M"], [10, 20, 30, 40])
    f = build_features(None, df, CFG)
    assert np.allclose(f.src_cnt_1h.iloc[1:], np.log1p(1))
    shuffled = df.sample(frac=1, random_state=3)
    pd.testing.assert_frame_equal(build_features(None, shuffled, CFG).loc[df.index], f)


def test_chunks_with_history_equal_the_whole_file_exactly():
    df = random_frame(seed=2)
    whole = build_features(None, df, CFG)
    h = History(CFG.tail_seconds)
    parts = []
    for a, b in [(0, 100), (100, 101), (101, 103), (103, 300), (300, 400)]:
        parts.append(build_features(h, df.iloc[a:b], CFG))
        h.update(df.iloc[a:b])
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    assert len(h.entities) and len(h.pairs), "old rows were folded into per-entity state"
    assert to_ns(h.tail["timestamp"]).min() >= h.cutoff_ns


def test_history_refuses_rows_out_of_order_and_bad_durations():
    df = random_frame()
    h = History(CFG.tail_seconds).update(df.iloc[100:])
    with pytest.raises(ValueError, match="non-decreasing"):
        h.update(df.iloc[:10])
    with pytest.raises(ValueError, match="before the end of the stored history"):
        build_features(h, df.iloc[:10], CFG)
    with pytest.raises(ValueError, match="number followed by"):
        parse_duration("7 days")
    assert parse_duration("7d") == 7 * 86400


def test_every_model_column_has_a_human_description():
    from fraud.features.names import describe

    names = feature_names(CFG, neighbour=True) + ["path_return_hops", "ae_log_error", "ae_z0", "gnn_src1",
                                                  "gnn_edge_logit"]
    texts = [describe(n) for n in names]
    assert all(t and "_" not in t for t in texts), [t for t in texts if "_" in t]
    assert describe("dst_sum_24h") == "receiver: amount received in the last 24h"


@pytest.mark.parametrize("robust", [False, True])
def test_small_batches_read_only_their_entities_events_with_identical_results(monkeypatch, robust):
    """A one-transaction request reads only its sender's and receiver's tail events; nothing may change."""
    import dataclasses

    import fraud.features.history as features

    cfg = dataclasses.replace(CFG, robust=robust)
    df = random_frame(n_ent=60, seed=5)
    h = History(cfg.tail_seconds).update(df.iloc[:380])
    filtered = [build_features(h, df.iloc[a:b], cfg) for a, b in [(380, 381), (381, 384), (384, 390)]]
    assert 0 < len(h.involving(df.iloc[380:381])) < len(h.tail) / 3  # the fast path ran
    monkeypatch.setattr(features.History, "involving", lambda self, q: self.tail)
    for (a, b), got in zip([(380, 381), (381, 384), (384, 390)], filtered, strict=True):
        pd.testing.assert_frame_equal(got, build_features(h, df.iloc[a:b], cfg), check_exact=True)


def test_the_tail_name_codes_follow_updates_folds_and_new_entities():
    """History.involving keeps entity codes across updates (new names, lazy folds, copies): always the tail
    rows whose sender or receiver is one of the request's."""
    df = random_frame(n=500, days=12, n_ent=40, seed=8)
    df.loc[df.index[450:], "target"] = "newcomer"  # a name first seen after the codes were built
    h = History(CFG.tail_seconds).update(df.iloc[:200])
    h.involving(df.iloc[200:201])  # builds the codes
    for i in range(200, 500, 7):
        q = df.iloc[i:i + 3]
        names = set(q["source"]) | set(q["target"])
        want = h.tail[h.tail["source"].isin(names) | h.tail["target"].isin(names)]
        got = (h.copy() if i % 2 else h).involving(q)
        pd.testing.assert_frame_equal(got, want)
        h.update(df.iloc[i:i + 7])
    assert h.cutoff_ns is not None and h.tail["timestamp"].min() > df["timestamp"].min()  # folds happened
    assert len(h.names.code) == len(set(h.tail["source"]) | set(h.tail["target"]))  # folded names are dropped


def test_row_by_row_history_folds_lazily_but_gives_the_same_features_and_a_bounded_tail():
    from fraud.features.history import FOLD_SLACK

    df = random_frame(n=400, days=10, n_ent=30, seed=6)
    one = History(CFG.tail_seconds).update(df.iloc[:300])
    many = History(CFG.tail_seconds)
    span = 0
    for i in range(300):
        many.update(df.iloc[i:i + 1])
        tail_t = to_ns(many.tail["timestamp"])
        span = max(span, int(tail_t.max() - tail_t.min()))
    assert span <= (1 + FOLD_SLACK) * CFG.tail_seconds * 10**9 + 1  # overdue rows are folded in time
    assert len(many.entities) and len(many.pairs)  # and some were folded
    pd.testing.assert_frame_equal(build_features(many, df.iloc[300:], CFG), build_features(one, df.iloc[300:], CFG),
                                  check_exact=True)


def test_hashed_membership_equals_np_isin():
    from fraud.features.views import member

    rng = np.random.default_rng(3)
    keys = rng.integers(-1, 10**9, 5000)
    values = np.r_[keys[rng.integers(0, len(keys), 300)], rng.integers(-1, 10**9, 300)]
    got = member(keys, values)
    assert got.dtype == bool and 0 < got.sum() < len(keys)
    np.testing.assert_array_equal(got, np.isin(keys, values))
    np.testing.assert_array_equal(member(keys, values[:0]), np.zeros(len(keys), bool))
    assert len(member(keys[:0], values)) == 0
