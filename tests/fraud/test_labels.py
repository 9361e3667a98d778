"""Delayed label feedback: point-in-time entity risk features, the label book and `fraud feedback`."""

import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fraud.cli import app
from fraud.data.durations import to_ns
from fraud.data.frame import DataError, SchemaError
from fraud.features.behaviour import FeatureConfig, build_features
from fraud.features.history import History
from fraud.features.labels import LabelBook, LabelConfig
from fraud.features.risk import risk_names
from fraud.stack.model import FraudModel
from tests.fixtures.fraud_frames import frame, random_frame
from tests.fixtures.scoring_model import tiny_model

CFG = FeatureConfig()
LC = LabelConfig(delay="1d", windows=["2d", "7d"])
DAY = 86400


def feats(df, book, lc=LC):
    return build_features(None, df, CFG, True, book, lc)[risk_names(lc)]


def test_a_label_not_yet_known_never_moves_a_feature_of_the_row():
    df = random_frame(n=400, days=10, seed=3)
    f = feats(df, LabelBook.from_frame(df, LC))
    t = to_ns(df["timestamp"])
    known = t + DAY * 10**9
    moved = 0
    for i in np.random.default_rng(0).choice(np.flatnonzero(t > t[0] + 2 * DAY * 10**9), 12, replace=False):
        later = df.copy()
        later.loc[known >= t[i], "label"] = 1 - later.loc[known >= t[i], "label"]  # every label unknown at t
        pd.testing.assert_series_equal(feats(df, LabelBook.from_frame(later, LC)).iloc[i], f.iloc[i])
        earlier = df.copy()
        earlier.loc[known < t[i], "label"] = 1 - earlier.loc[known < t[i], "label"]  # the known ones do count
        moved += not feats(df, LabelBook.from_frame(earlier, LC)).iloc[i].equals(f.iloc[i])
    assert moved >= 10


def test_risk_features_count_what_was_known_when():
    h = 3600
    df = frame([0, 60, 2 * h, DAY + 2 * h, DAY + 3 * h, 2 * DAY + h],
               ["A", "B", "C", "C", "D", "C"], ["M", "M", "N", "M", "M", "Z"], [10, 11, 12, 13, 14, 15],
               [1, 0, 0, 0, 0, 0])
    f = feats(df, LabelBook.from_frame(df, LC))
    assert f["dst_known_fraud_n"].tolist()[:3] == [0, 0, 0]  # nothing is known before day 1
    assert f["dst_secs_known_fraud"].iloc[2] == -1.0
    # Row 3 (day 1 + 2h) at M: both M labels known since day 1 (+0 / +60 s): 1 fraud of 2.
    assert f["dst_known_fraud_n"].iloc[3] == pytest.approx(np.log1p(1))
    assert f["dst_known_share_2d"].iloc[3] == pytest.approx(0.5)
    assert f["dst_secs_known_fraud"].iloc[3] == pytest.approx(np.log1p(2 * h), rel=1e-6)
    # Row 5: card C has paid N (clean) and M (known fraud since day 1): half its counterparties.
    assert f["src_nbr_fraud_share"].iloc[5] == pytest.approx(0.5)
    assert f["src_nbr_fraud_n"].iloc[5] == pytest.approx(np.log1p(1))
    # M's customers before row 4: A (known fraud), B, C: one of three.
    assert f["dst_nbr_fraud_share"].iloc[4] == pytest.approx(1 / 3)


