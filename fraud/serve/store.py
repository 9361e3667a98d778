"""The service's durable state: an embedded SQLite store of every absorbed transaction (with the result the
service answered) and every accepted label, written and committed before a request is acknowledged.

    store = StateStore("state.sqlite", model_identity(model))   # created when missing, WAL mode
    store.append(rows)        # one transaction: every row or none; fsync'd per `sync` before it returns
    store.lookup(ids)         # idempotency: the stored payload and result of ids already absorbed
    store.transactions(after) # absorbed after a checkpoint, in absorption order: what a restart replays
    store.write_checkpoint(entities, pairs, meta, prune_before_ns)   # fraud.serve.pruning

Schema (version 2; a version-1 store is upgraded in place: the checkpoint tables are added):

| table | columns |
|---|---|
| meta | key TEXT PRIMARY KEY, value TEXT: schema_version, model (identity of the model the state extends), created |
| transactions | seq INTEGER PRIMARY KEY (absorption order), transaction_id TEXT UNIQUE, ts_ns INTEGER, source TEXT, target TEXT, amount REAL, probability REAL, flag INTEGER, reasons TEXT (JSON), threshold REAL, received_ns INTEGER |
| labels | seq INTEGER PRIMARY KEY, transaction_id TEXT UNIQUE, source TEXT, target TEXT, ts_ns INTEGER, known_ns INTEGER, label INTEGER, received_ns INTEGER |
| checkpoint | key TEXT PRIMARY KEY, value INTEGER: seq (last transaction folded into the totals), base_folded (rows of the model's own history folded), cutoff_ns, max_ns, written_ns |
| ckpt_entities | entity TEXT, role TEXT ('out'/'in'), n, lsum, lsq, last_ns INTEGER: totals of every folded row |
| ckpt_pairs | source TEXT, target TEXT, n INTEGER |

Transactions folded into a checkpoint stay as idempotency records until they are `remember_ids` older than the
newest one (`fraud.serve.pruning`), then they are deleted; seq is never reused (the newest row is never deleted).

The state only makes sense on top of the model it started from (its history and label book), so the store
records the model's identity and refuses another model. REAL is an IEEE double, so amounts and
probabilities come back bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

SCHEMA_VERSION = 2
READS = ("1", "2")  # schema versions this code opens (1 has no checkpoint tables yet)
SYNC_MODES = ("full", "normal")
TX_COLUMNS = ["transaction_id", "ts_ns", "source", "target", "amount", "probability", "flag", "reasons",
              "threshold"]
LABEL_COLUMNS = ["transaction_id", "source", "target", "ts_ns", "known_ns", "label"]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    seq INTEGER PRIMARY KEY, transaction_id TEXT NOT NULL UNIQUE, ts_ns INTEGER NOT NULL, source TEXT NOT NULL,
    target TEXT NOT NULL, amount REAL NOT NULL, probability REAL NOT NULL, flag INTEGER NOT NULL,
    reasons TEXT NOT NULL, threshold REAL NOT NULL, received_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    seq INTEGER PRIMARY KEY, transaction_id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, target TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, known_ns INTEGER NOT NULL, label INTEGER NOT NULL, received_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (key TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS ckpt_entities (entity TEXT NOT NULL, role TEXT NOT NULL, n INTEGER NOT NULL,
    lsum INTEGER NOT NULL, lsq INTEGER NOT NULL, last_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ckpt_pairs (source TEXT NOT NULL, target TEXT NOT NULL, n INTEGER NOT NULL);
"""
CKPT_KEYS = ("seq", "base_folded", "cutoff_ns", "max_ns", "written_ns")


class StoreError(RuntimeError):
    """A state store that cannot be used as asked; the message names the file and the fix."""


def model_identity(model) -> str:
    """A fingerprint of what a state builds on: the booster, the threshold and the stored history."""
    h = hashlib.sha256(bytes(model.booster_.save_raw("ubj")))
    hist = model.history_
    h.update(json.dumps([model.threshold_, hist.max_ns, len(hist.tail), len(hist.entities), len(hist.pairs),
                         len(model.feature_names_)]).encode())
    return h.hexdigest()[:16]


