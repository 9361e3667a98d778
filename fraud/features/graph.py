"""The transaction graph: entities as nodes, transactions as directed edges, cut into event-time snapshots.

Point-in-time rule for graph embeddings: a row at time t in snapshot k = floor(t / every) (epoch-aligned,
so boundaries come from event time, never from how a file is chunked) uses the graph of all edges with
time in [k*every - window, k*every). Those edges are strictly earlier than the row, and the same for every
row of the snapshot, so one GNN forward pass serves all of them and chunked scoring gives the same result.

Node features are structural (degrees, amounts, distinct counterparties), plus, when the log carries a
label book (`EventLog.node_labels`, fraud/features/graph_labels.py), each entity's known-fraud state from
labels known strictly before the snapshot boundary; edge features come from the raw amount and time only.

Shapes: x [num_nodes, NODE_DIM], edge_index [2, num_edges] (row 0 = source, row 1 = target),
edge_attr [num_edges, GRAPH_EDGE_DIM]. The last node of every snapshot is a featureless "unseen" node that
entities absent from the snapshot map to.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fraud.data.durations import NS, parse_duration, to_ns

EDGE_FEATURES = ["log_amount", "hour_sin", "hour_cos"]  # of a transaction (what the edge head sees)
GRAPH_EDGE_FEATURES = [*EDGE_FEATURES, "log_age_hours"]  # + how long before the snapshot it happened
NODE_FEATURES = ["log_in_deg", "log_out_deg", "log_in_amount", "log_out_amount", "log_in_distinct",
                 "log_out_distinct", "log_in_deg_recent", "log_out_deg_recent", "log_in_amount_recent",
                 "log_out_amount_recent"]
EDGE_DIM, GRAPH_EDGE_DIM, NODE_DIM = len(EDGE_FEATURES), len(GRAPH_EDGE_FEATURES), len(NODE_FEATURES)
RECENT_NS = 6 * 3600 * 10**9  # "recent" node activity: the last 6 hours before the snapshot


# Cadences `graph.every: auto` chooses from (finest first); each divides a day, so boundaries stay epoch-aligned.
AUTO_EVERY = ("1h", "2h", "3h", "6h", "12h", "1d")


@dataclass
class GraphConfig:
    """Snapshot cadence and how far back each snapshot graph reaches (both durations like '1h', '3d').

    `every: auto` lets `FraudModel.fit` choose the cadence from the training data's density (`resolved`):
    the finest of AUTO_EVERY whose snapshots hold at least `auto_rows` rows on average. One snapshot costs a
    GNN pass over `window` of edges whether it serves 20 rows or 2,000, so a fixed hourly cadence makes a long,
    sparse file cost more than a short, dense one with the same rows; `auto` makes the number of snapshots
    follow the rows instead. The fitted model stores the chosen cadence, so scoring stays a pure function of
    event time.
    """

    every: str = "auto"
    window: str = "3d"
    max_hops: int = 4  # longest return path d -> ... -> s searched for the cycle feature
    auto_rows: int = 200  # every=auto: least training rows per snapshot on average

    def __post_init__(self):
        if (not self.auto and parse_duration(self.every) <= 0) or parse_duration(self.window) <= 0:
            raise ValueError("graph.every and graph.window must be positive durations, e.g. '1h' and '3d' "
                             "(graph.every may also be 'auto')")
        if self.max_hops < 0:
            raise ValueError(f"graph.max_hops must be >= 0, got {self.max_hops}")
        if self.auto_rows < 1:
            raise ValueError(f"graph.auto_rows must be >= 1, got {self.auto_rows}")

    @property
    def auto(self) -> bool:
        return self.every == "auto"

    @property
    def every_ns(self) -> int:
        if self.auto:
            raise ValueError("graph.every is 'auto' until FraudModel.fit chooses the cadence from the training "
                             "data (GraphConfig.resolved); a fitted model's config holds the chosen one")
        return parse_duration(self.every) * NS

    @property
    def window_ns(self) -> int:
        return parse_duration(self.window) * NS

    @property
    def history_seconds(self) -> int:
        """Raw history a scorer must keep so the first new row's snapshot is complete (with `auto`: for the
        coarsest cadence it may choose)."""
        return parse_duration(self.window) + parse_duration(AUTO_EVERY[-1] if self.auto else self.every)

    def resolved(self, t_ns: np.ndarray) -> GraphConfig:
        """This config with `every: auto` replaced by the cadence chosen for rows at times `t_ns` [n] (ns);
        an explicit cadence is returned unchanged."""
        return replace(self, every=auto_every(t_ns, self.auto_rows)) if self.auto else self


def auto_every(t_ns: np.ndarray, min_rows: int) -> str:
    """The finest AUTO_EVERY cadence whose non-empty snapshots hold at least `min_rows` of the rows at times
    `t_ns` on average (the coarsest when none does)."""
    for every in AUTO_EVERY:
        n_snapshots = len(np.unique(snapshot_ids(t_ns, parse_duration(every) * NS)))
        if len(t_ns) >= min_rows * max(n_snapshots, 1):
            return every
    return AUTO_EVERY[-1]


def edge_features(amount: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """[n, EDGE_DIM] float32: log1p(amount), hour of day on the unit circle (the attacker-controllable part)."""
    hour = (t_ns // NS % 86400) / 3600.0
    return np.stack([np.log1p(amount), np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)],
                    axis=1).astype(np.float32)


def edge_age(t_ns: np.ndarray, end_ns: int) -> np.ndarray:
    """[n] float32: log1p of how many hours before the snapshot end each edge happened (a graph edge feature)."""
    return np.log1p((end_ns - t_ns) / 3.6e12).astype(np.float32)


@dataclass
class Snapshot:
    """One snapshot graph as numpy arrays (converted to tensors by the GNN); see the module docstring."""

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray
    nodes: np.ndarray  # global entity codes of nodes 0..N-2 (node N-1 is the unseen node)

    def local(self, codes: np.ndarray) -> np.ndarray:
        """Local node index of global entity codes; entities absent from the snapshot -> the unseen node."""
        return local_index(self.nodes, codes)


def local_index(nodes: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Position of each global code in the sorted `nodes`, or len(nodes) (the unseen node) where absent."""
    if len(nodes) == 0:
        return np.zeros(len(codes), np.int64)
    pos = np.minimum(np.searchsorted(nodes, codes), len(nodes) - 1)
    return np.where(nodes[pos] == codes, pos, len(nodes))


