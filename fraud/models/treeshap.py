"""Per-feature contributions of an XGBoost model for reason codes, computed here rather than by XGBoost.

XGBoost's `pred_contribs` (exact path-dependent TreeSHAP) costs ~1.6 ms per row on this model (441 trees of
depth 6): 33 s for the 20k flagged rows of a 1M-row file, more than the whole scoring budget. Its Saabas
approximation (`approx_contribs`) costs 25 us per row, another 25 s for the other 980k rows. Both are the
same sums done faster here:

* Exact TreeSHAP as a sum over leaves (Fast TreeSHAP v2, Yang 2021). A leaf whose path splits on the unique
  features U (d <= depth) adds to feature i  v * (o_i - z_i) * sum_{S <= U-i} w(|S|, d) prod_{S} o_j
  prod_{U-S-i} z_j, where o_j says whether the row satisfies the path's splits on j and z_j is the share of
  training cover that follows them. The row enters only through the bit pattern o, so each leaf's value
  for all 2^d patterns is tabulated once per model; a row then costs one table lookup per leaf and feature
  (per pair of sibling leaves: `_units`). ~0.11 ms per row on this model, 15x XGBoost's.
* Saabas: along the row's path, the change of the node's cover-weighted mean value goes to the split feature.

Compiled with numba, run on `threads` threads over disjoint rows (no shared state, so each row's values
do not depend on which rows are computed with it). Agrees with XGBoost to float32 rounding (tested). Models
this does not cover (categorical splits, paths with more than MAX_UNIQUE features) use XGBoost's own.
"""

from __future__ import annotations

import json
import threading
import weakref
from itertools import pairwise
from math import factorial

import numba as nb
import numpy as np
import xgboost as xgb

MAX_UNIQUE = 10  # 2^d table entries per leaf and feature: deeper paths fall back to XGBoost
MAX_TABLE_BYTES = 256 * 2**20  # larger models (many deep trees) fall back to XGBoost too
BLOCK = 128  # rows per pass over the trees (their outputs, 128 x d float64, stay in cache too)


@nb.njit(cache=True, nogil=True, inline="always")
def _left(v, thr, default_left):
    """XGBoost's split: x < thr goes left, a missing x the default way. Written without np.isnan or a
    branch (NaN fails both comparisons): the walks run ~1.6x faster."""
    return np.int64((v < thr) | (default_left & (not v >= thr)))


@nb.njit(cache=True, nogil=True)
def _tables(value, zero, nslot, weights):
    """[L, 2^D, D] leaf tables: entry (l, pattern, i) = leaf l's contribution to its i-th unique feature for a
    row whose satisfied-feature bits are `pattern` (see the module docstring)."""
    n_leaf, dmax = zero.shape
    out = np.zeros((n_leaf, 1 << dmax, dmax), np.float64)
    e = np.zeros(dmax + 1)
    for leaf in range(n_leaf):
        d = nslot[leaf]
        for pat in range(1 << d):
            for i in range(d):
                o_i = (pat >> i) & 1
                e[:] = 0.0
                e[0] = 1.0
                a = 0
                rest = 1.0
                for j in range(d):  # elementary symmetric polynomials of z over the satisfied features A
                    if j == i:
                        continue
                    if (pat >> j) & 1:
                        a += 1
                        for k in range(a, 0, -1):
                            e[k] += e[k - 1] * zero[leaf, j]
                    else:
                        rest *= zero[leaf, j]
                total = 0.0
                for s in range(a + 1):  # |S| = s of A taken as present, the other a - s weighted by z
                    total += weights[d, s] * e[a - s]
                out[leaf, pat, i] = value[leaf] * (o_i - zero[leaf, i]) * rest * total
    return out