class StateStore:
    """One SQLite file in WAL mode; every method is one transaction under the store's lock (module docstring)."""

    def __init__(self, path: str | Path, model_id: str, sync: str = "full", read_only: bool = False):
        if sync not in SYNC_MODES:
            raise StoreError(f"sync must be one of {', '.join(SYNC_MODES)}, got {sync!r}")
        self.path, self.read_only = Path(path), read_only
        if read_only and not self.path.is_file():
            raise StoreError(f"state store {self.path} does not exist; pass the --state file `fraud serve` wrote")
        if not read_only and not self.path.parent.is_dir():
            raise StoreError(f"cannot create the state store {self.path}: folder {self.path.parent} does not exist")
        try:
            uri = f"file:{self.path.resolve()}?mode={'ro' if read_only else 'rwc'}"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            if not read_only:
                mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode}); put the state on a local "
                                     "file system")
                # full: each commit is on disk before it returns (power loss included); normal: safe against a
                # crash of the process, not of the machine.
                self._db.execute(f"PRAGMA synchronous={sync.upper()}")
                self._db.executescript(_SCHEMA)
            meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable SQLite state store: {exc}") from None
        self._lock = threading.Lock()
        if not meta and not read_only:
            self._write("INSERT INTO meta VALUES (?, ?)", [("schema_version", str(SCHEMA_VERSION)), ("model", model_id),
                                                           ("created", pd.Timestamp.now(tz="UTC").isoformat())])
            meta = {"schema_version": str(SCHEMA_VERSION), "model": model_id}
        if meta.get("schema_version") not in READS:
            raise StoreError(f"{self.path} has schema version {meta.get('schema_version')}; this code reads "
                             f"{', '.join(READS)}")
        if meta.get("schema_version") != str(SCHEMA_VERSION) and not read_only:  # the tables exist by now
            self._write("UPDATE meta SET value = ? WHERE key = 'schema_version'", [(str(SCHEMA_VERSION),)])
        if meta.get("model") != model_id:
            raise StoreError(f"{self.path} holds the state of another model (identity {meta.get('model')}, this "
                             f"model is {model_id}); its transactions extend that model's history. Start with that "
                             "model, or give this one a new --state file")
        self.model_id = model_id

    def _write(self, sql: str, rows: list[tuple]) -> None:
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} could not be written ({exc})") from exc

    def append(self, rows: pd.DataFrame | dict[str, list]) -> None:
        """Insert absorbed transactions (TX_COLUMNS, reasons as a JSON string; a frame or columns of lists) in
        absorption order, atomically."""
        now = time.time_ns()
        if isinstance(rows, dict):
            n = len(rows["transaction_id"])
            data = list(zip(*(rows[c] for c in TX_COLUMNS), [now] * n, strict=True))
        else:
            data = [(*r, now) for r in rows[TX_COLUMNS].itertuples(index=False, name=None)]
        with self._lock:
            self._write(f"INSERT INTO transactions ({', '.join(TX_COLUMNS)}, received_ns) VALUES "
                        f"({', '.join('?' * (len(TX_COLUMNS) + 1))})", data)

    def add_labels(self, rows: pd.DataFrame) -> None:
        """Insert accepted label-book rows (LABEL_COLUMNS), atomically."""
        now = time.time_ns()
        data = [(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]), now)
                for r in rows[LABEL_COLUMNS].itertuples(index=False, name=None)]
        with self._lock:
            self._write(f"INSERT INTO labels ({', '.join(LABEL_COLUMNS)}, received_ns) VALUES "
                        f"({', '.join('?' * (len(LABEL_COLUMNS) + 1))})", data)

    def lookup(self, ids: list[str]) -> pd.DataFrame:
        """The stored rows (TX_COLUMNS) of those `ids` that were absorbed, indexed by transaction_id."""
        return pd.DataFrame(list(self.lookup_rows(ids).values()), columns=TX_COLUMNS).set_index("transaction_id")

    def lookup_rows(self, ids: list[str]) -> dict[str, dict]:
        """`lookup` as {transaction_id: {column: value}} (no frame: most requests hold no stored id)."""
        out = []
        with self._lock:
            for a in range(0, len(ids), 500):  # SQLite's limit on bound parameters
                part = ids[a:a + 500]
                out += self._db.execute(f"SELECT {', '.join(TX_COLUMNS)} FROM transactions WHERE transaction_id "
                                        f"IN ({', '.join('?' * len(part))})", part).fetchall()
        return {r[0]: dict(zip(TX_COLUMNS, r, strict=True)) for r in out}

    def transactions(self, after: int = 0) -> pd.DataFrame:
        """The absorbed transactions (TX_COLUMNS) with seq > `after` (a checkpoint's), in absorption order."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(TX_COLUMNS)} FROM transactions WHERE seq > ? ORDER BY seq",
                                    (after,)).fetchall()
        df = pd.DataFrame(rows, columns=TX_COLUMNS)
        return df.astype({"ts_ns": np.int64, "amount": np.float64, "probability": np.float64, "flag": bool})

    def labels(self) -> pd.DataFrame:
        """Every accepted label (LABEL_COLUMNS) in the order accepted."""
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(LABEL_COLUMNS)} FROM labels ORDER BY seq").fetchall()
        return pd.DataFrame(rows, columns=LABEL_COLUMNS).astype({"ts_ns": np.int64, "known_ns": np.int64})

    def seq_after(self, after: int, k: int) -> int:
        """The seq of the k-th transaction after seq `after` (`after` itself for k = 0)."""
        if k <= 0:
            return after
        with self._lock:
            row = self._db.execute("SELECT seq FROM transactions WHERE seq > ? ORDER BY seq LIMIT 1 OFFSET ?",
                                   (after, k - 1)).fetchone()
        if row is None:
            raise StoreError(f"{self.path}: fewer than {k} transactions after seq {after}; the store does not "
                             "match the state (was it written by another process?)")
        return int(row[0])

    def checkpoint(self) -> tuple[pd.DataFrame, pd.DataFrame, dict] | None:
        """(entities, pairs, meta) of the last checkpoint (`History` totals and CKPT_KEYS), or None."""
        with self._lock:
            meta = dict(self._db.execute("SELECT key, value FROM checkpoint").fetchall()) if self._has_ckpt() else {}
            if not meta:
                return None
            ent = self._db.execute("SELECT entity, role, n, lsum, lsq, last_ns FROM ckpt_entities").fetchall()
            pairs = self._db.execute("SELECT source, target, n FROM ckpt_pairs").fetchall()
        entities = pd.DataFrame(ent, columns=["entity", "role", "n", "lsum", "lsq", "last_ns"]).astype(
            {"entity": "string", "role": "string", "n": "int64", "lsum": "int64", "lsq": "int64", "last_ns": "int64"})
        pairs = pd.DataFrame(pairs, columns=["source", "target", "n"]).astype(
            {"source": "string", "target": "string", "n": "int64"})
        return entities, pairs, {k: (None if meta.get(k) is None else int(meta[k])) for k in CKPT_KEYS}

    def _has_ckpt(self) -> bool:  # a read-only version-1 store has no checkpoint tables
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'checkpoint'").fetchone() is not None

    def write_checkpoint(self, entities: pd.DataFrame, pairs: pd.DataFrame, meta: dict,
                         prune_before_ns: int | None) -> int:
        """Replace the checkpoint (totals and meta) and delete the folded transactions (seq <= meta['seq'])
        older than `prune_before_ns`, in one transaction; returns how many were deleted."""
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        ent = list(entities[["entity", "role", "n", "lsum", "lsq", "last_ns"]].astype(
            {"entity": object, "role": object}).itertuples(index=False, name=None))
        prs = list(pairs[["source", "target", "n"]].astype({"source": object, "target": object})
                   .itertuples(index=False, name=None))
        values = [(k, meta.get(k) if k != "written_ns" else time.time_ns()) for k in CKPT_KEYS]
        with self._lock:
            try:
                db = self._db
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("DELETE FROM ckpt_entities")
                    db.execute("DELETE FROM ckpt_pairs")
                    db.executemany("INSERT INTO ckpt_entities VALUES (?, ?, ?, ?, ?, ?)",
                                   [(e, r, int(n), int(a), int(b), int(c)) for e, r, n, a, b, c in ent])
                    db.executemany("INSERT INTO ckpt_pairs VALUES (?, ?, ?)", [(a, b, int(n)) for a, b, n in prs])
                    db.executemany("INSERT OR REPLACE INTO checkpoint VALUES (?, ?)", values)
                    pruned = 0
                    if prune_before_ns is not None:
                        pruned = db.execute("DELETE FROM transactions WHERE seq <= ? AND ts_ns < ? AND seq < "
                                            "(SELECT MAX(seq) FROM transactions)",
                                            (int(meta["seq"]), int(prune_before_ns))).rowcount
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: the checkpoint could not be written ({exc})") from exc
        return pruned

    def summary(self) -> dict:
        """What the store holds (for /health)."""
        with self._lock:  # seq is never reused, so the largest is the count absorbed (an index lookup)
            n = self._db.execute("SELECT MAX(seq) FROM transactions").fetchone()[0] or 0
            labels = self._db.execute("SELECT MAX(seq) FROM labels").fetchone()[0] or 0
            first = self._db.execute("SELECT MIN(seq) FROM transactions").fetchone()[0]
            ck = dict(self._db.execute("SELECT key, value FROM checkpoint").fetchall()) if self._has_ckpt() else {}
        return {"path": str(self.path), "transactions": n, "labels": labels, "model": self.model_id,
                "oldest_seq_held": first, "checkpoint_seq": ck.get("seq")}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def canonical_rows(stored: pd.DataFrame) -> pd.DataFrame:
    """Canonical rows of stored transactions (store columns ts_ns, source, target, amount)."""
    return pd.DataFrame({"transaction_id": pd.array(stored["transaction_id"].astype(str), dtype="string"),
                         "timestamp": pd.to_datetime(stored["ts_ns"].to_numpy(np.int64), unit="ns", utc=True),
                         "source": pd.array(stored["source"].astype(str), dtype="string"),
                         "target": pd.array(stored["target"].astype(str), dtype="string"),
                         "amount": stored["amount"].to_numpy(np.float64)})
