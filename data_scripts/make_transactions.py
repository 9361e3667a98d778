"""Seeded generator of labelled transactions with six fraud typologies, in the fraud app's canonical format.

    python -m data_scripts.make_transactions --out data/tx.parquet --seed 0 --customers 5000 --days 45
    df = generate(TransactionConfig(n_customers=2000, days=30, seed=0, holdout_typology="mule_ring"))

Entities: customers `C<i>` (cards and accounts; `C<i>` with i >= n_customers are outside accounts first seen
in a takeover), merchants `M<j>`. Output columns: the canonical `transaction_id, timestamp, source, target,
amount, label, typology` plus `channel` (card / online / transfer), `category` (merchant category or p2p) and
`case_id` (which fraud case a row belongs to, -1 for benign; for tests and analysis, never a model input).

Benign behaviour (all vectorised, no Python loop per row):
- card payments at a customer-specific rate (gamma, a share of dormant accounts), amounts log-normal around a
  per-customer median (itself log-normal: heavy tails across and within customers) times the merchant
  category's scale; 85 % go to a handful of favourite merchants, the rest to merchants by popularity
  (Pareto-distributed), so new merchants appear at a realistic rate;
- daily seasonality (lunchtime and evening peaks, quiet nights, shifted per customer) and weekly seasonality
  (busier Fridays and Saturdays, quieter Sundays);
- person-to-person transfers to a few regular payees (mostly in the customer's own community), a share
  `new_payee_rate` to someone new, round amounts half of the time;
- recurring payments (monthly or weekly, fixed amount, posted in the early morning like direct debits);
- bill splits: a few friends pay one of them within hours (benign fan-in that looks like a mule's).

Fraud typologies (`TYPOLOGIES`; rows per typology follow `fraud_rate` and `typology_mix`):
- card_testing: bursts of 5-12 tiny online amounts at different merchants within minutes, then 1-2 large ones;
- account_takeover: a dormant or normal account sends 2-5 large round amounts to new payees at 01-05 h;
- mule_ring: 8-16 victims pay 4-7 connected mule accounts, the mules pass money among themselves and pay it
  out to cash-out accounts, all within a 2-6 hour window;
- laundering_cycle: money leaves an account and returns to it through a chain of 2-6 others, 1-12 h per hop,
  a few percent skimmed per hop;
- colluding_merchant: a small merchant receives a burst from 15-40 cards within a few hours; the cards were
  compromised at one breached merchant they all use (a common point of purchase);
- compromised_merchant: a merchant is skimmed for 2-5 weeks and 50-90 % of its card payments in that window
  are fraud: benign payments relabelled, so volume, amounts and hours stay ordinary and only the labels of
  its earlier payments (once known) give it away.
mule_ring and laundering_cycle are graph-only (`GRAPH_TYPOLOGIES`): every transfer uses an ordinary customer
account, an amount drawn exactly as that sender's ordinary transfers are, and an ordinary daytime hour; only
who pays whom (fan-in to connected accounts, a path back to the origin) gives them away.
A `holdout_typology` starts only after `holdout_after` of the period (new fraud the training never saw).
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from data_scripts.fraud_typologies import GRAPH_TYPOLOGIES, MAKERS, fraud_cases
from data_scripts.transaction_config import DEFAULT_MIX, SIZES, TransactionConfig
from data_scripts.transaction_world import CATEGORIES, CHANNELS, DAY, Columns, World, benign
from fraud.data.frame import TYPOLOGIES

__all__ = ["DEFAULT_MIX", "GRAPH_TYPOLOGIES", "SIZES", "TYPOLOGIES", "TransactionConfig", "config_from", "generate",
           "main", "parse_mix", "summary", "write"]


def generate(cfg: TransactionConfig, progress: bool = False) -> pd.DataFrame:
    """The canonical labelled transactions frame of `cfg`, sorted by time (same seed, same frame)."""
    from tqdm.auto import tqdm

    steps = ["benign", *TYPOLOGIES, "assemble"]
    bar = tqdm(total=len(steps), desc="generating", unit="step", disable=not progress)
    rng = np.random.default_rng(cfg.seed)
    w = World(cfg, rng)
    parts = Columns()
    benign(w, parts)
    bar.update()
    cases = fraud_cases(cfg, sum(len(a) for a in parts.cols["t"]))
    case0, outside = 0, 0
    for name in TYPOLOGIES:
        day_lo = int(np.ceil(cfg.holdout_after * cfg.days)) if name == cfg.holdout_typology else 0
        if cases[name]:
            made = MAKERS[name](w, parts, cases[name], day_lo, case0)
            outside += made or 0
        case0 += cases[name]
        bar.update()
    df = _assemble(cfg, parts.concat(), cfg.n_customers + outside)
    bar.update()
    bar.close()
    return df


def _assemble(cfg: TransactionConfig, c: dict[str, np.ndarray], n_accounts: int) -> pd.DataFrame:
    span = cfg.days * DAY
    if len(c["t"]) and (c["t"].min() < 0 or c["t"].max() >= span):  # every part is built inside the period
        raise AssertionError(f"generated times outside [0, {span}) s; please report this with the config")
    order = np.argsort(c["t"], kind="stable")
    c = {k: v[order] for k, v in c.items()}
    accounts = np.char.add("C", np.arange(n_accounts).astype("U")).astype(object)
    merchants = np.char.add("M", np.arange(cfg.n_merchants).astype("U")).astype(object)

    def names(code: np.ndarray) -> pd.arrays.StringArray:
        out = np.where(code >= 0, accounts[np.clip(code, 0, None)], merchants[np.clip(-code - 1, 0, None)])
        return pd.array(out, dtype="string")

    start_ns = pd.Timestamp(cfg.start, tz="UTC").value
    typ_names = np.array(["", *TYPOLOGIES], dtype=object)
    cat_names = np.array(["p2p", *CATEGORIES], dtype=object)
    n = len(order)
    return pd.DataFrame({
        "transaction_id": pd.array(np.char.add("T", np.arange(n).astype("U")).astype(object), dtype="string"),
        "timestamp": pd.to_datetime(start_ns + c["t"].astype(np.int64) * 1_000_000_000, utc=True, unit="ns"),
        "source": names(c["src"]),
        "target": names(c["dst"]),
        "amount": c["amt"].astype(np.float64),
        "label": (c["typ"] > 0).astype(np.int8),
        "typology": pd.array(typ_names[c["typ"]], dtype="string"),
        "channel": pd.array(np.array(CHANNELS, dtype=object)[c["chan"]], dtype="string"),
        "category": pd.array(cat_names[c["cat"]], dtype="string"),
        "case_id": c["case"].astype(np.int32),
    })


# ---- command line ----------------------------------------------------------------------------------------
def parse_mix(text: str) -> dict[str, float]:
    """'mule_ring=0.5,card_testing=0.5' -> {'mule_ring': 0.5, 'card_testing': 0.5}."""
    out = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"typology mix item {item!r} is not NAME=WEIGHT (e.g. mule_ring=0.4)")
    return out


def write(df: pd.DataFrame, out: str | Path) -> Path:
    """Write the frame as Parquet or CSV by the suffix of `out` (timestamps as ISO-8601 UTC in CSV)."""
    from shared.tabular import write_table

    return write_table(df, out)


def summary(df: pd.DataFrame) -> list[dict]:
    """One row per typology (and benign): rows, cases, share of all rows, first and last day."""
    t0 = df["timestamp"].min()
    rows = []
    typ = df["typology"].fillna("")
    for name in ["", *TYPOLOGIES]:
        part = df[typ == name]
        if len(part):
            rows.append({"typology": name or "(benign)", "rows": len(part),
                         "cases": int(part["case_id"].nunique()) if name else 0,
                         "share": len(part) / len(df),
                         "first_day": float((part["timestamp"].min() - t0).total_seconds() / DAY),
                         "last_day": float((part["timestamp"].max() - t0).total_seconds() / DAY)})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output file: .parquet or .csv")
    ap.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")
    ap.add_argument("--size", choices=sorted(SIZES), default=None,
                    help="named size (customers/merchants/days); other flags override it")
    ap.add_argument("--rows", type=int, default=None, help="about this many rows (solves the number of customers)")
    for f in fields(TransactionConfig):
        if f.name in ("seed", "typology_mix"):
            continue
        flag = "--" + {"n_customers": "customers", "n_merchants": "merchants"}.get(f.name, f.name.replace("_", "-"))
        ap.add_argument(flag, dest=f.name, type=type(f.default), default=None,
                        help=f"TransactionConfig.{f.name} (default {f.default})")
    ap.add_argument("--mix", default=None, help="typology weights, e.g. mule_ring=0.5,card_testing=0.5")
    args = ap.parse_args(argv)
    cfg = config_from(size=args.size, rows=args.rows, mix=args.mix, seed=args.seed,
                      **{f.name: getattr(args, f.name) for f in fields(TransactionConfig)
                         if f.name not in ("seed", "typology_mix")})
    df = generate(cfg, progress=True)
    path = write(df, args.out)
    from shared.reporting import text_table

    print(text_table(summary(df), digits=4))
    print(f"{len(df):,} transactions -> {path}")


def config_from(size: str | None = None, rows: int | None = None, mix: str | None = None,
                **values) -> TransactionConfig:
    """A TransactionConfig from a named size, then explicit values (None = keep), then `rows` if given."""
    if size is not None and size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    kwargs = dict(SIZES[size]) if size else {}
    kwargs.update({k: v for k, v in values.items() if v is not None})
    if mix:
        kwargs["typology_mix"] = parse_mix(mix)
    if rows is not None:
        kwargs.pop("n_customers", None)
        return TransactionConfig.for_rows(rows, **kwargs)
    return TransactionConfig(**kwargs)


if __name__ == "__main__":
    main()
