"""The service's live history: the same features as `History` bit for bit, O(batch) updates, late rows scored
as of their own time, capacity bounds."""

import numpy as np
import pandas as pd
import pytest

from fraud.data.durations import to_ns
from fraud.features.behaviour import FeatureConfig, build_features
from fraud.features.history import History
from fraud.features.labels import LabelBook, LabelConfig
from fraud.serve.live_history import CAPACITY, LiveHistory
from tests.fixtures.fraud_frames import random_frame

CFG = FeatureConfig(windows=["1h", "24h", "2d"], neighbour_windows=["1h", "24h"])
LC = LabelConfig(delay="1d", windows=["2d"])


def _feats(h, q, book, robust=False):
    cfg = FeatureConfig(windows=CFG.windows, neighbour_windows=CFG.neighbour_windows, robust=robust,
                        robust_window="2d", young_pair="1d")
    return build_features(h, q, cfg, True, book, LC)


@pytest.mark.parametrize("robust", [False, True])
def test_views_give_the_features_of_the_whole_history_bit_for_bit(robust):
    df = random_frame(n=900, days=12, n_ent=50, seed=3)
    book = LabelBook.from_frame(df.iloc[:500], LC)
    tail_s = FeatureConfig(windows=CFG.windows, robust=robust, robust_window="2d", young_pair="1d").tail_seconds
    base = History(tail_s).update(df.iloc[:300])
    whole, live = base.copy(), LiveHistory(base.copy(), lateness_s=3600)
    for a in range(300, 880, 29):  # batches absorbed one after the other; folds happen on both sides
        q = df.iloc[a:a + 29]
        want = _feats(whole, q, book, robust)
        got = _feats(live.view(q), q, book, robust)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        whole.update(q)
        live.update(q)
    assert live.cutoff_ns is not None and len(live.to_history().entities)  # rows were folded
    full = live.to_history()
    q = df.iloc[880:]
    pd.testing.assert_frame_equal(_feats(full, q, book, robust), _feats(whole, q, book, robust), check_exact=True)


def test_a_late_row_gets_the_features_it_would_have_had_in_order():
    df = random_frame(n=600, days=8, n_ent=20, seed=4)
    t = to_ns(df["timestamp"])
    book = LabelBook.from_frame(df.iloc[:300], LC)
    in_order = LiveHistory(History(CFG.tail_seconds).update(df.iloc[:400]), lateness_s=6 * 3600)
    late_i = 430
    assert t[late_i] < t[late_i + 5]
    want = _feats(in_order.view(df.iloc[late_i:late_i + 1]), df.iloc[late_i:late_i + 1], book)
    # Arrived after the five rows behind it (all within the lateness): same features as in order.
    late = LiveHistory(History(CFG.tail_seconds).update(df.iloc[:400]), lateness_s=6 * 3600)
    late.update(df.iloc[400:late_i]).update(df.iloc[late_i + 1:late_i + 6])
    in_order.update(df.iloc[400:late_i])
    want = _feats(in_order.view(df.iloc[late_i:late_i + 1]), df.iloc[late_i:late_i + 1], book)
    got = _feats(late.view(df.iloc[late_i:late_i + 1]), df.iloc[late_i:late_i + 1], book)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    # Once absorbed, the state equals the in-order state, so every later row scores the same.
    late.update(df.iloc[late_i:late_i + 1])
    in_order.update(df.iloc[late_i:late_i + 6])
    q = df.iloc[late_i + 6:]
    pd.testing.assert_frame_equal(_feats(late.view(q), q, book), _feats(in_order.view(q), q, book), check_exact=True)


def test_an_update_costs_the_batch_not_the_history():
    """Absorbing appends to arrays that grow by doubling, and a small request's view never builds the tail."""
    df = random_frame(n=4000, days=30, n_ent=300, seed=5)
    live = LiveHistory(History(CFG.tail_seconds), lateness_s=3600)
    live.update(df.iloc[:3000])
    arr, grown = live._t.a, 0  # noqa: SLF001
    for i in range(3000, 3400):
        live.view(df.iloc[i:i + 1])
        live.update(df.iloc[i:i + 1])
        grown += live._t.a is not arr  # noqa: SLF001
        arr = live._t.a  # noqa: SLF001
    assert grown <= 1 and live._frame is None  # noqa: SLF001
    assert live.sizes()["tail_rows"] < 3400  # old rows were folded, a few at a time


def test_rows_that_would_pass_the_integer_capacity_are_flagged():
    df = random_frame(n=200, days=4, n_ent=5, seed=6)
    live = LiveHistory(History(CFG.tail_seconds).update(df.iloc[:190]))
    q = df.iloc[190:]
    assert not live.over_capacity(q).any()
    code = live.known(q["source"].iloc[:1])[0]
    live._all["out"]["lsq"][code] = CAPACITY - 10  # noqa: SLF001 - an entity with a near-full square sum
    bad = live.over_capacity(q)
    assert bad.any() and (bad == (q["source"] == q["source"].iloc[0]).to_numpy()).all()
    # The features of everything else stay exact integers far from overflow.
    assert np.isfinite(_feats(live.view(q[~bad]), q[~bad], LabelBook()).to_numpy()).all()