class EventLog:
    """Time-sorted edges (history + new rows) with entity codes, from which snapshots are cut."""

    def __init__(self, frames: list[pd.DataFrame]):
        # Known-fraud node columns (fraud.features.graph_labels.NodeLabels), appended to every snapshot's x.
        self.node_labels = None
        ev = pd.concat([f[["timestamp", "source", "target", "amount"]] for f in frames if len(f)],
                       ignore_index=True) if any(len(f) for f in frames) else None
        if ev is None:
            self.t = np.zeros(0, np.int64)
            self.src = self.dst = np.zeros(0, np.int64)
            self.attr = np.zeros((0, EDGE_DIM), np.float32)
            self.amount = np.zeros(0)
            self.entities = pd.Index([], dtype="string")
            self._init_scratch()
            return
        t = to_ns(ev["timestamp"])
        order = np.argsort(t, kind="stable")
        ev = ev.iloc[order].reset_index(drop=True)
        self.t = t[order]
        # sort=True: node order inside a snapshot follows entity names, so the same snapshot built from a
        # whole file or from history + a chunk has identical node order and bit-identical embeddings.
        codes, self.entities = pd.factorize(pd.concat([ev["source"], ev["target"]], ignore_index=True)
                                            .astype("string"), sort=True)
        self.src, self.dst = codes[: len(ev)].astype(np.int64), codes[len(ev):].astype(np.int64)
        self.amount = ev["amount"].to_numpy(np.float64)
        self.attr = edge_features(self.amount, self.t)
        self._init_scratch()

    def _init_scratch(self) -> None:
        """Global pair codes and per-thread marker arrays: snapshots are cut without sorting (O(edges)),
        from several threads at once (`run_threaded`)."""

        n_ent = len(self.entities)
        pair_key = self.src * max(n_ent, 1) + self.dst
        self.pair, uniq = pd.factorize(pair_key, sort=False)
        self.pair_src, self.pair_dst = uniq // max(n_ent, 1), uniq % max(n_ent, 1)
        self._local = threading.local()

    def scratch(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(node marks, node map, pair marks) of the calling thread; marks are all False between calls."""
        if not hasattr(self._local, "node_mark"):
            n_ent = len(self.entities)
            self._local.node_mark = np.zeros(n_ent, bool)
            self._local.node_map = np.zeros(n_ent, np.int64)
            self._local.pair_mark = np.zeros(len(self.pair_src), bool)
        return self._local.node_mark, self._local.node_map, self._local.pair_mark

    def codes(self, names: pd.Series) -> np.ndarray:
        """Global codes of entity names (-1 for names the log has never seen)."""
        return self.entities.get_indexer(names.astype("string").to_numpy())

    def snapshot(self, start_ns: int, end_ns: int) -> Snapshot:
        """The graph of edges with time in [start_ns, end_ns)."""
        lo, hi = np.searchsorted(self.t, [start_ns, end_ns], side="left")
        s, d, a = self.src[lo:hi], self.dst[lo:hi], self.attr[lo:hi]
        mark, node_map, pm = self.scratch()
        mark[s] = True
        mark[d] = True
        nodes = np.flatnonzero(mark)  # sorted global codes = entity-name order
        mark[nodes] = False
        n = len(nodes)
        node_map[nodes] = np.arange(n)
        ls, ld = node_map[s], node_map[d]
        x = np.zeros((n + 1, NODE_DIM), np.float32)
        amt = self.amount[lo:hi]
        x[:n, 0] = np.log1p(np.bincount(ld, minlength=n))
        x[:n, 1] = np.log1p(np.bincount(ls, minlength=n))
        x[:n, 2] = np.log1p(np.bincount(ld, weights=amt, minlength=n))
        x[:n, 3] = np.log1p(np.bincount(ls, weights=amt, minlength=n))
        pm[self.pair[lo:hi]] = True
        pairs = np.flatnonzero(pm)
        pm[pairs] = False
        x[:n, 4] = np.log1p(np.bincount(node_map[self.pair_dst[pairs]], minlength=n))
        x[:n, 5] = np.log1p(np.bincount(node_map[self.pair_src[pairs]], minlength=n))
        recent = self.t[lo:hi] >= end_ns - RECENT_NS
        x[:n, 6] = np.log1p(np.bincount(ld[recent], minlength=n))
        x[:n, 7] = np.log1p(np.bincount(ls[recent], minlength=n))
        x[:n, 8] = np.log1p(np.bincount(ld[recent], weights=amt[recent], minlength=n))
        x[:n, 9] = np.log1p(np.bincount(ls[recent], weights=amt[recent], minlength=n))
        if self.node_labels is not None:
            x = np.concatenate([x, self.node_labels(nodes, end_ns)], axis=1)
        age = edge_age(self.t[lo:hi], end_ns)[:, None]
        return Snapshot(x=x, edge_index=np.stack([ls, ld]).astype(np.int64),
                        edge_attr=np.concatenate([a, age], axis=1), nodes=nodes)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for non-negative integer keys below 2**32, ~10x faster: numpy
    radix-sorts 16-bit integers, so sort by the low then the high 16 bits (LSD radix)."""
    order = np.argsort(keys.astype(np.uint16), kind="stable")  # astype wraps: the low 16 bits
    if keys.size and int(keys.max()) >= 1 << 16:
        order = order[np.argsort((keys >> 16).astype(np.uint16)[order], kind="stable")]
    return order


def csr_order(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, indptr [n + 1]) of a CSR matrix whose rows are `keys` (ints in [0, n)): entry i of the sorted
    layout is edge order[i]; edges keep their given order within a row, duplicates stay separate."""
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return stable_order(keys), indptr


def snapshot_ids(t_ns: np.ndarray, every_ns: int) -> np.ndarray:
    """Snapshot index k = floor(t / every) of each event time (epoch-aligned)."""
    return np.floor_divide(t_ns, every_ns)


@dataclass
class CachedSnapshot:
    """A snapshot kept by `SnapshotCache`: its compiled window, GNN encoding (`fraud.models.gnn.Encoded` or
    None), node names, and, once a later call asks, every node's embedding [P + 1, embed] (torch), so a
    one-transaction request reads two rows instead of running the last GNN layer."""

    win: Any
    enc: Any
    names: pd.Index
    nodes_h: Any = None


class SnapshotCache:
    """Snapshots already cut (and encoded), by end time, so later rows of the same hour reuse them.

    The HTTP service scores one snapshot's rows over many requests; cutting and encoding it dominated a
    one-transaction request. An entry is only stored when it can never change: the snapshot holds only
    history events (no row of the request is before its end) and the history already reaches its end (every
    later event is at or after it). `watched`: the owner calls `forget_after` with every event it absorbs
    (the service's `LiveScorer`), so a snapshot is also kept before the history reaches its end: the first
    request after a snapshot boundary cuts it once, not the first two. Thread-safe; keeps the `keep` most
    recent ends.
    """

    def __init__(self, keep: int = 2, watched: bool = False):

        self.keep, self.watched, self._items, self._lock = keep, watched, {}, threading.Lock()
        self.hits = self.misses = 0

    def get(self, end: int):
        with self._lock:
            item = self._items.get(end)
            self.hits += item is not None
            self.misses += item is None
            return item

    def put(self, end: int, item) -> None:
        with self._lock:
            self._items[end] = item
            for old in sorted(self._items)[: max(0, len(self._items) - self.keep)]:
                del self._items[old]

    def forget_after(self, t_ns: int) -> None:
        """Drop the snapshots a new event at `t_ns` belongs to (those ending after it: their graph holds the
        edges before their end); earlier ones cannot change."""
        with self._lock:
            for end in [e for e in self._items if e > t_ns]:
                del self._items[end]


def snapshot_groups(t_ns: np.ndarray, every_ns: int):
    """Yield (row indices, snapshot end in ns) for each group of rows sharing a snapshot, in time order."""
    k = snapshot_ids(t_ns, every_ns)
    order = np.argsort(k, kind="stable")
    ks = k[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True):
        yield order[b0:b1], int(ks[b0]) * every_ns


def iter_snapshots(log: EventLog, t_ns: np.ndarray, every_ns: int, window_ns: int):
    """Yield (row indices, snapshot) for each group of rows sharing a snapshot, in time order.

    Rows with time in [k*every, (k+1)*every) get the graph of edges in [k*every - window, k*every).
    """
    for idx, end in snapshot_groups(t_ns, every_ns):
        yield idx, log.snapshot(end - window_ns, end)


def run_threaded(work, items, workers: int) -> None:
    """Call work(*item) for each item on `workers` threads, with torch on one intra-op thread each.

    Snapshots are independent, and numpy, scipy.sparse and torch release the GIL in their kernels, so two
    snapshots at a time on 2 cores beat one snapshot on two intra-op threads (small matrices scale badly).
    Items are drawn lazily, at most 2 per worker ahead, so memory stays at a few snapshots.
    """
    if workers <= 1:
        for item in items:
            work(*item)
        return
    with one_torch_thread(), ThreadPoolExecutor(workers, thread_name_prefix="snapshot") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(work, *item))
            if len(pending) >= 2 * workers:
                pending.popleft().result()
        while pending:
            pending.popleft().result()


@contextmanager
def one_torch_thread():
    """torch on one intra-op thread inside the block (the previous count restored after it).

    A snapshot's matrices are small: two OpenMP threads gain little on them and wait for each other at every
    op, so on a shared 2-core machine (load above the core count) a GNN training step ran 10-100x slower on
    two threads than on one.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def return_path_hops(snap: Snapshot, src_local: np.ndarray, dst_local: np.ndarray, max_hops: int,
                     max_frontier: int = 2_000_000) -> np.ndarray:
    """For each query edge s -> d, the fewest hops of a directed path d -> ... -> s in the snapshot graph
    (so s -> d would close a cycle: money returning to where it came from), or 0 when there is none within
    `max_hops`. [q] int8. Entities absent from the snapshot (the unseen node) have no paths.

    Breadth-first search for all queries at once as sparse boolean products: frontier [q, N] @ A [N, N].
    A frontier that grows beyond `max_frontier` non-zeros stops the search early (hub explosion guard).
    Scoring uses the compiled `fraud.features.graph_pass.Window.paths`; this is the definition it is tested against.
    """

    q = len(src_local)
    out = np.zeros(q, np.int8)
    n = snap.x.shape[0] - 1
    ok = (src_local < n) & (dst_local < n)
    if not ok.any() or snap.edge_index.shape[1] == 0 or max_hops < 1:
        return out
    idx = np.flatnonzero(ok)
    ei = snap.edge_index
    order, indptr = csr_order(ei[0], n)  # by source, without scipy's sort and duplicate summing
    a = sp.csr_matrix((np.ones(len(order), np.float32), ei[1][order], indptr), shape=(n, n))
    frontier = sp.csr_matrix((np.ones(len(idx), np.float32), (np.arange(len(idx)), dst_local[idx])),
                             shape=(len(idx), n))
    target = src_local[idx]
    found = np.zeros(len(idx), np.int8)
    for hop in range(1, max_hops + 1):
        frontier = frontier @ a
        frontier.data[:] = 1.0
        hit = np.asarray(frontier[np.arange(len(idx)), target]).ravel() > 0
        new = hit & (found == 0)
        found[new] = hop
        if frontier.nnz > max_frontier or (found > 0).all():
            break
    out[idx] = found
    return out


def local_by_name(node_names: pd.Index, names: np.ndarray) -> np.ndarray:
    """Local node index of entity names in a cached snapshot (its `Snapshot.local`, by name: the event log
    that coded the snapshot is gone); absent names -> the unseen node."""
    if len(names) <= 64:  # a request's few rows: the Index's hash table, without building an Index of names
        pos = np.fromiter((_loc(node_names, v) for v in names), np.int64, len(names))
    else:
        pos = node_names.get_indexer(names)
    return np.where(pos >= 0, pos, len(node_names)).astype(np.int64)


def _loc(index: pd.Index, name) -> int:
    try:
        return int(index.get_loc(name))
    except KeyError:
        return -1
