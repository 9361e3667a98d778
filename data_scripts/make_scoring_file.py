"""A file to score with a trained fraud model: the rows of a labelled file after the model's stored history,
without labels, as CSV with text timestamps, plus a few broken rows a loader must reject.

    python -m data_scripts.make_scoring_file --data tx.parquet --model runs/fraud-model --out new.csv --seed 0

This is what `make demo` scores: the test period of the file `fraud train` learned from (later than anything
the model has seen), the way a user's next day of traffic would arrive. `--broken 3` damages three rows (a
negative amount, a timestamp that is not a date, a duplicated id) so the rejects file has something in it.
The labels go to OUT's name + `.labels.parquet` for measuring the scores afterwards.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def scoring_frame(data: pd.DataFrame, after_ns: int | None, broken: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to score as text columns, their labels) from canonical `data`: rows at or after `after_ns`."""
    t = data["timestamp"].dt.as_unit("ns").astype("int64").to_numpy()
    new = data[t >= after_ns] if after_ns is not None else data
    new = new.sort_values("timestamp", kind="stable").reset_index(drop=True)
    if len(new) < 3 * max(broken, 1):
        raise SystemExit(f"only {len(new)} rows lie after the model's stored history; use a longer file")
    labels = new[["transaction_id", "label"]] if "label" in new.columns else new[["transaction_id"]]
    out = new[["transaction_id", "timestamp", "source", "target", "amount"]].astype({"amount": object})
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(np.arange(1, len(out)), size=broken, replace=False))
    for k, r in enumerate(rows):
        if k % 3 == 0:
            out.loc[r, "amount"] = -12.5
        elif k % 3 == 1:
            out.loc[r, "timestamp"] = "yesterday"
        else:
            out.loc[r, "transaction_id"] = out.loc[r - 1, "transaction_id"]
    return out, labels


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="example: python -m "
                                 "data_scripts.make_scoring_file --data tx.parquet --model runs/m --out new.csv")
    ap.add_argument("--data", required=True, type=Path, help="labelled canonical Parquet (fraud make-data)")
    ap.add_argument("--model", required=True, type=Path, help="model directory from `fraud train`")
    ap.add_argument("--out", required=True, type=Path, help="CSV to write")
    ap.add_argument("--broken", type=int, default=3, help="rows to damage on purpose (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    meta = json.loads((args.model / "model.json").read_text(encoding="utf-8"))
    out, labels = scoring_frame(pd.read_parquet(args.data), meta["history"]["max_ns"], args.broken, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.out, index=False)
    labels.to_parquet(args.out.with_name(args.out.name.split(".")[0] + ".labels.parquet"), index=False)
    print(f"{args.out}: {len(out):,} rows after the model's stored history ({args.broken} broken on purpose)")


if __name__ == "__main__":
    main()