@nb.njit(cache=True, nogil=True)
def _exact(x, out, feat, thr, dleft, child, node_bit, tree_start, inner_start, inner, unit_start, unit_node,
           unit_mask, unit_pair, nslot, slot_feat, table):
    # Trees outside, a block of rows inside: one tree's tables (~100 KB) stay in cache for the block (row by
    # row over all trees, every lookup would miss: the tables are ~40 MB). Each node's pattern is its
    # parent's with the node's feature bit cleared when the row goes the other way (no branches on data).
    # A unit is one leaf (row 2 * pattern of its table) or two sibling leaves looked up from their parent's
    # pattern and the row's direction there (row 2 * pattern + went_left): see TreeContributions._units.
    size = np.max(tree_start[1:] - tree_start[:-1]) + 1
    pat, went = np.zeros(size, np.int64), np.zeros(size, np.int64)
    for b0 in range(0, x.shape[0], BLOCK):
        for t in range(len(tree_start) - 1):
            s = tree_start[t]
            for r in range(b0, min(b0 + BLOCK, x.shape[0])):
                pat[0] = -1
                for i in range(inner_start[t], inner_start[t + 1]):
                    k = inner[i]
                    v = x[r, feat[k]]
                    go = _left(v, thr[k], dleft[k])
                    p = pat[k - s]
                    went[k - s] = go
                    pat[child[k, 1] - s] = p & ~(node_bit[k] * (1 - go))
                    pat[child[k, 0] - s] = p & ~(node_bit[k] * go)
                for u in range(unit_start[t], unit_start[t + 1]):
                    k = unit_node[u] - s
                    row = ((pat[k] & unit_mask[u]) << 1) | (went[k] & unit_pair[u])
                    for q in range(nslot[u]):
                        out[r, slot_feat[u, q]] += table[u, row, q]


@nb.njit(cache=True, nogil=True)
def _saabas(x, out, feat, thr, dleft, child, step, tree_start, tree_depth):
    # Level by level over a block of rows, a fixed number of steps per tree, leaves looping to themselves on
    # a dummy last column: the rows' walks are independent instructions the CPU overlaps, with no branch on
    # the data to mispredict (that, not arithmetic, is the cost of walking trees one row at a time).
    # step[n] = mean[n] - mean[parent of n] (one load per step instead of two: ~10 % faster, same values).
    node = np.zeros(BLOCK, np.int32)
    for b0 in range(0, x.shape[0], BLOCK):
        b1 = min(b0 + BLOCK, x.shape[0])
        for t in range(len(tree_start) - 1):
            node[:] = tree_start[t]
            for _ in range(tree_depth[t]):
                for r in range(b0, b1):
                    k = node[r - b0]
                    f = feat[k]
                    v = x[r, f]
                    nxt = child[k, _left(v, thr[k], dleft[k])]
                    out[r, f] += step[nxt]
                    node[r - b0] = nxt


