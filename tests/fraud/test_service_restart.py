"""fraud serve killed with SIGKILL in the middle of a loopback load and restarted from its --state store:
every acknowledged transaction is in the restored state, nothing is absorbed twice, and every score equals
an uninterrupted run's."""

import threading

import httpx
import numpy as np
import pandas as pd
import pytest

from fraud.serve.launcher import ServerProcess
from fraud.serve.scoring import ScoreOptions, score_file
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
KEY = "restart-test-key-0123456789"


def _tx(df: pd.DataFrame) -> list[dict]:
    return [{"transaction_id": r.transaction_id, "timestamp": r.timestamp.isoformat(), "source": r.source,
             "target": r.target, "amount": float(r.amount)} for r in df.itertuples()]


def _requests(rows: pd.DataFrame, seed: int = 0) -> list[list[dict]]:
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(1, 6, len(rows)))
    cuts = [0, *cuts[cuts < len(rows)].tolist(), len(rows)]
    return [_tx(rows.iloc[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def test_sigkill_mid_load_then_restart_loses_nothing_and_doubles_nothing(tmp_path):
    model, run, later = tiny_model()
    rows = later.iloc[:160]
    src = tmp_path / "rows.parquet"
    rows.to_parquet(src, index=False)
    score_file(model, src, tmp_path / "uninterrupted.parquet", options=ScoreOptions(progress=False))
    want = pd.read_parquet(tmp_path / "uninterrupted.parquet").set_index("transaction_id")["probability"]
    reqs = _requests(rows)
    state = tmp_path / "state.sqlite"
    args = ("--state", str(state), "--log-level", "warning")
    acked: dict[int, list[dict]] = {}  # request index -> results, for every 200 answer
    kill_after = len(reqs) // 3
    enough = threading.Event()

    def load(base: str) -> None:  # one client, back to back, in event order, until the server dies
        with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=30) as c:
            for i, body in enumerate(reqs):
                try:
                    r = c.post("/score", json={"transactions": body})
                except httpx.TransportError:
                    return
                assert r.status_code == 200, r.text
                acked[i] = r.json()["results"]
                if len(acked) >= kill_after:
                    enough.set()

    server = ServerProcess(run, tmp_path / "server.log", *args, env={"FRAUD_API_KEY": KEY}).start()
    try:
        loader = threading.Thread(target=load, args=(server.url,))
        loader.start()
        assert enough.wait(timeout=300), "the load did not get far enough"
        server.kill()  # while the loader's next request is in flight
        loader.join(timeout=60)
    finally:
        server.kill()
    assert kill_after <= len(acked) < len(reqs)
    stored = _stored(state)
    for results in acked.values():  # every acknowledged transaction is in the store, with its answer
        for res in results:
            assert stored.loc[res["transaction_id"], "probability"] == res["probability"]

    server = ServerProcess(run, tmp_path / "server2.log", *args, env={"FRAUD_API_KEY": KEY}).start()
    try:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}, timeout=30) as c:
            h = c.get("/health").json()
            assert h["restored"]["transactions"] == len(stored) == h["store"]["transactions"]
            first_lost = min(set(range(len(reqs))) - set(acked))
            again = {}
            for i in range(first_lost - 2, len(reqs)):  # the client retries from a little before the crash
                r = c.post("/score", json={"transactions": reqs[i]})
                assert r.status_code == 200, r.text
                again[i] = r.json()["results"]
            final = c.get("/health").json()
    finally:
        server.stop()
    assert all(res["replay"] for i in range(first_lost - 2, first_lost) for res in again[i])
    got = {res["transaction_id"]: res["probability"] for results in [*acked.values(), *again.values()]
           for res in results}
    assert set(got) == set(rows["transaction_id"])
    np.testing.assert_allclose([got[t] for t in rows["transaction_id"]], want.loc[rows["transaction_id"]],
                               rtol=1e-6)
    assert final["store"]["transactions"] == len(rows)  # each once: ids are unique in the store
    assert len(_stored(state)) == len(rows)


def _stored(path) -> pd.DataFrame:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return pd.read_sql("SELECT transaction_id, probability FROM transactions ORDER BY seq", db) \
            .set_index("transaction_id")
