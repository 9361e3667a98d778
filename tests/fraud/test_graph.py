"""Snapshot graphs: only edges strictly before the snapshot boundary, structural node features, no labels."""

import numpy as np
import pytest

from fraud.features.graph import NODE_DIM, EventLog, GraphConfig, snapshot_ids
from tests.fixtures.fraud_frames import frame


def test_snapshot_holds_exactly_the_edges_of_its_window_with_degree_features():
    df = frame([0, 10, 3600, 7200, 7300], ["A", "A", "B", "C", "A"], ["B", "C", "C", "A", "B"], [1, 2, 3, 4, 5])
    log = EventLog([df])
    snap = log.snapshot(int(log.t[0]) + 5 * 10**9, int(log.t[0]) + 7200 * 10**9)  # edges at 10 s and 3600 s
    assert snap.edge_index.shape == (2, 2)
    names = [log.entities[c] for c in snap.nodes]
    assert names == sorted(names) == ["A", "B", "C"], "nodes in entity-name order (chunk-invariant)"
    c = names.index("C")
    assert snap.x.shape == (4, NODE_DIM)  # + the unseen node
    assert snap.x[c, 0] == pytest.approx(np.log1p(2))  # C received twice
    assert snap.x[c, 2] == pytest.approx(np.log1p(2 + 3), rel=1e-5)  # amounts received
    assert (snap.x[-1] == 0).all()
    assert snap.local(np.array([log.codes(df["source"])[0], -1])).tolist() == [names.index("A"), 3]


def test_snapshot_boundaries_come_from_event_time_not_from_the_data():
    cfg = GraphConfig(every="1h", window="3d")
    t = np.array([0, 3599, 3600, 7199]) * 10**9
    assert snapshot_ids(t, cfg.every_ns).tolist() == [0, 0, 1, 1]
    assert cfg.history_seconds == 3 * 86400 + 3600
    with pytest.raises(ValueError):
        GraphConfig(every="0h")


def test_auto_cadence_is_the_finest_with_enough_rows_per_snapshot():
    from fraud.features.graph import AUTO_EVERY, auto_every

    hour = 3600 * 10**9
    dense = np.arange(0, 48 * hour, hour // 300)  # 300 rows an hour for two days
    sparse = np.arange(0, 60 * 24 * hour, hour // 20)  # 20 rows an hour for 60 days: same rule, coarser cadence
    assert auto_every(dense, 200) == "1h"
    assert auto_every(sparse, 50) == "3h" and auto_every(sparse, 200) == "12h"
    assert auto_every(sparse, 10**6) == AUTO_EVERY[-1]  # never coarser than a day
    gaps = np.concatenate([dense, dense + 30 * 24 * hour])  # a month without rows adds no snapshots
    assert auto_every(gaps, 200) == "1h"
    cfg = GraphConfig(every="auto", auto_rows=200)
    assert cfg.resolved(sparse) == GraphConfig(every="12h", auto_rows=200)
    assert GraphConfig(every="2h").resolved(sparse).every == "2h"  # an explicit cadence stays
    assert cfg.history_seconds == 3 * 86400 + 86400  # enough history for any cadence auto may choose
    with pytest.raises(ValueError, match="auto"):
        cfg.every_ns  # noqa: B018  (a cadence exists only once fit has chosen it)


def test_empty_log_gives_an_empty_graph_with_only_the_unseen_node():
    snap = EventLog([frame([], [], [], [])]).snapshot(0, 10)
    assert snap.x.shape == (1, NODE_DIM) and snap.edge_index.shape == (2, 0)
    assert snap.local(np.array([5])).tolist() == [0]


def test_return_path_hops_finds_the_cycle_a_new_edge_would_close():
    from fraud.features.graph import return_path_hops

    # O -> A -> B -> C, then C -> O would close a 4-cycle (path O..C has 3 hops); X -> Y has no way back
    df = frame([0, 60, 120, 180], ["O", "A", "B", "X"], ["A", "B", "C", "Y"], [100, 97, 95, 10])
    log = EventLog([df])
    snap = log.snapshot(int(log.t[0]), int(log.t[-1]) + 1)

    def loc(names):
        return snap.local(log.codes(__import__("pandas").Series(names)))

    hops = return_path_hops(snap, loc(["C", "B", "X", "C"]), loc(["O", "O", "Y", "A"]), max_hops=4)
    assert hops.tolist() == [3, 2, 0, 2]
    assert return_path_hops(snap, loc(["C"]), loc(["O"]), max_hops=2).tolist() == [0]  # too long for 2 hops
    assert return_path_hops(snap, np.array([len(snap.nodes)]), loc(["O"]), max_hops=4).tolist() == [0]  # unseen
