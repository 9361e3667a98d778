"""fraud serve under random valid and invalid transactions and batches (hypothesis): never a 5xx, and the state
in memory and in the store always equals the state rebuilt from the acknowledged transactions."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud.serve.live_history import LiveHistory
from fraud.serve.service import create_app
from fraud.serve.service_state import canonical_rows
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
KEY = "fuzz-key-0123456789abcdef"
ENTITIES = ["C1", "C2", "C3", "M1", "M2", "X1", "C175"]

# Minutes: most rows move the feed's clock forward, some arrive late (within the 1 h lateness or not) or wild.
minutes = st.one_of(*[st.integers(0, 90)] * 12, st.integers(-120, -1), st.sampled_from([10**7, -10**6]))
amounts = st.one_of(*[st.floats(0, 1e6, allow_nan=False)] * 12, st.sampled_from([0.0, 5e-324, 1e9, 1e308, 2e9]))
# Most ids are new; some repeat a transaction sent before, as it was (a replay) or changed (a conflict).
ids = st.sampled_from(["new"] * 8 + ["again", "changed"])
valid = st.fixed_dictionaries({"id": ids, "minutes": minutes,
                               "source": st.sampled_from(ENTITIES), "target": st.sampled_from(ENTITIES),
                               "amount": amounts})
broken = st.sampled_from([None] * 60 + [
    {"amount": "abc"}, {"amount": -1}, {"amount": None}, {"source": ""}, {"timestamp": "yesterday"},
    {"timestamp": "9999-12-31T00:00:00Z"}, {"extra": 1}, {"timestamp": 1e30}, {"transaction_id": "x" * 300},
    {"amount": True}])
item = st.tuples(valid, broken)
request = st.fixed_dictionaries({"items": st.lists(item, min_size=1, max_size=5), "remember": st.booleans(),
                                 "key": st.sampled_from([KEY] * 6 + ["wrong", None])})


def _tx(df: pd.DataFrame) -> list[dict]:
    return [{"transaction_id": r.transaction_id, "timestamp": r.timestamp.isoformat(), "source": r.source,
             "target": r.target, "amount": float(r.amount)} for r in df.itertuples()]


def _body(items, start: pd.Timestamp, sent: list[dict]) -> list[dict]:
    """The request's transactions; `sent` (every valid transaction sent so far) grows."""
    out = []
    for tx, bad in items:
        m = tx["minutes"]
        d = {"transaction_id": f"n{len(sent)}", "source": tx["source"], "target": tx["target"],
             "amount": tx["amount"], "timestamp": (start + pd.Timedelta(minutes=m)).isoformat()
             if -10**6 < m < 10**7 else ("2031-01-01T00:00:00Z" if m > 0 else "1971-01-01")}
        if tx["id"] != "new" and sent:
            d = dict(sent[hash(tx["source"]) % len(sent)])
            if tx["id"] == "changed":
                d["amount"] = float(d["amount"]) + 1
        sent.append(d)
        out.append({**d, **(bad or {})})
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=20))
def test_random_requests_never_5xx_and_the_state_equals_the_acknowledged_transactions(reqs):
    model, run, later = tiny_model()
    warm = later.iloc[:8]  # a real feed first, so the state has history to compare
    start = warm["timestamp"].iloc[-1]
    acknowledged = []  # canonical rows of every transaction the service said it absorbed, in its order
    with tempfile.TemporaryDirectory() as tmp, \
            TestClient(create_app(run, max_batch=5, state=Path(tmp) / "s.sqlite", api_key=KEY)) as c:
        for a in (0, 4):
            part = warm.iloc[a:a + 4]
            assert c.post("/score", json={"transactions": _tx(part)}, headers={"X-API-Key": KEY}).status_code == 200
            acknowledged.append(part[["transaction_id", "timestamp", "source", "target", "amount"]])
        clock, sent = 0, []
        for req in reqs:
            for tx, _ in req["items"]:  # forward steps move the clock; late rows are behind it
                if 0 <= tx["minutes"] <= 90:
                    clock += tx["minutes"]
                    tx["minutes"] = clock
                elif -120 <= tx["minutes"] < 0:
                    tx["minutes"] += clock
            body = {"transactions": _body(req["items"], start, sent), "remember": req["remember"]}
            r = c.post("/score", json=body, headers={"X-API-Key": req["key"]} if req["key"] else {})
            assert r.status_code < 500, r.text
            assert set(r.json()) >= ({"results"} if r.status_code == 200 else {"message", "detail"})
            if r.status_code == 200 and req["remember"]:
                res = r.json()["results"]
                new = [tx for tx, out in zip(body["transactions"], res, strict=True) if not out["replay"]]
                rows = pd.DataFrame(new, columns=["transaction_id", "timestamp", "source", "target", "amount"])
                rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
                acknowledged.append(rows.sort_values("timestamp", kind="stable"))
        svc = c.app.state.svc
        rebuilt = LiveHistory(model.history_, lateness_s=3600)
        for rows in acknowledged:
            rebuilt.update(rows.astype({"source": "string", "target": "string"}))
        _same_state(svc.live, rebuilt)
        stored = svc.store.transactions()
        ack = pd.concat(acknowledged, ignore_index=True) if acknowledged else pd.DataFrame(columns=["transaction_id"])
        assert stored["transaction_id"].tolist() == ack["transaction_id"].tolist()  # the store, in the same order
        restored = LiveHistory(model.history_, lateness_s=3600)
        restored.update(canonical_rows(stored))
        _same_state(restored, rebuilt)


def _same_state(a: LiveHistory, b: LiveHistory) -> None:
    ha, hb = a.to_history(), b.to_history()
    assert (ha.max_ns, ha.cutoff_ns) == (hb.max_ns, hb.cutoff_ns)
    for x, y in ((ha.tail, hb.tail), (ha.entities, hb.entities), (ha.pairs, hb.pairs)):
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True)
    assert np.array_equal(a.known(pd.Series(ENTITIES)) >= 0, b.known(pd.Series(ENTITIES)) >= 0)
