"""The compiled window pass gives the same bits as the snapshot graph + torch/scipy path it replaces."""

import numpy as np
import pytest
import torch

from fraud.data.durations import to_ns
from fraud.features.graph import EventLog, GraphConfig, edge_features, return_path_hops
from fraud.features.graph_pass import window
from fraud.models.gnn import EdgeGNN, GNNConfig, embed_snapshot, encode_prefix, encode_window, mean_csr
from tests.fixtures.fraud_frames import frame, planted

GCFG = GraphConfig(every="1h", window="2d")


def _windows(df, count=6):
    """(event log, [(start, end)]) for windows spread over the data, plus one before any edge."""
    log = EventLog([df])
    t = to_ns(df["timestamp"])
    ends = np.linspace(t[0] + GCFG.every_ns, t[-1] + GCFG.every_ns, count).astype(np.int64)
    ends = (ends // GCFG.every_ns) * GCFG.every_ns
    return log, [(int(e) - GCFG.window_ns, int(e)) for e in ends] + [(0, 1)]


def test_window_equals_snapshot_and_its_mean_operators_bit_for_bit():
    df = planted(n=4000, days=8, seed=3)
    df = df.iloc[np.r_[np.arange(len(df)), np.arange(0, len(df), 7)]].sort_values("timestamp")  # repeated pairs
    log, spans = _windows(df.assign(transaction_id=np.arange(len(df)).astype(str)))
    for start, end in spans:
        snap, win = log.snapshot(start, end), window(log, start, end)
        np.testing.assert_array_equal(win.nodes, snap.nodes)
        np.testing.assert_array_equal(win.x, snap.x)
        n = len(snap.x)
        for side, (recv, send) in enumerate([(1, 0), (0, 1)]):
            adj, inc = mean_csr(snap.edge_index[recv], snap.edge_index[send], n)
            np.testing.assert_array_equal(win.ptr[side], adj.ptr)
            np.testing.assert_array_equal(win.nbr[side], adj.cols)
            np.testing.assert_array_equal(win.w[side], adj.w)
            np.testing.assert_array_equal(win.emean[side], (inc @ torch.from_numpy(snap.edge_attr)).numpy())


def test_spmm_gives_scipys_bits():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    recv, send = rng.integers(0, 300, 5000), rng.integers(0, 300, 5000)
    adj, _ = mean_csr(recv, send, 300)
    h = torch.from_numpy(rng.normal(size=(300, 32)).astype(np.float32))
    ref = sp.csr_matrix((adj.w, adj.cols, adj.ptr), shape=(300, 300)) @ h.numpy()
    np.testing.assert_array_equal((adj @ h).numpy(), ref.astype(np.float32))
    rows = torch.tensor([5, 0, 299, 5])
    np.testing.assert_array_equal((adj.take(rows) @ h).numpy(), ref[rows.numpy()].astype(np.float32))


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_encoding_a_window_equals_encoding_its_snapshot(layers):
    torch.manual_seed(layers)
    model = EdgeGNN(GNNConfig(hidden=16, embed=4, layers=layers, label_nodes=False)).eval()
    df = planted(n=3000, days=6, seed=layers)
    log, spans = _windows(df, count=4)
    t = to_ns(df["timestamp"])
    src, dst = log.codes(df["source"]), log.codes(df["target"])
    attr = edge_features(df["amount"].to_numpy(), t)
    for start, end in spans:
        rows = np.flatnonzero((t >= end) & (t < end + GCFG.every_ns))[:50]
        rows = rows if len(rows) else np.arange(3)  # the empty window: any rows (all unseen)
        snap, win = log.snapshot(start, end), window(log, start, end)
        s, d = snap.local(src[rows]), snap.local(dst[rows])
        ref = embed_snapshot(model, snap, s, d, attr[rows], encode_prefix(model, snap))
        got = embed_snapshot(model, None, win.local(src[rows]), win.local(dst[rows]), attr[rows],
                             encode_window(model, win))
        for a, b in zip(ref, got, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("max_hops", [0, 1, 2, 4])
@pytest.mark.parametrize("max_frontier", [3, 40, 2_000_000])
def test_window_return_paths_equal_return_path_hops(max_hops, max_frontier):
    """Same hops, including the early stop when the summed frontier grows past max_frontier."""
    rng = np.random.default_rng(max_hops)
    n = 400
    names = np.array([f"A{i}" for i in range(30)], dtype=object)
    df = frame(np.sort(rng.integers(0, 86400, n)), names[rng.integers(0, 30, n)], names[rng.integers(0, 30, n)],
               rng.lognormal(3, 1, n))
    log = EventLog([df])
    end = int(log.t[-1]) + 1
    snap, win = log.snapshot(int(log.t[0]), end), window(log, int(log.t[0]), end)
    q = rng.integers(0, len(snap.nodes) + 1, (2, 60))  # the last index: an entity absent from the graph
    ref = return_path_hops(snap, q[0], q[1], max_hops, max_frontier=max_frontier)
    np.testing.assert_array_equal(win.paths(q[0], q[1], max_hops, max_frontier), ref)
    if max_hops == 4 and max_frontier > 1000:
        assert (ref > 1).any() and (ref == 0).any()  # the case is not trivial
