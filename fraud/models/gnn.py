"""Edge-classification GNN over transaction snapshots: node embeddings that describe each entity's neighbourhood.

    x [N, NODE_DIM] --in_proj--> h [N, H] --L x EdgeSAGE (forward + reverse edges, with edge features)--> h [N, H]
    EdgeHead([h_src, h_dst, edge_attr])  [n, 2H + EDGE_DIM] -> logit [n]

Trained on training rows only (`fraud.models.gnn_training.fit_gnn`): each row is scored with the snapshot graph
of edges before its snapshot boundary (fraud/features/graph.py), exactly as at scoring time. Labels are only the
loss target, never an input, so embeddings of validation/test periods use no labels. Full-graph training; no
neighbour sampling is needed at these sizes (NeighborLoader would need pyg-lib or torch-sparse, which this
machine lacks).

Cost (what scoring speed hangs on): one forward pass per snapshot. All layers but the last run on every
node (on the benchmark graph 80-90 % of nodes are within one hop of a snapshot's rows, so restricting them
would save little); the last layer and the head run only on the rows' nodes, with results bit-identical to
the full pass row by row, so chunking cannot change a score. Scoring cuts each window with
`fraud.features.graph_pass` (no snapshot graph, no sort; same bits) and encodes it with `encode_window`.

`EdgeHead` and `EdgeGNN.encode` are plain differentiable torch modules: the PGD attack perturbs
`edge_attr` (log amount, hour) of a fraud row with the node embeddings fixed (the attacker cannot move
the graph built before they act).
"""

from __future__ import annotations

import atexit
import functools
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

with warnings.catch_warnings():
    # torch_geometric 2.8.1 calls torch.jit.script on two of its own classes at import time, which torch 2.14
    # flags as deprecated; we never script anything, so the warning says nothing about this code.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torch_geometric.nn import MessagePassing

from fraud.features.graph import (
    EDGE_DIM,
    GRAPH_EDGE_DIM,
    NODE_DIM,
    EventLog,
    GraphConfig,
    Snapshot,
    csr_order,
    iter_snapshots,
    parse_duration,
)
from fraud.features.graph_labels import LABEL_NODE_DIM
from fraud.features.graph_pass import Window, spmm

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