def test_labelled_at_overrides_the_delay():
    df = frame([0, DAY // 2, DAY // 2 + 60], ["A", "B", "C"], ["M", "M", "M"], [1, 2, 3], [1, 0, 0])
    assert feats(df, LabelBook.from_frame(df, LC))["dst_known_fraud_n"].iloc[2] == 0  # known at day 1
    early = df.assign(labelled_at=df["timestamp"] + pd.Timedelta("1h"))
    assert feats(df, LabelBook.from_frame(early, LC))["dst_known_fraud_n"].iloc[2] == pytest.approx(np.log1p(1))


def test_chunked_features_with_labels_equal_the_whole_file():
    df = random_frame(n=600, days=12, seed=5)
    book = LabelBook.from_frame(df, LC)
    whole = build_features(None, df, CFG, True, book, LC)
    h, parts = History(CFG.tail_seconds), []
    for a, b in [(0, 200), (200, 201), (201, 450), (450, 600)]:
        parts.append(build_features(h, df.iloc[a:b], CFG, True, book, LC))
        h.update(df.iloc[a:b])
    pd.testing.assert_frame_equal(pd.concat(parts), whole, check_exact=True)


def test_training_needs_a_label_known_before_validation():
    from fraud.stack.config import FraudConfig
    from fraud.stack.evaluate import temporal_split

    split = temporal_split(random_frame(n=800, days=10), 0.6, 0.2)
    cfg = FraudConfig(labels=LabelConfig(delay="30d"))
    with pytest.raises(DataError, match="no training label is known before the validation period"):
        FraudModel(cfg).fit(split.train, split.val, progress=False)


def _copy_model(tmp_path):
    _, run, later = tiny_model()
    shutil.copytree(run, tmp_path / "model")
    return tmp_path / "model", later


def test_feedback_accepts_rejects_and_persists(tmp_path):
    run, later = _copy_model(tmp_path)
    model = FraudModel.load(run)
    book = model.labels_.rows
    tr_id, tr_label = book["transaction_id"].iloc[0], int(book["label"].iloc[0])
    ids = later["transaction_id"].tolist()
    raw = pd.DataFrame({
        "transaction_id": [ids[0], ids[1], "nope", tr_id, tr_id, ids[2], ids[2], ids[3], ids[3], ids[4]],
        "label": ["1", "0", "1", str(tr_label), str(1 - tr_label), "1", "0", "1", "1", "x"],
        "labelled_at": ["", "2000-01-01", "", "", "", "", "", "", "", ""]})
    raw = raw.drop(index=4).reset_index(drop=True)  # the same id twice is tested below, not with the book
    add, rej = model.add_labels(raw, later, where="confirmed.csv")
    assert len(add) + len(rej) == len(raw)
    assert add["transaction_id"].tolist() == [ids[0], ids[3]]
    why = dict(zip(rej["row"], rej["reason"], strict=True))
    assert "before the payment" in why[2] and "unknown transaction_id" in why[3]
    assert "same label" in why[4] and "contradicting labels" in why[5] and "contradicting labels" in why[6]
    assert "duplicate transaction_id" in why[8] and "not 0 or 1" in why[9]
    _, rej2 = model.add_labels(pd.DataFrame({"transaction_id": [tr_id], "label": [1 - tr_label]}), later)
    assert "contradicts the model's stored label" in rej2["reason"].iloc[0]
    n = len(model.labels_)
    model.save_labels(run)
    again = FraudModel.load(run)  # verifies the manifest's hashes
    assert len(again.labels_) == n and ids[0] in set(again.labels_.rows["transaction_id"])
    with pytest.raises(SchemaError, match="lacks column"):
        model.add_labels(pd.DataFrame({"id": ["a"], "label": [1]}), later)


def test_fed_labels_reach_later_scores(tmp_path):
    run, later = _copy_model(tmp_path)
    model = FraudModel.load(run)
    before = model.matrix(later, "stored")
    target = later["target"].value_counts().index[0]
    at = later[later["target"] == target]
    raw = pd.DataFrame({"transaction_id": at["transaction_id"].iloc[:5], "label": 1,
                        "labelled_at": at["timestamp"].iloc[:5] + pd.Timedelta("1min")})
    add, rej = model.add_labels(raw, later)
    assert len(add) == 5 and len(rej) == 0
    after = model.matrix(later, "stored")
    col = model.feature_names_.index("dst_known_fraud_n")
    first_known = at["timestamp"].iloc[0] + pd.Timedelta("1min")
    moved = (after[:, col] != before[:, col])
    assert moved.any()
    assert not moved[(later["timestamp"] <= first_known).to_numpy()].any()  # nothing before it was known


def test_feedback_cli_reports_counts_and_writes_rejects(tmp_path):
    run, later = _copy_model(tmp_path)
    tx = tmp_path / "scored.parquet"
    later.to_parquet(tx)
    labels = tmp_path / "confirmed.csv"
    pd.DataFrame({"transaction_id": [later["transaction_id"].iloc[0], "nope"], "label": [1, 1]}).to_csv(labels,
                                                                                                   index=False)
    res = CliRunner().invoke(app, ["feedback", "--model", str(run), "--labels", str(labels),
                                   "--transactions", str(tx)])
    assert res.exit_code == 0, res.output
    assert "2 label rows read: added 1 (1 fraud), rejected 1" in res.output
    assert "unknown transaction_id" in pd.read_csv(tmp_path / "confirmed.rejects.csv")["reason"].iloc[0]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["a"]}).to_csv(bad, index=False)
    res = CliRunner().invoke(app, ["feedback", "--model", str(run), "--labels", str(bad)])
    assert res.exit_code == 2 and "lacks column(s) transaction_id, label" in res.output


def _tx(row) -> dict:
    return {"transaction_id": row.transaction_id, "timestamp": row.timestamp.isoformat(), "source": row.source,
            "target": row.target, "amount": float(row.amount)}


