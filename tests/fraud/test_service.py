"""fraud serve: validation errors name the field (never a 500), scores equal batch scoring, real server."""


import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from fraud.serve.scoring import ScoreOptions, score_file
from fraud.serve.service import create_app
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)


def _tx(df: pd.DataFrame) -> list[dict]:
    return [{"transaction_id": r.transaction_id, "timestamp": r.timestamp.isoformat(), "source": r.source,
             "target": r.target, "amount": float(r.amount)} for r in df.itertuples()]


@pytest.fixture()
def client():
    model, run, _ = tiny_model()
    with TestClient(create_app(run, max_batch=50)) as c:  # `with`: runs the lifespan (model load)
        yield c


def test_health_model_and_openapi(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["model_loaded"] and h["transactions_scored"] == 0
    m = client.get("/model").json()
    assert m["kind"] == "fraud-model" and m["n_features"] == len(m["feature_names"]) and 0 < m["threshold"] < 1
    spec = client.get("/openapi.json").json()
    assert {"/score", "/health", "/model"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200


def test_requests_in_event_order_score_like_the_batch_file(client, tmp_path):
    model, _, later = tiny_model()
    rows = later.iloc[:120]
    src = tmp_path / "rows.parquet"
    rows.to_parquet(src, index=False)
    score_file(model, src, tmp_path / "o.parquet", options=ScoreOptions(progress=False))
    batch = pd.read_parquet(tmp_path / "o.parquet")
    got = []
    for a, b in [(0, 1), (1, 2), (2, 40), (40, 41), (41, 90), (90, 120)]:  # singles and batches
        r = client.post("/score", json={"transactions": _tx(rows.iloc[a:b])})
        assert r.status_code == 200, r.text
        got += r.json()["results"]
    assert [g["transaction_id"] for g in got] == rows["transaction_id"].tolist()
    np.testing.assert_allclose([g["probability"] for g in got], batch["probability"], rtol=1e-6)
    assert [g["flag"] for g in got] == batch["flag"].tolist()
    flagged = [g for g in got if g["flag"]]
    assert all(g["reasons"] and g["reasons"][0]["contribution"] > 0 for g in flagged)
    assert client.get("/health").json()["transactions_scored"] == 120
    # Older than what the service has absorbed: refused, naming the row's timestamp field.
    r = client.post("/score", json={"transactions": _tx(rows.iloc[:1])})
    assert r.status_code == 422 and "transactions[0].timestamp" in r.json()["message"]


def test_batch_order_is_fixed_inside_a_request_and_remember_false_does_not_absorb(client):
    _, _, later = tiny_model()
    rows = later.iloc[:5]
    shuffled = _tx(rows.iloc[::-1])
    r1 = client.post("/score", json={"transactions": shuffled, "remember": False})
    r2 = client.post("/score", json={"transactions": _tx(rows)})
    assert r1.status_code == r2.status_code == 200
    p1 = {g["transaction_id"]: g["probability"] for g in r1.json()["results"]}
    assert [g["transaction_id"] for g in r1.json()["results"]] == [t["transaction_id"] for t in shuffled]
    assert all(p1[g["transaction_id"]] == pytest.approx(g["probability"]) for g in r2.json()["results"])


GOOD = {"transaction_id": "a1", "timestamp": "2030-01-01T00:00:00Z", "source": "C1", "target": "M1", "amount": 5}


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
    nan = '{"transactions": [{"transaction_id": "x", "timestamp": "2030-01-01T00:00:00Z", "source": "a", ' \
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
    with serve_in_subprocess(run, tmp_path / "server.log", "--log-level", "warning") as base:
        r = httpx.post(f"{base}/score", json={"transactions": _tx(later.iloc[:3])}, timeout=30)
        assert r.status_code == 200 and len(r.json()["results"]) == 3
        bad = httpx.post(f"{base}/score", json={"transactions": [{"amount": "x"}]}, timeout=30)
        assert bad.status_code == 422
        assert httpx.get(f"{base}/model", timeout=5).json()["kind"] == "fraud-model"
