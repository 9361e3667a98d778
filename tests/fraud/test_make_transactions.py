"""The transaction generator: canonical output, each typology's defining property, graph-only typologies that
look ordinary row by row, a compromised merchant seen only through delayed labels, holdout, determinism,
config errors and the two command lines."""

from collections import deque

import numpy as np
import pandas as pd
import pytest
from scipy.stats import combine_pvalues, ks_2samp
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from data_scripts.make_transactions import TYPOLOGIES, TransactionConfig, generate, main
from fraud.data.frame import validate
from fraud.data.load import load_transactions

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def df():
    return generate(TransactionConfig(n_customers=600, n_merchants=60, days=21, seed=3, fraud_rate=0.04))


def cases(df, typology):
    part = df[df["typology"] == typology]
    assert part["case_id"].nunique() >= 3, f"too few {typology} cases to test"
    return [g.sort_values("timestamp", kind="stable") for _, g in part.groupby("case_id")]


def test_output_is_canonical_sorted_and_labelled(df):
    validate(df, require_sorted=True)
    assert df["transaction_id"].str.fullmatch(r"T\d+").all()
    assert df["source"].str.fullmatch(r"C\d+").all()  # only accounts pay
    assert df["target"].str.fullmatch(r"[CM]\d+").all()
    assert ((df["label"] == 1) == (df["typology"] != "")).all()
    assert set(df["typology"]) == {"", *TYPOLOGIES}
    assert 0.02 < df["label"].mean() < 0.08  # fraud_rate 0.04, cases come whole
    assert (df["amount"] > 0).all() and (df["amount"].round(2) == df["amount"]).all()


def test_same_seed_same_frame_other_seed_other_frame():
    cfg = TransactionConfig(n_customers=200, n_merchants=30, days=10, seed=7)
    a, b = generate(cfg), generate(cfg)
    pd.testing.assert_frame_equal(a, b)
    c = generate(TransactionConfig(n_customers=200, n_merchants=30, days=10, seed=8))
    assert len(a) != len(c) or not a["amount"].equals(c["amount"])


def test_benign_behaviour_has_habits_and_seasonality(df):
    ben = df[df["label"] == 0]
    hours = ben["timestamp"].dt.hour.value_counts(normalize=True)
    assert hours.loc[[12, 18]].min() > 3 * hours.loc[[2, 3, 4]].max()  # busy noon/evening, quiet night
    wd = ben["timestamp"].dt.day_of_week.value_counts()
    assert wd.loc[5] > 1.3 * wd.loc[6]  # busy Saturdays, quiet Sundays
    cards = ben[ben["target"].str.startswith("M")]
    top = cards.groupby(["source", "target"]).size().groupby(level=0).max() / cards.groupby("source").size()
    assert top[cards.groupby("source").size() >= 20].median() > 0.2  # a favourite merchant
    per_cust = cards.groupby("source")["amount"].median()
    assert per_cust.quantile(0.95) > 5 * per_cust.quantile(0.05)  # heavy-tailed profiles
    pair_counts = ben.groupby(["source", "target", "amount"]).size()
    assert (pair_counts >= 3).sum() > 50  # recurring payments: same payee, same amount, again and again


def test_mule_ring_members_connected_and_inside_the_window(df):
    for ring in cases(df, "mule_ring"):
        assert ring["timestamp"].max() - ring["timestamp"].min() <= 6 * HOUR
        senders, receivers = set(ring["source"]), set(ring["target"])
        mules = senders & receivers
        victims, cash = senders - receivers, receivers - senders
        assert len(mules) >= 4 and len(victims) >= 8 and len(cash) >= 1
        assert all(x.startswith("C") for x in senders | receivers)
        inner = ring[ring["source"].isin(mules) & ring["target"].isin(mules)]
        nbrs = {m: set() for m in mules}
        for s, t in zip(inner["source"], inner["target"], strict=True):
            nbrs[s].add(t)
            nbrs[t].add(s)
        start = next(iter(mules))
        seen, todo = {start}, deque([start])
        while todo:
            for n in nbrs[todo.popleft()] - seen:
                seen.add(n)
                todo.append(n)
        assert seen == mules, "ring members are not connected by their transfers"
        assert ring.loc[ring["source"].isin(victims), "target"].isin(mules).all()
        assert ring.loc[ring["target"].isin(cash), "source"].isin(mules).all()


