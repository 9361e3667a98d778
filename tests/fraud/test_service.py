"""fraud serve: validation errors name the field (never a 500), scores equal batch scoring, event-time rules,
idempotency, bounds, the key, the durable store and restarts, real server."""

import re

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fraud.data.durations import to_ns
from fraud.serve.admission import AdmissionConfig
from fraud.serve.scoring import ScoreOptions, score_file
from fraud.serve.service import create_app
from fraud.serve.store import StateStore, StoreError
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
KEY = "k" * 24
AUTH = {"X-API-Key": KEY}


def _tx(df: pd.DataFrame) -> list[dict]:
    return [{"transaction_id": r.transaction_id, "timestamp": r.timestamp.isoformat(), "source": r.source,
             "target": r.target, "amount": float(r.amount)} for r in df.itertuples()]


def _app(tmp_path, **kw):
    _, run, _ = tiny_model()
    kw = {"max_batch": 50, "state": tmp_path / "state.sqlite", "api_key": KEY, **kw}
    return create_app(run, **kw)


@pytest.fixture()
def client(tmp_path):
    with TestClient(_app(tmp_path), headers=AUTH) as c:  # `with`: runs the lifespan (model load, restore)
        yield c


def _file_scores(tmp_path, rows: pd.DataFrame) -> pd.DataFrame:
    model, _, _ = tiny_model()
    src = tmp_path / "rows.parquet"
    rows.to_parquet(src, index=False)
    score_file(model, src, tmp_path / "o.parquet", options=ScoreOptions(progress=False))
    return pd.read_parquet(tmp_path / "o.parquet")


