"""The snapshot GNN: shapes, differentiable head, learns a graph-only pattern, embeddings use only the past."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from fraud.data.durations import to_ns
from fraud.features.graph import EDGE_DIM, GRAPH_EDGE_DIM, NODE_DIM, EventLog, GraphConfig, edge_features
from fraud.models.gnn import EdgeGNN, GNNConfig, Rows, embed_rows
from fraud.models.gnn_training import fit_gnn
from tests.fixtures.fraud_frames import planted

GCFG = GraphConfig(every="1h", window="2d")


def rows_of(log: EventLog, df: pd.DataFrame) -> Rows:
    t = to_ns(df["timestamp"])
    return Rows(t=t, src=log.codes(df["source"]), dst=log.codes(df["target"]),
                attr=edge_features(df["amount"].to_numpy(), t))


def test_encoder_and_head_shapes_and_head_is_differentiable_in_edge_features():
    cfg = GNNConfig(hidden=16, embed=4, layers=2, label_nodes=False)
    model = EdgeGNN(cfg)
    x = torch.randn(5, NODE_DIM)
    ei = torch.tensor([[0, 1, 2], [1, 2, 3]])
    h = model.encode(x, ei, torch.randn(3, GRAPH_EDGE_DIM))
    assert h.shape == (5, 4)
    attr = torch.randn(2, EDGE_DIM, requires_grad=True)
    logit = model.head(h[[0, 1]].detach(), h[[2, 3]].detach(), attr)
    assert logit.shape == (2,)
    logit.sum().backward()
    assert attr.grad is not None and attr.grad.abs().sum() > 0


def test_learns_fan_in_fraud_that_row_amounts_cannot_show():
    df = planted(n=6000, days=20, seed=1)
    train, test = df.iloc[:4500], df.iloc[4500:]
    log = EventLog([df])
    cfg = GNNConfig(hidden=16, embed=4, epochs=4, train_every="6h", label_nodes=False)
    model = fit_gnn(log, rows_of(log, train), train["label"].to_numpy(), cfg, GCFG, seed=0, progress=False)
    _, _, logit = embed_rows(model, log, rows_of(log, test), GCFG)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(test["label"], logit) > 0.9


def test_training_cadence_is_the_finest_with_at_most_max_snapshots_whatever_the_graph_cadence():
    from dataclasses import replace

    from fraud.models.gnn_training import training_every

    df = planted(n=3000, days=10, seed=8)  # rows in 240 hours
    log = EventLog([df])
    rows, y = rows_of(log, df), df["label"].to_numpy()
    hour = GCFG.every_ns
    cfg = GNNConfig(hidden=8, embed=4, epochs=2, label_nodes=False, max_snapshots=100)
    assert training_every(rows.t, cfg, GCFG) == 3 * hour  # 2h would give 120 snapshots
    assert training_every(rows.t, cfg, GraphConfig(every="1d", window="2d")) == 3 * hour  # not the graph's
    assert training_every(rows.t, replace(cfg, max_snapshots=300), GraphConfig(every="1d")) == hour
    assert training_every(rows.t, replace(cfg, max_snapshots=3), GCFG) == 24 * hour  # never coarser than a day
    assert training_every(rows.t, replace(cfg, max_snapshots=0), GraphConfig(every="6h")) == 6 * hour
    assert training_every(rows.t, replace(cfg, train_every="2h"), GCFG) == 2 * hour
    msgs: list[str] = []
    a = fit_gnn(log, rows, y, cfg, GCFG, seed=0, progress=False, log_fn=msgs.append)
    assert msgs[0] == "gnn: 80 training snapshots of 180 min"
    b = fit_gnn(log, rows, y, cfg, GCFG, seed=0, progress=False)
    assert all(torch.equal(u, v) for u, v in zip(a.parameters(), b.parameters(), strict=True))  # seeded


def test_embeddings_of_a_row_ignore_edges_at_or_after_its_snapshot_boundary():
    df = planted(n=3000, days=10, seed=2)
    model = EdgeGNN(GNNConfig(hidden=8, embed=4, label_nodes=False))
    log = EventLog([df])
    probe = df.iloc[[1500]]
    boundary = (to_ns(probe["timestamp"])[0] // GCFG.every_ns) * GCFG.every_ns
    later = to_ns(df["timestamp"]) >= boundary
    changed = df.copy()
    changed.loc[later, "target"] = pd.array(["X0"] * int(later.sum()), dtype="string")
    changed.loc[later, "amount"] = 1e6
    log2 = EventLog([changed])
    a = embed_rows(model, log, rows_of(log, probe), GCFG)
    b = embed_rows(model, log2, rows_of(log2, probe.assign(target=probe["target"])), GCFG)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_nan_loss_stops_training_loudly():
    df = planted(n=1500, days=5, seed=3)
    log = EventLog([df])
    rows = rows_of(log, df)
    rows.attr[:, 0] = np.nan  # a broken input must stop training, not train a NaN model
    with pytest.raises(FloatingPointError, match="GNN loss"):
        fit_gnn(log, rows, df["label"].to_numpy(), GNNConfig(epochs=2, label_nodes=False), GCFG, 0, progress=False)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_rows_embedding_does_not_depend_on_the_rows_scored_with_it(threads):
    """Chunked scoring asks a snapshot for different subsets of its rows; each row must get the same bits."""
    from fraud.models.gnn import embed_snapshot

    df = planted(n=3000, days=10, seed=4)
    log = EventLog([df])
    rows = rows_of(log, df)
    end = (int(rows.t[-1]) // GCFG.every_ns) * GCFG.every_ns
    snap = log.snapshot(end - GCFG.window_ns, end)
    model = EdgeGNN(GNNConfig(hidden=32, embed=8, label_nodes=False))
    s, d = snap.local(rows.src), snap.local(rows.dst)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole = embed_snapshot(model, snap, s, d, rows.attr)
        for lo, hi in [(0, 1), (5, 8), (100, 117), (40, 240), (1000, 2999)]:
            part = embed_snapshot(model, snap, s[lo:hi], d[lo:hi], rows.attr[lo:hi])
            for w, p in zip(whole, part, strict=True):
                np.testing.assert_array_equal(w[lo:hi], p)
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
def test_rows_read_from_a_snapshots_node_embeddings_equal_encoding_only_their_nodes(threads):
    """The service keeps every node's embedding of a cached snapshot and looks rows up; a row must get the
    bits it gets when its own nodes are encoded (file scoring, the first request of the snapshot)."""
    from fraud.models.gnn import embed_from_nodes, embed_snapshot, encode_prefix, node_embeddings

    df = planted(n=3000, days=10, seed=5)
    log = EventLog([df])
    rows = rows_of(log, df)
    end = (int(rows.t[-1]) // GCFG.every_ns) * GCFG.every_ns
    snap = log.snapshot(end - GCFG.window_ns, end)
    model = EdgeGNN(GNNConfig(hidden=32, embed=8, label_nodes=False)).eval()
    s, d = snap.local(rows.src), snap.local(rows.dst)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        enc = encode_prefix(model, snap)
        nodes_h = node_embeddings(model, enc)
        for lo, hi in [(0, 1), (7, 9), (100, 117), (2990, 3000)]:
            want = embed_snapshot(model, None, s[lo:hi], d[lo:hi], rows.attr[lo:hi], enc)
            got = embed_from_nodes(model, nodes_h, s[lo:hi], d[lo:hi], rows.attr[lo:hi])
            for w, g in zip(want, got, strict=True):
                np.testing.assert_array_equal(w, g)
    finally:
        torch.set_num_threads(before)


def test_stable_order_equals_numpy_stable_argsort_beyond_16_bits():
    from fraud.features.graph import stable_order

    keys = np.random.default_rng(0).integers(0, 200_000, 50_000)
    np.testing.assert_array_equal(stable_order(keys), np.argsort(keys, kind="stable"))
    small = keys % 300
    np.testing.assert_array_equal(stable_order(small), np.argsort(small, kind="stable"))


def test_encoding_only_some_nodes_gives_exactly_their_rows_of_the_full_encoding():
    df = planted(n=3000, days=10, seed=7)
    log = EventLog([df])
    end = (int(to_ns(df["timestamp"])[-1]) // GCFG.every_ns) * GCFG.every_ns
    snap = log.snapshot(end - GCFG.window_ns, end)
    model = EdgeGNN(GNNConfig(hidden=32, embed=8, label_nodes=False)).eval()
    x, ei, ea = (torch.from_numpy(a) for a in (snap.x, snap.edge_index, snap.edge_attr))
    with torch.no_grad():
        full = model.encode(x, ei, ea)
        for nodes in (np.array([0]), np.arange(0, 40, 3), np.arange(len(snap.nodes) + 1)):
            assert torch.equal(model.encode(x, ei, ea, nodes=nodes), full[nodes])


def test_pyg_generated_module_file_is_removed_when_the_process_exits(tmp_path):
    # PyG leaves one generated `propagate` module per process in the temp folder; fraud.models.gnn removes ours.
    code = ("import sys; from fraud.models.gnn import EdgeGNN, GNNConfig; EdgeGNN(GNNConfig()); "
            "print(sys.modules['fraud.models.gnn_EdgeSAGE_propagate'].__file__)")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    path = out.stdout.strip().splitlines()[-1]
    assert path.startswith(str(tmp_path)) and path.endswith(".py")
    assert not list(tmp_path.glob("fraud.models.gnn_*.py"))