def test_service_feedback_needs_the_key_and_finds_absorbed_transactions(tmp_path):
    from fastapi.testclient import TestClient

    from fraud.serve.service import create_app

    run, later = _copy_model(tmp_path)
    rows = list(later.iloc[:20].itertuples())
    key = "s3cret-key-of-16+chars"
    with TestClient(create_app(run, api_key=key, state=tmp_path / "state.sqlite")) as c:
        assert c.post("/score", json={"transactions": [_tx(r) for r in rows[:10]]},
                      headers={"X-API-Key": key}).status_code == 200
        body = {"labels": [{"transaction_id": rows[0].transaction_id, "label": 1},
                           {"transaction_id": rows[15].transaction_id, "label": 1}]}  # 15: never sent
        assert c.post("/feedback", json=body).status_code == 401
        assert c.post("/feedback", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
        r = c.post("/feedback", json=body, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["read"] == 2 and out["added"] == 1 and out["rejected"][0]["index"] == 1
        assert "unknown transaction_id" in out["rejected"][0]["reason"]
        bad = c.post("/feedback", json={"labels": [{"transaction_id": "x", "label": 2}]},
                     headers={"X-API-Key": key})
        assert bad.status_code == 422 and "label" in bad.json()["message"]
        assert c.get("/health").json()["labels"] == out["labels"]
    with TestClient(create_app(run, api_key=key, state=tmp_path / "state.sqlite")) as c:  # restarted
        assert c.get("/health").json()["labels"] == out["labels"]  # the fed label came back from the store
        again = c.post("/feedback", json=body, headers={"X-API-Key": key}).json()
        assert again["added"] == 0 and "already in the model's labels" in again["rejected"][0]["reason"]
    with TestClient(create_app(run)) as c:
        assert c.post("/feedback", json=body, headers={"X-API-Key": key}).status_code == 403


def test_graph_node_labels_use_only_labels_known_before_the_snapshot():
    from fraud.features.graph import EventLog
    from fraud.features.graph_labels import LABEL_NODE_DIM, NodeLabels
    from fraud.features.graph_pass import window

    df = random_frame(n=500, days=10, seed=7)
    end = int(to_ns(df["timestamp"])[300]) // (3600 * 10**9) * 3600 * 10**9
    known = to_ns(df["timestamp"]) + DAY * 10**9

    def x(labels):
        log = EventLog([df])
        log.node_labels = NodeLabels(LabelBook.from_frame(df.assign(label=labels), LC), log.entities, 30 * DAY)
        win, snap = window(log, end - 2 * DAY * 10**9, end), log.snapshot(end - 2 * DAY * 10**9, end)
        np.testing.assert_array_equal(win.x, snap.x)  # compiled and numpy paths agree
        return win.x[:, -LABEL_NODE_DIM:]

    base = x(df["label"].to_numpy())
    assert base[:, 0].sum() > 0 and not base[-1].any()  # some known fraud; the unseen node knows nothing
    flip_late = np.where(known >= end, 1 - df["label"], df["label"])
    np.testing.assert_array_equal(x(flip_late), base)
    flip_early = np.where(known < end, 1 - df["label"], df["label"])
    assert not np.array_equal(x(flip_early), base)


def test_graph_node_label_counts_equal_label_counts():
    """The compiled window counts of NodeLabels are label_counts' at both ends of the window, for nodes
    with and without labels in either role, at boundaries on and between label times."""
    from fraud.features.graph import EventLog
    from fraud.features.graph_labels import NodeLabels, _window_counts
    from fraud.features.labels import label_counts

    df = random_frame(n=800, days=20, seed=11)
    book = LabelBook.from_frame(df.iloc[:500], LC)  # the later rows' entities partly without labels
    log = EventLog([df])
    nl = NodeLabels(book, log.entities, 5 * DAY)
    nodes = np.arange(len(log.entities), dtype=np.int64)
    ends = [int(book.rows["known_ns"].min()), *to_ns(df["timestamp"])[[100, 400, 799]] + DAY * 10**9]
    seen = np.zeros(4, np.int64)
    for end in [*ends, ends[1] + 1]:
        got = _window_counts(nl.out.start, nl.out.known, nl.out.fraud_cum, nl.code_out, nl.inn.start,
                             nl.inn.known, nl.inn.fraud_cum, nl.code_in, nodes, end - nl.window_ns, end)
        want = []
        for ix, codes in ((nl.out, nl.code_out[nodes]), (nl.inn, nl.code_in[nodes])):
            n1, f1, _ = label_counts(ix, codes, np.full(len(nodes), end, np.int64))
            n0, f0, _ = label_counts(ix, codes, np.full(len(nodes), end - nl.window_ns, np.int64))
            want += [n1 - n0, f1 - f0]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        seen += [w.sum() for w in want]
    assert (seen > 0).all()  # labels and frauds in both roles were counted somewhere


def test_label_feed_is_scoped_to_the_block():
    from tests.fixtures.fraud_frames import planted

    model, _, later = tiny_model()
    n = len(model.labels_)
    labelled = planted(n=4000, days=16, seed=1).iloc[-len(later):].reset_index(drop=True)
    labelled["labelled_at"] = labelled["timestamp"] + pd.Timedelta("1h")  # the period is shorter than the delay
    assert labelled["transaction_id"].tolist() == later["transaction_id"].tolist()
    with model.label_feed(labelled):
        assert len(model.labels_) == n + len(later)
        fed = model.matrix(later, "stored")
    assert len(model.labels_) == n
    plain = model.matrix(later, "stored")
    col = model.feature_names_.index("dst_known_fraud_7d")
    assert (fed[:, col] >= plain[:, col]).all() and (fed[:, col] > plain[:, col]).any()
