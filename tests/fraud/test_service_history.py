"""The service's live history: the same features as `History` bit for bit, O(batch) updates, late rows scored
as of their own time, capacity bounds."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraud.data.durations import to_ns
from fraud.features.behaviour import FeatureConfig, build_features, coded_features, feature_names
from fraud.features.history import History
from fraud.features.labels import LabelBook, LabelConfig
from fraud.serve.live_history import CAPACITY, LiveHistory
from tests.fixtures.fraud_frames import random_frame

CFG = FeatureConfig(windows=["1h", "24h", "2d"], neighbour_windows=["1h", "24h"])
LC = LabelConfig(delay="1d", windows=["2d"])


def _cfg(robust=False):
    return FeatureConfig(windows=CFG.windows, neighbour_windows=CFG.neighbour_windows, robust=robust,
                         robust_window="2d", young_pair="1d")


def _feats(h, q, book, robust=False):
    return build_features(h, q, _cfg(robust), True, book, LC)


def _coded(live, q, book, robust=False):
    """The service's path: features from the live history's coded arrays, no frame in between."""
    c = live.coded(to_ns(q["timestamp"]), q["amount"].to_numpy(), q["source"].tolist(), q["target"].tolist())
    return pd.DataFrame(coded_features(c, _cfg(robust), True, book, LC), columns=feature_names(_cfg(robust), True, LC),
                        index=q.index)


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
        fresh = q.iloc[:3].assign(source=pd.array(["new-a", "E1", "new-a"], dtype="string"),
                                  target=pd.array(["E2", "new-b", "new-a"], dtype="string"))  # never seen
        for one in (q.iloc[:1], q.iloc[5:6], q, fresh):  # single rows (the service's common case), batches
            pd.testing.assert_frame_equal(_coded(live, one, book, robust), _feats(whole, one, book, robust),
                                          check_exact=True)
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


SPAN_S = int((pd.Timestamp("2199-12-31", tz="UTC") - pd.Timestamp("1970-01-01", tz="UTC")).total_seconds())
AMOUNTS = st.one_of(st.floats(0, 1e9, allow_nan=False), st.sampled_from([0.0, 5e-324, 1e-300, 0.005, 1e9]))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, SPAN_S), AMOUNTS, st.sampled_from(["a", "b", "c"]),
                          st.sampled_from(["a", "m", "n"])), min_size=2, max_size=40),
       st.sampled_from([0, 60, 3600, 10**6]))
def test_extreme_amounts_and_far_dates_keep_every_sum_exact(rows, spread):
    """Amounts from 5e-324 to the 1e9 bound and dates 1970-2199 (or packed within seconds): the state's integer
    sums never overflow and a window sum equals the exact sum of cents."""
    secs = sorted(r[0] if spread == 10**6 else rows[0][0] // 2 + i * spread for i, r in enumerate(rows))
    df = pd.DataFrame({"transaction_id": pd.array([f"t{i}" for i in range(len(rows))], dtype="string"),
                       "timestamp": pd.to_datetime(np.array(secs, np.int64), unit="s", utc=True),
                       "source": pd.array([r[2] for r in rows], dtype="string"),
                       "target": pd.array([r[3] for r in rows], dtype="string"),
                       "amount": np.array([r[1] for r in rows], np.float64)})
    half = len(df) // 2
    live = LiveHistory(History(CFG.tail_seconds)).update(df.iloc[:half])
    q = df.iloc[half:]
    assert not live.over_capacity(q).any()
    with np.errstate(over="raise", invalid="raise"):
        f = build_features(live.view(q), q, CFG)
    assert np.isfinite(f.to_numpy()).all()
    t = to_ns(df["timestamp"])
    cents = [round(a * 100) for a in df["amount"]]  # Python integers: exact whatever the size
    for i in range(half, len(df)):
        prior = [j for j in range(len(df)) if t[j] < t[i] and t[j] >= t[i] - 24 * 3600 * 10**9
                 and df["source"].iloc[j] == df["source"].iloc[i]]
        exact = np.float32(np.log1p(sum(cents[j] for j in prior) / 100))
        assert f["src_sum_24h"].iloc[i - half] == exact


def test_huge_counts_stay_exact_and_finite():
    df = random_frame(n=200, days=4, n_ent=5, seed=7)
    live = LiveHistory(History(CFG.tail_seconds).update(df.iloc[:190]))
    code = live.known(df["source"].iloc[190:191])[0]
    live._tot["out"]["n"][code] += 2**61  # noqa: SLF001 - an entity with 2^61 payments folded into its totals
    q = df.iloc[190:]
    f = build_features(live.view(q), q, CFG)
    assert np.isfinite(f.to_numpy()).all()
    earlier = (df["source"].iloc[:190] == q["source"].iloc[0]).sum()  # every one of them is before q's rows
    assert f["src_n_hist"].iloc[0] == np.float32(np.log1p(float(2**61 + int(earlier))))