@atexit.register
def _remove_generated_modules() -> None:
    """PyG writes each MessagePassing class's generated `propagate` module into the temp folder
    (`torch_geometric.template`, delete=False) and never removes it: one file per process that builds the
    GNN, so a long-lived host fills /tmp. Ours go when the process exits (the module runs from memory)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name.startswith(f"{__name__}_") and path and Path(path).resolve().parent == tmp:
            Path(path).unlink(missing_ok=True)


MIN_ROWS = 16  # smallest matmul whose rows equal the same rows of a larger one (checked in tests)


@dataclass
class GNNConfig:
    """Size and training of the GNN (training cost: see `fraud.models.gnn_training`)."""

    hidden: int = 32
    embed: int = 8
    layers: int = 2
    epochs: int = 10
    lr: float = 5e-3
    weight_decay: float = 1e-5
    # Training snapshot cadence. auto: the finest of 1h/2h/3h/6h/12h/1d whose epoch has at most
    # `max_snapshots` training snapshots (0: graph.every). A step costs a pass over a whole window however
    # few rows it trains, so this bounds an epoch's cost while every row is still trained on.
    train_every: str = "auto"
    max_snapshots: int = 200
    neg_per_pos: int = 20
    # Known-fraud state of each entity (delayed labels, fraud/features/graph_labels.py) as node features:
    # lets message passing carry confirmed risk along paths; off = a purely structural graph.
    label_nodes: bool = True

    def __post_init__(self):
        if self.layers < 1 or self.hidden < 1 or self.embed < 1 or self.epochs < 0:
            raise ValueError("gnn.layers, gnn.hidden, gnn.embed must be >= 1 and gnn.epochs >= 0")
        if self.max_snapshots < 0:
            raise ValueError(f"gnn.max_snapshots must be >= 0 (0 = no limit), got {self.max_snapshots}")
        if self.train_every != "auto":
            parse_duration(self.train_every)


class EdgeSAGE(MessagePassing):
    """h_i' = W_self h_i + W_in [mean_{j->i} h_j, mean_{j->i} e_ji] + W_out [mean_{i->j} h_j, mean_{i->j} e_ij].

    [N, H] -> [N, H] (or [len(rows), H] for the given rows only). Linear maps commute with the mean, so
    neighbours are averaged first and mapped once per node (not once per edge): the same layer as a per-edge
    message lin([h_j, e]), several times cheaper. Edge-feature means do not change between layers; `encode`
    computes them once per snapshot.
    """

    def __init__(self, hidden: int):
        super().__init__(aggr="mean")
        self.self_lin = nn.Linear(hidden, hidden)
        self.in_lin = nn.Linear(hidden + GRAPH_EDGE_DIM, hidden)
        self.out_lin = nn.Linear(hidden + GRAPH_EDGE_DIM, hidden)

    def forward(self, h: torch.Tensor, adj_in: MeanOperator, adj_out: MeanOperator, e_in: torch.Tensor,
                e_out: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        if rows is None:
            incoming, outgoing = self.mean(adj_in, h), self.mean(adj_out, h)
        elif h.requires_grad:  # autograd goes through the torch operators: every row, then the asked ones
            incoming, outgoing = self.mean(adj_in, h)[rows], self.mean(adj_out, h)[rows]
        else:  # only the asked rows' neighbours: the same sums in the same order
            incoming, outgoing = adj_in.take(rows) @ h, adj_out.take(rows) @ h
        if rows is not None:
            h, e_in, e_out = h[rows], e_in[rows], e_out[rows]
        return (self.self_lin(h) + self.in_lin(torch.cat([incoming, e_in], dim=-1))
                + self.out_lin(torch.cat([outgoing, e_out], dim=-1)))

    def mean(self, adj: MeanOperator, h: torch.Tensor) -> torch.Tensor:
        """Mean of each node's neighbours' h: PyG's propagate when training (autograd through torch.sparse),
        the compiled CSR product otherwise (`MeanOperator`: faster on CPU, sums each row in index order)."""
        if h.requires_grad:
            return self.propagate(adj.torch, x=h)
        return adj @ h

    def message_and_aggregate(self, adj_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # adj_t is row-normalised, so one sparse product is the mean over neighbours (several times faster
        # than gather + scatter at 50k+ edges).
        return torch.sparse.mm(adj_t, x)


@dataclass
class MeanOperator:
    """A row-normalised sparse matrix (`op @ x` = mean over each row's entries) as CSR arrays: ptr [n + 1],
    cols, w (1/deg, float32). With a gradient it is a torch CSR tensor (built on first use); without, the
    compiled `fraud.features.graph_pass.spmm`: scipy's sums in scipy's order (same bits), without holding the GIL,
    so snapshots on two threads run in parallel."""

    ptr: np.ndarray
    cols: np.ndarray
    w: np.ndarray
    width: int
    rows: np.ndarray | None = None  # `take`: only these rows (no-gradient path)

    @functools.cached_property
    def torch(self) -> torch.Tensor:
        return torch.sparse_csr_tensor(torch.from_numpy(self.ptr), torch.from_numpy(self.cols),
                                       torch.from_numpy(self.w), size=(len(self.ptr) - 1, self.width),
                                       check_invariants=False)

    def take(self, rows: torch.Tensor) -> MeanOperator:
        """The operator's rows `rows` only (for the no-gradient path)."""
        return MeanOperator(self.ptr, self.cols, self.w, self.width, rows.numpy().astype(np.int64))

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return torch.sparse.mm(self.torch, x)
        rows = self.rows if self.rows is not None else np.arange(len(self.ptr) - 1)
        return torch.from_numpy(spmm(self.ptr, self.cols, self.w, np.ascontiguousarray(x.numpy(), np.float32),
                                     rows))


def mean_csr(recv: np.ndarray, send: np.ndarray, n: int) -> tuple[MeanOperator, MeanOperator]:
    """Mean over each node's edges, by receiving node: adj [N, N] (adj @ h = mean of the senders' h) and
    inc [N, E] (inc @ edge_attr = mean of the edges' features).

    Built from one stable radix sort of the receivers, with no duplicate summing: a pair with k edges is k
    entries of 1/deg. Within a row, entries keep edge (time) order, so the same snapshot always gives the
    same sums in the same order (`fraud.features.graph_pass` builds the same arrays straight from the event log).
    """
    order, indptr = csr_order(recv, n)
    deg = np.diff(indptr)
    data = (1.0 / np.maximum(deg, 1)).astype(np.float32)[recv[order]]
    return (MeanOperator(indptr, send[order].astype(np.int64), data, n),
            MeanOperator(indptr, order.astype(np.int64), data, len(recv)))


class EdgeHead(nn.Module):
    """Fraud logit of an edge from its endpoints' embeddings and its own features: [n, 2E + EDGE_DIM] -> [n]."""

    def __init__(self, embed: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * embed + EDGE_DIM, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h_src: torch.Tensor, h_dst: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        first, _, last = self.mlp
        z = torch.relu(first(torch.cat([h_src, h_dst, edge_attr], dim=-1)))
        # = last(z).squeeze(-1), but as a per-row sum: a [n, H] x [H, 1] matmul rounds differently for
        # different n, and a row's logit must not depend on which other rows are scored with it.
        return (z * last.weight[0]).sum(-1) + last.bias[0]


@dataclass
class Encoded:
    """A snapshot after all but the last GNN layer: h [N, H], the mean operators and edge-feature means."""

    h: torch.Tensor
    adj_in: MeanOperator
    adj_out: MeanOperator
    e_in: torch.Tensor
    e_out: torch.Tensor


class EdgeGNN(nn.Module):
    """Encoder (node embeddings [N, embed]) plus EdgeHead; see the module docstring."""

    def __init__(self, cfg: GNNConfig):
        super().__init__()
        node_dim = NODE_DIM + (LABEL_NODE_DIM if cfg.label_nodes else 0)
        self.in_proj = nn.Sequential(nn.Linear(node_dim, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.ReLU())
        self.convs = nn.ModuleList(EdgeSAGE(cfg.hidden) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(nn.LayerNorm(cfg.hidden) for _ in range(cfg.layers))
        self.out = nn.Linear(cfg.hidden, cfg.embed)
        self.head = EdgeHead(cfg.embed, cfg.hidden)

    def encode(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
               nodes: np.ndarray | None = None) -> torch.Tensor:
        """Node embeddings [N, embed] of a snapshot (x [N, NODE_DIM], edge_index [2, E],
        edge_attr [E, GRAPH_EDGE_DIM]); with `nodes` (local indices), only those nodes' [len(nodes), embed].

        The last layer's dense part runs only on `nodes` (a snapshot's rows touch ~10 % of its nodes). Such a
        row gets bit-identical values whatever other nodes are asked with it: CPU matmul rows agree from 16
        rows up, so smaller requests are padded to 16.
        """
        return self.encode_nodes(self.encode_prefix(x, edge_index, edge_attr), nodes)

    def encode_prefix(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> Encoded:
        """Everything of `encode` that does not depend on which nodes are asked: reusable for later rows of
        the same snapshot (the HTTP service asks one snapshot many times)."""
        n = x.shape[0]
        ei = edge_index.numpy()
        adj_in, inc_in = mean_csr(ei[1], ei[0], n)
        adj_out, inc_out = mean_csr(ei[0], ei[1], n)
        e_in, e_out = inc_in @ edge_attr, inc_out @ edge_attr  # [N, GRAPH_EDGE_DIM]
        return self.encode_ops(x, adj_in, adj_out, e_in, e_out)

    def encode_ops(self, x: torch.Tensor, adj_in: MeanOperator, adj_out: MeanOperator, e_in: torch.Tensor,
                   e_out: torch.Tensor) -> Encoded:
        """`encode_prefix` from the snapshot's mean operators and edge-feature means (already built)."""
        h = self.in_proj(x)
        for conv, norm in zip(self.convs[:-1], self.norms[:-1], strict=True):
            h = h + torch.relu(norm(conv(h, adj_in, adj_out, e_in, e_out)))
        return Encoded(h, adj_in, adj_out, e_in, e_out)

    def encode_nodes(self, enc: Encoded, nodes: np.ndarray | None = None) -> torch.Tensor:
        """The last layer and the output map, for all nodes or only `nodes` (see `encode`)."""
        conv, norm, h = self.convs[-1], self.norms[-1], enc.h
        if nodes is None:
            h = h + torch.relu(norm(conv(h, enc.adj_in, enc.adj_out, enc.e_in, enc.e_out)))
            return self.out(h)
        rows = torch.from_numpy(np.concatenate([nodes, np.full(max(0, MIN_ROWS - len(nodes)), h.shape[0] - 1)]))
        h = h[rows] + torch.relu(norm(conv(h, enc.adj_in, enc.adj_out, enc.e_in, enc.e_out, rows)))
        return self.out(h)[: len(nodes)]

    def forward(self, win: Window, src_local: torch.Tensor, dst_local: torch.Tensor,
                row_attr: torch.Tensor) -> torch.Tensor:
        """Edge logits [q] of q query edges (local node indices [q], row_attr [q, EDGE_DIM]) on one window."""
        q = len(src_local)
        nodes, inverse = np.unique(torch.cat([src_local, dst_local]).numpy(), return_inverse=True)
        h = self.encode_nodes(self.encode_ops(*window_ops(win)), nodes)
        inverse = torch.from_numpy(inverse)
        return self.head(h[inverse[:q]], h[inverse[q:]], row_attr)


def _tensors(snap: Snapshot) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(snap.x), torch.from_numpy(snap.edge_index), torch.from_numpy(snap.edge_attr))


def window_ops(win: Window) -> tuple[torch.Tensor, MeanOperator, MeanOperator, torch.Tensor, torch.Tensor]:
    """(x [N, NODE_DIM], adj_in, adj_out, e_in [N, GRAPH_EDGE_DIM], e_out) of a compiled window: the inputs
    of `EdgeGNN.encode_ops`, the same values `encode_prefix` builds from the window's snapshot (tested)."""
    n = len(win.x)
    adj_in, adj_out = (MeanOperator(win.ptr[s], win.nbr[s], win.w[s], n) for s in (0, 1))
    return (torch.from_numpy(win.x), adj_in, adj_out, torch.from_numpy(win.emean[0]),
            torch.from_numpy(win.emean[1]))


@dataclass
class Rows:
    """Rows to score or train on: times [n] ns, global src/dst entity codes [n], edge features [n, EDGE_DIM]."""

    t: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    attr: np.ndarray


@torch.no_grad()
def encode_prefix(model: EdgeGNN, snap: Snapshot) -> Encoded:
    """`model.encode_prefix` of a snapshot, without autograd (the scoring path)."""
    return model.encode_prefix(*_tensors(snap))


@torch.no_grad()
def encode_window(model: EdgeGNN, win: Window) -> Encoded:
    """`encode_prefix` of a `fraud.features.graph_pass.Window`: the same values, without building the snapshot graph."""
    return model.encode_ops(*window_ops(win))


@torch.no_grad()
def embed_snapshot(model: EdgeGNN, snap: Snapshot | None, src_local: np.ndarray, dst_local: np.ndarray,
                   attr: np.ndarray, enc: Encoded | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h_src [q, embed], h_dst [q, embed], edge logit [q]) for q query edges on one snapshot (`enc`: its
    `encode_prefix` or `encode_window`, if already computed; then `snap` is not needed)."""
    q = len(src_local)
    nodes, inverse = np.unique(np.concatenate([src_local, dst_local]), return_inverse=True)
    h = model.encode_nodes(enc if enc is not None else model.encode_prefix(*_tensors(snap)), nodes)
    pad = np.r_[np.arange(q), np.zeros(max(0, MIN_ROWS - q), np.int64)]  # see EdgeGNN.encode on padding
    s, d = torch.from_numpy(inverse[:q][pad]), torch.from_numpy(inverse[q:][pad])
    logit = model.head(h[s], h[d], torch.from_numpy(attr[pad]))
    return h[s[:q]].numpy(), h[d[:q]].numpy(), logit[:q].numpy()


@torch.no_grad()
def node_embeddings(model: EdgeGNN, enc: Encoded) -> torch.Tensor:
    """Every node's embedding [N, embed] of an encoded snapshot, by the path `embed_snapshot` takes for the
    nodes of its rows (the same bits: rows of a matmul of at least MIN_ROWS rows agree, tested), for a
    snapshot asked again and again (the HTTP service)."""
    return model.encode_nodes(enc, np.arange(enc.h.shape[0]))


@torch.no_grad()
def embed_from_nodes(model: EdgeGNN, nodes_h: torch.Tensor, src_local: np.ndarray, dst_local: np.ndarray,
                     attr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`embed_snapshot`'s (h_src [q, embed], h_dst [q, embed], edge logit [q]) from the snapshot's
    `node_embeddings` [N, embed]: two row lookups and the edge head, the same values."""
    q = len(src_local)
    pad = np.r_[np.arange(q), np.zeros(max(0, MIN_ROWS - q), np.int64)]  # see EdgeGNN.encode on padding
    s, d = torch.from_numpy(src_local[pad]), torch.from_numpy(dst_local[pad])
    hs, hd = nodes_h[s], nodes_h[d]
    logit = model.head(hs, hd, torch.from_numpy(attr[pad]))
    return hs[:q].numpy(), hd[:q].numpy(), logit[:q].numpy()


def embed_rows(model: EdgeGNN, log: EventLog, rows: Rows, gcfg: GraphConfig,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(h_src [n, embed], h_dst [n, embed], edge logit [n]) of each row from its snapshot's graph."""
    model.eval()
    n, emb = len(rows.t), model.out.out_features
    hs, hd = np.zeros((n, emb), np.float32), np.zeros((n, emb), np.float32)
    logit = np.zeros(n, np.float32)
    for idx, snap in tqdm(iter_snapshots(log, rows.t, gcfg.every_ns, gcfg.window_ns), desc="gnn embed",
                          disable=not progress, leave=False):
        hs[idx], hd[idx], logit[idx] = embed_snapshot(model, snap, snap.local(rows.src[idx]),
                                                      snap.local(rows.dst[idx]), rows.attr[idx])
    return hs, hd, logit