class TreeContributions:
    """Exact TreeSHAP and Saabas contributions [n, d] (no bias column) of one XGBoost binary model."""

    def __init__(self, booster):
        model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
        trees = model["trees"]
        d = self.n_features = booster.num_features()
        feat, thr, dleft, child, leaf, value, cover, starts = [], [], [], [], [], [], [], [0]
        for tr in trees:
            if any(int(s) != 0 for s in tr["split_type"]):
                raise NotImplementedError("categorical splits")
            off = starts[-1]
            lc, rc = np.asarray(tr["left_children"], np.int64), np.asarray(tr["right_children"], np.int64)
            is_leaf = lc < 0
            own = np.arange(len(lc)) + off
            # Leaves: split on the dummy column d (always 0 < 0 = false) into themselves.
            feat.append(np.where(is_leaf, d, tr["split_indices"]))
            thr.append(np.where(is_leaf, 0.0, tr["split_conditions"]))
            dleft.append(np.asarray(tr["default_left"], bool) & ~is_leaf)
            child.append(np.stack([np.where(is_leaf, own, rc + off), np.where(is_leaf, own, lc + off)], axis=1))
            leaf.append(is_leaf)
            value.append(tr["split_conditions"])  # at a leaf: the leaf value
            cover.append(tr["sum_hessian"])
            starts.append(off + len(lc))
        if not trees:
            raise NotImplementedError("a model without trees")
        self.feat, self.thr = np.concatenate(feat).astype(np.int64), np.concatenate(thr).astype(np.float32)
        self.dleft, self.child = np.concatenate(dleft), np.concatenate(child).astype(np.int64)
        self.is_leaf, self.tree_start = np.concatenate(leaf), np.asarray(starts, np.int64)
        self.value = np.concatenate(value).astype(np.float64)
        self.cover = np.concatenate(cover).astype(np.float64)
        self._walk()
        self.mean = self._means()
        self.step = np.zeros_like(self.mean)  # a leaf's self-loop adds its step to the dummy column only
        kids = self.child[self.inner]
        self.step[kids] = self.mean[kids] - self.mean[self.inner][:, None]
        self._leaf_tables()
        self.bias = self._bias(booster)

    def _walk(self) -> None:
        """Each tree in pre-order (parents before children): internal nodes, leaves with their root paths."""
        inner, inner_start, paths, leaf_start, depth = [], [0], [], [0], []
        for t in range(len(self.tree_start) - 1):
            stack, deepest = [(int(self.tree_start[t]), [])], 0
            while stack:
                node, path = stack.pop()
                deepest = max(deepest, len(path))
                if self.is_leaf[node]:
                    paths.append((node, path))
                    continue
                inner.append(node)
                stack.append((int(self.child[node, 0]), path + [(node, False)]))
                stack.append((int(self.child[node, 1]), path + [(node, True)]))
            inner_start.append(len(inner))
            leaf_start.append(len(paths))
            depth.append(deepest)
        self.inner, self.inner_start = np.asarray(inner, np.int64), np.asarray(inner_start, np.int64)
        self.leaf_start, self.tree_depth = np.asarray(leaf_start, np.int64), np.asarray(depth, np.int64)
        self._paths = paths

    def _bias(self, booster) -> float:
        """The contributions' bias column: the base margin plus each tree's mean value. The base margin is
        taken from XGBoost's own margin of one row minus that row's leaf values (its storage varies by
        version and objective)."""

        row = xgb.DMatrix(np.zeros((1, self.n_features), np.float32), feature_names=booster.feature_names)
        leaves = booster.predict(row, pred_leaf=True).astype(np.int64).reshape(-1)
        margin = float(booster.predict(row, output_margin=True)[0])
        base = margin - float(self.value[self.tree_start[:-1] + leaves].sum())
        return base + float(self.mean[self.tree_start[:-1]].sum())

    def _means(self) -> np.ndarray:
        """Cover-weighted mean leaf value under each node (pre-order reversed: children before parents)."""
        mean = self.value.copy()
        for k in self.inner[::-1]:
            lk, rk = self.child[k, 1], self.child[k, 0]
            mean[k] = (mean[lk] * self.cover[lk] + mean[rk] * self.cover[rk]) / self.cover[k]
        return mean

    def _leaf_tables(self) -> None:
        """Per leaf: its unique path features (slots), their cover shares and the pattern table; per node: the
        bit of its feature's slot (the same for every leaf below it, as slots follow the root path)."""
        paths = self._paths
        slots = [list(dict.fromkeys(int(self.feat[n]) for n, _ in p)) for _, p in paths]
        dmax = max([len(s) for s in slots] + [1])
        n_leaf = len(paths)
        if dmax > MAX_UNIQUE or n_leaf * (1 << dmax) * dmax * 4 > MAX_TABLE_BYTES:
            raise NotImplementedError(f"{n_leaf} leaves with up to {dmax} unique path features")
        self.leaf_node = np.array([node for node, _ in paths], np.int64)
        self.nslot = np.array([len(s) for s in slots], np.int64)
        self.leaf_mask = (1 << self.nslot) - 1
        self.slot_feat = np.zeros((n_leaf, dmax), np.int64)
        self.node_bit = np.zeros(len(self.feat), np.int64)
        zero = np.ones((n_leaf, dmax))
        for i, ((_, path), sl) in enumerate(zip(paths, slots, strict=True)):
            self.slot_feat[i, : len(sl)] = sl
            for n, go_left in path:
                q = sl.index(int(self.feat[n]))
                self.node_bit[n] = 1 << q
                zero[i, q] *= self.cover[self.child[n, int(go_left)]] / self.cover[n]
        # w(s, d) = s! (d - s - 1)! / d!: the Shapley weight of a coalition of s of the other d - 1 features.
        weights = np.zeros((dmax + 1, dmax + 1))
        for d in range(1, dmax + 1):
            for s in range(d):
                weights[d, s] = factorial(s) * factorial(d - s - 1) / factorial(d)
        self._units(_tables(self.value[self.leaf_node], zero, self.nslot, weights))
        del self._paths

    def _units(self, leaf_table: np.ndarray) -> None:
        """Lookup units of `_exact` from the leaf tables [L, 2^D, D]. Two sibling leaves (91 % of the leaves
        on the default model) have the same slots, and both their patterns follow from the parent's pattern
        and the row's direction there, so one lookup of their summed tables serves both: a third fewer
        operations per row. Unit table row 2 * pattern + went_left (0 for a single leaf)."""
        n_leaf, n_pat, dmax = leaf_table.shape
        leaf_of = np.full(len(self.feat), -1)
        leaf_of[self.leaf_node] = np.arange(n_leaf)
        kids = self.child[self.inner]  # [:, 0] the right child, [:, 1] the left one
        paired = self.is_leaf[kids[:, 0]] & self.is_leaf[kids[:, 1]]
        parents, right, left = self.inner[paired], leaf_of[kids[paired, 0]], leaf_of[kids[paired, 1]]
        singles = np.setdiff1d(np.arange(n_leaf), np.r_[left, right])
        if (len(parents) + len(singles)) * 2 * n_pat * dmax * 4 > MAX_TABLE_BYTES:
            raise NotImplementedError(f"{n_leaf} leaves with up to {dmax} unique path features")
        p = np.arange(n_pat)[None, :]
        mask, cleared = self.leaf_mask[left][:, None], p & ~self.node_bit[parents][:, None]
        table = np.zeros((len(parents) + len(singles), 2 * n_pat, dmax), np.float32)
        # Went left: the left leaf keeps the parent's pattern and the right one loses the parent's bit.
        table[: len(parents), 1::2] = leaf_table[left[:, None], p & mask] + leaf_table[right[:, None], cleared & mask]
        table[: len(parents), 0::2] = leaf_table[left[:, None], cleared & mask] + leaf_table[right[:, None], p & mask]
        table[len(parents):, 0::2] = leaf_table[singles]
        leaves = np.r_[left, singles]  # a unit's slots, mask and tree are its (first) leaf's
        tree = np.searchsorted(self.leaf_start, leaves, side="right") - 1
        order = np.argsort(tree, kind="stable")
        self.unit_start = np.r_[0, np.cumsum(np.bincount(tree, minlength=len(self.tree_start) - 1))]
        self.unit_node = np.r_[parents, self.leaf_node[singles]][order]
        self.unit_pair = np.r_[np.ones(len(parents), np.int64), np.zeros(len(singles), np.int64)][order]
        self.unit_mask, self.unit_nslot = self.leaf_mask[leaves][order], self.nslot[leaves][order]
        self.unit_feat, self.table = self.slot_feat[leaves][order], table[order]

    def __call__(self, x: np.ndarray, exact: bool = True, threads: int = 2) -> np.ndarray:
        """Contributions [n, d] in log-odds for rows x [n, d] (the bias column is not computed)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected rows of {self.n_features} features, got shape {x.shape}")
        xp = np.zeros((len(x), self.n_features + 1), np.float32)  # + the leaves' dummy column
        xp[:, :-1] = x
        out = np.zeros((len(x), self.n_features + 1), np.float64)
        if exact:
            def run(lo, hi):
                _exact(xp[lo:hi], out[lo:hi], self.feat, self.thr, self.dleft, self.child, self.node_bit,
                       self.tree_start, self.inner_start, self.inner, self.unit_start, self.unit_node,
                       self.unit_mask, self.unit_pair, self.unit_nslot, self.unit_feat, self.table)
        else:
            def run(lo, hi):
                _saabas(xp[lo:hi], out[lo:hi], self.feat, self.thr, self.dleft, self.child, self.step,
                        self.tree_start, self.tree_depth)
        bounds = np.linspace(0, len(x), max(1, min(threads, len(x) // BLOCK)) + 1).astype(int)
        if len(bounds) == 2:
            run(0, len(x))
        else:
            workers = [threading.Thread(target=run, args=pair) for pair in pairwise(bounds)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
        return out[:, :-1].astype(np.float32)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def explainer(booster) -> TreeContributions | None:
    """The booster's TreeContributions (built once per booster object), or None where XGBoost's own
    contributions must be used (see the module docstring)."""
    with _LOCK:
        if booster not in _CACHE:
            try:
                _CACHE[booster] = TreeContributions(booster)
            except NotImplementedError:
                _CACHE[booster] = None
        return _CACHE[booster]