def test_laundering_cycle_returns_to_origin(df):
    for cyc in cases(df, "laundering_cycle"):
        src, dst = cyc["source"].tolist(), cyc["target"].tolist()
        assert len(src) >= 3 and len(set(src)) == len(src)
        assert dst[:-1] == src[1:] and dst[-1] == src[0], "the chain does not close on its origin"
        a = cyc["amount"].to_numpy()
        assert (np.diff(a) < 0).all() and a[-1] > 0.5 * a[0]  # a few percent skimmed per hop
        gaps = np.diff(cyc["timestamp"].to_numpy()) / np.timedelta64(1, "h")
        assert (gaps >= 1).all() and (gaps <= 36).all()


def test_card_testing_tiny_amounts_then_a_large_one(df):
    for burst in cases(df, "card_testing"):
        assert burst["source"].nunique() == 1 and burst["target"].str.startswith("M").all()
        a = burst["amount"].to_numpy()
        tiny = a <= 3.0
        n_tiny = int(tiny.sum())
        assert n_tiny >= 5 and tiny[:n_tiny].all() and not tiny[n_tiny:].any()  # tiny first, then large
        assert a[n_tiny:].min() >= 300 and 1 <= len(a) - n_tiny <= 2
        assert burst["target"].iloc[:n_tiny].nunique() >= 0.6 * n_tiny  # across many merchants
        t = burst["timestamp"]
        assert t.iloc[n_tiny - 1] - t.iloc[0] <= 40 * pd.Timedelta(minutes=1)


def test_account_takeover_large_amounts_to_new_payees_at_night(df):
    ben = df[df["label"] == 0]
    for ato in cases(df, "account_takeover"):
        victim = ato["source"].iloc[0]
        assert (ato["source"] == victim).all() and 2 <= len(ato) <= 5
        assert ato["timestamp"].dt.hour.between(1, 6).all()
        before = ben[(ben["source"] == victim) & (ben["timestamp"] < ato["timestamp"].min())]
        assert not ato["target"].isin(before["target"]).any(), "takeover payees must be new to the account"
        assert (ato["amount"] >= 200).all()
        if len(before) >= 5:
            assert ato["amount"].min() > 2 * before["amount"].median()


def test_colluding_merchant_burst_from_many_cards_breached_at_one_merchant(df):
    ben = df[(df["label"] == 0) & df["target"].str.startswith("M")]
    checked = 0
    for burst in cases(df, "colluding_merchant"):
        assert burst["target"].nunique() == 1 and burst["target"].iloc[0].startswith("M")
        cards = burst["source"].unique()
        assert len(cards) >= 14
        t0 = burst["timestamp"].min()
        assert burst["timestamp"].max() - t0 <= 8 * HOUR
        if t0 - df["timestamp"].min() >= pd.Timedelta(days=5):  # enough history to see the breach
            before = ben[ben["source"].isin(cards) & (ben["timestamp"] < t0)]
            assert before.groupby("target")["source"].nunique().max() >= 0.6 * len(cards), \
                "the cards should share an earlier merchant (the breach)"
            checked += 1
    assert checked >= 2


@pytest.fixture(scope="module")
def skimmed():
    """Six weeks in which compromised merchants sit among other merchant-side fraud (card testing, bursts)."""
    return generate(TransactionConfig(n_customers=600, n_merchants=60, days=42, seed=0, fraud_rate=0.04,
                                      typology_mix={"compromised_merchant": 0.5, "card_testing": 0.25,
                                                    "colluding_merchant": 0.25}))


def _not_debit_slot(df: pd.DataFrame) -> pd.Series:
    """False in the direct-debit slot (01-06 h, first ten minutes), where recurring payments are posted; a
    skimmer never sees those, so comparisons with the merchant's payments leave the slot out on both sides."""
    ts = df["timestamp"]
    return ~(ts.dt.hour.between(1, 6) & (ts.dt.minute < 10))


def test_compromised_merchant_is_one_merchant_for_weeks_most_of_its_payments(skimmed):
    ordinary = _not_debit_slot(skimmed) & skimmed["typology"].isin(["", "compromised_merchant"])
    for case in cases(skimmed, "compromised_merchant"):
        merchant = case["target"].iloc[0]
        assert (case["target"] == merchant).all() and merchant.startswith("M")
        t0, t1 = case["timestamp"].min(), case["timestamp"].max()
        assert t1 - t0 <= 35 * DAY and len(case) >= 10
        window = skimmed[(skimmed["target"] == merchant) & skimmed["timestamp"].between(t0, t1) & ordinary]
        assert 0.4 <= (window["case_id"] == case["case_id"].iloc[0]).mean() <= 0.95


