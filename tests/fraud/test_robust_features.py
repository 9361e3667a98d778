"""Robust features: a brute-force recount, chunked == whole file, off (unchanged) by default."""

import numpy as np
import pandas as pd
import pytest

from fraud.data.durations import to_ns
from fraud.features.behaviour import FeatureConfig, build_features, feature_names
from fraud.features.history import History
from fraud.features.names import describe
from tests.fixtures.fraud_frames import random_frame

CFG = FeatureConfig(windows=["1h", "24h"], neighbour_windows=["1h"], robust=True, robust_window="2d",
                    young_pair="1d")
DAY = 86400 * 10**9


def test_robust_features_match_a_brute_force_recount():
    df = random_frame(n=300, days=12, n_ent=15, seed=4)
    f = build_features(None, df, CFG)
    t = to_ns(df["timestamp"])
    s_all, d_all = df.source.to_numpy(), df.target.to_numpy()
    first = {}
    for j in np.argsort(t, kind="stable"):
        first.setdefault((s_all[j], d_all[j]), t[j])
    for i in [0, 3, 40, 101, 150, 222, 299]:
        prev = t < t[i]
        s, d, a = s_all[i], d_all[i], df.amount[i]
        pair = prev & (s_all == s) & (d_all == d)
        age = min(t[i] - t[pair].min(), 2 * DAY) if pair.any() else 0
        assert f.pair_age[i] == pytest.approx(np.log1p(age / 1e9), abs=1e-5)
        seen = prev & ((s_all == d) | (d_all == d))
        dage = min(t[i] - t[seen].min(), 2 * DAY) if seen.any() else 0
        assert f.dst_age[i] == pytest.approx(np.log1p(dage / 1e9), abs=1e-5)
        win = prev & (t >= t[i] - 2 * DAY)
        psum = df.amount[win & pair].sum() + a
        assert f.pair_sum_2d[i] == pytest.approx(np.log1p(psum), abs=1e-3)
        young = np.array([t[j] - first[(s_all[j], d_all[j])] < DAY for j in range(len(df))])
        ys = win & (s_all == s) & young
        cur = age < DAY
        assert f.src_young_cnt_2d[i] == pytest.approx(np.log1p(ys.sum() + cur), abs=1e-6)
        ysum = df.amount[ys].sum() + (a if cur else 0)
        assert f.src_young_sum_2d[i] == pytest.approx(np.log1p(ysum), abs=1e-3)
        own = prev & (s_all == s)
        if own.any():
            mean = np.log1p(df.amount[own]).mean()
            assert f.src_young_ratio[i] == pytest.approx(np.log1p(ysum) - mean, abs=1e-3)
            assert f.pair_total_ratio[i] == pytest.approx(np.log1p(psum) - mean, abs=1e-3)
        inflow = prev & (d_all == s)
        want = np.log1p((t[i] - t[inflow].max()) / 1e9) if inflow.any() else -1
        assert f.src_since_in[i] == pytest.approx(want, abs=1e-5)


def test_robust_chunks_with_history_equal_the_whole_file_exactly():
    df = random_frame(n=600, days=20, seed=5)
    whole = build_features(None, df, CFG)
    h = History(CFG.tail_seconds)
    parts = []
    for a, b in [(0, 150), (150, 151), (151, 320), (320, 600)]:
        parts.append(build_features(h, df.iloc[a:b], CFG))
        h.update(df.iloc[a:b])
    assert len(h.entities) and len(h.pairs), "old rows were folded into per-entity state"
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    assert whole["pair_age"].nunique() > 10 and (whole["src_young_cnt_2d"] > 0).any()  # not constant


def test_robust_features_are_off_by_default_and_described():
    std = FeatureConfig()
    assert not std.robust and not any(n in feature_names(std, True) for n in ("pair_age", "src_since_in"))
    assert FeatureConfig(robust=True).tail_seconds == 9 * 86400  # 7d window + 2d young-payee look-back
    extra = [n for n in feature_names(CFG, True) if n not in feature_names(FeatureConfig(**{
        **CFG.__dict__, "robust": False}), True)]
    assert len(extra) == 8
    assert all(describe(n) and "_" not in describe(n) for n in extra), [describe(n) for n in extra]