def test_health_model_and_openapi(client, tmp_path):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model_loaded"] and h["transactions_scored"] == 0
    assert h["writes_enabled"] and h["store"]["path"] == str(tmp_path / "state.sqlite")
    assert h["store"]["transactions"] == 0 and h["event_time"]["lateness"] == "1h"
    m = client.get("/model").json()
    assert m["kind"] == "fraud-model" and m["n_features"] == len(m["feature_names"]) and 0 < m["threshold"] < 1
    spec = client.get("/openapi.json").json()
    assert {"/score", "/health", "/model", "/feedback"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_requests_in_event_order_score_like_the_batch_file(client, tmp_path):
    _, _, later = tiny_model()
    rows = later.iloc[:120]
    batch = _file_scores(tmp_path, rows)
    got = []
    for a, b in [(0, 1), (1, 2), (2, 40), (40, 41), (41, 90), (90, 120)]:  # singles and batches
        r = client.post("/score", json={"transactions": _tx(rows.iloc[a:b])})
        assert r.status_code == 200, r.text
        got += r.json()["results"]
    assert [g["transaction_id"] for g in got] == rows["transaction_id"].tolist()
    # Bit for bit: the service's coded single-row path and file scoring's frames run the same arithmetic.
    assert [g["probability"] for g in got] == batch["probability"].tolist()
    assert [g["flag"] for g in got] == batch["flag"].tolist() and not any(g["replay"] for g in got)
    flagged = [g for g in got if g["flag"]]
    assert all(g["reasons"] and g["reasons"][0]["contribution"] > 0 for g in flagged)
    h = client.get("/health").json()
    assert h["transactions_scored"] == 120 and h["store"]["transactions"] == 120
    # A new id more than the lateness behind what the service absorbed: refused, naming the timestamp.
    old = {**_tx(rows.iloc[:1])[0], "transaction_id": "new-but-old"}
    r = client.post("/score", json={"transactions": [old]})
    assert r.status_code == 422 and "transactions[0].timestamp" in r.json()["message"]
    assert "lateness" in r.json()["message"]


def test_a_late_transaction_gets_its_in_order_score(tmp_path):
    _, _, later = tiny_model()
    rows = later.iloc[:60]
    batch = _file_scores(tmp_path, rows)
    t = rows["timestamp"]
    k = 30
    assert t.iloc[k + 4] - t.iloc[k] < pd.Timedelta("6h")
    order = list(range(k)) + list(range(k + 1, k + 5)) + [k] + list(range(k + 5, 60))  # row k arrives late
    with TestClient(_app(tmp_path, admission=AdmissionConfig(lateness="6h")), headers=AUTH) as c:
        got = {}
        for i in order:
            r = c.post("/score", json={"transactions": _tx(rows.iloc[i:i + 1])})
            assert r.status_code == 200, r.text
            got[i] = r.json()["results"][0]["probability"]
    # The late row, and every row after it in arrival order, scores as the in-order file does.
    for i in [k, *range(k + 5, 60)]:
        assert got[i] == pytest.approx(batch["probability"].iloc[i], rel=1e-6), i


def test_a_row_before_a_cached_snapshots_end_drops_it():
    """The first request after a snapshot boundary cuts and caches that snapshot (and its node embeddings);
    a row from before the boundary that arrives afterwards belongs to it: every later row gets the matrix
    of a scorer that caches nothing, bit for bit."""
    from fraud.features.graph import SnapshotCache
    from fraud.serve.live_history import LiveHistory
    from fraud.stack.scorer import LiveScorer

    model, _, later = tiny_model()
    rows = later.iloc[:80].reset_index(drop=True)
    every = model.cfg.graph.every_ns
    period = to_ns(rows["timestamp"]) // every
    # j: the last row before a boundary with rows after it in the same snapshot period; the late row pays
    # between the parties of row j + 2 just before the boundary, so row j + 2's graph holds it
    j = next(i for i in range(1, len(rows) - 2) if period[i] < period[i + 1] == period[i + 2])
    late = rows.iloc[[j + 2]].assign(transaction_id="late-one",
                                     timestamp=pd.Timestamp(int(period[j + 1]) * every - 1000, tz="UTC"))
    arrival = [rows.iloc[i:i + 1] for i in range(j + 2)] + [late] + [rows.iloc[i:i + 1] for i in range(j + 2, 80)]
    cached = LiveScorer(model, LiveHistory(model.history_, 6 * 3600))
    plain = LiveScorer(model, LiveHistory(model.history_, 6 * 3600))
    plain.graph_cache = SnapshotCache(keep=0)  # keeps nothing: every row cuts its snapshot
    for k, row in enumerate(arrival):
        np.testing.assert_array_equal(cached.run(row)[0], plain.run(row)[0], err_msg=str(k))
    assert cached.graph_cache.hits > 10


def test_the_issue_requests_get_clear_4xx_and_never_break_the_service(client):
    _, _, later = tiny_model()
    rows = _tx(later.iloc[:6])
    assert client.post("/score", json={"transactions": rows[:1]}).status_code == 200
    # A timestamp years ahead is refused and not absorbed: real transactions still go through.
    future = {**rows[1], "transaction_id": "future", "timestamp": "2031-01-01T00:00:00Z"}
    r = client.post("/score", json={"transactions": [future]})
    assert r.status_code == 422 and "skew" in r.json()["message"] and "timestamp" in r.json()["message"]
    assert client.post("/score", json={"transactions": rows[1:2]}).status_code == 200
    r = client.post("/score", json={"transactions": [{**rows[2], "timestamp": "9999-12-31T00:00:00Z"}]})
    assert r.status_code == 422 and "transactions[0].timestamp" in r.json()["message"]
    # The same id twice: the stored result, marked as a replay, absorbed once.
    first = client.post("/score", json={"transactions": rows[2:3]}).json()["results"][0]
    again = client.post("/score", json={"transactions": rows[2:3]}).json()["results"][0]
    assert again == {**first, "replay": True} and not first["replay"]
    assert client.get("/health").json()["store"]["transactions"] == 3
    r = client.post("/score", json={"transactions": [{**rows[2], "amount": rows[2]["amount"] + 1}]})
    assert r.status_code == 409 and "already absorbed with another amount" in r.json()["message"]
    r = client.post("/score", json={"transactions": [{**rows[3], "amount": 1e308}]})
    assert r.status_code == 422 and "transactions[0].amount" in r.json()["message"]
    r = client.post("/score", json={"transactions": [{**rows[3], "merchant_city": "x"}]})
    assert r.status_code == 422 and "transactions[0].merchant_city" in r.json()["message"]
    r = client.post("/score", json={"transactions": rows[3:4]}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401
    r = client.post("/score", json={"transactions": rows[3:4], "remember": False}, headers={"X-API-Key": ""})
    assert r.status_code == 200 and not r.json()["results"][0]["replay"]  # scoring without absorbing is open
    assert client.get("/health").json()["store"]["transactions"] == 3


def test_without_a_key_or_a_store_the_service_is_read_only(tmp_path):
    _, _, later = tiny_model()
    body = {"transactions": _tx(later.iloc[:2])}
    for kw, why in (({"api_key": None}, "no API key"), ({"state": None}, "no state store")):
        with TestClient(_app(tmp_path, **kw), headers=AUTH) as c:
            h = c.get("/health").json()
            assert not h["writes_enabled"] and why in h["read_only_reason"]
            r = c.post("/score", json=body)
            assert r.status_code == 403 and why in r.json()["message"]
            assert c.post("/score", json={**body, "remember": False}).status_code == 200
    with TestClient(_app(tmp_path, open_scoring=False)) as c:
        assert c.post("/score", json={**body, "remember": False}).status_code == 401


def test_a_restart_restores_the_state_from_the_store(tmp_path):
    _, _, later = tiny_model()
    rows = later.iloc[:40]
    batch = _file_scores(tmp_path, rows)
    with TestClient(_app(tmp_path), headers=AUTH) as c:
        assert c.post("/score", json={"transactions": _tx(rows.iloc[:25])}).status_code == 200
    with TestClient(_app(tmp_path), headers=AUTH) as c:
        h = c.get("/health").json()
        assert h["restored"]["transactions"] == 25 and h["store"]["transactions"] == 25
        replay = c.post("/score", json={"transactions": _tx(rows.iloc[20:25])}).json()["results"]
        assert all(g["replay"] for g in replay)
        rest = c.post("/score", json={"transactions": _tx(rows.iloc[25:])}).json()["results"]
    np.testing.assert_allclose([g["probability"] for g in replay + rest], batch["probability"].iloc[20:], rtol=1e-6)
    model, _, _ = tiny_model()
    with pytest.raises(StoreError, match="another model"):
        StateStore(tmp_path / "state.sqlite", "some-other-model")


GOOD = {"transaction_id": "a1", "timestamp": "2024-06-01T00:00:00Z", "source": "C1", "target": "M1", "amount": 5}


@pytest.mark.parametrize("body, status, field", [
    ({"transactions": [{**GOOD, "amount": "abc"}]}, 422, "transactions[0].amount"),
    ({"transactions": [{**GOOD, "amount": -1}]}, 422, "transactions[0].amount"),
    ({"transactions": [{k: v for k, v in GOOD.items() if k != "source"}]}, 422, "transactions[0].source"),
    ({"transactions": [{**GOOD, "timestamp": "yesterday"}]}, 422, "transactions[0].timestamp"),
    ({"transactions": [{**GOOD, "transaction_id": ""}]}, 422, "transactions[0].transaction_id"),
    ({"transactions": []}, 422, "body.transactions"),
    ({"transactions": [GOOD, GOOD]}, 422, "transactions[1].transaction_id"),
    ({"tx": [GOOD]}, 422, "body.transactions"),
    ({"transactions": [{**GOOD, "transaction_id": f"t{i}"} for i in range(51)]}, 413, "body.transactions"),
])
def test_bad_requests_get_4xx_naming_the_field(client, body, status, field):
    r = client.post("/score", json=body)
    assert r.status_code == status, r.text
    assert field in r.json()["message"]


def test_malformed_json_nan_and_huge_bodies_are_4xx(client):
    r = client.post("/score", content=b'{"transactions": [', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "message" in r.json()
    nan = '{"transactions": [{"transaction_id": "x", "timestamp": "2024-06-01T00:00:00Z", "source": "a", ' \
          '"target": "b", "amount": NaN}]}'
    r = client.post("/score", content=nan, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "amount" in r.json()["message"]
    r = client.post("/score", content=b"x" * 200_000, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/health").status_code == 200  # still alive


def test_real_server_over_http(tmp_path):
    import httpx

    from fraud.serve.service import serve_in_subprocess

    _, run, later = tiny_model()
    with serve_in_subprocess(run, tmp_path / "server.log", "--log-level", "warning", "--state",
                             str(tmp_path / "s.sqlite"), env={"FRAUD_API_KEY": KEY}) as base:
        r = httpx.post(f"{base}/score", json={"transactions": _tx(later.iloc[:3])}, headers=AUTH, timeout=30)
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        bad = httpx.post(f"{base}/score", json={"transactions": [{"amount": "x"}]}, headers=AUTH, timeout=30)
        assert bad.status_code == 422
        assert httpx.get(f"{base}/model", timeout=5).json()["kind"] == "fraud-model"
        assert httpx.get(f"{base}/health", timeout=5).json()["store"]["transactions"] == 3


def test_fraud_score_after_the_state_replays_ids_it_holds(tmp_path):
    from typer.testing import CliRunner

    from fraud.cli import app

    model, run, later = tiny_model()
    rows = later.iloc[:60]
    whole = _file_scores(tmp_path, rows)
    with TestClient(_app(tmp_path), headers=AUTH) as c:
        served = c.post("/score", json={"transactions": _tx(rows.iloc[:30])}).json()["results"]
    f = rows.iloc[20:].copy()  # 10 rows the service absorbed, then 30 it never saw
    f.loc[f.index[2], "amount"] += 1  # an absorbed id with another payload
    src = tmp_path / "file.csv"
    f.to_csv(src, index=False)
    res = CliRunner().invoke(app, ["score", "--model", str(run), "--input", str(src), "--output",
                                   str(tmp_path / "out.csv"), "--state", str(tmp_path / "state.sqlite"), "-q"])
    assert res.exit_code == 0, res.output
    assert re.search(r"replayed\s+9\s", res.output), res.output  # (the one-line summary of -q)
    out = pd.read_csv(tmp_path / "out.csv")
    rej = pd.read_csv(tmp_path / "out.rejects.csv")
    assert len(out) == 39 and len(rej) == 1 and "another amount" in rej["reason"].iloc[0]
    replay = out[out["replay"]]
    np.testing.assert_allclose(replay["probability"], [s["probability"] for s in served[20:30] if
                                                        s["transaction_id"] != f["transaction_id"].iloc[2]])
    fresh = out[~out["replay"]]  # scored after the state: as if the file had come after the served rows
    np.testing.assert_allclose(fresh["probability"], whole["probability"].iloc[30:], rtol=1e-6)


def test_concurrent_absorbing_requests_are_served_together_and_each_id_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from fraud.serve.live_history import LiveHistory
    from fraud.serve.service_state import canonical_rows

    model, _, later = tiny_model()
    rows = later.iloc[:48]
    bodies = [{"transactions": _tx(rows.iloc[a:a + 3])} for a in range(0, 48, 3)]
    bodies += bodies[:4]  # the same requests again, concurrently with the first ones: replays
    with TestClient(_app(tmp_path, admission=AdmissionConfig(lateness="1d")), headers=AUTH) as c:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda b: c.post("/score", json=b), bodies))
        assert [a.status_code for a in answers] == [200] * len(bodies), [a.text for a in answers if a.status_code != 200]
        results = [r for a in answers for r in a.json()["results"]]
        assert sum(not r["replay"] for r in results) == 48 and sum(r["replay"] for r in results) == 12
        svc = c.app.state.svc
        stored = svc.store.transactions()
        assert sorted(stored["transaction_id"]) == sorted(rows["transaction_id"])
        rebuilt = LiveHistory(model.history_, lateness_s=86400).update(canonical_rows(stored))
        for a, b in ((svc.live.to_history(), rebuilt.to_history()),):
            pd.testing.assert_frame_equal(a.tail, b.tail)
            pd.testing.assert_frame_equal(a.pairs, b.pairs)


def test_event_time_rules_for_the_wall_and_the_replay_clock():
    from fraud.serve.admission import check_rows

    m = 60 * 10**9
    newest, floor, now = 1000 * m, 900 * m, 10_000 * m
    t = np.array([1002, 1004, 1020, 995, 930, 1000], np.int64) * m
    amount = np.array([1.0, 2.0, 3.0, 4.0, 5e9, 6.0])
    wall = check_rows(t, amount, AdmissionConfig(), newest, floor, now)
    assert [(i, f) for i, f, _ in wall] == [(4, "amount"), (4, "timestamp")]  # 930: more than 1 h late
    assert "lateness" in wall[1][2]
    # Replay: the clock is the newest absorbed time, advancing with the rows; 1020 is 16 min after 1004.
    replay = check_rows(t, amount, AdmissionConfig(clock="replay"), newest, floor, now)
    assert [(i, f) for i, f, _ in replay] == [(2, "timestamp"), (4, "amount"), (4, "timestamp")]
    assert "newest transaction seen" in replay[0][2]
    assert check_rows(t[[0, 1, 2]], amount[:3], AdmissionConfig(clock="replay", max_skew="30m"), newest, floor,
                      now) == []
    before = check_rows(np.array([899 * m]), np.array([1.0]), AdmissionConfig(lateness="1d"), newest, floor, now)
    assert "before the end of the model's stored history" in before[0][2]
    future = check_rows(np.array([now + 6 * m]), np.array([1.0]), AdmissionConfig(), newest, floor, now)
    assert "later than the service clock" in future[0][2]