def test_compromised_merchant_keeps_volume_amounts_and_hours_ordinary(skimmed):
    """Inside the window the merchant takes as many payments a day as outside it, and the fraud rows' amounts
    and hours are those of its benign payments (two-sample KS per case, combined by Fisher's method)."""
    day = (skimmed["timestamp"] - skimmed["timestamp"].min().normalize()) // DAY
    ordinary = skimmed["typology"].isin(["", "compromised_merchant"])  # other typologies' bursts add rows
    card = _not_debit_slot(skimmed)
    hour = skimmed["timestamp"].dt.hour
    inside_rows, expected, ratios, p_amount, p_hour, p_shifted = 0, 0.0, [], [], [], []
    for case in cases(skimmed, "compromised_merchant"):
        at = (skimmed["target"] == case["target"].iloc[0]) & ordinary
        per_day = day[at].value_counts().reindex(range(42), fill_value=0)
        d0, d1 = day[case.index].min(), day[case.index].max()
        inside = per_day.loc[d0 + 1:d1 - 1]  # the first and last days hold a fraud row by definition: busier
        outside = per_day.drop(range(d0, d1 + 1))
        if len(outside) >= 7:
            ratios.append(inside.mean() / outside.mean())
            inside_rows, expected = inside_rows + inside.sum(), expected + outside.mean() * len(inside)
        fraud, benign = case[card[case.index]], skimmed[at & card & (skimmed["label"] == 0)]
        p_amount.append(ks_2samp(fraud["amount"], benign["amount"]).pvalue)
        p_hour.append(ks_2samp(hour[fraud.index], hour[benign.index]).pvalue)
        p_shifted.append(ks_2samp(1.5 * fraud["amount"], benign["amount"]).pvalue)
    # Rows added on top of the benign ones would give ~1.7; one quiet merchant alone can drift by 1.5x.
    assert 0.85 < inside_rows / expected < 1.15 and np.median(ratios) < 1.2 and max(ratios) < 2
    assert combine_pvalues(p_amount).pvalue > 0.01 and combine_pvalues(p_hour).pvalue > 0.01
    assert combine_pvalues(p_shifted).pvalue < 0.01  # the same check sees amounts 1.5x too high


def _known_fraud_share(df: pd.DataFrame, lag: int = 7, window: int = 28) -> pd.Series:
    """Per merchant payment: share labelled fraud among the merchant's payments of the previous `window` days
    whose label is known, i.e. older than `lag` days (NaN when there are none)."""
    def last(label: pd.Series, days: int, how: str) -> np.ndarray:  # over the `days` before each payment
        return getattr(label.rolling(f"{days}D", closed="left", min_periods=0), how)().to_numpy()

    out = []
    for _, g in df[df["target"].str.startswith("M")].groupby("target"):
        label = pd.Series(g["label"].to_numpy(float), index=g["timestamp"])
        known = last(label, window, "count") - last(label, lag, "count")
        fraud = last(label, window, "sum") - last(label, lag, "sum")
        out.append(pd.Series(fraud / np.where(known > 0, known, np.nan), index=g.index))
    return pd.concat(out)


def test_compromised_merchant_is_revealed_by_delayed_labels_of_earlier_payments(skimmed):
    """The merchant's share of known-fraud payments (labels 7 days late) singles out a case's later rows."""
    share = _known_fraud_share(skimmed)
    cm = skimmed[skimmed["typology"] == "compromised_merchant"]
    since = cm["timestamp"] - cm.groupby("case_id")["timestamp"].transform("min")
    later = cm.index[since >= 10 * DAY]
    pay = skimmed.loc[share.index]
    others = pay.index[(pay["label"] == 0) & ~pay["target"].isin(cm["target"])]
    assert len(later) >= 100
    assert share[later].mean() > 0.25 and share[later].mean() > 10 * share[others].mean()
    assert _auc(share[others].fillna(0), share[later].fillna(0)) > 0.95


def test_compromised_merchant_keeps_the_fraud_rate_in_a_busy_world():
    """Where even the quietest merchant is busy (150 payments a day on average), cases stop at the typology's
    row budget."""
    df = generate(TransactionConfig(n_customers=3000, n_merchants=20, days=14, seed=0, fraud_rate=0.03,
                                    typology_mix={"compromised_merchant": 1.0}))
    assert 0.02 < df["label"].mean() < 0.045


def _auc(benign: pd.Series, fraud: pd.Series) -> float:
    return roc_auc_score(np.r_[np.zeros(len(benign)), np.ones(len(fraud))], np.r_[benign, fraud])


