"""The scoring pass over one snapshot window, compiled: node features, the GNN's layers and head, return paths.

What `EventLog.snapshot` + `EdgeGNN.encode_prefix` / `encode_nodes` + `EdgeHead` + `return_path_hops` compute
for a snapshot, in one numba pass per window, without building the snapshot graph. Why: with numpy, scipy and
torch one hourly 3-day window (24k nodes, 91k edges) cost ~24 ms in ~60 library calls that hold the GIL
between kernels, so two threads gave ~1.2x; this pass is a few ms and releases the GIL throughout.

* `LogIndex` sorts the event log's edges by receiver and by sender once per log (time order kept within a
  node). A window [lo, hi) of the time-sorted log is then, for each node, one contiguous run of its list:
  two binary searches, no per-window sort.
* The same formulas as `fraud.graph` and `fraud.gnn`: node features sum each node's edges in time order in
  float64 like `np.bincount`, so they equal the snapshot's bit for bit; the GNN layers agree with the torch
  modules to float32 rounding (tested), since sums and products run in another order. Training (autograd)
  stays in torch; every scoring path (batch, chunks, service, the XGBoost features of training) uses this
  one, so a row gets the same bits whichever way it is scored: each node's and row's arithmetic is its own,
  whatever else is in the window or the request.
* Return paths: a breadth-first search per query over the window's out-edges, level by level, with the
  same early stop as `return_path_hops` (all found, or the summed frontier over `max_frontier`), so it
  gives the same hops (tested).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numba as nb
import numpy as np

from fraud.graph import RECENT_NS, EventLog, csr_order, local_index

HOUR_NS = 3.6e12


@nb.njit(cache=True, nogil=True)
def _run(edges, a, b, lo, hi):
    """[a', b') of the edge positions in edges[a:b] (increasing) that lie in [lo, hi)."""
    i, j = a, b
    while i < j:  # first position >= lo
        m = (i + j) >> 1
        if edges[m] < lo:
            i = m + 1
        else:
            j = m
    k, j = i, b
    while k < j:  # first position >= hi
        m = (k + j) >> 1
        if edges[m] < hi:
            k = m + 1
        else:
            j = m
    return i, k


@nb.njit(cache=True, nogil=True)
def _window(lo, hi, end_ns, recent_ns, t, src, dst, start, edges, other, et, amount, attr, mark, local):
    """The window's nodes (sorted global codes), node features x [P + 1, 10] (row P: the unseen node), and
    per side (in = by receiver, out = by sender) the CSR of `mean_csr`: ptr [P + 2], neighbour [E],
    weight 1/deg [E], plus the mean edge features [P + 1, 4]."""
    n_ent = len(mark)
    for e in range(lo, hi):
        mark[src[e]] = 1
        mark[dst[e]] = 1
    p = 0
    for v in range(n_ent):
        p += mark[v]
    nodes = np.empty(p, np.int64)
    k = 0
    for v in range(n_ent):
        if mark[v]:
            nodes[k] = v
            local[v] = k
            mark[v] = 0
            k += 1
    ne = hi - lo
    age = np.empty(ne, np.float32)  # the snapshot's last edge feature: log age in hours
    for e in range(lo, hi):
        age[e - lo] = np.float32(np.log1p((end_ns - t[e]) / HOUR_NS))
    x = np.zeros((p + 1, 10), np.float32)
    ptrs = np.zeros((2, p + 2), np.int64)
    nbrs = np.empty((2, ne), np.int64)
    ws = np.empty((2, ne), np.float32)
    emeans = np.zeros((2, p + 1, 4), np.float32)
    seen = np.full(p, -1, np.int64)
    recent_from = end_ns - recent_ns
    for side in range(2):  # 0: edges into a node (by receiver), 1: out of it (by sender)
        ptr, nbr, wt, em = ptrs[side], nbrs[side], ws[side], emeans[side]
        st, ed, ot, tt, am, at = start[side], edges[side], other[side], et[side], amount[side], attr[side]
        for i in range(p):
            v = nodes[i]
            a, b = _run(ed, st[v], st[v + 1], lo, hi)
            o = ptr[i]
            ptr[i + 1] = o + (b - a)
            w = np.float32(1.0 / max(b - a, 1))
            dist, rdeg = 0, 0
            amt, ramt = 0.0, 0.0
            for j in range(a, b):
                u = local[ot[j]]
                nbr[o + j - a] = u
                wt[o + j - a] = w
                amt += am[j]
                if seen[u] != 2 * i + side:
                    seen[u] = 2 * i + side
                    dist += 1
                if tt[j] >= recent_from:
                    rdeg += 1
                    ramt += am[j]
                for c in range(3):  # as scipy's CSR product: y += w * a, in float32, in edge order
                    em[i, c] += w * at[j, c]
                em[i, 3] += w * age[ed[j] - lo]
            x[i, 0 + side] = np.log1p(b - a)
            x[i, 2 + side] = np.log1p(amt)
            x[i, 4 + side] = np.log1p(dist)
            x[i, 6 + side] = np.log1p(rdeg)
            x[i, 8 + side] = np.log1p(ramt)
        ptr[p + 1] = ptr[p]  # the unseen node: no edges
    return nodes, x, ptrs, nbrs, ws, emeans


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
    sender), as `fraud.gnn.mean_csr` would build them from `EventLog.snapshot` (`fraud.gnn.encode_window`
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
        """Return-path hops [q] int8 of query edges s -> d (`fraud.graph.return_path_hops`, same values)."""
        return _paths(self.ptr[1], self.nbr[1], len(self.nodes), s_loc.astype(np.int64),
                      d_loc.astype(np.int64), max_hops, max_frontier)


class LogIndex:
    """An event log's edges listed by receiver and by sender (time order within a node), built once per log
    (~10 ms for 330k edges) so that windows are cut without sorting."""

    def __init__(self, log: EventLog):
        n_ent = len(log.entities)
        self.log = log
        (e_in, s_in), (e_out, s_out) = csr_order(log.dst, n_ent), csr_order(log.src, n_ent)
        # Per side, in list order (a node's run is contiguous memory): edge, other end, time, amount, features.
        self.start, self.edges = np.stack([s_in, s_out]), np.stack([e_in, e_out]).astype(np.int64)
        self.other = np.stack([log.src[e_in], log.dst[e_out]])
        self.t, self.amount = np.stack([log.t[e_in], log.t[e_out]]), np.stack([log.amount[e_in], log.amount[e_out]])
        self.attr = np.stack([log.attr[e_in], log.attr[e_out]])
        self._local = threading.local()

    def window(self, start_ns: int, end_ns: int) -> Window:
        """The window of edges with time in [start_ns, end_ns); thread-safe (per-thread scratch)."""
        log = self.log
        if not hasattr(self._local, "mark"):
            self._local.mark = np.zeros(len(log.entities), np.int8)
            self._local.local = np.zeros(len(log.entities), np.int64)
        lo, hi = np.searchsorted(log.t, [start_ns, end_ns], side="left")
        return Window(*_window(int(lo), int(hi), int(end_ns), RECENT_NS, log.t, log.src, log.dst, self.start,
                               self.edges, self.other, self.t, self.amount, self.attr, self._local.mark,
                               self._local.local))
