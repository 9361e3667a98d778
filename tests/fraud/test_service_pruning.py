"""Bounded service state: checkpoints and pruning change no score, keep the store bounded on a long replay,
and a restart from a pruned store rebuilds the same state."""

import numpy as np
import pandas as pd
import pytest

from fraud.serve.admission import AdmissionConfig
from fraud.serve.pruning import PruneConfig
from fraud.serve.schemas import Transaction
from fraud.serve.service_state import Refused, ServiceState
from fraud.serve.store import StateStore, model_identity
from tests.fixtures.scoring_model import single_threaded, tiny_model

_one_thread = pytest.fixture(scope="module", autouse=True)(single_threaded)
RULES = AdmissionConfig(clock="replay", max_skew="30d", lateness="1h")


def _txs(df: pd.DataFrame) -> list[Transaction]:
    return [Transaction(transaction_id=r.transaction_id, timestamp=r.timestamp.isoformat(), source=r.source,
                        target=r.target, amount=float(r.amount)) for r in df.itertuples()]


def _state(path, prune: PruneConfig) -> ServiceState:
    model, run, _ = tiny_model()
    return ServiceState(model, run, 100, RULES, StateStore(path, model_identity(model)), prune=prune)


def _held(path) -> int:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0]


def _same(a: ServiceState, b: ServiceState) -> None:
    ha, hb = a.live.to_history(), b.live.to_history()
    assert (ha.max_ns, ha.cutoff_ns) == (hb.max_ns, hb.cutoff_ns)
    for x, y in ((ha.tail, hb.tail), (ha.entities, hb.entities), (ha.pairs, hb.pairs)):
        pd.testing.assert_frame_equal(x.reset_index(drop=True), y.reset_index(drop=True), check_exact=True)


def _long(later: pd.DataFrame, copies: int) -> pd.DataFrame:
    """The later rows again and again, each copy after the previous one (longer than the 7-day window)."""
    span = later["timestamp"].iloc[-1] - later["timestamp"].iloc[0] + pd.Timedelta("1h")
    return pd.concat([later.assign(timestamp=later["timestamp"] + k * span,
                                   transaction_id=later["transaction_id"] + f"-{k}") for k in range(copies)],
                     ignore_index=True)


def test_pruning_changes_no_score_bounds_the_store_and_restarts_exactly(tmp_path):
    _, _, later = tiny_model()
    stream = _long(later, 4)
    rows, later = stream.iloc[:2700], stream.iloc[2700:]
    keep = PruneConfig(remember_ids="1d", checkpoint_every=0)  # never checkpoints: the store keeps everything
    prune = PruneConfig(remember_ids="1d", checkpoint_every=150)
    full, pruned = _state(tmp_path / "full.sqlite", keep), _state(tmp_path / "pruned.sqlite", prune)
    sizes, a = [], 0
    rng = np.random.default_rng(0)
    while a < len(rows):
        b = min(len(rows), a + int(rng.choice([1, 3, 17, 40])))
        want = full.score(_txs(rows.iloc[a:b]), True)
        got = pruned.score(_txs(rows.iloc[a:b]), True)
        assert [g.probability for g in got] == [w.probability for w in want]  # bit for bit
        assert [g.reasons for g in got] == [w.reasons for w in want]
        # Bounded: the rows the features still read (the tail: longest window + lateness) or, if longer, the
        # remembered ids, plus what came since the last checkpoint (and the newest row).
        t = rows["timestamp"].iloc[:b]
        window = max(pd.Timedelta(seconds=pruned.live.tail_seconds) + pd.Timedelta("1h"), pd.Timedelta(days=1))
        sizes.append((_held(tmp_path / "pruned.sqlite"), int((t >= t.iloc[-1] - window).sum())))
        a = b
    _same(full, pruned)
    assert pruned.pruner.last is not None and pruned.pruner.last["pruned"] > 0
    # (a checkpoint comes at the first request after checkpoint_every rows: up to one batch more)
    assert all(held <= recent + prune.checkpoint_every + 40 for held, recent in sizes)
    assert sizes[-1][0] < 0.8 * len(rows)  # 10 days streamed, the 7-day tail (+ 1 h) and the interval held
    assert _held(tmp_path / "full.sqlite") == len(rows)
    # A retry of a remembered id is a replay; an id older than that cannot come back (past the lateness).
    again = pruned.score(_txs(rows.iloc[-1:]), True)
    assert again[0].replay and again[0].probability == pruned.store.lookup_rows(
        [rows["transaction_id"].iloc[-1]])[rows["transaction_id"].iloc[-1]]["probability"]
    with pytest.raises(Refused) as err:
        pruned.score(_txs(rows.iloc[:1]), True)
    assert err.value.status == 422 and "lateness" in err.value.problems[0][1]
    # A restart from the pruned store: checkpoint + the rows after it = the state of the running service,
    # and the next transactions score as they do without pruning.
    pruned.store.close()
    restarted = _state(tmp_path / "pruned.sqlite", prune)
    assert restarted.restored["from_checkpoint_seq"] > 0
    assert restarted.restored["transactions"] <= sizes[-1][0] < len(rows)  # only the rows after the checkpoint
    _same(full, restarted)
    nxt = later.iloc[:60]
    assert [r.probability for r in restarted.score(_txs(nxt), True)] == \
        [r.probability for r in full.score(_txs(nxt), True)]
