"""The service's scoring path (`ServiceState.score`) answers what the frame-based scorer computes for the same
stream: probabilities, flags and reasons bit for bit, the store holds exactly what was answered, and the live
state equals absorbing the same rows as frames."""

import json

import pandas as pd
import pytest

from fraud.models.booster import contributions
from fraud.serve.admission import AdmissionConfig
from fraud.serve.live_history import LiveHistory
from fraud.serve.reasons import ReasonCoder
from fraud.serve.schemas import Transaction
from fraud.serve.service_state import ServiceState
from fraud.serve.store import StateStore, model_identity
from fraud.stack.scorer import Scorer
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
RULES = AdmissionConfig(clock="replay", max_skew="30d", lateness="1h")


def _txs(df: pd.DataFrame) -> list[Transaction]:
    return [Transaction(transaction_id=r.transaction_id, timestamp=r.timestamp.isoformat(), source=r.source,
                        target=r.target, amount=float(r.amount)) for r in df.itertuples()]


def _reference(model, chunks: list[pd.DataFrame]) -> list[dict]:
    """Per row: probability, flag and reasons from the frame path (History, FraudModel.matrix, predict,
    TreeSHAP, ReasonCoder), chunk by chunk in event order."""
    scorer = Scorer(model, model.history_.copy())
    coder = ReasonCoder(model.feature_names_, model.reference_)
    out = []
    for chunk in chunks:
        x, p = scorer.run(chunk.reset_index(drop=True))
        reasons = coder.explain(contributions(model.booster_, x, model.feature_names_, threads=1)[:, :-1], x, 3)
        out += [{"probability": float(pi), "flag": bool(pi > model.threshold_), "reasons": r}
                for pi, r in zip(p.tolist(), reasons, strict=True)]
    return out


def test_requests_answer_the_frame_paths_scores_and_reasons_and_keep_its_state(tmp_path):
    model, run, later = tiny_model()
    rows = later.iloc[:160]  # 2-hour snapshots: several boundaries, each cut by the first request after it
    assert rows["timestamp"].dt.floor("2h").nunique() >= 5
    sizes = [1, 1, 1, 4, 1, 1, 1, 9, 1, 1, 2, 1, 1, 1, 1, 30]
    chunks, a, k = [], 0, 0
    while a < len(rows):
        b = min(len(rows), a + sizes[k % len(sizes)])
        chunks.append(rows.iloc[a:b])
        a, k = b, k + 1
    store = StateStore(tmp_path / "state.sqlite", model_identity(model))
    svc = ServiceState(model, run, 100, RULES, store)
    got = []
    for chunk in chunks:
        got += svc.score(_txs(chunk), True)
    want = _reference(model, chunks)
    assert [g.transaction_id for g in got] == rows["transaction_id"].tolist()
    assert [g.probability for g in got] == [w["probability"] for w in want]  # bit for bit
    assert [g.flag for g in got] == [w["flag"] for w in want] and any(g.flag for g in got)
    assert [[r.model_dump() for r in g.reasons] for g in got] == [w["reasons"] for w in want]
    assert not any(g.replay for g in got)
    # The store holds what was answered, and the live state equals absorbing the same rows as frames.
    stored = store.lookup_rows(rows["transaction_id"].tolist())
    for g in got:
        s = stored[g.transaction_id]
        assert s["probability"] == g.probability and bool(s["flag"]) == g.flag
        assert json.loads(s["reasons"]) == [r.model_dump() for r in g.reasons]
    framed = LiveHistory(model.history_, lateness_s=RULES.lateness_ns // 10**9)
    for chunk in chunks:
        framed.update(chunk)
    ha, hb = svc.live.to_history(), framed.to_history()
    assert (ha.max_ns, ha.cutoff_ns) == (hb.max_ns, hb.cutoff_ns)
    for x, y in ((ha.tail, hb.tail), (ha.entities, hb.entities), (ha.pairs, hb.pairs)):
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True)
    # Sent again, a transaction is answered from the store and nothing is absorbed twice.
    again = svc.score(_txs(rows.iloc[100:103]), True)
    assert all(g.replay for g in again)
    assert [g.probability for g in again] == [g.probability for g in got[100:103]]
    assert svc.live.sizes() == framed.sizes()
    assert svc.counts["absorbed"] == len(rows)
