"""The service's live history: what `fraud serve` remembers, updated at a cost that grows with the batch.

    live = LiveHistory(model.history_, lateness_s=3600)
    live.update(batch)                 # O(batch): appends, per-entity indexes, folds what became overdue
    live.append(t, source, target, amount)   # the same from plain columns (a request's rows, no frame)
    view = live.view(rows)             # a `History` of what `rows`' entities did: tail events + totals
    live.tail                          # the whole tail as a frame (for the graph snapshots), built on demand

It holds what `fraud.features.history.History` holds (raw tail + exact integer totals per entity and pair)
in another layout: events in arrival order in growable arrays, each entity's unfolded events in a deque of
positions, totals in arrays indexed by entity code and a pair table. So absorbing a batch appends the batch
and folds only the rows that fell out of the tail (each row is folded once), where `History.update` copies
the whole tail and regroups every total.

Exactness (the same features as `History` gives for the same rows, bit for bit; tested):
- every feature of a row is keyed by its sender, its receiver or their pair (neighbour aggregates too),
  so `view(rows)` holds the tail events and the totals of those entities only, and pairs with one of them
  at either end (distinct counterparties count pairs by one end);
- a feature of a row at time t counts only events strictly before t (`build_features` bounds every query
  by t), so a view may hold later events: a late row is scored as of its own time;
- the tail keeps `tail_seconds + lateness` before the newest event, so a row up to `lateness` late still
  finds every event of its longest window in the tail;
- rows are folded in arrival order, up to the first row still inside the tail, so the state is a function
  of the sequence of absorbed rows (a restart that replays the store in order rebuilds it exactly).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import chain

import numpy as np
import pandas as pd

from fraud.data.durations import NS, to_ns
from fraud.features.history import LQ, History, _qlog  # the same fixed-point sums as batch scoring
from fraud.features.views import Coded

CAPACITY = 1 << 62  # bound of every integer total (sums of cents, log-amounts and their squares)
_ROLES = ("out", "in")


class _Grow:
    """A growable 1-D numpy array (amortised O(1) appends; `drop` forgets a prefix)."""

    def __init__(self, dtype, cap: int = 1024):
        self.a, self.n, self.start = np.empty(cap, dtype), 0, 0

    def extend(self, v: np.ndarray) -> None:
        need = self.n + len(v)
        if need > len(self.a):
            if self.start > len(self.a) // 2:  # most of it is a dropped prefix: move the rest down
                self.a[: self.n - self.start] = self.a[self.start: self.n]
                self.n, self.start = self.n - self.start, 0
                need = self.n + len(v)
            if need > len(self.a):
                bigger = np.empty(max(need, 2 * len(self.a)), self.a.dtype)
                bigger[: self.n] = self.a[: self.n]
                self.a = bigger
        self.a[self.n: need] = v
        self.n = need

    def view(self) -> np.ndarray:
        return self.a[self.start: self.n]


class _PerEntity:
    """int64 columns indexed by entity code, grown as codes are added."""

    def __init__(self, names: tuple[str, ...], fill: dict[str, int] | None = None):
        self.fill = {n: (fill or {}).get(n, 0) for n in names}
        self.cols = {n: np.full(1024, self.fill[n], np.int64) for n in names}

    def reserve(self, n: int) -> None:
        for k, v in self.cols.items():
            if n > len(v):
                bigger = np.full(max(n, 2 * len(v)), self.fill[k], np.int64)
                bigger[: len(v)] = v
                self.cols[k] = bigger

    def __getitem__(self, k: str) -> np.ndarray:
        return self.cols[k]


class LiveHistory:
    """A model's history plus everything absorbed since, laid out for O(batch) updates (module docstring)."""

    def __init__(self, base: History, lateness_s: int = 0):
        self.tail_seconds = base.tail_seconds
        self.keep_ns = (base.tail_seconds + int(lateness_s)) * NS
        self.max_ns: int | None = None
        self.cutoff_ns: int | None = base.cutoff_ns
        self._code: dict[str, int] = {}
        self._names = _Grow(object)
        self._t, self._s, self._d, self._a = _Grow(np.int64), _Grow(np.int64), _Grow(np.int64), _Grow(np.float64)
        self._pos = 0  # absolute position of the next event; self._t.view()[i] is position self._first + i
        self._first = 0
        self._fold = 0  # events before this position are in the totals
        self._events: list[deque] = []
        # Totals of folded rows per role (History.entities) and all-time sums (for the capacity check).
        self._tot = {r: _PerEntity(("n", "lsum", "lsq", "last_ns"), {"last_ns": -1}) for r in _ROLES}
        # All-time log sums (totals + tail) and the tail's cents, per role: what the capacity check bounds.
        self._all = {r: _PerEntity(("cents", "lsum", "lsq")) for r in _ROLES}
        self.tail_cents = self.tail_lsq = 0
        self._pair_id: dict[int, int] = {}
        self._ps, self._pd, self._pn = _Grow(np.int64), _Grow(np.int64), _Grow(np.int64)
        self._pairs_of: list[list[int]] = []
        self._frame: pd.DataFrame | None = None
        self.n_base = len(base.tail)  # the first n_base events are the base history's tail rows
        self._load(base)

    # ---- building ----------------------------------------------------------------------------------------
    def _codes(self, values: Sequence[str]) -> np.ndarray:
        """Entity codes of the names `values`, new names getting new codes (O(len(values)))."""
        code, new = self._code, []

        def one(v: str) -> int:
            c = code.get(v)
            if c is None:
                c = code[v] = len(code)
                new.append(v)
            return c

        codes = np.fromiter((one(v) for v in values), np.int64, len(values))
        if new:
            self._names.extend(np.array(new, dtype=object))
            self._events.extend(deque() for _ in new)
            self._pairs_of.extend([] for _ in new)
            for r in _ROLES:
                self._tot[r].reserve(len(code))
                self._all[r].reserve(len(code))
        return codes

    def _load(self, base: History) -> None:
        ent = base.entities
        for role in _ROLES:
            e = ent[ent["role"] == role]
            if len(e):
                c = self._codes(_texts(e["entity"]))
                for k in ("n", "lsum", "lsq", "last_ns"):
                    self._tot[role][k][c] = e[k].to_numpy(np.int64)
                self._all[role]["lsum"][c] += e["lsum"].to_numpy(np.int64)
                self._all[role]["lsq"][c] += e["lsq"].to_numpy(np.int64)
        if len(base.pairs):
            self._add_pairs(self._codes(_texts(base.pairs["source"])), self._codes(_texts(base.pairs["target"])),
                            base.pairs["n"].to_numpy(np.int64))
        self.max_ns = base.max_ns
        self.update(base.tail)

    def _add_pairs(self, s: np.ndarray, d: np.ndarray, n: np.ndarray) -> None:
        """Add counts `n` to the pair totals of (s, d) codes, creating the pairs not seen yet."""
        ids, table = np.empty(len(s), np.int64), self._pair_id
        new_s, new_d = [], []
        for i, (k, si, di) in enumerate(zip(((s << 32) | d).tolist(), s.tolist(), d.tolist(), strict=True)):
            p = table.get(k)
            if p is None:
                p = table[k] = len(table)
                new_s.append(si)
                new_d.append(di)
                self._pairs_of[si].append(p)
                if di != si:
                    self._pairs_of[di].append(p)
            ids[i] = p
        if new_s:
            self._ps.extend(np.array(new_s, np.int64))
            self._pd.extend(np.array(new_d, np.int64))
            self._pn.extend(np.zeros(len(new_s), np.int64))
        np.add.at(self._pn.a, ids, n)

    def update(self, df: pd.DataFrame) -> LiveHistory:
        """Absorb canonical rows (any times at or after the lateness floor), in the order given; returns self."""
        if not len(df):
            return self
        return self.append(to_ns(df["timestamp"]), _texts(df["source"]), _texts(df["target"]),
                           df["amount"].to_numpy(np.float64))

    def append(self, t: np.ndarray, source: Sequence[str], target: Sequence[str], amount: np.ndarray) -> LiveHistory:
        """`update` from columns: times t [n] int64 ns, the names, amount [n] float64; returns self."""
        if not len(t):
            return self
        t, a = np.asarray(t, np.int64), np.asarray(amount, np.float64)
        s, d = self._codes(source), self._codes(target)
        pos0 = self._pos
        for arr, v in ((self._t, t), (self._s, s), (self._d, d), (self._a, a)):
            arr.extend(v)
        self._pos += len(t)
        events = self._events
        for p, si, di in zip(range(pos0, self._pos), s.tolist(), d.tolist(), strict=True):
            events[si].append(p)
            if di != si:
                events[di].append(p)
        cents, q = np.rint(a * 100).astype(np.int64), _qlog(a)
        for role, c in (("out", s), ("in", d)):
            al = self._all[role]
            np.add.at(al["cents"], c, cents)
            np.add.at(al["lsum"], c, q)
            np.add.at(al["lsq"], c, q * q)
        self.tail_cents += int(cents.sum())
        self.tail_lsq += int((q * q).sum())
        self.max_ns = int(t.max()) if self.max_ns is None else max(self.max_ns, int(t.max()))
        self._fold_overdue()
        self._frame = None
        return self

    def _fold_overdue(self) -> None:
        """Fold events (in arrival order) older than max_ns - keep into the totals, up to the first that is not."""
        cutoff = self.max_ns - self.keep_ns
        t = self._t.a
        p = self._fold
        while p < self._pos:  # look ahead in small blocks: the cost follows the rows folded, not the tail
            i = p - self._first + self._t.start
            block = t[i: i + min(256, self._pos - p)]
            stop = np.flatnonzero(block >= cutoff)
            if len(stop):
                p += int(stop[0])
                break
            p += len(block)
        if p == self._fold:
            return
        lo, hi = self._fold - self._first, p - self._first
        tt, s, d, a = (x.view()[lo:hi] for x in (self._t, self._s, self._d, self._a))
        q = _qlog(a)
        for role, c in (("out", s), ("in", d)):
            tot = self._tot[role]
            np.add.at(tot["n"], c, 1)
            np.add.at(tot["lsum"], c, q)
            np.add.at(tot["lsq"], c, q * q)
            np.maximum.at(tot["last_ns"], c, tt)
            np.subtract.at(self._all[role]["cents"], c, np.rint(a * 100).astype(np.int64))
        self.tail_cents -= int(np.rint(a * 100).astype(np.int64).sum())
        self.tail_lsq -= int((q * q).sum())
        keys, counts = np.unique((s << 32) | d, return_counts=True)
        self._add_pairs(keys >> 32, keys & 0xFFFFFFFF, counts.astype(np.int64))
        for si, di in zip(s.tolist(), d.tolist(), strict=True):
            self._events[si].popleft()  # the oldest position of each deque: positions are appended in order
            if di != si:
                self._events[di].popleft()
        self._fold = p
        self.cutoff_ns = cutoff
        if self._fold - self._first > 4096:  # forget the folded prefix of the event arrays
            for x in (self._t, self._s, self._d, self._a):
                x.start += self._fold - self._first
            self._first = self._fold

    # ---- reading -----------------------------------------------------------------------------------------
    def _rows(self, positions: np.ndarray) -> pd.DataFrame:
        """History-tail rows (timestamp, source, target, amount) of event positions, in event-time order
        (ties in arrival order, as `History` keeps them)."""
        i = positions - self._first
        t = self._t.view()[i]
        order = np.argsort(t, kind="stable")
        i, t = i[order], t[order]
        names = self._names.view()
        return pd.DataFrame({"timestamp": pd.to_datetime(t, unit="ns", utc=True),
                             "source": pd.array(names[self._s.view()[i]], dtype="string"),
                             "target": pd.array(names[self._d.view()[i]], dtype="string"),
                             "amount": self._a.view()[i]})

    @property
    def tail(self) -> pd.DataFrame:
        """Every unfolded event as a tail frame (built once per update, when the graph or a big batch asks)."""
        if self._frame is None:
            self._frame = self._rows(np.arange(self._fold, self._pos, dtype=np.int64))
        return self._frame

    def tail_since(self, start_ns: int) -> pd.DataFrame:
        """The tail rows at or after `start_ns`, as `History.tail_since` gives them; only those rows' frame is
        built (a new snapshot reads its window, not the whole tail of window + lateness)."""
        pos = np.arange(self._fold, self._pos, dtype=np.int64)
        return self._rows(pos[self._t.view()[pos - self._first] >= start_ns])

    def known(self, names: pd.Series) -> np.ndarray:
        """Codes of names the history has seen (-1 where not)."""
        return self.known_names(_texts(names))

    def known_names(self, values: Sequence[str]) -> np.ndarray:
        """`known` of names given as str values."""
        get = self._code.get
        return np.fromiter((get(v, -1) for v in values), np.int64, len(values))

    def view(self, q: pd.DataFrame) -> History:
        """A `History` holding what the entities of rows `q` did: their tail events (also later ones: features
        count only events before each row's time), their totals and their pairs' totals."""
        codes = np.unique(np.concatenate([self.known(q["source"]), self.known(q["target"])]))
        codes = codes[codes >= 0]
        ev = [self._events[c] for c in codes.tolist()]
        pos = np.unique(np.fromiter((p for e in ev for p in e), np.int64, sum(map(len, ev))))
        names = self._names.view()
        ent = []
        for role in _ROLES:
            tot = self._tot[role]
            c = codes[tot["n"][codes] > 0]
            ent.append(pd.DataFrame({"entity": pd.array(names[c], dtype="string"), "role": role,
                                     **{k: tot[k][c] for k in ("n", "lsum", "lsq", "last_ns")}}))
        entities = pd.concat(ent, ignore_index=True)
        entities["role"] = entities["role"].astype("string")
        pl = [self._pairs_of[c] for c in codes.tolist()]
        pid = np.unique(np.fromiter((p for ps in pl for p in ps), np.int64, sum(map(len, pl))))
        pairs = pd.DataFrame({"source": pd.array(names[self._ps.view()[pid]], dtype="string"),
                              "target": pd.array(names[self._pd.view()[pid]], dtype="string"),
                              "n": self._pn.view()[pid]})
        return History(self.tail_seconds, self._rows(pos), entities, pairs, self.cutoff_ns, None)

    def coded(self, t: np.ndarray, amount: np.ndarray, source: list[str], target: list[str]) -> Coded:
        """What `view` holds for the rows (t [n] ns, amount [n], source and target names), already coded:
        the input of `fraud.features.behaviour.coded_features`, built from the arrays without any frame
        (a one-transaction request's features then cost tens of microseconds of numpy, not pandas' fixed
        cost per operation). The same features as `build_features(view(q), q)` bit for bit (tested)."""
        code = self._code
        qs = np.fromiter((code.get(v, -1) for v in source), np.int64, len(source))
        qd = np.fromiter((code.get(v, -1) for v in target), np.int64, len(target))
        mine = np.unique(np.concatenate([qs, qd]))
        mine = mine[mine >= 0]
        ev = [self._events[c] for c in mine.tolist()]
        pos = np.unique(np.fromiter(chain.from_iterable(ev), np.int64, sum(map(len, ev))))
        i = pos - self._first
        i = i[np.argsort(self._t.view()[i], kind="stable")]  # event-time order, ties in arrival order
        es, ed = self._s.view()[i], self._d.view()[i]
        # Local codes: the events' entities, then the rows' names the history has never seen.
        known = np.unique(np.concatenate([es, ed, mine]))
        fresh: dict[str, int] = {}
        for v in (*source, *target):
            if v not in code and v not in fresh:
                fresh[v] = len(known) + len(fresh)

        def local(g: np.ndarray, names: list[str]) -> np.ndarray:
            out = np.searchsorted(known, np.maximum(g, 0))
            return np.where(g >= 0, out, [fresh.get(v, -1) for v in names]).astype(np.int64)

        all_names = self._names.view()
        names = np.concatenate([all_names[known], np.array(list(fresh), dtype=object)])
        state = {}
        for role in _ROLES:
            tot = self._tot[role]
            state[role] = {k: np.concatenate([tot[k][known], np.full(len(fresh), fill, np.int64)])
                           for k, fill in (("n", 0), ("lsum", 0), ("lsq", 0), ("last_ns", -1))}
        pl = [self._pairs_of[c] for c in mine.tolist()]
        pid = np.unique(np.fromiter((p for ps in pl for p in ps), np.int64, sum(map(len, pl))))
        ps_g, pd_g = self._ps.view()[pid], self._pd.view()[pid]

        def pair_end(g: np.ndarray) -> np.ndarray:  # -1 where no event has the name (as `code_frame` codes it)
            if not len(g):  # (pairs come from entities of `known`, so known is not empty here)
                return np.zeros(0, np.int64)
            j = np.minimum(np.searchsorted(known, g), len(known) - 1)
            return np.where(known[j] == g, j, -1).astype(np.int64)

        return Coded(np.concatenate([self._t.view()[i], np.asarray(t, np.int64)]),
                     np.concatenate([self._a.view()[i], np.asarray(amount, np.float64)]),
                     np.concatenate([np.searchsorted(known, es), local(qs, source)]).astype(np.int64),
                     np.concatenate([np.searchsorted(known, ed), local(qd, target)]).astype(np.int64),
                     len(i), names, state, pair_end(ps_g), pair_end(pd_g), self._pn.view()[pid].copy(),
                     {"source": all_names[ps_g], "target": all_names[pd_g]})

    @property
    def folded(self) -> int:
        """Events folded into the totals since this history was built (a prefix of the arrival order)."""
        return self._fold

    def totals(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(entities, pairs): the totals of every folded event, as `History` keeps them (checkpoints)."""
        h = self.to_history(tail=False)
        return h.entities, h.pairs

    def to_history(self, tail: bool = True) -> History:
        """The whole state as a `History` (what `fraud score --state` scores a file after); tail=False leaves
        the tail out (empty)."""
        names = self._names.view()
        ent = []
        for role in _ROLES:
            tot = self._tot[role]
            c = np.flatnonzero(tot["n"][: len(self._code)] > 0)
            ent.append(pd.DataFrame({"entity": pd.array(names[c], dtype="string"), "role": role,
                                     **{k: tot[k][c] for k in ("n", "lsum", "lsq", "last_ns")}}))
        entities = pd.concat(ent, ignore_index=True).sort_values(["entity", "role"], ignore_index=True)
        entities["role"] = entities["role"].astype("string")
        pairs = pd.DataFrame({"source": pd.array(names[self._ps.view()], dtype="string"),
                              "target": pd.array(names[self._pd.view()], dtype="string"),
                              "n": self._pn.view().copy()}).sort_values(["source", "target"], ignore_index=True)
        rows = self.tail.copy() if tail else History(self.tail_seconds).tail
        return History(self.tail_seconds, rows, entities, pairs, self.cutoff_ns, self.max_ns)

    # ---- capacity ----------------------------------------------------------------------------------------
    def over_capacity(self, df: pd.DataFrame) -> np.ndarray:
        """Mask [n] of rows whose sender's or receiver's integer sums (or the whole tail's) would pass
        CAPACITY if `df` were absorbed: such rows are refused, so no total can ever overflow int64."""
        return self.over_capacity_of(df["amount"].to_numpy(np.float64), _texts(df["source"]), _texts(df["target"]))

    def over_capacity_of(self, amount: np.ndarray, source: Sequence[str], target: Sequence[str]) -> np.ndarray:
        """`over_capacity` of rows given as columns (amount [n] float64, the names)."""
        a = np.asarray(amount, np.float64)
        cents, q = np.rint(a * 100).astype(np.int64), _qlog(a)
        bad = np.zeros(len(a), bool)
        if self.tail_cents + int(cents.sum()) > CAPACITY or self.tail_lsq + int((q * q).sum()) > CAPACITY:
            return ~bad
        for role, names in (("out", source), ("in", target)):
            c = self.known_names(names)
            seen = c >= 0
            if not seen.any():
                continue
            al = self._all[role]
            u, inv = np.unique(c[seen], return_inverse=True)
            for k, v in (("cents", cents), ("lsum", q), ("lsq", q * q)):
                add = np.zeros(len(u), np.int64)
                np.add.at(add, inv, v[seen])  # the batch's sum per entity, in exact integers
                bad[np.flatnonzero(seen)[(al[k][u] > CAPACITY - add)[inv]]] = True
        return bad

    def sizes(self) -> dict:
        """What the state holds (for /health)."""
        return {"tail_rows": self._pos - self._fold, "entities": len(self._code), "pairs": len(self._pair_id),
                "newest": None if self.max_ns is None else pd.Timestamp(self.max_ns, tz="UTC").isoformat(),
                "capacity_used": round(max(self.tail_cents, self.tail_lsq) / CAPACITY, 9)}


def _texts(col: pd.Series) -> list[str]:
    """A text column's values as str (the codes are keyed by the names as text)."""
    return col.astype("string").tolist()


__all__ = ["CAPACITY", "LQ", "LiveHistory"]
