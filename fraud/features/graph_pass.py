"""Cutting a snapshot window for scoring, compiled: node features, the GNN's mean operators, return paths.

Builds straight from the event log what `EventLog.snapshot` + `fraud.models.gnn.mean_csr` (+ the edge-feature means)
+ `return_path_hops` build from a snapshot, with the same bits (tested), in compiled code that releases the
GIL. Why: on the benchmark (hourly 3-day windows of 24k nodes and 91k edges) that work cost ~12 ms of a
window's ~24 ms in numpy/scipy calls that hold the GIL between kernels, so the two snapshot threads gave
little; here it is ~3.5 ms and the threads run in parallel. The GNN's dense layers stay in torch
(`fraud.models.gnn.encode_window`): the same per-node products written as numba loops did not vectorise and
ran 5x slower than torch's matrix products.

* Two passes over the window's edges in time order (contiguous in the time-sorted log) count, sum and
  place every edge: no snapshot arrays, no sort. Every per-node sum runs in edge order, as `np.bincount`
  and scipy's CSR product do, hence the same bits.
* `spmm`: the mean operators' product (scipy's order, so the same bits), also without the GIL.
* Return paths: a breadth-first search per query over the window's out-edges, level by level, with the
  same early stop as `return_path_hops` (all found, or the summed frontier over `max_frontier`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from fraud.features.graph import RECENT_NS, EventLog, edge_age, local_index


@nb.njit(cache=True, nogil=True)
def _window(lo, hi, end_ns, recent_ns, t, src, dst, amount, attr, age, pair, mark, local, pair_mark):
    """The window's nodes (sorted global codes), the sums behind the node features [P + 1, 10] (x = their
    log1p; row P: the unseen node), and per side (0: by receiver, 1: by sender) the CSR of `mean_csr`:
    ptr [P + 2], neighbour [E], weight 1/deg [E], plus the mean edge features [P + 1, 4]. Two passes over
    the window's edges in time order; every per-node sum runs in that order, as `np.bincount` and scipy's
    CSR product do."""
    n_ent = len(mark)
    for e in range(lo, hi):
        mark[src[e]] = True
        mark[dst[e]] = True
    p = 0
    for v in range(n_ent):
        p += mark[v]
    nodes = np.empty(p, np.int64)
    k = 0
    for v in range(n_ent):
        if mark[v]:
            nodes[k] = v
            local[v] = k
            mark[v] = False
            k += 1
    ne = hi - lo
    # Per node, the sums behind x's columns: in/out degree, amount, distinct counterparties, recent degree,
    # recent amount (fraud.features.graph.NODE_FEATURES).
    acc = np.zeros((p + 1, 10))
    ends = np.empty((ne, 2), np.int32)  # receiver, sender (local)
    recent_from = end_ns - recent_ns
    for e in range(lo, hi):
        d, s = local[dst[e]], local[src[e]]
        ends[e - lo, 0], ends[e - lo, 1] = d, s
        a = amount[e]
        acc[d, 0] += 1.0
        acc[s, 1] += 1.0
        acc[d, 2] += a
        acc[s, 3] += a
        if not pair_mark[pair[e]]:  # distinct counterparties = distinct pairs
            pair_mark[pair[e]] = True
            acc[d, 4] += 1.0
            acc[s, 5] += 1.0
        if t[e] >= recent_from:
            acc[d, 6] += 1.0
            acc[s, 7] += 1.0
            acc[d, 8] += a
            acc[s, 9] += a
    for e in range(lo, hi):
        pair_mark[pair[e]] = False
    ptrs = np.zeros((2, p + 2), np.int64)
    wnode = np.empty((p + 1, 2), np.float32)
    for side in range(2):
        for i in range(p + 1):
            deg = int(acc[i, side])
            ptrs[side, i + 1] = ptrs[side, i] + deg
            wnode[i, side] = np.float32(1.0 / max(deg, 1))
    cursor = np.empty((p + 1, 2), np.int64)
    cursor[:, 0], cursor[:, 1] = ptrs[0, : p + 1], ptrs[1, : p + 1]
    nbrs = np.empty((2, ne), np.int64)
    ws = np.empty((2, ne), np.float32)
    emeans = np.zeros((2, p + 1, 4), np.float32)
    for e in range(lo, hi):
        for side in range(2):
            i, other = ends[e - lo, side], ends[e - lo, 1 - side]
            c = cursor[i, side]
            cursor[i, side] = c + 1
            w = wnode[i, side]
            nbrs[side, c] = other
            ws[side, c] = w
            for f in range(3):  # as scipy's CSR product: y += w * a, in float32, in edge order
                emeans[side, i, f] += w * attr[e, f]
            emeans[side, i, 3] += w * age[e - lo]
    return nodes, acc, ptrs, nbrs, ws, emeans


@nb.njit(cache=True, nogil=True)
def spmm(ptr, nbr, w, h, rows):
    """(CSR @ h)[rows] as scipy computes it (y += w * h[j], float32, in entry order: the same bits)."""
    out = np.zeros((len(rows), h.shape[1]), np.float32)
    for r in range(len(rows)):
        i = rows[r]
        for j in range(ptr[i], ptr[i + 1]):
            wj, u = w[j], nbr[j]
            for c in range(h.shape[1]):
                out[r, c] += wj * h[u, c]
    return out


@nb.njit(cache=True, nogil=True)
def _paths(out_ptr, out_nbr, p, s_loc, d_loc, max_hops, max_frontier):
    """Fewest hops of a path d -> ... -> s per query (0: none within max_hops), as `return_path_hops`."""
    q = len(s_loc)
    found = np.zeros(q, np.int8)
    ok = np.flatnonzero((s_loc < p) & (d_loc < p))
    if len(ok) == 0 or len(out_nbr) == 0 or max_hops < 1:
        return found
    cur = d_loc[ok].copy()
    cur_ptr = np.arange(len(ok) + 1)
    seen = np.full(p, -1, np.int64)
    for hop in range(1, max_hops + 1):
        nxt = np.empty(max(16, 2 * len(cur)), np.int64)
        nxt_ptr = np.zeros(len(ok) + 1, np.int64)
        n = 0
        for qi in range(len(ok)):
            stamp = hop * len(ok) + qi
            for c in range(cur_ptr[qi], cur_ptr[qi + 1]):
                u = cur[c]
                for j in range(out_ptr[u], out_ptr[u + 1]):
                    w = out_nbr[j]
                    if seen[w] != stamp:
                        seen[w] = stamp
                        if n == len(nxt):
                            nxt = np.concatenate((nxt, np.empty(len(nxt), np.int64)))
                        nxt[n] = w
                        n += 1
            nxt_ptr[qi + 1] = n
            if found[ok[qi]] == 0 and seen[s_loc[ok[qi]]] == stamp:
                found[ok[qi]] = hop
        done = True
        for qi in range(len(ok)):
            done &= found[ok[qi]] > 0
        if n > max_frontier or done:
            break
        cur, cur_ptr = nxt[:n].copy(), nxt_ptr
    return found


@dataclass
class Window:
    """One snapshot window: nodes, features and both mean operators' CSR arrays ([0]: by receiver, [1]: by
    sender), as `fraud.models.gnn.mean_csr` would build them from `EventLog.snapshot` (`fraud.models.gnn.encode_window`
    encodes it)."""

    nodes: np.ndarray  # global codes of the log it was cut from, sorted (= entity-name order)
    x: np.ndarray  # [P + 1, NODE_DIM]
    ptr: np.ndarray  # [2, P + 2]
    nbr: np.ndarray  # [2, E] local index of the edge's other end
    w: np.ndarray  # [2, E] 1/deg
    emean: np.ndarray  # [2, P + 1, GRAPH_EDGE_DIM] mean features of each node's edges

    def local(self, codes: np.ndarray) -> np.ndarray:
        """Local node index of global codes; entities absent from the window -> the unseen node."""
        return local_index(self.nodes, codes)

    def paths(self, s_loc: np.ndarray, d_loc: np.ndarray, max_hops: int, max_frontier: int = 2_000_000):
        """Return-path hops [q] int8 of query edges s -> d (`fraud.features.graph.return_path_hops`, same values)."""
        return _paths(self.ptr[1], self.nbr[1], len(self.nodes), s_loc.astype(np.int64),
                      d_loc.astype(np.int64), max_hops, max_frontier)


def window(log: EventLog, start_ns: int, end_ns: int) -> Window:
    """The window of `log`'s edges with time in [start_ns, end_ns) (the same as `log.snapshot`); thread-safe
    (the log's per-thread scratch)."""
    mark, local, pair_mark = log.scratch()
    lo, hi = np.searchsorted(log.t, [start_ns, end_ns], side="left")
    age = edge_age(log.t[lo:hi], end_ns)  # numpy's vectorised log: 3x faster than a compiled loop's
    nodes, sums, *ops = _window(int(lo), int(hi), int(end_ns), RECENT_NS, log.t, log.src, log.dst, log.amount,
                                log.attr, age, log.pair, mark, local, pair_mark)
    x = np.log1p(sums).astype(np.float32)  # the node features (log1p as numpy's)
    if log.node_labels is not None:
        x = np.concatenate([x, log.node_labels(nodes, end_ns)], axis=1)
    return Window(nodes, x, *ops)
