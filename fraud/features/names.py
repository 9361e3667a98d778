"""Model input columns in plain words, for reason codes and drift warnings."""

from __future__ import annotations

from fraud.features.robust import describe_robust

_ROLE = {"src": "sender", "dst": "receiver"}
_PLAIN = {
    "log_amount": "amount", "hour_sin": "time of day", "hour_cos": "time of day", "weekday": "day of week",
    "pair_n_prev": "earlier payments between this sender and receiver",
    "pair_is_new": "first payment between this sender and receiver",
    "pair_rev_n_prev": "earlier payments in the opposite direction",
    "src_in_distinct": "how many different payers the sender has", "dst_out_distinct": "how many different "
    "payees the receiver has",
    "path_return_hops": "money from the receiver reached the sender before (closes a cycle)",
    "ae_log_error": "unusual overall pattern (autoencoder)", "gnn_edge_logit": "network neighbourhood (GNN)",
}


def _describe_risk(who: str, rest: list[str]) -> str | None:
    """Entity-risk columns (fraud/features/risk.py), or None."""
    key = "_".join(rest)
    if key.startswith("known_fraud_") and key != "known_fraud_n":
        return f"{who}: confirmed frauds that came to light in the last {rest[-1]}"
    if key.startswith("known_share_"):
        return f"{who}: share of confirmed frauds among labels of the last {rest[-1]}"
    return {"known_fraud_n": f"{who}: confirmed frauds so far",
            "secs_known_fraud": f"{who}: time since its latest confirmed fraud",
            "nbr_fraud_n": f"{who}: counterparties with a confirmed fraud",
            "nbr_fraud_share": f"{who}: share of counterparties with a confirmed fraud"}.get(key)


def describe(name: str) -> str:
    """A human phrase for a model input column, for reason codes (e.g. 'sender: payments in the last 1h')."""
    if name in _PLAIN:
        return _PLAIN[name]

    if (robust := describe_robust(name)) is not None:
        return robust
    parts = name.split("_")
    if name.startswith(("gnn_src", "gnn_dst")):
        return f"{_ROLE[name[4:7]]}'s network neighbourhood (GNN)"
    if name.startswith("ae_z"):
        return "unusual overall pattern (autoencoder)"
    if parts[0] in _ROLE:
        who = _ROLE[parts[0]]
        rest = parts[1:]
        if (risk := _describe_risk(who, rest)) is not None:
            return risk
        if rest[:1] in (["in"], ["out"]):  # neighbour aggregates: the entity in its other role
            verb = "received" if rest[0] == "in" else "sent on"
            kind = "number of payments" if rest[1] == "cnt" else "amount"
            return f"{who}: {kind} {verb} in the last {rest[2]}"
        paid = "paid" if parts[0] == "src" else "received"
        table = {"cnt": f"payments {paid} in the last {{w}}", "sum": f"amount {paid} in the last {{w}}",
                 "secs": "time since the previous payment", "n": "length of payment history",
                 "amt": "amount compared with own history", "distinct": "number of different counterparties"}
        text = table.get(rest[0], " ".join(rest))
        return f"{who}: " + text.format(w=rest[1] if len(rest) > 1 else "")
    return name.replace("_", " ")
