"""Training the snapshot GNN (`fraud.models.gnn.EdgeGNN`): one optimiser step per training snapshot.

    model = fit_gnn(log, rows, labels, GNNConfig(), graph_cfg, seed=0)

Each training row is scored on the window of edges before its (training) snapshot boundary, cut by the same
compiled pass as at scoring time (`fraud.features.graph_pass.window`), so training and scoring see the same
graph. Cost: epochs x training snapshots x one forward/backward pass over a window, whatever the rows in it.
`gnn.train_every: auto` trains on the finest cadence whose epoch has at most `gnn.max_snapshots` snapshots
(`training_every`), independent of the scoring cadence: the cost of an epoch is bounded, every training row is
used every epoch, and a file with few rows still gets enough steps (a small file scored on daily snapshots
trains on hourly ones).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fraud.data.durations import NS
from fraud.features.graph import (
    AUTO_EVERY,
    EventLog,
    GraphConfig,
    one_torch_thread,
    parse_duration,
    snapshot_groups,
    snapshot_ids,
)
from fraud.features.graph_pass import window
from fraud.models.gnn import EdgeGNN, GNNConfig, Rows, window_ops
from shared.concurrency import prefetch

EdgeBatch = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray],
                     tuple[torch.Tensor, torch.Tensor]]


def fit_gnn(log: EventLog, rows: Rows, labels: np.ndarray, cfg: GNNConfig, gcfg: GraphConfig,
            seed: int, progress: bool = True, log_fn=lambda msg: None, edge_batch: EdgeBatch | None = None,
            desc: str = "gnn") -> EdgeGNN:
    """Train an EdgeGNN on labelled rows, each scored on the snapshot graph before its (training) boundary.

    `edge_batch(head, h_src [b, E], h_dst [b, E], attr [b, EDGE_DIM], y [b]) -> (logits [m], labels [m])`
    replaces the plain head call of each batch (every node encoded, so the head's inputs can be perturbed):
    the hook adversarial training uses to add worst-case copies of fraud edges."""
    if cfg.label_nodes and log.node_labels is None:
        raise ValueError("gnn.label_nodes needs an event log with a label book (EventLog.node_labels = "
                         "fraud.features.graph_labels.NodeLabels(book, log.entities)), or gnn.label_nodes=false")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = EdgeGNN(cfg)
    # fused: one kernel for all parameters instead of a Python loop over them (4x faster a step on CPU)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    every = training_every(rows.t, cfg, gcfg)
    groups = list(snapshot_groups(rows.t, every))
    log_fn(f"{desc}: {len(groups)} training snapshots of {every // NS // 60} min")
    n_pos = max(int(labels.sum()), 1)
    # Imbalance: keep every fraud row and a random `neg_per_pos` legitimate rows per fraud row each epoch.
    keep_neg = min(1.0, cfg.neg_per_pos * n_pos / max(len(labels) - n_pos, 1))
    with one_torch_thread():
        for epoch in tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False):
            order = rng.permutation(len(groups))
            loss = train_one_epoch(model, opt, log, rows, labels, [groups[i] for i in order], keep_neg,
                                   gcfg.window_ns, rng, edge_batch)
            if not np.isfinite(loss):
                raise FloatingPointError(f"GNN loss became {loss} in epoch {epoch}; lower gnn.lr")
            log_fn(f"{desc} epoch {epoch + 1}/{cfg.epochs}: loss {loss:.4f}")
    model.eval()
    return model


def training_every(t_ns: np.ndarray, cfg: GNNConfig, gcfg: GraphConfig) -> int:
    """The training snapshot cadence in ns for training rows at times `t_ns` [n]: gnn.train_every, or with
    `auto` the finest AUTO_EVERY cadence that gives at most gnn.max_snapshots non-empty snapshots (the
    coarsest when none does; graph.every with max_snapshots 0)."""
    if cfg.train_every != "auto":
        return parse_duration(cfg.train_every) * NS
    if not cfg.max_snapshots:
        return gcfg.every_ns
    ladder = [parse_duration(a) * NS for a in AUTO_EVERY]
    for every in ladder:
        if len(np.unique(snapshot_ids(t_ns, every))) <= cfg.max_snapshots:
            return every
    return ladder[-1]


def train_one_epoch(model: EdgeGNN, opt: torch.optim.Optimizer, log: EventLog, rows: Rows, labels: np.ndarray,
                    groups: list[tuple[np.ndarray, int]], keep_neg: float, window_ns: int,
                    rng: np.random.Generator, edge_batch: EdgeBatch | None = None) -> float:
    """One optimiser step per (row indices, snapshot end) of `groups`, in that order; returns the mean loss
    (non-finite as soon as a step's loss is). Each group keeps its frauds and a `keep_neg` share of the rest."""
    model.train()
    loss_fn = nn.BCEWithLogitsLoss()

    def batches():
        """(labels, window, local src, local dst, edge features) of each group that keeps a row; the window
        is cut again each epoch (the scoring path's compiled cut) rather than every one kept in memory."""
        for idx, end in groups:
            y = labels[idx]
            keep = (y == 1) | (rng.random(len(idx)) < keep_neg)
            if keep.any():
                win, idx = window(log, end - window_ns, end), idx[keep]
                yield y[keep], win, win.local(rows.src[idx]), win.local(rows.dst[idx]), rows.attr[idx]

    total, seen = 0.0, 0
    # The next windows are cut on the otherwise idle core (the cut releases the GIL) while this step trains.
    for y, win, src, dst, attr in prefetch(batches(), depth=2):
        src, dst, attr = torch.from_numpy(src), torch.from_numpy(dst), torch.from_numpy(attr)
        if edge_batch is None:
            logit, yt = model(win, src, dst, attr), torch.from_numpy(y.astype(np.float32))
        else:
            h = model.encode_nodes(model.encode_ops(*window_ops(win)))
            logit, yt = edge_batch(model.head, h[src], h[dst], attr, y)
        loss = loss_fn(logit, yt)
        if not torch.isfinite(loss):
            return float(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(yt)
        seen += len(yt)
    return total / max(seen, 1)