def test_graph_typologies_look_ordinary_row_by_row():
    """Amount relative to the sender's usual amounts and the hour cannot tell mule rings or laundering
    cycles from benign transfers (AUC near 0.5), while the same measure catches takeovers and card testing."""
    df = generate(TransactionConfig(n_customers=1500, n_merchants=100, days=30, seed=11, fraud_rate=0.03))
    ben = df[df["label"] == 0]
    usual = ben.groupby("source")["amount"].median()
    rel = np.log(df["amount"] / df["source"].map(usual).astype("float64"))
    transfers = (df["label"] == 0) & df["target"].str.startswith("C")
    night = df["timestamp"].dt.hour < 6
    for typ in ("mule_ring", "laundering_cycle"):
        is_typ = (df["typology"] == typ) & rel.notna()
        assert 0.35 < _auc(rel[transfers & rel.notna()], rel[is_typ]) < 0.65, typ
        assert night[df["typology"] == typ].mean() <= night[transfers].mean(), typ
        senders = df.loc[df["typology"] == typ, "source"].unique()
        assert (ben["source"].isin(senders).groupby(ben["source"]).any().sum() >= 0.95 * len(senders)), \
            f"{typ} senders must be ordinary accounts with a benign history"
    ato = (df["typology"] == "account_takeover") & rel.notna()
    assert _auc(rel[transfers & rel.notna()], rel[ato]) > 0.8
    card = df["typology"] == "card_testing"
    assert _auc(rel[(df["label"] == 0) & rel.notna()], rel[card & rel.notna()]) < 0.3


@pytest.mark.parametrize("typology", ["laundering_cycle", "compromised_merchant"])
def test_holdout_typology_only_after_the_cut(typology):
    cfg = TransactionConfig(n_customers=400, n_merchants=40, days=20, seed=1, fraud_rate=0.05,
                            holdout_typology=typology, holdout_after=0.6)
    df = generate(cfg)
    cut = pd.Timestamp(cfg.start, tz="UTC") + pd.Timedelta(days=0.6 * cfg.days)
    held = df[df["typology"] == typology]
    assert len(held) > 0 and (held["timestamp"] >= cut).all()
    others = df[(df["label"] == 1) & (df["typology"] != typology)]
    assert (others["timestamp"] < cut).any()  # the others occur throughout


def test_fraud_rate_zero_and_mix():
    df = generate(TransactionConfig(n_customers=200, n_merchants=30, days=10, fraud_rate=0.0))
    assert df["label"].sum() == 0
    df = generate(TransactionConfig(n_customers=300, n_merchants=30, days=10,
                                    typology_mix={"mule_ring": 1.0, "card_testing": 0.0}))
    assert set(df["typology"]) == {"", "mule_ring"}


def test_size_by_rows():
    cfg = TransactionConfig.for_rows(30_000, days=20)
    assert 0.85 * 30_000 < len(generate(cfg)) < 1.15 * 30_000


@pytest.mark.parametrize("kwargs, match", [
    ({"holdout_typology": "phishing"}, "holdout_typology"),
    ({"typology_mix": {"mule_rings": 1.0}}, "unknown typologies"),
    ({"days": 3}, "days must be >= 7"),
    ({"holdout_typology": "mule_ring", "holdout_after": 0.9, "days": 30}, "raise days"),
    ({"fraud_rate": 0.7}, "fraud_rate"),
])
def test_bad_config_fails_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransactionConfig(**kwargs)


def test_cli_and_module_write_the_same_file(tmp_path):
    from fraud.cli import app

    res = CliRunner().invoke(app, ["make-data", "--out", str(tmp_path / "a.csv"), "--size", "tiny", "--seed",
                                   "4", "--holdout", "mule_ring", "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.config.yaml").is_file()
    main(["--out", str(tmp_path / "b.parquet"), "--size", "tiny", "--seed", "4", "--holdout-typology",
          "mule_ring"])
    a, rej = load_transactions(tmp_path / "a.csv")
    b, _ = load_transactions(tmp_path / "b.parquet")
    assert len(rej) == 0
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    bad = CliRunner().invoke(app, ["make-data", "--out", str(tmp_path / "c.csv"), "--set", "typology_mx.x=1"])
    assert bad.exit_code == 2 and "did you mean 'typology_mix'" in bad.output


def test_cli_config_file_then_set_then_flags(tmp_path):
    import yaml

    from fraud.cli import app

    cfg = tmp_path / "gen.yaml"
    cfg.write_text("n_customers: 250\nn_merchants: 25\ndays: 9\ntypology_mix: {mule_ring: 1.0}\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["make-data", "--out", str(tmp_path / "g.parquet"), "--config", str(cfg),
                                   "--set", "fraud_rate=0.05", "--days", "10", "-q"])
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((tmp_path / "g.config.yaml").read_text(encoding="utf-8"))
    assert (saved["n_customers"], saved["days"], saved["fraud_rate"]) == (250, 10, 0.05)
    df = pd.read_parquet(tmp_path / "g.parquet")
    assert set(df["typology"]) == {"", "mule_ring"}
    assert df["timestamp"].max() - df["timestamp"].min() > pd.Timedelta(days=9)
